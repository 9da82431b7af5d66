"""``nerfhead train``: run the training stages of an identity, resumably.

Stages: ``head`` (the audio-conditioned head field), ``lips`` (the head fine-tuned with every other
step on the whole mouth square) and ``torso`` (the 2D torso field, head frozen). Checkpoints live in
``identities/NAME/model/``: ``head.pt``, ``lips.pt``, ``torso.pt`` (written every few hundred steps and
whenever the stage stops: done, out of time or Ctrl-C). Running ``train`` again continues the
unfinished stage from its last checkpoint at the same step with the same state.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from nerfhead.config import from_dict, load_yaml
from nerfhead.dataset import Identity
from nerfhead.errors import IdentityError, InputError
from nerfhead.field.model import ModelConfig, ModelMeta, TalkingHeadModel
from nerfhead.field.renderer import SamplingConfig
from nerfhead.log import get_logger
from nerfhead.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from nerfhead.train.data import TrainingData, load_training_data
from nerfhead.train.head_stage import HeadStage, HeadStageConfig, LipsStageConfig
from nerfhead.train.torso_stage import TorsoStage, TorsoStageConfig
from nerfhead.train.loop import LoopResult, run_loop
from nerfhead.train.monitor import TrainingMonitor

log = get_logger(__name__)

STAGES = ("head", "lips", "torso")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    head: HeadStageConfig = field(default_factory=HeadStageConfig)
    lips: LipsStageConfig = field(default_factory=LipsStageConfig)
    torso: TorsoStageConfig = field(default_factory=TorsoStageConfig)
    seed: int = 0
    threads: int = 0  # torch threads (0 = torch's default: all cores)
    device: str = "auto"  # auto (cuda if available, else cpu), cpu or cuda
    checkpoint_every: int = 500
    log_every: int = 50
    tensorboard: bool = True  # scalars and test-frame panels in identities/NAME/model/tb
    panel_every: int = 1000  # steps between test-frame panels (0: only when a stage ends)

    @classmethod
    def load(cls, path: str | Path | None) -> "TrainConfig":
        """A preset name (quick, cpu, full), a YAML path, or None for configs/cpu.yaml."""
        if path is None:
            path = "cpu"
        p = Path(path)
        if not p.suffix and not p.exists():
            p = REPO / "configs" / f"{path}.yaml"
            if not p.is_file():
                presets = ", ".join(sorted(x.stem for x in (REPO / "configs").glob("*.yaml")))
                raise InputError(f"no training preset '{path}' (presets: {presets}; or give a YAML file)")
        return load_yaml(cls, p)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise InputError(f"device must be auto, cpu or cuda, not '{name}'")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' asked for, but torch sees no GPU")
    return torch.device(name)


def model_dir(ident: Identity) -> Path:
    return ident.root / "model"


def checkpoint_path(ident: Identity, stage: str) -> Path:
    return model_dir(ident) / f"{stage}.pt"


def new_model(cfg: TrainConfig, data: TrainingData) -> TalkingHeadModel:
    meta = ModelMeta(n_frames=data.n_frames, feature_dim=int(data.windows.shape[2]), window=int(data.windows.shape[1]),
                     aabb=data.aabb.tolist(), feature_spec=data.feature_spec,
                     image_size=[data.store.height, data.store.width], camera=asdict(data.intrinsics))
    model = TalkingHeadModel(cfg.model, meta)
    model.audio_net.set_feature_stats(data.features)
    if model.mouth_track is not None:
        train = np.asarray(data.train_frames)
        model.mouth_track.calibrate(data.articulation[train], data.mouth.numpy()[train])
    return model


@dataclass
class StageReport:
    stage: str
    result: LoopResult
    checkpoint: Path
    last_metrics: dict


def _stage(name: str, model: TalkingHeadModel, data: TrainingData, cfg: TrainConfig):
    if name in ("head", "lips"):
        # the lips stage renders exactly as the head stage does (same sampling)
        stage_cfg = cfg.head if name == "head" else replace(cfg.lips, sampling=cfg.head.sampling)
        return HeadStage(model, data, stage_cfg, seed=cfg.seed), stage_cfg.steps
    return TorsoStage(model, data, cfg.torso, cfg.head.sampling, seed=cfg.seed), cfg.torso.steps


def _start_model(name: str, ident: Identity, cfg: TrainConfig, data: TrainingData) -> TalkingHeadModel:
    """A new model for the first stage; the previous stage's finished model for a later one."""
    i = STAGES.index(name)
    if i == 0:
        return new_model(cfg, data)
    previous = checkpoint_path(ident, STAGES[i - 1])
    if not previous.is_file():
        raise IdentityError(f"train the {STAGES[i - 1]} stage of '{ident.name}' before the {name} stage")
    payload = load_checkpoint(previous)
    if not payload.get("finished"):
        raise IdentityError(f"the {STAGES[i - 1]} stage of '{ident.name}' is not finished (step {payload['step']}); "
                            f"run `nerfhead train {ident.name}` to finish it first")
    return TalkingHeadModel.from_checkpoint(payload)


def stage_payload(model: TalkingHeadModel, stage, step: int, steps: int, cfg: TrainConfig, metrics: dict) -> dict:
    """Everything a checkpoint holds to resume a stage exactly (model, optimiser, RNGs, step)."""
    return {**model.checkpoint_fields(), "stage": stage.state_dict(), "rng": rng_state(), "step": step,
            "finished": step >= steps, "train_config": asdict(cfg), "metrics": metrics}


