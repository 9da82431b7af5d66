"""What the benchmarks share: the processor's name, and the peak memory of a child process."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def cpu_name() -> str:
    """The processor's name (speed differs a lot between processors: print it beside every figure)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown processor"


def run_measured(cmd: list[str], env: dict[str, str], log: Path, what: str = "command") -> tuple[float, float]:
    """(peak RSS MiB, wall seconds) of ``cmd``; its output goes to ``log`` (a file, not a pipe: a
    chatty child never blocks on it). SystemExit with the log when it fails."""
    t0 = time.perf_counter()
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{what} failed:\n{log.read_text(errors='replace')}")
    return usage.ru_maxrss / 1024, wall
