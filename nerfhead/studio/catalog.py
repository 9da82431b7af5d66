"""What the studio knows of the identities folder: each identity's state, and files the page may show."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nerfhead.avatar.checkpoint import STAGES
from nerfhead.avatar.load import checkpoint_path, model_dir
from nerfhead.dataset import Identity, check_name, identities_root
from nerfhead.errors import IdentityError, InputError
from nerfhead.train.run import PROGRESS_PICTURE

#: files of an identity or of the output folder the page may load, by suffix
SHOWN_SUFFIXES = {".png", ".jpg", ".jpeg", ".mp4", ".html", ".json", ".wav"}


@dataclass
class IdentityState:
    name: str
    processed: bool
    frames: int | None
    stages: tuple[str, ...]  # the stages with a checkpoint, in training order
    evaluated: bool

    @property
    def trained(self) -> bool:
        return "torso" in self.stages

    @property
    def summary(self) -> str:
        if not self.processed:
            return "not processed"
        if self.trained:
            return "trained" + (", evaluated" if self.evaluated else "")
        return "processed" + (f", trained: {', '.join(self.stages)}" if self.stages else "")


def report_path(ident: Identity) -> Path:
    """Where `nerfhead eval` writes an identity's report by default."""
    return ident.root / "eval" / "report.html"


def progress_picture(ident: Identity) -> Path:
    return model_dir(ident) / PROGRESS_PICTURE


def identity_state(ident: Identity) -> IdentityState:
    frames = None
    if ident.is_processed():
        try:
            frames = int(ident.manifest()["n_frames"])
        except (IdentityError, KeyError, TypeError, ValueError):
            frames = None
    stages = tuple(s for s in STAGES if checkpoint_path(ident, s).is_file())
    return IdentityState(ident.name, ident.is_processed(), frames, stages, report_path(ident).with_suffix(".json").is_file())


def list_identities(root: str | Path | None = None) -> list[IdentityState]:
    """Every identity folder of ``root`` (names that are not safe folder names are skipped)."""
    base = identities_root(root)
    if not base.is_dir():
        return []
    states = []
    for d in sorted(base.iterdir()):
        try:
            check_name(d.name)
        except InputError:
            continue
        if d.is_dir():
            states.append(identity_state(Identity.at(d.name, base)))
    return states


def known_identity(name: str, root: str | Path | None, need: str = "processed") -> Identity:
    """The identity ``name`` if it exists in ``root`` and is ``need`` (processed or trained)."""
    ident = Identity.at(check_name(name or ""), root)
    state = identity_state(ident)
    if not state.processed:
        raise IdentityError(f"identity '{name}' is not processed; upload its capture video first")
    if need == "trained" and not state.trained:
        raise IdentityError(f"identity '{name}' is not trained yet; train it first")
    return ident


def contained_file(base: Path, relative: str) -> Path | None:
    """``base / relative`` if it is an existing file inside ``base`` with a suffix the page may show."""
    base = base.resolve()
    try:
        path = (base / relative).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if not path.is_relative_to(base) or not path.is_file() or path.suffix.lower() not in SHOWN_SUFFIXES:
        return None
    return path
