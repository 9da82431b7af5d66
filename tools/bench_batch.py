"""Batch throughput on this machine: 1 worker x all threads against N workers x 1 thread, one run each.

Renders the same job list (real speech: consecutive pieces of the identity's own capture audio) with
`nerfhead batch` in a child process per configuration, each into an empty output folder, and prints
frames/s of the renders and of the whole command (Ray's start and each worker's avatar load included).

    python tools/bench_batch.py --identity obama --jobs 6 --seconds 4
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import cpu_name

from nerfhead.dataset import Identity
from nerfhead.io.audio import load_audio, save_wav


def run(cmd: list[str], log: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    with open(log, "wb") as sink:
        code = subprocess.call(cmd, stdout=sink, stderr=subprocess.STDOUT,
                               env={**os.environ, "NERFHEAD_PROGRESS": "0", "RAY_USAGE_STATS_ENABLED": "0"})
    text = log.read_text(errors="replace")
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{text[-3000:]}")
    return time.perf_counter() - t0, text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--identity", default="obama", help="a trained identity")
    ap.add_argument("--root", default="identities")
    ap.add_argument("--jobs", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4.0, help="speech per job")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    ident = Identity.at(args.identity, args.root)
    audio = load_audio(ident.audio_path, 16000)
    n = int(args.seconds * 16000)
    if audio.size < n * args.jobs:
        raise SystemExit(f"{ident.audio_path} holds {audio.size / 16000:.1f} s; ask for fewer or shorter jobs")
    print(f"processor: {cpu_name()}, {cores} cores; {args.jobs} jobs x {args.seconds:g} s of {args.identity}'s own speech")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lines = ["identity,audio,output"]
        for k in range(args.jobs):
            save_wav(tmp / f"part{k}.wav", audio[k * n:(k + 1) * n], 16000)
            lines.append(f"{args.identity},part{k}.wav,out{k}.mp4")
        (tmp / "jobs.csv").write_text("\n".join(lines) + "\n")
        configs = [("in-process", 1, cores, None), ("ray", 1, cores, "local"), ("ray", cores, 1, None)]
        rows = []
        for how, workers, threads, address in configs:
            out = tmp / f"out-{how}-{workers}x{threads}"
            cmd = [sys.executable, "-m", "nerfhead", "batch", str(tmp / "jobs.csv"), "-o", str(out), "--root", args.root,
                   "--workers", str(workers), "--threads", str(threads)] + (["--ray-address", address] if address else [])
            wall, text = run(cmd, tmp / f"{out.name}.log")
            m = re.search(r"batch: (\d+) rendered \((\d+) frames in ([\d.]+) s", text)
            startup = re.search(r", ([\d.]+) s of it starting Ray", text)
            frames, seconds = int(m[2]), float(m[3]) - (float(startup[1]) if startup else 0.0)
            rows.append((f"{how} {workers} x {threads}", frames, seconds, wall))
            print(f"{rows[-1][0]:22s} {frames} frames: {frames / seconds:5.2f} frames/s over the jobs ({seconds:.1f} s, Ray's start not counted), "
                  f"{frames / wall:5.2f} frames/s for the whole command ({wall:.1f} s)", flush=True)
        base = rows[0][1] / rows[0][2]
        for name, frames, seconds, _ in rows[1:]:
            print(f"{name} / in-process 1 x {cores}: {frames / seconds / base:.2f}x frames/s")


if __name__ == "__main__":
    main()
