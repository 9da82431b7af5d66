"""The torso stage: fit the 2D torso field with the head frozen.

Rays are drawn mostly on the torso mask, around it (so the field learns where the torso ends)
and anywhere in the frame (so its alpha is 0 on all of the background). Each pixel is
composited exactly as a render is made, with the frozen head in front:
``head + (1 - head alpha) * (torso * torso alpha + plate * (1 - torso alpha))``, so the torso
fills whatever the head leaves open at the neck and collar (no gap, no second chin) and the
two fields meet without a seam.

The torso's alpha is taught by the segmentation (binary cross-entropy: 1 on pixels labelled
torso, 0 on background; head pixels are left free, the head covers them). Photometric loss alone
leaves alpha undetermined wherever the colour can be mixed from the field and the plate: the
field settled at alpha 0.86 on the torso, so a white shirt over a darker plate could not reach
white (it rendered grey), and on a moving backdrop it painted the wall instead. The mask term
fixes both with one setting for static and moving backdrops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nerfhead.dataset import BACKGROUND, TORSO
from nerfhead.field.model import TalkingHeadModel
from nerfhead.field.torso import pixel_coords
from nerfhead.field.renderer import SamplingConfig, render_rays
from nerfhead.train.batches import RayBatch
from nerfhead.train.data import TrainingData
from nerfhead.train.head_stage import lr_factor, two_rate_adam


@dataclass
class TorsoStageConfig:
    steps: int = 1000
    rays: int = 4096
    frames_per_batch: int = 4
    torso_fraction: float = 0.7
    uniform_fraction: float = 0.15  # rays anywhere in the frame (the alpha must be 0 on all the background)
    lr_encoding: float = 1e-2
    lr_net: float = 1e-3
    lr_final_ratio: float = 0.3
    mask_weight: float = 0.1  # binary cross-entropy of the torso's alpha against the torso/background labels


def composite(head_rgb: torch.Tensor, head_alpha: torch.Tensor, torso_rgb: torch.Tensor, torso_alpha: torch.Tensor,
              plate: torch.Tensor) -> torch.Tensor:
    """Head (premultiplied) over torso over background plate."""
    behind = torso_rgb * torso_alpha[:, None] + plate * (1.0 - torso_alpha[:, None])
    return head_rgb + (1.0 - head_alpha[:, None]) * behind


class TorsoStage:
    def __init__(self, model: TalkingHeadModel, data: TrainingData, cfg: TorsoStageConfig,
                 head_sampling: SamplingConfig, seed: int = 0) -> None:
        self.model, self.data, self.cfg, self.head_sampling = model, data, cfg, head_sampling
        self.device = next(model.parameters()).device
        self.sampler = data.sampler(cfg.rays, cfg.frames_per_batch, cfg.torso_fraction, seed, focus=TORSO,
                                    uniform_fraction=cfg.uniform_fraction)
        for p in model.parameters():
            p.requires_grad_(False)
        torso = model.torso
        for p in torso.parameters():
            p.requires_grad_(True)
        self.optimizer = two_rate_adam(torso, torso.grid, cfg.lr_encoding, cfg.lr_net)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.plate = torch.from_numpy(np.asarray(data.store.background, np.float32) / 255.0).to(self.device)
        self.windows = data.windows.to(self.device)
        self.blink = data.blink.to(self.device)
        self.mouth = data.mouth_inputs(model.cfg.lip_code if model.cfg.mouth else 0).to(self.device)
        self.rotation = data.rotation.to(self.device)
        self.translation = data.translation.to(self.device)

    @torch.no_grad()
    def head(self, batch: RayBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The frozen head's premultiplied colour and alpha on the batch's rays."""
        m = self.model
        cond = m.conditions(self.windows, batch.frame, self.blink[batch.frame], m.field.frame_codes(batch.frame),
                            mouth=self.mouth[batch.frame])
        zeros = torch.zeros_like(batch.target)
        out = render_rays(m.field, m.grid, batch.origins, batch.dirs, cond, zeros, self.head_sampling)
        return out.head_rgb, out.opacity

    def torso(self, frames: torch.Tensor, xy: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        uniq, inverse = torch.unique(frames, return_inverse=True)
        pose = m.torso.anchor_positions(self.rotation[uniq], self.translation[uniq], m.intrinsics)[inverse]
        h, w = m.meta.image_size
        return m.torso(pixel_coords(xy, h, w), pose, codes)

    def step(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * lr_factor(step, cfg.steps, cfg.lr_final_ratio)
        batch = self.sampler.sample().to(self.device)
        head_rgb, head_alpha = self.head(batch)
        t_rgb, t_alpha = self.torso(batch.frame, batch.xy, self.model.torso.codes(batch.frame))
        plate = self.plate[batch.xy[:, 1], batch.xy[:, 0]]
        rgb = composite(head_rgb, head_alpha, t_rgb, t_alpha, plate)
        mse = torch.mean((rgb - batch.target) ** 2)
        loss = mse
        labelled = (batch.label == TORSO) | (batch.label == BACKGROUND)
        if cfg.mask_weight > 0 and labelled.any():
            target = (batch.label[labelled] == TORSO).to(t_alpha.dtype)
            alpha = t_alpha[labelled].clamp(1e-5, 1 - 1e-5)
            loss = loss + cfg.mask_weight * torch.nn.functional.binary_cross_entropy(alpha, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        mse_v = mse.item()
        return {"loss": loss.item(), "mse": mse_v, "psnr": float(-10 * np.log10(max(mse_v, 1e-10)))}

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "sampler_rng": self.sampler.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.rng.bit_generator.state = state["sampler_rng"]
