"""The studio's job queue: one job at a time, one-line errors, stop and resume, progress, restarts."""

from __future__ import annotations

import json
import sys
import time

import pytest

from nerfhead.log import PROGRESS_FILE_ENV, progress
from nerfhead.studio.jobs import JobStore, Worker, error_line


def _wait(store, job_id, states=("done", "failed", "stopped"), timeout=120.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        job = store.get(job_id)
        if job.state in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {store.get(job_id).state}")


def test_a_failing_command_gives_its_one_line_error(tmp_path):
    """The real CLI as a job: a text file named .wav fails with the CLI's line, exit code 2."""
    fake = tmp_path / "speech.wav"
    fake.write_text("not audio\n")
    store = JobStore(tmp_path / "jobs")
    worker = Worker(store).start()
    try:
        job = worker.submit("features", "-", ["features", str(fake), "-o", str(tmp_path / "f.npz")])
        job = _wait(store, job.id)
    finally:
        worker.shutdown()
    assert job.state == "failed" and job.returncode == 2
    assert job.error.startswith(f"cannot read {fake} as audio/video"), job.error
    assert "Traceback" not in store.log_tail(job.id, 200)
    assert not (tmp_path / "f.npz").exists()


SLEEPER = """
import signal, sys, time
def stop(*_):
    print("saved at step", step, flush=True)
    sys.exit(130)
signal.signal(signal.SIGINT, stop)
for step in range(int(sys.argv[1])):
    time.sleep(0.05)
print("finished", flush=True)
"""


def test_jobs_run_one_at_a_time_and_stop_cleanly(tmp_path):
    store = JobStore(tmp_path / "jobs")
    worker = Worker(store, program=[sys.executable, "-c", SLEEPER]).start()
    try:
        long = worker.submit("train", "a", ["2000"])
        short = worker.submit("render", "a", ["2"])
        _wait(store, long.id, ("running",))
        time.sleep(0.5)
        assert store.get(short.id).state == "queued"  # waits for the running one
        worker.stop(long.id)
        stopped = _wait(store, long.id)
        done = _wait(store, short.id)
    finally:
        worker.shutdown()
    assert stopped.state == "stopped" and stopped.returncode == 130
    assert "saved at step" in store.log_tail(long.id)  # SIGINT reached it: a training saves there
    assert done.state == "done" and "finished" in store.log_tail(short.id)
    assert done.started >= stopped.ended


def test_a_queued_job_can_be_dropped_and_a_restart_keeps_the_queue(tmp_path):
    store = JobStore(tmp_path / "jobs")
    a = store.add("train", "a", ["1"])
    b = store.add("render", "a", ["1"])
    c = store.add("render", "a", ["1"])
    a.state, a.started = "running", time.time()  # the server died while it ran
    store.save(a)
    worker = Worker(JobStore(tmp_path / "jobs"), program=[sys.executable, "-c", SLEEPER])
    worker.stop(c.id)
    worker.start()
    try:
        assert _wait(store, b.id).state == "done"
    finally:
        worker.shutdown()
    assert store.get(a.id).state == "stopped" and "start it again" in store.get(a.id).error
    assert store.get(c.id).state == "stopped" and store.get(c.id).started is None


def test_progress_bars_report_to_the_job(tmp_path, monkeypatch):
    sink = tmp_path / "progress.jsonl"
    monkeypatch.setenv(PROGRESS_FILE_ENV, str(sink))
    with progress("head", total=4) as bar:
        for _ in range(4):
            bar.advance()
    last = json.loads(sink.read_text().splitlines()[-1])
    assert last["task"] == "head" and last["done"] == 4 and last["total"] == 4
    store = JobStore(tmp_path / "jobs")
    job = store.add("train", "a", [])
    store.progress_path(job.id).write_text(json.dumps({"task": "lips", "done": 25, "total": 100, "elapsed": 10.0}) + "\n")
    p = store.progress(job.id)
    assert p.fraction == 0.25 and p.eta == pytest.approx(30.0)


def test_error_line_is_the_clis_last_error():
    assert error_line("INFO a\nerror: file not found: x.mp4\n") == "file not found: x.mp4"
    assert error_line("Traceback (most recent call last):\n  ...\nValueError: x\n") is None


def test_a_broken_job_folder_does_not_block_new_jobs(tmp_path):
    store = JobStore(tmp_path / "jobs")
    (tmp_path / "jobs" / "0001").mkdir()  # a crash between the folder and its job.json
    (tmp_path / "jobs" / "0002").mkdir()
    (tmp_path / "jobs" / "0002" / "job.json").write_text("{not json")
    assert store.add("render", "a", []).id == 3
    assert [j.id for j in store.all()] == [3]
