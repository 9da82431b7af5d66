"""`nerfhead batch`: job lists, in-process and on a local Ray with 2 CPUs, failures and resuming."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nerfhead.batch.jobs import load_jobs
from nerfhead.errors import InputError
from nerfhead.io.audio import load_audio, save_wav
from nerfhead.io.video import probe_video

SECONDS = 1.0  # of speech per job


@pytest.fixture(scope="module")
def job_files(trained_sample, sample_capture, tmp_path_factory):
    """Three real speech clips (cut from the sample capture's audio), one corrupt file, a job list."""
    d = tmp_path_factory.mktemp("batch_jobs")
    audio = load_audio(sample_capture, 16000)
    for k in range(3):
        save_wav(d / f"part{k}.wav", audio[int((2 + 5 * k) * 16000):int((2 + 5 * k + SECONDS) * 16000)], 16000)
    (d / "broken.wav").write_bytes(b"RIFF\0\0\0\0WAVEfmt " + os.urandom(600))
    name = trained_sample.name
    (d / "jobs.csv").write_text("identity,audio,output\n" + "".join(
        f"{name},{f},{Path(f).stem}.mp4\n" for f in ("part0.wav", "part1.wav", "broken.wav", "part2.wav")))
    return d, trained_sample.root.parent


def _batch(jobs, out, root, *extra, wait=True):
    cmd = [sys.executable, "-m", "nerfhead", "batch", str(jobs), "-o", str(out), "--root", str(root), *map(str, extra)]
    env = {**os.environ, "NERFHEAD_PROGRESS": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)


def _outputs(out: Path) -> set[str]:
    return {p.name for p in out.glob("*.mp4")}


def _check_failure(proc, text: str) -> None:
    assert proc.returncode == 2, text
    assert re.search(r"failed: job 3 \(broken\.mp4\): .*broken\.wav", text), text
    assert "Traceback" not in text


def test_in_process_batch_renders_the_good_jobs_and_names_the_bad_one(job_files, tmp_path):
    d, root = job_files
    proc = _batch(d / "jobs.csv", tmp_path / "out", root, "--workers", 1)
    _check_failure(proc, proc.stdout + proc.stderr)
    assert _outputs(tmp_path / "out") == {"part0.mp4", "part1.mp4", "part2.mp4"}
    for name in _outputs(tmp_path / "out"):
        info = probe_video(tmp_path / "out" / name)
        assert info.has_audio and abs(info.duration - SECONDS) < 0.1


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the 'cluster' extra (ray) is not installed")
def test_ray_batch_with_two_workers_fails_one_and_resumes_after_a_kill(job_files, tmp_path):
    d, root = job_files
    out = tmp_path / "out"
    proc = _batch(d / "jobs.csv", out, root, "--workers", 2, "--threads", 1, wait=False)
    t0 = time.monotonic()
    while not _outputs(out) and time.monotonic() - t0 < 600 and proc.poll() is None:
        time.sleep(0.2)
    first = {name: (out / name).stat().st_mtime_ns for name in _outputs(out)}
    assert first, proc.communicate()[0].decode(errors="replace")
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
    proc.wait(30)
    time.sleep(2)

    again = _batch(d / "jobs.csv", out, root, "--workers", 2, "--threads", 1)
    text = again.stdout + again.stderr
    _check_failure(again, text)
    assert _outputs(out) == {"part0.mp4", "part1.mp4", "part2.mp4"}
    assert not list(out.glob(".*.tmp*"))
    for name, mtime in first.items():  # what the killed run finished is not rendered again
        assert (out / name).stat().st_mtime_ns == mtime
    m = re.search(r"batch: (\d+) rendered .*, (\d+) already complete, 1 failed", text)
    assert m and (int(m[1]), int(m[2])) == (3 - len(first), len(first)), text


def test_job_lists_are_checked_line_by_line(tmp_path, job_files):
    d, _ = job_files
    (tmp_path / "a.wav").write_bytes((d / "part0.wav").read_bytes())

    def jobs(name, text):
        (tmp_path / name).write_text(text)
        return load_jobs(tmp_path / name)

    yaml_jobs = jobs("j.yaml", "jobs:\n  - {identity: anna, audio: a.wav, duration: 2}\n  - {identity: anna, text: Hi there}\n")
    assert [j.kind for j in yaml_jobs] == ["render", "render"]
    assert yaml_jobs[0].audio == str(tmp_path / "a.wav") and yaml_jobs[0].duration == 2.0
    assert yaml_jobs[1].output == "002-anna-script.mp4"
    dub = jobs("d.csv", "identity,video,text\nanna,a.wav,Hello\n")[0]
    assert dub.kind == "dub" and dub.speech is None
    script = jobs("s.csv", 'identity,text\nanna,"First line.\nSecond line."\n')[0]
    assert script.text == "First line.\nSecond line."
    own = jobs("o.csv", "identity,audio,own_voice\nanna,a.wav,yes\nanna,a.wav,\n")
    assert [j.own_voice for j in own] == [True, False]
    for text, message in [
        ("identity,sound\nanna,a.wav\n", "unknown column 'sound'"),
        ("identity,audio\nanna,missing.wav\n", "job 1: audio file not found"),
        ("identity,audio\nanna,a.wav\n../x,a.wav\n", "job 2: identity name '../x' is not a safe folder name"),
        ("identity,audio,text\nanna,a.wav,Hi\n", "job 1: give audio or text, not both"),
        ("identity,audio,output\nanna,a.wav,x.mp4\nanna,a.wav,x.mp4\n", "jobs 1 and 2 both write x.mp4"),
        ("identity,audio,output\nanna,a.wav,../x.mp4\n", "must be a plain file name"),
        ("identity,audio,duration\nanna,a.wav,soon\n", "duration must be a number"),
        ("audio\na.wav\n", "first row must be a header"),
        ("identity,video,audio,duration\nanna,a.wav,a.wav,2\n", "job 1: a dub (video with audio or text) takes the whole take"),
        ("identity,audio,own_voice\nanna,a.wav,maybe\n", "job 1: own_voice must be yes or no"),
        ("identity,text,own_voice\nanna,Hi,yes\n", "job 1: own_voice is for a recording of the presenter"),
    ]:
        with pytest.raises(InputError, match=re.escape(message)):
            jobs("bad.csv", text)
    with pytest.raises(InputError, match="is .csv"):
        jobs("jobs.txt", "identity\n")
