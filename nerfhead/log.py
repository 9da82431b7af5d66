"""Logging and progress bars: the only places library code talks to the terminal."""

from __future__ import annotations

import logging
import os
import sys
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
        yield ProgressTask(prog, task)


class ProgressTask:
    def __init__(self, prog: Progress, task) -> None:
        self._prog = prog
        self._task = task

    def advance(self, n: int = 1) -> None:
        self._prog.advance(self._task, n)

    def update(self, **kwargs) -> None:
        self._prog.update(self._task, **kwargs)


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
