"""Files that ship with nerfhead: the training presets and the kernel sources.

In the source tree they live in ``configs/`` and ``cuda_ext/``; ``setup.py`` maps them into the
package as ``nerfhead.presets`` and ``nerfhead.kernels``, so a non-editable install carries them
(an editable install reads the source tree's folders).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_SOURCE_TREE = Path(__file__).resolve().parents[1]


def _folder(package: str, source_folder: str) -> Path:
    try:
        return Path(str(resources.files(f"nerfhead.{package}")))
    except ModuleNotFoundError:  # editable install / source checkout
        return _SOURCE_TREE / source_folder


def presets_dir() -> Path:
    """The folder of the training presets (``quick.yaml``, ``cpu.yaml``, ``full.yaml``)."""
    return _folder("presets", "configs")


def kernels_dir() -> Path:
    """The folder of the C++/CUDA kernel sources."""
    return _folder("kernels", "cuda_ext")


def preset_names() -> list[str]:
    """The names of the shipped training presets."""
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))
