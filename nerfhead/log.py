"""Logging and progress bars: the only places library code talks to the terminal."""

from __future__ import annotations

import logging
import os
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
