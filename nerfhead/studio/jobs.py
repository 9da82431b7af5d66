"""The studio's background jobs: a queue on disk and one worker that runs them one at a time.

A job is one ``nerfhead`` command line (process, train, render, eval) run as a child process:
the same library calls as the CLI, its one-line errors and exit codes, and a crash in a job
cannot take the server down. Each job has a folder under ``<output>/jobs/NNNN/``:

- ``job.json``: what it runs and its state (queued, running, done, failed, stopped), replaced
  in one move at every change, so a page reload or a server restart finds the jobs as they were;
- ``log.txt``: everything the command printed;
- ``progress.jsonl``: the command's progress bars ($NERFHEAD_PROGRESS_FILE, nerfhead.log).

One job runs at a time (two heavy processes on two cores slow each other far more than 2x).
Stopping a job sends it SIGINT, as Ctrl-C in a terminal: a training saves its checkpoint and
exits, and starting it again resumes there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nerfhead.io.files import write_atomic
from nerfhead.log import PROGRESS_FILE_ENV, get_logger

log = get_logger(__name__)

STATES = ("queued", "running", "done", "failed", "stopped")
#: seconds a stopped job gets to save and exit after SIGINT, then after SIGTERM, before SIGKILL
STOP_GRACE = (60.0, 15.0)


@dataclass
class Job:
    """One queued command and what became of it."""

    id: int
    kind: str  # process, train, render or eval
    identity: str
    argv: list[str]  # arguments after `nerfhead`
    title: str = ""
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    returncode: int | None = None
    error: str | None = None  # the command's one-line error when it failed
    output: str | None = None  # the file it makes (a render's mp4), relative to the output folder

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "stopped")


@dataclass
class Progress:
    """The last state a job's progress bars reported."""

    task: str
    done: int
    total: int | None
    elapsed: float

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None

    @property
    def eta(self) -> float | None:
        """Seconds left at the bar's average pace so far."""
        if not self.total or self.done <= 0:
            return None
        return self.elapsed * (self.total - self.done) / self.done


class JobStore:
    """The jobs of one output folder, on disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def job_dir(self, job_id: int) -> Path:
        return self.folder / f"{job_id:04d}"

    def add(self, kind: str, identity: str, argv: list[str], title: str = "", output: str | None = None) -> Job:
        with self._lock:
            taken = [int(d.name) for d in self.folder.iterdir() if d.is_dir() and d.name.isdigit()]
            job_id = max(taken, default=0) + 1
            job = Job(job_id, kind, identity, list(argv), title=title, output=output)
            self.job_dir(job_id).mkdir(parents=True, exist_ok=False)
            self._write(job)
        return job

    def save(self, job: Job) -> None:
        with self._lock:
            self._write(job)

    def _write(self, job: Job) -> None:
        write_atomic(self.job_dir(job.id) / "job.json", json.dumps(asdict(job), indent=1))

    def get(self, job_id: int) -> Job | None:
        path = self.job_dir(job_id) / "job.json"
        try:
            return Job(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def all(self) -> list[Job]:
        """Every job, oldest first (a folder without a readable job.json is skipped)."""
        jobs = []
        for d in sorted(self.folder.iterdir()):
            if d.is_dir() and d.name.isdigit():
                job = self.get(int(d.name))
                if job is not None:
                    jobs.append(job)
        return jobs

    def latest(self, kind: str | None = None, identity: str | None = None) -> Job | None:
        return latest(self.all(), kind, identity)

    def log_path(self, job_id: int) -> Path:
        return self.job_dir(job_id) / "log.txt"

    def progress_path(self, job_id: int) -> Path:
        return self.job_dir(job_id) / "progress.jsonl"

    def log_tail(self, job_id: int, lines: int = 40) -> str:
        try:
            text = self.log_path(job_id).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def progress(self, job_id: int) -> Progress | None:
        """The last line the job's progress bars wrote, or None before the first."""
        try:
            with open(self.progress_path(job_id), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 4096))
                tail = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return None
        for line in reversed(tail):
            try:
                d = json.loads(line)
                return Progress(str(d["task"]), int(d["done"]), d.get("total"), float(d["elapsed"]))
            except (ValueError, KeyError, TypeError):
                continue
        return None

    def recover(self) -> None:
        """After a restart: a job marked running has no process any more."""
        for job in self.all():
            if job.state == "running":
                job.state, job.ended = "stopped", time.time()
                job.error = "the studio stopped while this job ran; start it again to go on"
                self.save(job)


def latest(jobs: list[Job], kind: str | None = None, identity: str | None = None) -> Job | None:
    """The newest of ``jobs`` (oldest first, as JobStore.all gives them) of that kind and identity."""
    for job in reversed(jobs):
        if (kind is None or job.kind == kind) and (identity is None or job.identity == identity):
            return job
    return None


def error_line(log_text: str) -> str | None:
    """The CLI's one-line error ("error: ...") in a job's log, without the prefix."""
    for line in reversed(log_text.splitlines()):
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    return None


