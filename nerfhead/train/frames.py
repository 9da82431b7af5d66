"""Frames and masks of an identity as memory-mapped uint8 arrays.

Training reads a few thousand pixels from a few frames per step. Holding every frame as
float32 (what the research code does) needs 3 GB for a 71 s capture and runs out of memory
for longer ones; here frames stay uint8 in a cache file the OS pages in on demand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nerfhead.dataset import Identity
from nerfhead.io.files import atomic_path
from nerfhead.io.images import read_labels, read_rgb
from nerfhead.log import get_logger, progress

log = get_logger(__name__)


class FrameStore:
    """``frames[i]`` (H, W, 3) uint8 and ``labels[i]`` (H, W) uint8 of every frame, memory-mapped."""

    def __init__(self, ident: Identity, cache_dir: str | Path | None = None) -> None:
        m = ident.manifest()
        self.n = m["n_frames"]
        self.height, self.width = m["image"]["height"], m["image"]["width"]
        cache = Path(cache_dir) if cache_dir else ident.root / "cache"
        self.frames = _cached(cache / "frames_u8.npy", (self.n, self.height, self.width, 3),
                              lambda i: read_rgb(ident.frame_path(i)), "caching frames")
        self.labels = _cached(cache / "labels_u8.npy", (self.n, self.height, self.width),
                              lambda i: read_labels(ident.mask_path(i)), "caching masks")
        self.background = read_rgb(ident.background_path)


def _cached(path: Path, shape: tuple[int, ...], load, what: str) -> np.ndarray:
    if path.is_file():
        arr = np.load(path, mmap_mode="r")
        if arr.shape == shape and arr.dtype == np.uint8:
            return arr
        log.info("rebuilding %s (shape %s, expected %s)", path.name, arr.shape, shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        with progress(what, total=shape[0]) as bar:
            for i in range(shape[0]):
                out[i] = load(i)
                bar.advance()
        out.flush()
        del out
    return np.load(path, mmap_mode="r")
