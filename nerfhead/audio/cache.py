"""Feature cache: computed features are kept by content, so the same audio is instant next time.

Root: ``$NERFHEAD_CACHE`` if set, else ``~/.cache/nerfhead``. An entry is three files in
``<root>/features``: ``<key>.f32`` (the features, raw float32 rows, read a few rows at a time:
:mod:`nerfhead.audio.featurefile`), ``<key>.wav`` (the loudness-normalised 16 kHz mono audio
they were computed from) and ``<key>.npz`` (the per-frame visemes and voice activity and the
metadata; written last, so its presence means the entry is complete); TTS speech lives in
``<root>/tts``. The key hashes the decoded
16 kHz samples (not the file name or container), the extractor's spec, the normalisation
settings and the known text, so a renamed or re-muxed copy of the same audio hits the cache
while a changed extractor misses it. Files are written atomically; a damaged entry is
recomputed. Delete the folder at any time to reclaim space.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from nerfhead.audio.featurefile import FeatureFile
from nerfhead.io.files import atomic_path, remove
from nerfhead.log import get_logger

log = get_logger(__name__)


def cache_root() -> Path:
    env = os.environ.get("NERFHEAD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nerfhead"


def features_dir() -> Path:
    return cache_root() / "features"


def feature_key(audio_sha256: str, spec: dict[str, Any], extra: dict[str, Any]) -> str:
    blob = json.dumps({"audio": audio_sha256, "spec": spec, "extra": extra}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:40]


def entry_paths(key: str) -> tuple[Path, Path]:
    d = features_dir()
    return d / f"{key}.npz", d / f"{key}.wav"


def features_path(key: str) -> Path:
    return features_dir() / f"{key}.f32"


def load_entry(key: str) -> tuple[dict[str, np.ndarray], dict[str, Any], FeatureFile] | None:
    """Arrays, metadata and feature file of a cached entry, or None if absent or damaged."""
    npz, wav = entry_paths(key)
    if not (npz.is_file() and wav.is_file() and features_path(key).is_file()):
        return None
    try:
        with np.load(npz, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k != "meta"}
            meta = json.loads(str(data["meta"]))
        return arrays, meta, FeatureFile(features_path(key), meta["dim"])
    except Exception as exc:  # noqa: BLE001 - any damage means: compute again
        log.warning("ignoring damaged feature cache entry %s (%s)", npz.name, type(exc).__name__)
        remove(npz)
        return None


def save_entry(key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    npz, _ = entry_paths(key)
    with atomic_path(npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
    return npz
