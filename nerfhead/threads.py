"""Thread-count control for small torch problems.

Tiny optimisation problems (pose fitting) run faster and far more predictably on one thread:
with two threads on a busy 2-core machine, OpenMP workers spin against other processes.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op torch threads, restoring the previous count."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
