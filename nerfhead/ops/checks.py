"""Input checks that run before any kernel: a clear ValueError instead of a crash.

>>> import torch
>>> check_tensor("x", torch.zeros(4, 3), dtype=(torch.float32,), shape=(None, 3))
>>> check_tensor("x", torch.zeros(4, 2), shape=(None, 3))
Traceback (most recent call last):
...
ValueError: x: expected shape (N, 3), got (4, 2)
"""

from __future__ import annotations

from typing import Sequence

import torch

FLOATS = (torch.float32, torch.float64)
INDICES = (torch.int32, torch.int64)


def _shape_text(shape: Sequence[int | None]) -> str:
    names = iter("NMKJ")
    return "(" + ", ".join(str(s) if s is not None else next(names) for s in shape) + ")"


def check_tensor(name: str, t, *, dtype: Sequence[torch.dtype] | None = None, shape: Sequence[int | None] | None = None,
                 device: torch.device | None = None, contiguous: bool = True) -> None:
    """Raise ValueError unless ``t`` is a tensor of an allowed dtype, shape (None = any size),
    on ``device`` and contiguous. Non-contiguous tensors are refused rather than copied, so that
    a caller never pays for a hidden copy in the hot loop."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if dtype is not None and t.dtype not in tuple(dtype):
        allowed = ", ".join(str(d).removeprefix("torch.") for d in dtype)
        raise ValueError(f"{name}: expected dtype {allowed}, got {str(t.dtype).removeprefix('torch.')}")
    if shape is not None:
        ok = t.dim() == len(shape) and all(s is None or s == n for s, n in zip(shape, t.shape))
        if not ok:
            raise ValueError(f"{name}: expected shape {_shape_text(shape)}, got {tuple(t.shape)}")
    if device is not None and t.device != torch.device(device):
        raise ValueError(f"{name}: expected a tensor on {device}, got one on {t.device}")
    if contiguous and not t.is_contiguous():
        raise ValueError(f"{name}: expected a contiguous tensor (call .contiguous() first)")


def check_same(names: Sequence[str], tensors: Sequence[torch.Tensor], *, dtype: bool = True, device: bool = True) -> None:
    """Raise ValueError unless all tensors share dtype and/or device."""
    first = tensors[0]
    for n, t in zip(names[1:], tensors[1:]):
        if device and t.device != first.device:
            raise ValueError(f"{n}: on {t.device}, but {names[0]} is on {first.device}")
        if dtype and t.dtype != first.dtype:
            raise ValueError(f"{n}: dtype {str(t.dtype).removeprefix('torch.')}, but {names[0]} is "
                             f"{str(first.dtype).removeprefix('torch.')}")


def check_range(name: str, value: int | float, lo: int | float, hi: int | float) -> None:
    """Raise ValueError unless lo <= value <= hi."""
    if not (lo <= value <= hi):
        raise ValueError(f"{name}: {value} is out of range [{lo}, {hi}]")
