"""The head stage: fit the audio-conditioned head field to the training frames.

Each step draws rays from a few training frames (mostly on the head), conditions them on the
frame's audio window, blink value, tracked mouth opening (teacher forcing; a render uses the
audio's articulation track) and per-frame code, renders them through the occupancy grid and
composites them over the colour behind the head (real torso or background plate), as ER-NeRF does. Loss: photometric MSE, plus a small entropy term that pushes the head's opacity
to 0 or 1, a penalty on head opacity where the masks say torso or background (the torso field
owns the neck and collar, so no second chin or seam), and a penalty on audio attention off the
head (ambient audio).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from nerfhead.dataset import HEAD
from nerfhead.field.model import TalkingHeadModel
from nerfhead.field.renderer import SamplingConfig, render_rays
from nerfhead.perceptual import stlpips_model
from nerfhead.train.data import TrainingData


@dataclass
class HeadStageConfig:
    steps: int = 2000
    rays: int = 4096
    frames_per_batch: int = 4
    head_fraction: float = 0.75
    uniform_fraction: float = 0.1  # rays anywhere in the frame: no floaters where the box reaches past the head's rectangle
    mouth_fraction: float = 0.0  # rays in the mouth square (lips_size): more of the training on what the audio moves
    lr_encoding: float = 1e-2
    lr_net: float = 1e-3
    lr_final_ratio: float = 0.5  # exponential decay to this fraction of the start rate
    grid_update_every: int = 16
    grid_warmup_steps: int = 256
    grid_decay: float = 0.95
    density_threshold: float = 10.0
    entropy_weight: float = 1e-4
    off_head_alpha_weight: float = 1e-3  # head opacity on pixels the masks call torso/background (ramped in)
    ambient_weight: float = 1e-4
    regulariser_ramp_steps: int = 1000  # the two penalties above grow in over this many steps (0: at once)
    lips_every: int = 0  # every n-th step renders the whole mouth square instead (lips fine-tune; 0 = off)
    lips_size: float = 0.14  # the mouth square's side, as a fraction of the image width
    # on the mouth square only (lips fine-tune), besides its MSE:
    lips_perceptual_weight: float = 0.0  # ST-LPIPS of the rendered square against the real one
    lips_gradient_weight: float = 0.0  # L1 of the difference of the two squares' image gradients
    lips_inner_weight: float = 0.0  # extra MSE weight inside the tracked inner lip contour (teeth, tongue)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


@dataclass
class LipsStageConfig(HeadStageConfig):
    """The lips fine-tune: the head stage again, gentler, with every other step on the whole mouth
    square, where a perceptual, a gradient and an inner-mouth term may join the MSE (off here;
    configs/cpu.yaml sets them, measured in docs/EVALUATION.md)."""

    steps: int = 500
    lr_encoding: float = 3e-3
    lr_net: float = 3e-4
    lr_final_ratio: float = 0.1
    grid_warmup_steps: int = 0
    regulariser_ramp_steps: int = 0
    lips_every: int = 2


def two_rate_adam(module: torch.nn.Module, tables: torch.nn.Module, lr_tables: float, lr_net: float) -> torch.optim.Optimizer:
    """Adam with ER-NeRF's two learning rates: the hash tables of ``tables`` fast, the rest of
    ``module``'s trainable parameters slow."""
    enc = list(tables.parameters())
    ids = {id(p) for p in enc}
    rest = [p for p in module.parameters() if id(p) not in ids and p.requires_grad]
    return torch.optim.Adam([{"params": enc, "lr": lr_tables}, {"params": rest, "lr": lr_net}],
                            betas=(0.9, 0.99), eps=1e-15)


def lr_factor(step: int, total: int, final_ratio: float) -> float:
    return final_ratio ** (min(step, total) / max(total, 1))


def entropy(opacity: torch.Tensor) -> torch.Tensor:
    o = opacity.clamp(1e-5, 1 - 1e-5)
    return -(o * torch.log2(o) + (1 - o) * torch.log2(1 - o)).mean()