def resume_stage(name: str, payload: dict, data: TrainingData, cfg: TrainConfig):
    """(model, stage, steps, step) rebuilt from a checkpoint payload, random state included."""
    model = TalkingHeadModel.from_checkpoint(payload).to(resolve_device(cfg.device))
    stage, steps = _stage(name, model, data, cfg)
    stage.load_state_dict(payload["stage"])
    set_rng_state(payload["rng"])
    return model, stage, steps, int(payload["step"])


def train_stage(name: str, ident: Identity, cfg: TrainConfig, data: TrainingData, deadline: float | None = None,
                until_step: int | None = None) -> StageReport:
    """Run (or continue) one stage until done, out of time (``deadline``, a time.monotonic() value)
    or interrupted. ``until_step`` stops early at that step (the schedule still follows the
    stage's configured steps)."""
    torch.manual_seed(cfg.seed)
    path = checkpoint_path(ident, name)
    start = 0
    if path.is_file():
        model, stage, steps, start = resume_stage(name, load_checkpoint(path), data, cfg)
        if start < steps:
            log.info("resuming the %s stage at step %d of %d", name, start, steps)
    else:
        model = _start_model(name, ident, cfg, data).to(resolve_device(cfg.device))
        stage, steps = _stage(name, model, data, cfg)
    model.train()
    last: dict = {}
    monitor = TrainingMonitor(model_dir(ident) / "tb", cfg.tensorboard)
    sampling = cfg.head.sampling

    def step_fn(step: int) -> dict:
        nonlocal last
        last = stage.step(step)
        if cfg.panel_every and (step + 1) % cfg.panel_every == 0:
            monitor.image(name, step + 1, model, data, sampling)
        return last

    def save_fn(step: int) -> None:
        save_checkpoint(path, stage_payload(model, stage, step, steps, cfg, last))

    def log_fn(step: int, metrics: dict) -> None:
        log.info("%s step %d: %s", name, step, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        monitor.scalars(name, step, metrics)

    total = steps if until_step is None else min(until_step, steps)
    try:
        result = run_loop(name, start, total, step_fn, save_fn, deadline=deadline,
                          checkpoint_every=cfg.checkpoint_every, log_fn=log_fn, log_every=cfg.log_every)
        if result.finished and result.step > start:
            monitor.image(name, result.step, model, data, sampling)
    finally:
        monitor.close()
    return StageReport(name, result, path, last)


def train_identity(name: str, config: str | Path | None = None, stage: str | None = None,
                   minutes: float | None = None, root: str | Path | None = None) -> list[StageReport]:
    """Train an identity's stages (all, or just ``stage``) with a preset or YAML config."""
    if stage is not None and stage not in STAGES:
        raise InputError(f"unknown stage '{stage}'; stages: {', '.join(STAGES)}")
    ident = Identity.at(name, root)
    ident.manifest()
    cfg = TrainConfig.load(config)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = load_training_data(ident)
    deadline = time.monotonic() + 60.0 * minutes if minutes is not None else None
    reports = []
    for s in STAGES if stage is None else (stage,):
        report = train_stage(s, ident, cfg, data, deadline=deadline)
        reports.append(report)
        if not report.result.finished:
            break
    return reports


def load_model(ident: Identity, stage: str = "head") -> TalkingHeadModel:
    """The model saved by ``stage`` (evaluation mode, on the CPU)."""
    return load_avatar(ident, checkpoint_path(ident, stage)).model


@dataclass
class Avatar:
    """A trained model with how it was trained to be rendered."""

    model: TalkingHeadModel
    sampling: SamplingConfig
    stage: str  # head, lips or torso: which stage wrote the checkpoint
    step: int
    finished: bool
    checkpoint: Path

    @property
    def has_torso(self) -> bool:
        """Whether the torso field is trained (else renders need the real torso behind the head)."""
        return self.stage == "torso"


def load_avatar(ident: Identity, checkpoint: str | Path | None = None) -> Avatar:
    """The identity's trained avatar (its finished torso stage), or the model in ``checkpoint``
    (a stage file such as ``identities/NAME/model/lips.pt``), in evaluation mode on the CPU."""
    if checkpoint is None:
        path = checkpoint_path(ident, STAGES[-1])
        if not path.is_file():
            raise IdentityError(f"identity '{ident.name}' is not trained yet: run `nerfhead train {ident.name}`")
    else:
        path = Path(checkpoint)
    payload = load_checkpoint(path)
    if "model" not in payload or "model_meta" not in payload:
        raise InputError(f"{path} is not a nerfhead checkpoint")
    stage = path.stem if path.stem in STAGES else "head"  # a copied stage file: assume no trained torso
    if checkpoint is None and not payload.get("finished"):
        raise IdentityError(f"the training of '{ident.name}' is not finished (torso stage at step {payload['step']}); "
                            f"run `nerfhead train {ident.name}` to finish it, or pass --checkpoint")
    model = TalkingHeadModel.from_checkpoint(payload)
    model.eval()
    if not torch.isfinite(model.audio_net.feature_min).all():  # written before the audio range was kept
        from nerfhead.audio import features_for

        model.audio_net.set_feature_stats(torch.from_numpy(np.asarray(features_for(ident.audio_path).features, np.float32)))
    sampling = from_dict(SamplingConfig, payload.get("train_config", {}).get("head", {}).get("sampling"))
    return Avatar(model, sampling, stage, int(payload.get("step", 0)), bool(payload.get("finished")), path)

