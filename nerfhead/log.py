"""Logging and progress bars: the only places library code talks to the terminal."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)
logger = logging.getLogger("nerfhead")


def setup_logging(verbose: bool = False) -> None:
    """Route the package's log records to a rich handler on stderr (idempotent)."""
    level = logging.DEBUG if verbose else logging.INFO
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    # mediapipe / TFLite / absl write C++ logs to stderr; keep them quiet unless verbose.
    os.environ.setdefault("GLOG_minloglevel", "0" if verbose else "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "3")


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"nerfhead.{name.removeprefix('nerfhead.')}")


def _progress_enabled() -> bool:
    """Bars show on a terminal; NERFHEAD_PROGRESS=1 forces them on, =0 off."""
    forced = os.environ.get("NERFHEAD_PROGRESS")
    if forced is not None:
        return forced != "0"
    return console.is_terminal


@contextmanager
def progress(description: str, total: int | None) -> Iterator["ProgressTask"]:
    """A rich progress bar with count, rate-free ETA and elapsed time.

    >>> with progress("landmarks", total=10) as bar:
    ...     for _ in range(10):
    ...         bar.advance()
    """
    enabled = _progress_enabled()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not enabled, transient=False) as prog:
        task = prog.add_task(description, total=total)
        bar = ProgressTask(prog, task, description, total)
        try:
            yield bar
        finally:
            bar.report(force=True)


#: $NERFHEAD_PROGRESS_FILE: every bar also appends JSON lines {"task", "done", "total", "elapsed"} there
#: (at most twice a second per bar, and when it ends), for a program that runs nerfhead and shows its
#: progress (the studio's job worker)
PROGRESS_FILE_ENV = "NERFHEAD_PROGRESS_FILE"
#: functions called as fn(bar_name, n) for every n steps any bar advances (see progress_listener)
_listeners: list = []


@contextmanager
def progress_listener(fn) -> Iterator[None]:
    """Call ``fn(bar_name, n)`` whenever a progress bar advances by n inside the block (a batch
    worker counts the frames its renders make this way)."""
    _listeners.append(fn)
    try:
        yield
    finally:
        _listeners.remove(fn)


class ProgressTask:
    def __init__(self, prog: Progress, task, description: str = "", total: int | None = None) -> None:
        self._prog = prog
        self._task = task
        self._name = description
        self._description, self._total, self._done = description, total, 0
        self._start = self._last = time.monotonic()
        self._sink = os.environ.get(PROGRESS_FILE_ENV)

    def advance(self, n: int = 1) -> None:
        self._prog.advance(self._task, n)
        self._done += n
        for fn in _listeners:
            fn(self._name, n)
        self.report()

    def update(self, **kwargs) -> None:
        self._prog.update(self._task, **kwargs)
        if "completed" in kwargs:
            self._done = kwargs["completed"]
        if "total" in kwargs:
            self._total = kwargs["total"]
        if "description" in kwargs:
            self._description = kwargs["description"]
        self.report()

    def report(self, force: bool = False) -> None:
        """Append the bar's state to $NERFHEAD_PROGRESS_FILE (throttled) when that is set."""
        now = time.monotonic()
        if not self._sink or (not force and now - self._last < 0.5):
            return
        self._last = now
        line = json.dumps({"task": self._description, "done": self._done, "total": self._total,
                           "elapsed": round(now - self._start, 2)})
        try:
            with open(self._sink, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError:  # the reader's folder went away: progress is a courtesy, never a failure
            self._sink = None


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Drop what C/C++ libraries (mediapipe, TFLite) write to stderr, keep Python's output.

    Native libraries log from their own threads at unpredictable times, so file descriptor 2
    points to /dev/null for the whole block while ``sys.stderr`` (and with it logging and
    progress bars) writes to a duplicate of the real stderr. Does nothing when debugging
    or when stderr is not a real file (e.g. captured by a test runner).
    """
    if logger.isEnabledFor(logging.DEBUG):
        yield
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    old_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=getattr(old_stderr, "encoding", None) or "utf-8")
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = old_stderr
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)
