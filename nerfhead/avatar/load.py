"""The trained avatar of an identity, as renders, evaluations and tools read it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from nerfhead.avatar.checkpoint import STAGES, load_checkpoint
from nerfhead.avatar.rest import RestCodes
from nerfhead.config import from_dict
from nerfhead.dataset import Identity
from nerfhead.errors import IdentityError, InputError
from nerfhead.field.model import TalkingHeadModel
from nerfhead.field.renderer import SamplingConfig


def model_dir(ident: Identity) -> Path:
    """Where an identity's checkpoints and TensorBoard logs live."""
    return ident.root / "model"


def checkpoint_path(ident: Identity, stage: str) -> Path:
    return model_dir(ident) / f"{stage}.pt"


def is_own_checkpoint(ident: Identity, path: Path) -> bool:
    """Whether ``path`` is one of the stage files nerfhead writes for ``ident``."""
    return any(Path(path).resolve() == checkpoint_path(ident, s).resolve() for s in STAGES)


def avatar_fields(model: TalkingHeadModel, stage: str, sampling: SamplingConfig, rest: RestCodes, step: int,
                  finished: bool) -> dict:
    """What every checkpoint holds for its readers (training adds what resuming needs)."""
    return {**model.checkpoint_fields(), "stage_name": stage, "sampling": asdict(sampling),
            "rest_codes": rest.as_dict(), "step": step, "finished": finished}


@dataclass
class Avatar:
    """A trained model with how it was trained to be rendered."""

    model: TalkingHeadModel
    sampling: SamplingConfig
    stage: str  # head, lips or torso: which stage wrote the checkpoint
    step: int
    finished: bool
    checkpoint: Path
    rest: RestCodes

    @classmethod
    def of_model(cls, model: TalkingHeadModel, sampling: SamplingConfig, stage: str = "head") -> "Avatar":
        """A model being trained, seen as an avatar (no checkpoint, no rest codes yet)."""
        return cls(model, sampling, stage, 0, False, Path(), RestCodes())

    @property
    def has_torso(self) -> bool:
        """Whether the torso field is trained (else renders need the real torso behind the head)."""
        return self.stage == "torso"


def avatar_from_payload(payload: dict, path: Path) -> Avatar:
    model = TalkingHeadModel.from_checkpoint(payload)
    model.eval()
    return Avatar(model, from_dict(SamplingConfig, payload["sampling"]), payload["stage_name"], int(payload["step"]),
                  bool(payload["finished"]), Path(path), RestCodes.from_dict(payload["rest_codes"]))


def load_avatar(ident: Identity, checkpoint: str | Path | None = None) -> Avatar:
    """The identity's trained avatar (its finished torso stage), or the model in ``checkpoint``
    (a stage file such as ``identities/NAME/model/lips.pt``), in evaluation mode on the CPU."""
    retrain = f"nerfhead train {ident.name}"
    if checkpoint is None:
        path = checkpoint_path(ident, STAGES[-1])
        if not path.is_file():
            raise IdentityError(f"identity '{ident.name}' is not trained yet: run `{retrain}`")
        payload = load_checkpoint(path, own=True, retrain=retrain)
        if not payload.get("finished"):
            raise IdentityError(f"the training of '{ident.name}' is not finished (torso stage at step "
                                f"{payload['step']}); run `{retrain}` to finish it, or pass --checkpoint")
    else:
        path = Path(checkpoint)
        if path.is_dir():
            raise InputError(f"--checkpoint {path} is a folder; give a stage file such as {checkpoint_path(ident, 'torso')}")
        payload = load_checkpoint(path, own=is_own_checkpoint(ident, path), retrain=retrain)
    return avatar_from_payload(payload, path)
