"""The frame cache returns exactly the dataset's frames and masks, without loading them all."""

from __future__ import annotations

import numpy as np

from nerfhead.io.images import read_labels, read_rgb
from nerfhead.train.frames import FrameStore


def test_frame_store_matches_files_and_is_reused(sample_identity, tmp_path):
    store = FrameStore(sample_identity, cache_dir=tmp_path)
    assert store.frames.shape == (500, 512, 512, 3) and store.labels.shape == (500, 512, 512)
    assert isinstance(store.frames, np.memmap)
    for i in (0, 250, 499):
        assert np.array_equal(store.frames[i], read_rgb(sample_identity.frame_path(i)))
        assert np.array_equal(store.labels[i], read_labels(sample_identity.mask_path(i)))
    mtime = (tmp_path / "frames_u8.npy").stat().st_mtime_ns
    again = FrameStore(sample_identity, cache_dir=tmp_path)
    assert (tmp_path / "frames_u8.npy").stat().st_mtime_ns == mtime
    assert np.array_equal(again.frames[7], store.frames[7])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames_u8.npy", "labels_u8.npy"]
