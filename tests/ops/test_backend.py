"""Kernel builds survive a build killed half-way (torch's leftover lock file)."""

from __future__ import annotations

import subprocess
import sys

from nerfhead.ops.backend import build, cuda_build_possible, family_dir


def test_a_lock_left_by_a_killed_build_does_not_hang_the_next_run():
    build("volrend")  # compiled or cached: its directory exists
    directory = family_dir("volrend", cuda_build_possible())
    stale = directory / "lock"
    stale.write_text("")  # what torch's builder leaves when its process is killed mid-build
    try:
        # torch alone would wait on the file for ever; the timeout turns that into a failure
        done = subprocess.run([sys.executable, "-c", "from nerfhead.ops.backend import build; build('volrend')"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert not stale.exists()
    finally:
        stale.unlink(missing_ok=True)
