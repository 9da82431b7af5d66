"""The identity dataset: folder layout, manifest reader/writer, name rules.

This module is the one contract between capture processing and everything downstream
(training, rendering, evaluation). docs/DATASET.md documents the format it reads/writes.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nerfhead import landmark_ids as ids
from nerfhead.errors import IdentityError, InputError
from nerfhead.io.files import atomic_path

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
#: the video frame rate of every identity, feature window and render
FPS = 25.0
#: label values of the per-frame masks
BACKGROUND, HEAD, TORSO = 0, 1, 2
LABELS = {BACKGROUND: "background", HEAD: "head (face and hair)", TORSO: "torso and neck"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def identities_root(root: str | Path | None = None) -> Path:
    """Folder that holds identities: ``root``, else $NERFHEAD_IDENTITIES, else ./identities."""
    return Path(root or os.environ.get("NERFHEAD_IDENTITIES", "identities"))


def check_name(name: str) -> str:
    """Return ``name`` if it is a safe folder name, else raise InputError.

    >>> check_name("anna_2")
    'anna_2'
    >>> check_name("../etc")
    Traceback (most recent call last):
    ...
    nerfhead.errors.InputError: identity name '../etc' is not a safe folder name: use letters, digits, '_', '-' and '.', starting with a letter or digit (at most 64 characters)
    """
    if not _NAME.fullmatch(name or "") or name in {".", ".."}:
        raise InputError(
            f"identity name {name!r} is not a safe folder name: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit (at most 64 characters)"
        )
    return name


@dataclass
class Identity:
    """Paths of one identity's processed data. Nothing is read until asked for."""

    name: str
    root: Path

    @classmethod
    def at(cls, name: str, root: str | Path | None = None) -> "Identity":
        return cls(check_name(name), identities_root(root) / name)

    # --- layout -------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def frames_dir(self) -> Path:
        return self.root / "frames"

    @property
    def masks_dir(self) -> Path:
        return self.root / "masks"

    @property
    def audio_path(self) -> Path:
        return self.root / "audio.wav"

    @property
    def tracks_path(self) -> Path:
        return self.root / "tracks.npz"

    @property
    def background_path(self) -> Path:
        return self.root / "background.png"

    @property
    def qa_dir(self) -> Path:
        return self.root / "qa"

    @property
    def work_dir(self) -> Path:
        """Where an unfinished ``process`` run keeps its finished steps."""
        return self.root / ".work"

    def frame_path(self, i: int) -> Path:
        return self.frames_dir / frame_name(i)

    def mask_path(self, i: int) -> Path:
        return self.masks_dir / mask_name(i)

    # --- state ----------------------------------------------------------------------
    def is_processed(self) -> bool:
        return self.manifest_path.is_file()

    def manifest(self) -> dict[str, Any]:
        """The manifest of a processed identity; IdentityError if there is none."""
        if not self.is_processed():
            hint = " (an interrupted run can be resumed)" if self.work_dir.is_dir() else ""
            raise IdentityError(
                f"identity '{self.name}' is not processed{hint}: run `nerfhead process VIDEO --identity {self.name}`"
            )
        try:
            data = json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise IdentityError(f"{self.manifest_path} is corrupt ({exc}); re-run process with --force") from None
        if data.get("format_version") != FORMAT_VERSION:
            raise IdentityError(
                f"{self.manifest_path} has format version {data.get('format_version')}, this nerfhead reads "
                f"{FORMAT_VERSION}; re-run process with --force"
            )
        if data.get("fps") != FPS:
            raise IdentityError(
                f"identity '{self.name}' has {data.get('fps')} frames per second; nerfhead works at {FPS:g}: "
                "re-run process with --force"
            )
        return data

    def tracks(self) -> dict[str, np.ndarray]:
        """Per-frame arrays (landmarks, pose, eye openness, ...); see docs/DATASET.md."""
        self.manifest()
        with np.load(self.tracks_path) as data:
            return {k: data[k] for k in data.files}

    def write_manifest(self, data: dict[str, Any]) -> None:
        data = {"format_version": FORMAT_VERSION, **data}
        with atomic_path(self.manifest_path) as tmp:
            tmp.write_text(json.dumps(data, indent=2, default=_json_default))


def frame_name(i: int) -> str:
    """File name of frame ``i`` inside ``frames/``."""
    return f"{i:06d}.jpg"


def mask_name(i: int) -> str:
    """File name of frame ``i``'s label mask inside ``masks/``."""
    return f"{i:06d}.png"


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap / face height (forehead top to chin) per frame: (..., 478, 2+) -> (...)."""
    gap = np.linalg.norm(landmarks[..., ids.INNER_LIP_TOP, :2] - landmarks[..., ids.INNER_LIP_BOTTOM, :2], axis=-1)
    height = np.linalg.norm(landmarks[..., ids.FACE_TOP, :2] - landmarks[..., ids.CHIN, :2], axis=-1)
    return gap / np.maximum(height, 1e-6)


def normalised_opening(landmarks: np.ndarray, speech: np.ndarray) -> tuple[np.ndarray, float]:
    """((n,) float32 tracked mouth opening (:func:`mouth_opening`) over its median in speech, that
    median): over all frames if no speech is heard; frames without a face: 1."""
    opening = mouth_opening(np.asarray(landmarks, np.float64))
    ok = np.isfinite(opening)
    ref = opening[ok & speech] if (ok & speech).any() else opening[ok]
    if ref.size == 0:
        return np.ones(len(opening), np.float32), 1.0
    scale = max(float(np.median(ref)), 1e-4)
    return np.where(ok, opening / scale, 1.0).astype(np.float32), scale


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
