"""Which implementation of the hot ops runs: our compiled kernels or the PyTorch reference.

Each op family (``hashgrid``, ``raymarch``, ``volrend``) is one C++ extension built from
``cuda_ext/<family>_cpu.cpp`` (plus ``<family>_cuda.cu`` where torch has CUDA and a CUDA
compiler is found) with ``torch.utils.cpp_extension.load`` on first use, and cached under
``$NERFHEAD_BUILD_DIR`` (default ``~/.cache/nerfhead/ops``). A family that cannot be built
(no compiler, failed build) falls back to its pure-PyTorch reference with one warning.
torch's builder marks a build in progress with a ``lock`` file that a killed process leaves
behind (every later run would wait on it for ever), so nerfhead holds an OS lock (released when
its holder dies) around each build and clears such a leftover file under it.

``NERFHEAD_OPS`` chooses: ``auto`` (default: kernels, reference if they cannot be built),
``ref`` (always the reference) or ``native`` (kernels or an error). :func:`use_reference`
does the same for a block of code.

>>> with use_reference():
...     native("hashgrid") is None
True
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Iterator

import torch

from nerfhead.log import get_logger
from nerfhead.shipped import kernels_dir

log = get_logger(__name__)

FAMILIES = ("hashgrid", "raymarch", "volrend")
SOURCE_DIR = kernels_dir()
_MODES = ("auto", "ref", "native")

_lock = threading.Lock()
_loaded: dict[tuple[str, bool], ModuleType | None] = {}
_failed: dict[tuple[str, bool], str] = {}
_forced: list[str] = []


class KernelBuildError(RuntimeError):
    """NERFHEAD_OPS=native but a kernel family could not be built."""


def mode() -> str:
    """The backend choice in force: ``auto``, ``ref`` or ``native``."""
    if _forced:
        return _forced[-1]
    value = os.environ.get("NERFHEAD_OPS", "auto").strip().lower() or "auto"
    if value not in _MODES:
        raise ValueError(f"NERFHEAD_OPS={value!r}: expected one of {', '.join(_MODES)}")
    return value


@contextmanager
def use_reference(enabled: bool = True) -> Iterator[None]:
    """Run the block on the PyTorch reference ops (``enabled=False``: on the kernels)."""
    _forced.append("ref" if enabled else "native")
    try:
        yield
    finally:
        _forced.pop()


def cuda_build_possible() -> bool:
    """torch has CUDA and a CUDA compiler (CUDA_HOME) was found."""
    if torch.version.cuda is None:
        return False
    from torch.utils.cpp_extension import CUDA_HOME

    return CUDA_HOME is not None and os.environ.get("NERFHEAD_NO_CUDA_BUILD", "0") != "1"


def build_dir() -> Path:
    root = os.environ.get("NERFHEAD_BUILD_DIR")
    return Path(root) if root else Path.home() / ".cache" / "nerfhead" / "ops"


def sources(family: str, with_cuda: bool) -> list[Path]:
    """The C++ (and CUDA) source files of one op family."""
    if family not in FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}; known: {', '.join(FAMILIES)}")
    srcs = [SOURCE_DIR / f"{family}_cpu.cpp"]
    if with_cuda:
        srcs.append(SOURCE_DIR / f"{family}_cuda.cu")
    return srcs


def _flags(with_cuda: bool) -> dict:
    # -fopenmp: at::parallel_for is header code that runs serially unless _OPENMP is defined; the
    # extension then shares torch's OpenMP runtime (same soname), so torch.set_num_threads applies.
    # No -std flag: torch's build helper picks the standard its headers need (C++17 or C++20).
    cflags = ["-O3", "-fopenmp"] + (["-DNERFHEAD_WITH_CUDA"] if with_cuda else [])
    flags = {"extra_cflags": cflags, "extra_ldflags": ["-fopenmp"], "extra_include_paths": [str(SOURCE_DIR)]}
    if with_cuda:
        flags["extra_cuda_cflags"] = ["-O3", "-DNERFHEAD_WITH_CUDA"]
    return flags


def build(family: str, with_cuda: bool | None = None, verbose: bool = False) -> ModuleType:
    """Compile (or load from the cache) one op family; raises on failure."""
    from torch.utils.cpp_extension import load

    with_cuda = cuda_build_possible() if with_cuda is None else with_cuda
    srcs = sources(family, with_cuda)
    missing = [str(s) for s in srcs if not s.is_file()]
    if missing:
        raise FileNotFoundError(f"kernel sources not found: {', '.join(missing)}")
    directory = family_dir(family, with_cuda)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"nerfhead_{family}_{'cuda' if with_cuda else 'cpu'}"
    with _build_lock(directory):
        return load(name=name, sources=[str(s) for s in srcs], build_directory=str(directory), verbose=verbose,
                    **_flags(with_cuda))


@contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    """Hold an OS file lock on ``directory`` (other processes building there wait); under it,
    torch's own ``lock`` file can only be a leftover of a killed build, so it is removed."""
    if sys.platform == "win32":  # no fcntl: torch's lock alone
        yield
        return
    import fcntl

    with open(directory / "nerfhead.flock", "w") as handle:  # closing it releases the lock
        fcntl.flock(handle, fcntl.LOCK_EX)
        stale = directory / "lock"
        if stale.exists():
            log.warning("removing %s, left by an interrupted kernel build", stale)
            stale.unlink(missing_ok=True)
        yield


def family_dir(family: str, with_cuda: bool) -> Path:
    """Where one op family is built and cached (one folder per torch version and CPU/CUDA)."""
    tag = f"{torch.__version__}-{'cuda' if with_cuda else 'cpu'}"
    return build_dir() / f"{family}-{hashlib.sha1(tag.encode()).hexdigest()[:8]}"


def _is_cached(family: str, with_cuda: bool) -> bool:
    return any(family_dir(family, with_cuda).glob("*.so"))


def native(family: str) -> ModuleType | None:
    """The compiled module of ``family``, or None when the reference should run."""
    m = mode()
    if m == "ref":
        return None
    with_cuda = cuda_build_possible()
    key = (family, with_cuda)
    if key in _loaded:
        return _loaded[key]
    if key in _failed and m == "auto":
        return None
    with _lock:
        if key in _loaded:
            return _loaded[key]
        if not _is_cached(family, with_cuda):
            log.info("building nerfhead '%s' kernels%s (first use, about a minute; cached in %s)",
                     family, " with CUDA" if with_cuda else "", build_dir())
        try:
            module = build(family, with_cuda)
        except Exception as exc:  # noqa: BLE001 - any build failure means: use the reference
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            _failed[key] = reason
            if m == "native":
                raise KernelBuildError(f"cannot build the '{family}' kernels ({reason})") from exc
            log.warning("nerfhead '%s' kernels unavailable (%s): using the PyTorch reference (slower)", family, reason)
            return None
        _loaded[key] = module
        return module


def for_device(family: str, device: torch.device):
    """The compiled module of ``family`` when it can run on ``device``, else None (use the reference)."""
    module = native(family)
    if module is None or device.type == "cpu":
        return module
    if device.type == "cuda" and getattr(module, "with_cuda", False):
        return module
    return None


def backend_name(family: str) -> str:
    """``native`` or ``reference``: what an op of ``family`` runs on now (builds if needed)."""
    return "native" if native(family) is not None else "reference"
