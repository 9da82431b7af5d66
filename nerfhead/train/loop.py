"""The stage loop: steps until done, out of time, or interrupted, checkpointing as it goes.

Ctrl-C (SIGINT) and SIGTERM (what job schedulers and ``docker stop`` send) do not kill a step
half-way: the loop finishes the current step, saves a checkpoint and returns, so ``train`` can be
resumed from exactly that step.
"""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from nerfhead.log import get_logger, progress

log = get_logger(__name__)


@dataclass
class LoopResult:
    step: int  # steps completed in this stage
    finished: bool  # reached the stage's last step
    interrupted: bool  # stopped by Ctrl-C
    out_of_time: bool  # stopped by the wall-time cap
    seconds: float


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _deferred_sigint() -> Iterator[dict]:
    flag = {"hit": False}

    def handler(signum, frame):  # noqa: ARG001
        if flag["hit"]:  # a second signal: stop now
            raise KeyboardInterrupt
        flag["hit"] = True
        log.warning("%s: finishing this step and saving a checkpoint (Ctrl-C again to abort)",
                    signal.Signals(signum).name)

    try:
        old = {s: signal.getsignal(s) for s in _SIGNALS}
        for s in _SIGNALS:
            signal.signal(s, handler)
    except ValueError:  # not the main thread: nothing to install
        yield flag
        return
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_loop(name: str, start: int, total: int, step_fn: Callable[[int], dict], save_fn: Callable[[int], None],
             deadline: float | None = None, checkpoint_every: int = 500, log_fn: Callable[[int, dict], None] | None = None,
             log_every: int = 50) -> LoopResult:
    """Run ``step_fn(step)`` for steps ``start .. total-1``.

    ``save_fn(step)`` is called every ``checkpoint_every`` steps and when the loop ends for any
    reason; ``deadline`` is a ``time.monotonic()`` value after which the loop stops;
    ``log_fn(step, metrics)`` is called every ``log_every`` steps.
    """
    t0 = time.monotonic()
    step = start
    interrupted = out_of_time = False
    with _deferred_sigint() as sigint, progress(name, total=total) as bar:
        bar.advance(start)
        while step < total:
            if deadline is not None and time.monotonic() >= deadline:
                out_of_time = True
                break
            metrics = step_fn(step)
            step += 1
            bar.advance()
            if log_fn is not None and (step % log_every == 0 or step == total):
                log_fn(step, metrics)
            if sigint["hit"]:
                interrupted = True
                break
            if step % checkpoint_every == 0 and step < total:
                save_fn(step)
    save_fn(step)
    return LoopResult(step, step >= total, interrupted, out_of_time, time.monotonic() - t0)
