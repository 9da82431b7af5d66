"""The trained avatar of one identity: head field, audio net and occupancy grid in one module.

Everything a render needs is in its ``state_dict`` plus :class:`ModelMeta` (sizes, the head box,
the audio feature spec it was trained with), so a checkpoint rebuilds the model exactly.

With ``mouth`` on (the default), the field's audio input is the audio code plus one channel: the
mouth opening (:mod:`nerfhead.field.mouth`), gated by the same region attention.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from nerfhead.config import from_dict
from nerfhead.field.audio_net import AudioNet, AudioNetConfig
from nerfhead.field.head import HeadField, HeadFieldConfig
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
        head = replace(cfg.head, audio_dim=cfg.head.audio_dim + 1) if cfg.mouth else cfg.head
        self.field = HeadField(head, aabb, meta.n_frames)
        self.mouth_track = MouthTrack() if cfg.mouth else None
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
        torso = dict(config.get("torso", {}))
        torso.setdefault("pose_frequencies", torso.get("frequencies", 4))  # written before it had its own count
        config["torso"] = torso
        model = cls(from_dict(ModelConfig, config), ModelMeta(**payload["model_meta"]))
        model.load_state_dict(payload["model"])
        return model

    def use_torso(self, cfg: TorsoFieldConfig) -> None:
        """Replace the torso field by a new, untrained one with settings ``cfg``."""
        device = next(self.parameters()).device
        self.cfg = replace(self.cfg, torso=cfg)
        self.torso = TorsoField(cfg, self.meta.n_frames, tuple(self.meta.image_size)).to(device)

    def checkpoint_fields(self) -> dict:
        return {"model": self.state_dict(), "model_config": asdict(self.cfg), "model_meta": self.meta.as_dict()}

    def mouth_input(self, scores: torch.Tensor | np.ndarray) -> torch.Tensor | None:
        """The field's mouth input for articulation scores (:mod:`nerfhead.audio.articulation`);
        None for a model without the mouth input."""
        if self.mouth_track is None:
            return None
        return self.mouth_track(torch.as_tensor(np.asarray(scores, np.float32)).to(self.mouth_track.score_q.device))

    def conditions(self, windows: torch.Tensor, frames: torch.Tensor, eye: torch.Tensor,
                   frame_codes: torch.Tensor | None = None, mouth: torch.Tensor | None = None) -> RayConditions:
        """Per-ray conditioning for rays of video frames ``frames`` (N,).

        ``windows``: (n_frames, window, D) audio feature windows of the driving clip; ``eye``: (N,)
        blink values; ``frame_codes``: (N, F) per-ray frame codes, default the neutral code;
        ``mouth``: (N,) mouth openings in the field's units (:mod:`nerfhead.field.mouth`), default 1
        (the presenter's median speaking opening); ignored by a model without the mouth input.
        The audio net runs once per distinct frame, not per ray.
        """
        uniq, inverse = torch.unique(frames, return_inverse=True)
        codes = self.audio_net(windows, uniq)[inverse]
        if self.mouth_track is not None:
            mouth = torch.ones(len(frames)) if mouth is None else mouth
            codes = torch.cat([codes, mouth.reshape(-1, 1).to(codes)], -1)
        if frame_codes is None:
            frame_codes = self.field.neutral_code(len(frames))
        return RayConditions(codes, eye.reshape(-1, 1).to(codes.dtype), frame_codes)
