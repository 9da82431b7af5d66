"""The trained avatar of one identity: head field, audio net and occupancy grid in one module.

Everything a render needs is in its ``state_dict`` plus :class:`ModelMeta` (sizes, the head box,
the audio feature spec it was trained with), so a checkpoint rebuilds the model exactly.

With ``mouth`` on (the default), the field's audio input is the audio code plus the mouth input,
gated by the same region attention: the mouth opening (:mod:`nerfhead.field.mouth`) and
``lip_code`` lip-shape components (:mod:`nerfhead.field.lips`). A render takes it from the
avatar's :class:`~nerfhead.field.lips.LipPredictor` (``mouth_from: audio``), or, for checkpoints
before it, the opening alone from the articulation rule (``mouth_from: rule``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from nerfhead.config import from_dict
from nerfhead.field.audio_net import AudioNet, AudioNetConfig
from nerfhead.errors import InputError
from nerfhead.field.head import HeadField, HeadFieldConfig
from nerfhead.field.lips import RESIDUAL_GAIN, LipPredictor
from nerfhead.field.mouth import MouthTrack
from nerfhead.field.rays import Intrinsics
from nerfhead.field.renderer import RayConditions
from nerfhead.field.torso import TorsoField, TorsoFieldConfig
from nerfhead.ops.occupancy import OccupancyGrid


@dataclass
class ModelConfig:
    head: HeadFieldConfig = field(default_factory=HeadFieldConfig)
    audio: AudioNetConfig = field(default_factory=AudioNetConfig)
    torso: TorsoFieldConfig = field(default_factory=TorsoFieldConfig)
    grid_resolution: int = 128
    mouth: bool = True  # condition the head on the mouth opening (checkpoints before it: False)
    lip_code: int = 4  # lip-shape components in the mouth input besides the opening (checkpoints before: 0)
    mouth_from: str = "audio"  # at render: "audio" (the learned LipPredictor) or "rule" (articulation track)
    mouth_prior: str = "rule"  # what the LipPredictor corrects: "rule" (the rule's opening) or "none" (before it)


@dataclass
class ModelMeta:
    n_frames: int
    feature_dim: int
    window: int
    aabb: list  # [[x0, y0, z0], [x1, y1, z1]] head frame, metres
    feature_spec: dict  # nerfhead.audio.FeatureSpec.to_dict() of the training audio
    image_size: list  # [height, width] of the identity's frames
    camera: dict  # fx, fy, cx, cy of the identity's camera (pixels)

    def as_dict(self) -> dict:
        return asdict(self)


class TalkingHeadModel(nn.Module):
    def __init__(self, cfg: ModelConfig, meta: ModelMeta) -> None:
        super().__init__()
        self.cfg, self.meta = cfg, meta
        aabb = torch.tensor(np.asarray(meta.aabb, np.float32))
        if cfg.mouth_from not in ("audio", "rule"):
            raise InputError(f"model.mouth_from must be audio or rule, not '{cfg.mouth_from}'")
        if cfg.mouth_prior not in ("rule", "none"):
            raise InputError(f"model.mouth_prior must be rule or none, not '{cfg.mouth_prior}'")
        self.mouth_dim = (1 + max(0, cfg.lip_code)) if cfg.mouth else 0
        self.field = HeadField(replace(cfg.head, audio_dim=cfg.head.audio_dim + self.mouth_dim), aabb, meta.n_frames)
        self.mouth_track = MouthTrack() if cfg.mouth else None
        self.lip_predictor = (LipPredictor(meta.feature_dim, meta.window, self.mouth_dim)
                              if cfg.mouth and cfg.mouth_from == "audio" else None)
        self.audio_net = AudioNet(meta.feature_dim, meta.window, cfg.audio)
        self.grid = OccupancyGrid(aabb.reshape(-1), resolution=cfg.grid_resolution)
        self.torso = TorsoField(cfg.torso, meta.n_frames, tuple(meta.image_size))

    @property
    def intrinsics(self) -> Intrinsics:
        c = self.meta.camera
        return Intrinsics(c["fx"], c["fy"], c["cx"], c["cy"])

    @classmethod
    def from_checkpoint(cls, payload: dict) -> "TalkingHeadModel":
        config = dict(payload["model_config"])
        config.setdefault("mouth", False)  # written before the mouth input existed
        config.setdefault("lip_code", 0)  # before the lip-shape code: the opening alone
        config.setdefault("mouth_from", "rule")  # before the learned predictor
        config.setdefault("mouth_prior", "none")  # before the predictor corrected the rule
        torso = dict(config.get("torso", {}))
        torso.setdefault("pose_frequencies", torso.get("frequencies", 4))  # written before it had its own count
        config["torso"] = torso
        model = cls(from_dict(ModelConfig, config), ModelMeta(**payload["model_meta"]))
        state = dict(payload["model"])
        state.pop("lip_predictor.has_own", None)  # a flag the first presenter-map checkpoints held (own_use.any())
        for key, value in model.state_dict().items():
            if key.startswith(("lip_predictor.prior_", "lip_predictor.own_")):
                # written before the prior (the opening alone, mean lip shape) or the presenter map (none)
                state.setdefault(key, value)
        if model.lip_predictor is not None:
            model.lip_predictor.size_networks(state, "lip_predictor.")
        model.load_state_dict(state)
        return model

    @property
    def extractor(self) -> str:
        """The name of the audio feature extractor this model was trained with."""
        return str(self.meta.feature_spec.get("name", "default"))

    def use_torso(self, cfg: TorsoFieldConfig) -> None:
        """Replace the torso field by a new, untrained one with settings ``cfg``."""
        device = next(self.parameters()).device
        self.cfg = replace(self.cfg, torso=cfg)
        self.torso = TorsoField(cfg, self.meta.n_frames, tuple(self.meta.image_size)).to(device)

    def checkpoint_fields(self) -> dict:
        return {"model": self.state_dict(), "model_config": asdict(self.cfg), "model_meta": self.meta.as_dict()}

    def mouth_input(self, windows: torch.Tensor, scores: np.ndarray, own_voice: bool = False) -> torch.Tensor | None:
        """(n, mouth_dim) the field's mouth input for ``n`` consecutive video frames of a clip, from
        their audio feature ``windows`` (n, window, D) and articulation ``scores`` (n,)
        (:mod:`nerfhead.audio.articulation`); None for a model without the mouth input.

        ``own_voice`` (the clip is the presenter speaking): the presenter map's input
        (:class:`~nerfhead.field.lips.LipPredictor`, ``predict(own=True)``) for the numbers where it
        beat the other-voice input on the capture's held-back frames (``own_use``). Otherwise the
        rule's opening (:meth:`rule_mouth`) plus
        :data:`~nerfhead.field.lips.RESIDUAL_GAIN` times the fitted predictor's correction; the
        rule's opening alone without a predictor. Checkpoints from before the prior: the predictor's
        code, moved to the capture's closed-lips code where the rule closes the lips."""
        if self.mouth_track is None:
            return None
        rule = self.rule_mouth(scores)
        if self.lip_predictor is None:
            return rule
        out = self.lip_predictor.predict(windows, scores)
        if self.cfg.mouth_prior == "rule":
            other = rule + RESIDUAL_GAIN * out
        else:
            shut = torch.from_numpy(np.asarray(scores) <= 0.0).to(out.device)
            other = torch.where(shut[:, None], self.lip_predictor.closed.expand_as(out), out)
        if not (own_voice and self.has_presenter_map):
            return other
        own = self.lip_predictor.predict(windows, scores, own=True)
        return torch.where(self.lip_predictor.own_use, own, other)

    @property
    def has_presenter_map(self) -> bool:
        """Whether the model's own voice takes the presenter map for any of its mouth numbers (never in
        checkpoints from before it, nor where the capture taught it nothing better than the rule)."""
        return self.lip_predictor is not None and bool(self.lip_predictor.own_use.any())

    def rule_mouth(self, scores: np.ndarray) -> torch.Tensor:
        """(n, mouth_dim) the mouth input the articulation rule alone asks for: its opening mapped
        to this presenter's (:class:`~nerfhead.field.mouth.MouthTrack`), with the lip shape the
        capture showed with that opening (:meth:`~nerfhead.field.lips.LipPredictor.prior`; a lip
        shape at odds with the opening is a mouth the field never saw: it bent the chin)."""
        opening = self.mouth_track(torch.from_numpy(np.asarray(scores, np.float32)).to(self.mouth_track.score_q.device))
        if self.lip_predictor is None:
            return self.mouth_vector(opening)
        return self.lip_predictor.prior(opening)

    def fit_mouth_map(self, windows: np.ndarray, scores: np.ndarray, targets: np.ndarray, frames,
                      closed_frames) -> dict:
        """Fit the predictor on a capture (:meth:`~nerfhead.field.lips.LipPredictor.fit`; the mouth
        track calibrated first): with the rule prior, the lip shape that goes with each opening, then
        the correction of the rule's mouth input. Returns the fit's choices and held-back errors."""
        prior = None
        if self.cfg.mouth_prior == "rule":
            self.lip_predictor.fit_prior(targets, frames)
            prior = self.rule_mouth(scores).cpu().numpy()
        return self.lip_predictor.fit(windows, scores, targets, frames, closed_frames, prior=prior)

    def closed_mouth(self, n: int) -> torch.Tensor | None:
        """(n, mouth_dim) the mouth input of closed lips; None for a model without the mouth input."""
        if self.mouth_track is None:
            return None
        if self.lip_predictor is None:
            return torch.zeros(n, 1, device=self.mouth_track.score_q.device)
        return self.lip_predictor.closed.expand(n, -1).clone()

    def mouth_vector(self, mouth: torch.Tensor | np.ndarray) -> torch.Tensor | None:
        """(n, mouth_dim) from ``mouth`` given as (n, mouth_dim), or (n,) openings alone (the lip
        shape at its mean, 0): what sweeps of the opening pass."""
        if self.mouth_track is None:
            return None
        m = mouth if torch.is_tensor(mouth) else torch.as_tensor(np.asarray(mouth, np.float32))
        m = m.to(device=self.mouth_track.score_q.device, dtype=torch.float32)
        if m.dim() == 1:
            m = torch.cat([m[:, None], torch.zeros(len(m), self.mouth_dim - 1, device=m.device)], 1)
        return m

    def conditions(self, windows: torch.Tensor, frames: torch.Tensor, eye: torch.Tensor,
                   frame_codes: torch.Tensor | None = None, mouth: torch.Tensor | None = None) -> RayConditions:
        """Per-ray conditioning for rays of video frames ``frames`` (N,).

        ``windows``: (n_frames, window, D) audio feature windows of the driving clip; ``eye``: (N,)
        blink values; ``frame_codes``: (N, F) per-ray frame codes, default the neutral code;
        ``mouth``: (N, mouth_dim) mouth inputs, or (N,) openings alone (opening in the field's units, :mod:`nerfhead.field.mouth`,
        then the lip-shape code), default opening 1 (the presenter's median speaking opening) and
        the mean lip shape; ignored by a model without the mouth input.
        The audio net runs once per distinct frame, not per ray.
        """
        uniq, inverse = torch.unique(frames, return_inverse=True)
        codes = self.audio_net(windows, uniq)[inverse]
        if self.mouth_track is not None:
            mouth = self.mouth_vector(torch.ones(len(frames)) if mouth is None else mouth)
            codes = torch.cat([codes, mouth.to(codes)], -1)
        if frame_codes is None:
            frame_codes = self.field.neutral_code(len(frames))
        return RayConditions(codes, eye.reshape(-1, 1).to(codes.dtype), frame_codes)
