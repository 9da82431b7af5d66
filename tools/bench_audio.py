"""Benchmark: audio features (phones + VAD + the extractor's representation) for a speech file, in x real time.

    .venv/bin/python tools/bench_audio.py [AUDIO] [--repeat 3] [--extractor whisper --extractor default]

With several extractors the runs alternate in one process (side by side, same machine state).

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
    ap.add_argument("--extractor", action="append", default=None,
                    help="feature extractor (repeatable; default: whisper and default)")
    args = ap.parse_args()
    extractors = args.extractor or ["whisper", "default"]
    if not Path(args.audio).is_file():
        sys.exit(f"audio not found: {args.audio}")
    os.environ["NERFHEAD_CACHE"] = tempfile.mkdtemp(prefix="nerfhead-bench-")
    t = time.perf_counter()
    from nerfhead.audio import features_for
    from nerfhead.audio.phones import n_workers

    import_s = time.perf_counter() - t
    print(f"audio: {args.audio}  cores: {os.cpu_count()}  phone workers: {n_workers()}")
    times: dict[str, list[float]] = {e: [] for e in extractors}
    for i in range(1 + args.repeat):
        for ext in extractors:
            t = time.perf_counter()
            f = features_for(args.audio, cache=False, extractor=ext)
            times[ext].append(time.perf_counter() - t)
            label = f"{ext}: " + ("first call (cold: models load, workers start)" if i == 0 else f"call {i} (warm)")
            print(f"{label:55s} {times[ext][-1]:6.2f} s  {f.duration / times[ext][-1]:6.1f} x real time")
    t = time.perf_counter()
    features_for(args.audio, extractor=extractors[0])
    hit = time.perf_counter() - t
    print(f"{'cache hit':55s} {hit:6.3f} s")
    print(f"\n{f.duration:.1f} s of audio, {f.n_video_frames} video-frame windows; package import {import_s:.2f} s")
    for ext, ts in times.items():
        warm = sorted(ts[1:])[len(ts[1:]) // 2] if len(ts) > 1 else ts[0]
        print(f"RESULT {ext}: warm median {warm:.2f} s = {f.duration / warm:.1f} x real time "
              f"(cold {ts[0]:.2f} s = {f.duration / ts[0]:.1f} x)")

if __name__ == "__main__":
    main()
