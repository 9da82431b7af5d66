"""Avatar checkpoints: one versioned file format, written by training, read by everything else.

A checkpoint holds the model (weights, config, meta), which stage wrote it and how far it got,
the ray-sampling settings it was trained to be rendered with, and the capture's rest codes
(:mod:`nerfhead.avatar.rest`); a training checkpoint adds what resuming the stage needs
(optimiser, random state, the training config). Files are written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nerfhead.errors import IdentityError, InputError
from nerfhead.io.files import atomic_path

#: bumped whenever a field is added, removed or changes meaning; older files are refused
FORMAT_VERSION = 2
STAGES = ("head", "lips", "torso")
REQUIRED = ("stage_name", "model", "model_config", "model_meta", "sampling", "rest_codes", "step", "finished")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, state dicts, plain data) atomically with torch.save."""
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {', '.join(missing)}")
    with atomic_path(path) as tmp:
        torch.save({**payload, "format": FORMAT_VERSION}, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, own: bool = False, retrain: str = "nerfhead train NAME") -> dict[str, Any]:
    """The payload of the checkpoint at ``path``.

    ``own``: the file is one nerfhead wrote itself (``identities/NAME/model/STAGE.pt``), so a file
    that cannot be read is a broken checkpoint, to be deleted; any other file that cannot be read
    is simply not a nerfhead checkpoint. A checkpoint of another format version is refused with
    the advice to retrain (``retrain``: the command that does it)."""
    path = Path(path)
    if not path.is_file():
        raise IdentityError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        if own:
            raise IdentityError(f"cannot read checkpoint {path} ({type(exc).__name__}: {exc}); "
                                "delete it to start that stage over") from None
        raise InputError(f"{path} is not a nerfhead checkpoint (torch cannot read it: {type(exc).__name__})") from None
    if not isinstance(payload, dict) or "model" not in payload or "model_meta" not in payload:
        raise InputError(f"{path} is not a nerfhead checkpoint")
    version = payload.get("format", 1)
    if version != FORMAT_VERSION:
        raise IdentityError(f"{path} was written by {'an older' if version < FORMAT_VERSION else 'a newer'} nerfhead "
                            f"(checkpoint format {version}, this one reads {FORMAT_VERSION}): delete the identity's "
                            f"model folder and run `{retrain}` to retrain")
    return payload
