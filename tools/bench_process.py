"""Time `nerfhead process` step by step on a real capture and print its quality figures.

    .venv/bin/python tools/bench_process.py [VIDEO]      (default: ../shared/data/identities/cnn.mp4)
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nerfhead.capture.pipeline import ProcessConfig, process_capture  # noqa: E402
from nerfhead.log import setup_logging  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", default=str(REPO.parent / "shared" / "data" / "identities" / "cnn.mp4"))
    args = ap.parse_args()
    setup_logging()
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        ident = process_capture(args.video, "bench", ProcessConfig(), root=root)
        wall = time.perf_counter() - t0
        m = ident.manifest()
    q = m["quality"]
    seconds = m["n_frames"] / m["fps"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"video: {args.video} ({m['n_frames']} frames, {seconds:.1f} s, {m['source']['width']}x"
          f"{m['source']['height']} -> {m['image']['width']}x{m['image']['height']})")
    for step, sec in m["timings_s"].items():
        print(f"  {step:<11} {sec:6.1f} s")
    print(f"process total: {wall:.1f} s wall = {seconds / wall:.2f}x real time; peak RSS {peak:.0f} MiB")
    print(f"landmarks on {q['face_coverage']:.2%} of frames; rigid reprojection median "
          f"{q['reprojection_median_px512']:.2f} px, p95 {q['reprojection_p95_px512']:.2f} px (at 512 px)")
    print(f"rotation jitter median {q['rotation_jitter_median_deg']:.3f} deg/frame "
          f"(before smoothing {q['rotation_jitter_unsmoothed_median_deg']:.3f}); focal {q['focal_px']:.1f} px")
    print(f"background plate error on never-covered pixels: {q['background_error_mae']:.2f}/255 mean abs, "
          f"{q['background_error_psnr_db']:.1f} dB")


if __name__ == "__main__":
    main()
