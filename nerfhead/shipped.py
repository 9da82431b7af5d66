"""Files that ship with nerfhead: the training presets and the kernel sources.

In the source tree they live in ``configs/`` and ``cuda_ext/``; ``setup.py`` maps them into the
package as ``nerfhead.presets`` and ``nerfhead.kernels``, so a non-editable install carries them
(an editable install reads the source tree's folders).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SOURCE_TREE = Path(__file__).resolve().parents[1]


def _folder(package: str, source_folder: str) -> Path:
    spec = importlib.util.find_spec(f"nerfhead.{package}")  # a folder of data files: a namespace package
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return _SOURCE_TREE / source_folder  # editable install / source checkout


def presets_dir() -> Path:
    """The folder of the training presets (``quick.yaml``, ``cpu.yaml``, ``full.yaml``)."""
    return _folder("presets", "configs")


def kernels_dir() -> Path:
    """The folder of the C++/CUDA kernel sources."""
    return _folder("kernels", "cuda_ext")


def preset_names() -> list[str]:
    """The names of the shipped training presets."""
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))
