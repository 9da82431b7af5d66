"""Real-data runs on the development media in ../shared/data (slow: `make test-slow`)."""

from __future__ import annotations

import pytest

from nerfhead.capture.pipeline import ProcessConfig, process_capture

pytestmark = pytest.mark.slow


def test_development_identity(shared_data, tmp_path):
    ident = process_capture(shared_data / "identities" / "cnn.mp4", "cnn", ProcessConfig(), root=tmp_path)
    m = ident.manifest()
    q = m["quality"]
    total = sum(m["timings_s"].values())
    print(f"\ncnn: {m['n_frames']} frames in {total:.1f} s ({m['n_frames'] / 25 / total:.2f}x real time); "
          + ", ".join(f"{k} {v:.1f} s" for k, v in m["timings_s"].items()))
    print(f"cnn: face on {q['face_coverage']:.2%}, reprojection median {q['reprojection_median_px512']:.2f} px "
          f"(p95 {q['reprojection_p95_px512']:.2f}), jitter {q['rotation_jitter_median_deg']:.3f} deg/frame, "
          f"background MAE {q['background_error_mae']:.2f}/255 ({q['background_error_psnr_db']:.1f} dB)")
    assert m["n_frames"] == 1779
    assert q["face_coverage"] >= 0.99
    assert q["reprojection_median_px512"] <= 1.5
    assert q["background_error_mae"] < 6.0
    assert len(m["split"]["test"]) >= 170


@pytest.mark.parametrize("clip", ["hdtf_radio2.mp4", "looking_down_700_30fps.mp4", "suit_brick_700_30fps.mp4",
                                  "turning_head_256.mp4"])
def test_other_framings(shared_data, tmp_path, clip):
    ident = process_capture(shared_data / "clips" / clip, "clip", ProcessConfig(), root=tmp_path)
    m = ident.manifest()
    q = m["quality"]
    print(f"\n{clip}: {m['n_frames']} frames, face {q['face_coverage']:.2%}, reprojection "
          f"{q['reprojection_median_px512']:.2f} px, warnings: {m['warnings']}")
    assert q["face_coverage"] >= 0.95
    assert q["reprojection_median_px512"] <= 1.5
