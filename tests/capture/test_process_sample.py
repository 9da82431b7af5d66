"""`nerfhead process` on the shipped sample capture: dataset contents and quality."""

from __future__ import annotations


import numpy as np

from nerfhead import landmark_ids as ids
from nerfhead.capture.segment import face_hull
from nerfhead.dataset import HEAD
from nerfhead.dataset import FORMAT_VERSION, Identity
from nerfhead.io.images import read_labels, read_rgb


def test_manifest_documents_every_output(sample_identity):
    m = sample_identity.manifest()
    assert m["format_version"] == FORMAT_VERSION
    n = m["n_frames"]
    assert n == 500  # 20.0 s at 25 fps
    assert (m["image"]["width"], m["image"]["height"]) == (512, 512)
    tracks = sample_identity.tracks()
    for name in ("landmarks", "rotation", "translation", "camera_to_head", "euler_deg", "eye_ratio", "blink"):
        assert name in m["arrays"], name
        assert len(tracks[name]) == n
    assert tracks["landmarks"].shape == (n, 478, 3)
    assert tracks["canonical_shape"].shape == (478, 3)
    assert len(list(sample_identity.frames_dir.glob("*.jpg"))) == n
    assert len(list(sample_identity.masks_dir.glob("*.png"))) == n
    assert not sample_identity.work_dir.exists()
    # split: last 10 % are test frames, contiguous and disjoint from training
    split = m["split"]
    assert split["test_start"] == 450
    assert split["test"] == list(range(450, 500)) and split["train"] == list(range(450))
    # audio: 16 kHz mono covering the video
    assert m["audio"]["rate"] == 16000
    import wave

    with wave.open(str(sample_identity.audio_path)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        assert w.getnframes() == n * 16000 // 25


def test_tracking_quality(sample_identity):
    q = sample_identity.manifest()["quality"]
    print(f"\nsample: face on {q['face_coverage']:.2%} of frames, reprojection median "
          f"{q['reprojection_median_px512']:.2f} px at 512, jitter {q['rotation_jitter_median_deg']:.3f} deg/frame, "
          f"background MAE {q['background_error_mae']:.2f}/255")
    assert q["face_coverage"] >= 0.99
    assert q["reprojection_median_px512"] <= 1.5
    assert q["rotation_jitter_median_deg"] < 1.0
    assert q["background_error_mae"] < 6.0


def test_pose_projects_onto_landmarks(sample_identity):
    """The fitted shape under the fitted pose lands on the tracked rigid landmarks, per frame."""
    m = sample_identity.manifest()
    t = sample_identity.tracks()
    cam = m["camera"]
    rigid = list(ids.RIGID)
    pts = t["canonical_shape"][rigid]
    x = np.einsum("nij,pj->npi", t["rotation"], pts) + t["translation"][:, None]
    uv = cam["fx"] * x[..., :2] / x[..., 2:3] + np.array([cam["cx"], cam["cy"]])
    err = np.linalg.norm(uv - t["landmarks"][:, rigid, :2], axis=-1)
    assert np.median(err) <= 1.5
    assert np.percentile(np.median(err, axis=1), 99) < 4.0  # no frame is badly off
    # camera_to_head is the inverse of the head pose
    c2w = t["camera_to_head"][0]
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = t["rotation"][0], t["translation"][0]
    np.testing.assert_allclose(c2w @ w2c, np.eye(4), atol=1e-9)


def test_head_mask_covers_face_hull(sample_identity):
    t = sample_identity.tracks()
    for i in (0, 123, 250, 377, 499):
        labels = read_labels(sample_identity.mask_path(i))
        hull = face_hull(t["landmarks"][i], labels.shape)
        assert (labels[hull] == HEAD).all(), f"frame {i}: head mask misses part of the face"
        # the person is not all head: there is torso below, and background around
        assert (labels == 2).mean() > 0.05 and (labels == 0).mean() > 0.1


def test_background_plate_matches_uncovered_pixels(sample_identity):
    m = sample_identity.manifest()
    plate = read_rgb(sample_identity.background_path).astype(np.float32)
    errs = []
    for i in (10, 200, 480):
        frame = read_rgb(sample_identity.frame_path(i)).astype(np.float32)
        bg = read_labels(sample_identity.mask_path(i)) == 0
        errs.append(np.abs(frame[bg] - plate[bg]).mean())
    print(f"\nplate vs frames' background pixels: {np.round(errs, 2)} /255; manifest "
          f"{m['background']['error_mae']:.2f} on never-covered pixels")
    assert max(errs) < 8.0


def test_eye_openness_sees_blinks(sample_identity):
    t = sample_identity.tracks()
    ratio = t["eye_ratio"]
    # the presenter blinks several times in 20 s: dips well below the usual openness
    dips = np.flatnonzero((ratio[1:] < 0.6 * np.median(ratio)) & (ratio[:-1] >= 0.6 * np.median(ratio)))
    assert 2 <= len(dips) <= 40
    assert t["blink"].min() == 0.0 and t["blink"].max() > 0.4


def test_qa_images_written(sample_identity):
    from PIL import Image

    for name in ("contact_sheet.png", "tracks.png"):
        with Image.open(sample_identity.qa_dir / name) as img:
            assert img.width > 600 and img.height > 400


def test_info_summarises(sample_identity, ids_root):
    from nerfhead.capture.summary import describe_identity

    text = describe_identity("sample", root=ids_root)
    assert "500 at 25 fps" in text and "reprojection median" in text


def test_identity_reader_refuses_unprocessed(ids_root):
    import pytest

    from nerfhead.errors import IdentityError

    with pytest.raises(IdentityError, match="not processed"):
        Identity.at("nobody", ids_root).manifest()
