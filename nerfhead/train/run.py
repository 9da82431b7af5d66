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

from nerfhead.avatar.checkpoint import STAGES, load_checkpoint, save_checkpoint
from nerfhead.avatar.load import avatar_fields, checkpoint_path, model_dir
from nerfhead.avatar.rest import rest_codes
from nerfhead.config import load_yaml
from nerfhead.dataset import Identity
from nerfhead.errors import IdentityError, InputError
from nerfhead.field.model import ModelConfig, ModelMeta, TalkingHeadModel
from nerfhead.log import get_logger
from nerfhead.shipped import preset_names, presets_dir
from nerfhead.train.random_state import rng_state, set_rng_state
from nerfhead.train.data import TrainingData, load_training_data
from nerfhead.train.head_stage import HeadStage, HeadStageConfig, LipsStageConfig
from nerfhead.train.torso_stage import TorsoStage, TorsoStageConfig
from nerfhead.train.loop import LoopResult, run_loop
from nerfhead.train.monitor import TrainingMonitor

log = get_logger(__name__)



@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    head: HeadStageConfig = field(default_factory=HeadStageConfig)
    lips: LipsStageConfig = field(default_factory=LipsStageConfig)
    torso: TorsoStageConfig = field(default_factory=TorsoStageConfig)
    features: str = "whisper"  # the audio feature extractor (nerfhead.audio.extractors: whisper, default, mel80)
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
            p = presets_dir() / f"{path}.yaml"
            if not p.is_file():
                presets = ", ".join(preset_names())
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


def new_model(cfg: TrainConfig, data: TrainingData) -> TalkingHeadModel:
    meta = ModelMeta(n_frames=data.n_frames, feature_dim=int(data.windows.shape[2]), window=int(data.windows.shape[1]),
                     aabb=data.aabb.tolist(), feature_spec=data.feature_spec,
                     image_size=[data.store.height, data.store.width], camera=asdict(data.intrinsics))
    model = TalkingHeadModel(cfg.model, meta)
    model.audio_net.set_feature_stats(data.features)
    if model.mouth_track is not None:
        train = np.asarray(data.train_frames)
        model.mouth_track.calibrate(data.audio.articulation[train], data.mouth.numpy()[train])
    if model.lip_predictor is not None:
        fit_lip_predictor(model, data)
    return model


def fit_lip_predictor(model: TalkingHeadModel, data: TrainingData) -> None:
    """Fit the avatar's audio -> mouth-input map on the capture's training frames with a face."""
    t0 = time.monotonic()
    faces = np.isfinite(data.lip_points).all(axis=(1, 2))
    frames = [f for f in data.train_frames if faces[f]]
    if len(frames) < 20:
        raise IdentityError(f"'{data.ident.name}' has only {len(frames)} training frames with a tracked mouth "
                            "(at least 20 needed); film a longer capture")
    fit = model.fit_mouth_map(data.windows.numpy(), data.audio.articulation, data.mouth_inputs(model.cfg.lip_code).numpy(),
                              frames, data.closed_frames())
    log.info("audio -> mouth map fitted in %.1f s; per output (opening, lip shape 1..): %s; held-back error "
             "(share of the variance it learns) %s", time.monotonic() - t0, ", ".join(fit["choice"]), fit["held_back_error"])
    log.info("presenter map (the own voice): %s; held-back error %s; used %s; widened x %s",
             ", ".join(fit["own_choice"]), fit["own_held_back_error"], fit["own_used"], fit["own_gain"])



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
    payload = load_checkpoint(previous, own=True, retrain=f"nerfhead train {ident.name}")
    if not payload.get("finished"):
        raise IdentityError(f"the {STAGES[i - 1]} stage of '{ident.name}' is not finished (step {payload['step']}); "
                            f"run `nerfhead train {ident.name}` to finish it first")
    model = TalkingHeadModel.from_checkpoint(payload)
    if name == "torso":
        # the torso is trained from scratch in its stage: built here from this config's model.torso,
        # so a preset's torso settings apply to an avatar whose head was trained earlier
        model.use_torso(cfg.model.torso)
    return model


def stage_payload(name: str, model: TalkingHeadModel, stage, step: int, steps: int, cfg: TrainConfig,
                  data: TrainingData, metrics: dict) -> dict:
    """Everything a checkpoint holds: the avatar as its readers see it (model, sampling, the
    capture's rest codes) and what resumes the stage exactly (optimiser, RNGs, step)."""
    rest = rest_codes(model, data.windows, data.vad, data.train_frames, data.mouth.numpy())
    return {**avatar_fields(model, name, cfg.head.sampling, rest, step, step >= steps), "stage": stage.state_dict(),
            "rng": rng_state(), "train_config": asdict(cfg), "metrics": metrics}


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
        model, stage, steps, start = resume_stage(name, load_checkpoint(path, own=True, retrain=f"nerfhead train {ident.name}"),
                                                  data, cfg)
        if start < steps:
            log.info("resuming the %s stage at step %d of %d", name, start, steps)
    else:
        model = _start_model(name, ident, cfg, data).to(resolve_device(cfg.device))
        stage, steps = _stage(name, model, data, cfg)
    model.train()
    last: dict = {}
    monitor = TrainingMonitor(model_dir(ident) / "tb", cfg.tensorboard, preview=model_dir(ident) / PROGRESS_PICTURE)
    sampling = cfg.head.sampling

    def step_fn(step: int) -> dict:
        nonlocal last
        last = stage.step(step)
        if cfg.panel_every and (step + 1) % cfg.panel_every == 0:
            monitor.image(name, step + 1, model, data, sampling)
        return last

    def save_fn(step: int) -> None:
        save_checkpoint(path, stage_payload(name, model, stage, step, steps, cfg, data, last))

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


#: model/progress.png: the last test-frame panel of the training, replaced as it goes (the studio shows it)
PROGRESS_PICTURE = "progress.png"


def trained_extractor(ident: Identity, cfg: TrainConfig) -> str:
    """The feature extractor of the identity's stages already trained (later stages go on with the
    features the head learnt from), else the config's."""
    for s in STAGES:
        path = checkpoint_path(ident, s)
        if path.is_file():
            name = load_checkpoint(path, own=True, retrain=f"nerfhead train {ident.name}")["model_meta"]["feature_spec"]["name"]
            if name != cfg.features:
                log.info("the %s stage was trained with '%s' audio features: the next stages use them too", s, name)
            return name
    return cfg.features


def train_identity(name: str, config: str | Path | None = None, stage: str | None = None,
                   minutes: float | None = None, root: str | Path | None = None) -> list[StageReport]:
    """Train an identity's stages (all, or just ``stage``) with a preset or YAML config."""
    if stage is not None and stage not in STAGES:
        raise InputError(f"unknown stage '{stage}'; stages: {', '.join(STAGES)}")
    ident = Identity.at(name, root)
    ident.manifest()
    cfg = TrainConfig.load(config)
    from nerfhead.audio.extractors import get_extractor

    get_extractor(cfg.features)  # an unknown name is refused even where trained stages decide the features
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = load_training_data(ident, trained_extractor(ident, cfg))
    deadline = time.monotonic() + 60.0 * minutes if minutes is not None else None
    reports = []
    for s in STAGES if stage is None else (stage,):
        report = train_stage(s, ident, cfg, data, deadline=deadline)
        reports.append(report)
        if not report.result.finished:
            break
    return reports
