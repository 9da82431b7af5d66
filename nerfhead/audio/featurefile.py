"""Features of a long audio kept on disk: written block by block, read a few rows at a time.

A script of 2,000 words is ten minutes of speech, 61,000 feature frames of 384 Whisper states:
90 MB that neither the feature pass nor the render needs in memory at once. The extractor's
blocks are appended to a raw little-endian float32 file (:class:`FeatureWriter`); the render
reads the rows of each chunk of frames with ``pread`` (:meth:`FeatureFile.rows`), which maps
nothing, so memory stays flat however long the audio is. :attr:`FeatureFile.array` maps the
whole file read-only for the callers that want every row (training on a capture, plots).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "f.f32"
>>> with FeatureWriter(path) as w:
...     w.append(np.arange(6, dtype=np.float32).reshape(3, 2))
...     w.append(np.ones((1, 2), np.float32))
>>> f = FeatureFile(path, dim=2)
>>> f.shape, f.rows(1, 3).tolist()
((4, 2), [[2.0, 3.0], [4.0, 5.0]])
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

DTYPE = np.dtype("<f4")


class FeatureWriter:
    """Appends (n, D) float32 blocks to ``path`` (the caller makes the path atomic)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows = 0
        self.dim: int | None = None
        self._fh = None

    def __enter__(self) -> "FeatureWriter":
        self._fh = open(self.path, "wb")
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()

    def append(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, DTYPE)
        if block.ndim != 2:
            raise ValueError(f"expected (n, D) features, got shape {block.shape}")
        if self.dim is None:
            self.dim = int(block.shape[1])
        elif block.shape[1] != self.dim:
            raise ValueError(f"block of {block.shape[1]} columns after blocks of {self.dim}")
        self._fh.write(block.tobytes())
        self.rows += int(block.shape[0])


class FeatureFile:
    """A raw float32 (rows, ``dim``) feature file; the file stays open, so a cache entry replaced
    or deleted meanwhile does not change what is read."""

    def __init__(self, path: str | Path, dim: int) -> None:
        self.path = Path(path)
        self.dim = int(dim)
        self._fh = open(self.path, "rb")
        size = os.fstat(self._fh.fileno()).st_size
        row = self.dim * DTYPE.itemsize
        if self.dim <= 0 or size % row:
            self._fh.close()
            raise ValueError(f"{self.path}: {size} bytes is not a whole number of {self.dim}-float rows")
        self.n_rows = size // row
        self._array: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_rows, self.dim

    def __len__(self) -> int:
        return self.n_rows

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows ``lo .. hi - 1`` (clipped to the file) as a new (n, D) array."""
        lo, hi = max(0, int(lo)), min(self.n_rows, int(hi))
        if hi <= lo:
            return np.zeros((0, self.dim), DTYPE)
        row = self.dim * DTYPE.itemsize
        data = os.pread(self._fh.fileno(), (hi - lo) * row, lo * row)
        return np.frombuffer(data, DTYPE).reshape(hi - lo, self.dim).copy()

    def write_rows(self, lo: int, block: np.ndarray) -> None:
        """Overwrite rows from ``lo`` on (through a handle of its own; used before the file is
        published)."""
        block = np.ascontiguousarray(block, DTYPE)
        with open(self.path, "r+b") as fh:
            os.pwrite(fh.fileno(), block.tobytes(), int(lo) * self.dim * DTYPE.itemsize)

    @property
    def array(self) -> np.ndarray:
        """Every row, mapped read-only (pages are read as they are touched)."""
        if self._array is None:
            if self.n_rows == 0:
                self._array = np.zeros((0, self.dim), DTYPE)
            else:
                self._array = np.memmap(self._fh, DTYPE, mode="r", shape=self.shape)
        return self._array

    def close(self) -> None:
        self._fh.close()