class Worker:
    """Runs the store's queued jobs one after another in a background thread."""

    def __init__(self, store: JobStore, cwd: Path | None = None, program: list[str] | None = None) -> None:
        self.store = store
        self.cwd = cwd
        self.program = program or [sys.executable, "-m", "nerfhead"]  # what a job's argv is given to
        self._wake = threading.Event()
        self._halt = threading.Event()
        # _lock orders a job's start against a stop of it: a stop is never lost between the two
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._current: int | None = None
        self._stop_asked: set[int] = set()
        self._signalled: set[int] = set()
        self._thread = threading.Thread(target=self._loop, name="nerfhead-studio-worker", daemon=True)

    def start(self) -> "Worker":
        self.store.recover()
        self._thread.start()
        return self

    def submit(self, kind: str, identity: str, argv: list[str], title: str = "", output: str | None = None) -> Job:
        job = self.store.add(kind, identity, argv, title=title, output=output)
        self._wake.set()
        return job

    def stop(self, job_id: int) -> None:
        """Stop a job: a queued one is dropped, a running one gets SIGINT once (a training saves first)."""
        with self._lock:
            job = self.store.get(job_id)
            if job is None or job.finished:
                return
            self._stop_asked.add(job_id)
            if self._current != job_id:  # queued, and not being started: it never runs
                job.state, job.ended = "stopped", time.time()
                self.store.save(job)
                return
            self._signal(job_id, signal.SIGINT)

    def _signal(self, job_id: int, sig: int, grace: tuple[float, float] = STOP_GRACE) -> None:
        """(under _lock) ``sig`` to the running job ``job_id``, once, escalating in a thread of its own."""
        proc = self._proc
        if proc is None or job_id in self._signalled:
            return  # not started yet: _run sees _stop_asked as soon as it has
        self._signalled.add(job_id)
        threading.Thread(target=self._terminate, args=(proc, sig, grace), daemon=True).start()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the worker: the running job gets SIGTERM (it removes its temporaries, a training saves)
        and is waited for, then killed with its process group."""
        self._halt.set()
        self._wake.set()
        with self._lock:
            proc, current = self._proc, self._current
            if current is not None:
                self._stop_asked.add(current)
        if proc is not None:
            self._terminate(proc, signal.SIGTERM, grace=(timeout, 5.0))
        self._thread.join(timeout=timeout)

    @staticmethod
    def _terminate(proc: subprocess.Popen, sig: int, grace: tuple[float, float] = STOP_GRACE) -> None:
        """``sig`` to the job, then SIGTERM, then SIGKILL to its whole process group."""
        for first, (s, wait) in zip((True, False), ((sig, grace[0]), (signal.SIGTERM, grace[1]))):
            if proc.poll() is not None:
                return
            try:
                os.kill(proc.pid, s) if first else os.killpg(proc.pid, s)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _next(self) -> Job | None:
        for job in self.store.all():
            if job.state == "queued":
                return job
        return None

    def _loop(self) -> None:
        while not self._halt.is_set():
            try:
                job = self._next()
                if job is None:
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                self._run(job)
            except Exception as exc:  # a full disk, a folder removed: the queue must go on
                log.error("studio worker: %s", exc)
                time.sleep(1.0)

    def _run(self, job: Job) -> None:
        with self._lock:
            fresh = self.store.get(job.id)
            if fresh is None or fresh.state != "queued" or job.id in self._stop_asked:
                return  # stopped while it waited
            job = fresh
            job.state, job.started = "running", time.time()
            self._current = job.id
            self.store.save(job)
        env = {**os.environ, "NERFHEAD_PROGRESS": "0", PROGRESS_FILE_ENV: str(self.store.progress_path(job.id)),
               "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        cmd = [*self.program, *job.argv]
        log.info("job %d: nerfhead %s", job.id, " ".join(job.argv))
        try:
            with open(self.store.log_path(job.id), "ab") as out:
                with self._lock:
                    self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                  cwd=self.cwd, env=env, start_new_session=True)
                    if job.id in self._stop_asked:  # asked while it was starting
                        self._signal(job.id, signal.SIGTERM if self._halt.is_set() else signal.SIGINT)
                code = self._proc.wait()
        except OSError as exc:
            code, job.error = -1, f"could not start the job: {exc}"
        finally:
            with self._lock:
                self._proc, self._current = None, None
        job.returncode, job.ended = code, time.time()
        # a training stopped by SIGINT saves and exits 0: still "stopped"; another job that finished anyway is done
        if job.id in self._stop_asked and (code != 0 or job.kind == "train"):
            job.state = "stopped"
            job.error = job.error or error_line(self.store.log_tail(job.id, 200))
        elif code == 0:
            job.state = "done"
        else:
            job.state = "failed"
            job.error = job.error or error_line(self.store.log_tail(job.id, 200)) or \
                f"the job ended with exit code {code}; its log says more"
        self.store.save(job)
        log.info("job %d %s", job.id, job.state)