class HeadStage:
    """One optimisation step at a time (``step``), resumable from ``state_dict``."""

    def __init__(self, model: TalkingHeadModel, data: TrainingData, cfg: HeadStageConfig, seed: int = 0) -> None:
        self.model, self.data, self.cfg = model, data, cfg
        self.mouth_size = max(8, int(round(cfg.lips_size * data.store.width)))  # the mouth square's side (px)
        self.device = next(model.parameters()).device
        self.windows = data.windows.to(self.device)
        self.blink = data.blink.to(self.device)
        self.mouth = data.mouth_inputs(model.cfg.lip_code if model.cfg.mouth else 0).to(self.device)  # teacher forcing
        self.sampler = data.sampler(cfg.rays, cfg.frames_per_batch, cfg.head_fraction, seed,
                                    uniform_fraction=cfg.uniform_fraction, mouth_fraction=cfg.mouth_fraction,
                                    mouth_size=self.mouth_size)
        self.optimizer = two_rate_adam(model, model.field.encoding, cfg.lr_encoding, cfg.lr_net)
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        if cfg.lips_every and cfg.lips_perceptual_weight > 0:
            stlpips_model(str(self.device))  # loaded now: a missing weights package fails before any step

    def _grid_density(self, points: torch.Tensor) -> torch.Tensor:
        """Density at grid points for a random training frame's audio and blink."""
        frames = self.data.train_frames
        f = frames[int(torch.randint(len(frames), (1,), generator=self.generator))]
        idx = torch.tensor([f], device=self.device)
        cond = self.model.conditions(self.windows, idx, self.blink[idx], mouth=self.mouth[idx])
        return self.model.field.density(points, cond.audio.expand(len(points), -1), cond.eye.expand(len(points), -1))

    def update_grid(self, step: int) -> None:
        with torch.no_grad():
            self.model.grid.update_every_n_steps(step, self._grid_density, n=self.cfg.grid_update_every,
                                                 decay=self.cfg.grid_decay, threshold=self.cfg.density_threshold,
                                                 warmup_steps=self.cfg.grid_warmup_steps)

    def _batch(self, step: int):
        """(rays, square): random rays around the head and None, or (lips fine-tune) every pixel of a
        mouth square, row by row, and (frame, x0, y0, x1, y1)."""
        cfg = self.cfg
        if cfg.lips_every and step % cfg.lips_every == 0:
            frames = self.data.train_frames
            i = frames[int(self.sampler.rng.integers(len(frames)))]
            box = self.data.mouth_box(i, self.mouth_size)
            return self.sampler.rect(i, *box), (i, *box)
        return self.sampler.sample(), None

    def square_loss(self, rgb: torch.Tensor, target: torch.Tensor, square: tuple[int, ...]) -> torch.Tensor:
        """The mouth square's terms beyond its MSE: perceptual (ST-LPIPS), gradient and inner-mouth
        losses of the rendered square ``rgb`` (h * w, 3) against ``target``, rows first;
        ``square``: (frame, x0, y0, x1, y1)."""
        cfg = self.cfg
        i, x0, y0, x1, y1 = square
        h, w = y1 - y0, x1 - x0
        pred = rgb.reshape(h, w, 3).permute(2, 0, 1)[None]
        real = target.reshape(h, w, 3).permute(2, 0, 1)[None]
        loss = rgb.new_zeros(())
        if cfg.lips_perceptual_weight > 0 and min(h, w) >= 32:
            distance = stlpips_model(str(rgb.device))(pred * 2 - 1, real * 2 - 1)
            loss = loss + cfg.lips_perceptual_weight * distance.mean()
        if cfg.lips_gradient_weight > 0:
            dx = (pred[..., :, 1:] - pred[..., :, :-1]) - (real[..., :, 1:] - real[..., :, :-1])
            dy = (pred[..., 1:, :] - pred[..., :-1, :]) - (real[..., 1:, :] - real[..., :-1, :])
            loss = loss + cfg.lips_gradient_weight * (dx.abs().mean() + dy.abs().mean())
        if cfg.lips_inner_weight > 0:
            inside = self.data.mouth_interior(i, x0, y0, x1, y1).ravel()
            if inside.any():
                err = ((rgb - target) ** 2).mean(-1)
                weight = torch.from_numpy(inside.astype(np.float32)).to(rgb.device)
                loss = loss + cfg.lips_inner_weight * (err * weight).sum() / len(err)
        return loss

    def step(self, step: int) -> dict[str, float]:
        cfg, model = self.cfg, self.model
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * lr_factor(step, cfg.steps, cfg.lr_final_ratio)
        self.update_grid(step)
        batch, square = self._batch(step)
        batch = batch.to(self.device)
        frame_codes = model.field.frame_codes(batch.frame)
        cond = model.conditions(self.windows, batch.frame, self.blink[batch.frame], frame_codes,
                                mouth=self.mouth[batch.frame])
        jitter = torch.rand(len(batch), generator=self.generator).to(self.device)
        out = render_rays(model.field, model.grid, batch.origins, batch.dirs, cond, batch.behind, cfg.sampling,
                          jitter=jitter)
        mse = torch.mean((out.rgb - batch.target) ** 2)
        loss = mse + cfg.entropy_weight * entropy(out.opacity)
        if square is not None:
            loss = loss + self.square_loss(out.rgb, batch.target, square)
        # the regularisers grow in while the head forms; a fixed number of steps, since a box left
        # opaque longer (the field paints the static background first) keeps every sample busy
        ramp = min(1.0, step / cfg.regulariser_ramp_steps) if cfg.regulariser_ramp_steps > 0 else 1.0
        off = batch.label != HEAD  # rays the masks call torso or background
        if cfg.off_head_alpha_weight > 0 and off.any():
            # the head must not paint the collar or the background: that is the torso's and the
            # plate's job, and a head that does leaves a seam or a second chin once the torso moves
            loss = loss + cfg.off_head_alpha_weight * ramp * out.opacity[off].mean()
        if cfg.ambient_weight > 0 and out.n_samples:
            # audio attention should be small where nothing moves with speech: on rays off the head mask
            off_head = off[out.ray_indices]
            if off_head.any():
                loss = loss + cfg.ambient_weight * ramp * out.audio_attention[off_head].abs().mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        loss_v, mse_v = loss.item(), mse.item()
        return {"loss": loss_v, "mse": mse_v, "psnr": float(-10 * np.log10(max(mse_v, 1e-10))),
                "samples_per_ray": out.n_samples / len(batch), "occupied": float(model.grid.occupied_fraction())}

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "sampler_rng": self.sampler.rng.bit_generator.state,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.rng.bit_generator.state = state["sampler_rng"]
        self.generator.set_state(state["generator"])
