"""Faults a new user meets: a full disk, SIGTERM (job schedulers, ``docker stop``), a 1-frame
render. Each gives one line and a non-zero exit, and leaves no temporary file behind."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nerfhead.cli import app
from nerfhead.io import video as video_io
from nerfhead.render.driven import RenderOptions, render_video

REPO = Path(__file__).resolve().parents[1]


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_render_onto_a_full_disk_is_one_line(trained_sample, sample_capture, tmp_path, monkeypatch):
    monkeypatch.setattr(video_io.VideoWriter, "write", _full_disk)
    out = tmp_path / "out"
    out.mkdir()
    r = _cli("render", trained_sample.name, "--root", trained_sample.root.parent, "--audio", sample_capture,
             "--duration", "0.2", "--scale", "0.25", "-o", out / "x.mp4")
    assert r.exit_code == 2, r.output
    assert "No space left on device" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert list(out.iterdir()) == []  # not even the hidden temporary mp4


def test_eval_onto_a_full_disk_is_one_line(trained_sample, tmp_path, monkeypatch):
    from nerfhead.eval import protocol

    monkeypatch.setattr(protocol, "write_atomic", _full_disk)
    out = tmp_path / "eval"
    r = _cli("eval", trained_sample.name, "--root", trained_sample.root.parent, "--frames", "2", "-o", out)
    assert r.exit_code == 2 and "No space left on device" in r.output and "Traceback" not in r.output, r.output
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no half-written file


def _sigterm_when(cmd: list[str], ready, timeout: float = 240.0) -> subprocess.CompletedProcess:
    """Run ``cmd`` (a nerfhead command line) in a child, send it SIGTERM once ``ready()`` holds."""
    env = {**os.environ, "NERFHEAD_PROGRESS": "0", "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-m", "nerfhead", *cmd], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env)
    t0 = time.monotonic()
    while not ready():
        if child.poll() is not None:
            pytest.fail(f"the command ended before it could be stopped:\n{child.stdout.read()}")
        if time.monotonic() - t0 > timeout:
            child.kill()
            pytest.fail("the command never got going")
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, child.returncode, out)


def test_sigterm_during_a_render_leaves_nothing_behind(trained_sample, sample_capture, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    r = _sigterm_when(["render", trained_sample.name, "--root", str(trained_sample.root.parent), "--audio",
                       str(sample_capture), "--scale", "0.25", "-o", str(out / "x.mp4")],
                      ready=lambda: any(out.iterdir()))  # the hidden temporary mp4 exists: frames are being written
    assert r.returncode == 128 + signal.SIGTERM, r.stdout
    assert "terminated" in r.stdout and "Traceback" not in r.stdout
    assert list(out.iterdir()) == []


def test_sigterm_during_processing_leaves_no_temporary_file(sample_capture, tmp_path):
    root = tmp_path / "ids"
    work = root / "late" / ".work"
    r = _sigterm_when(["process", str(sample_capture), "--identity", "late", "--root", str(root)],
                      ready=lambda: (work / "frames").is_dir() and any((work / "frames").iterdir()))
    assert r.returncode == 128 + signal.SIGTERM, r.stdout
    assert "Traceback" not in r.stdout
    assert not (root / "late" / "manifest.json").exists()
    assert not [p for p in root.rglob("*.tmp*")], "temporary files left behind"


def test_one_frame_render_warns_of_nothing(trained_sample, sample_capture, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = render_video(trained_sample.name, tmp_path / "one.mp4", audio=sample_capture,
                         root=trained_sample.root.parent, opts=RenderOptions(duration=0.04, scale=0.25))
    assert r.frames == 1
    assert not [w for w in caught if issubclass(w.category, UserWarning)], [str(w.message) for w in caught]
