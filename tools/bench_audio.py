"""Benchmark: audio features (log-mel + phones + VAD) for a speech file, in x real time.

    .venv/bin/python tools/bench_audio.py [AUDIO] [--repeat 3]

Prints the first call in a fresh process (imports torch, loads the VAD model, starts the
phone-recognition workers) and the following calls (models loaded, as in training and render),
then a cache hit. The cache goes to a temporary folder so every call computes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("audio", nargs="?", default=str(REPO.parent / "shared" / "data" / "audio" / "eng.wav"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not Path(args.audio).is_file():
        sys.exit(f"audio not found: {args.audio}")
    os.environ["NERFHEAD_CACHE"] = tempfile.mkdtemp(prefix="nerfhead-bench-")
    t = time.perf_counter()
    from nerfhead.audio import features_for
    from nerfhead.audio.phones import n_workers

    import_s = time.perf_counter() - t
    print(f"audio: {args.audio}  cores: {os.cpu_count()}  phone workers: {n_workers()}")
    times = []
    for i in range(1 + args.repeat):
        t = time.perf_counter()
        f = features_for(args.audio, cache=False)
        times.append(time.perf_counter() - t)
        label = "first call (cold: torch + VAD model + workers start)" if i == 0 else f"call {i} (warm)"
        print(f"{label:55s} {times[-1]:6.2f} s  {f.duration / times[-1]:6.1f} x real time")
    warm = sorted(times[1:])[len(times[1:]) // 2] if len(times) > 1 else times[0]
    t = time.perf_counter()
    features_for(args.audio)
    hit = time.perf_counter() - t
    print(f"{'cache hit':55s} {hit:6.3f} s")
    print(f"\n{f.duration:.1f} s of audio -> {f.features.shape[0]} x {f.features.shape[1]} features, "
          f"{f.n_video_frames} video-frame windows; package import {import_s:.2f} s")
    print(f"RESULT warm median {warm:.2f} s = {f.duration / warm:.1f} x real time "
          f"(cold {times[0]:.2f} s = {f.duration / times[0]:.1f} x)")


if __name__ == "__main__":
    main()
