"""TensorBoard for training: loss curves and image panels of a held-out test frame.

``tensorboard --logdir identities/NAME/model/tb`` shows, per stage, the step metrics and a panel
(real test frame | render | depth) with the mouth enlarged below it (real | render).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from nerfhead.field.model import TalkingHeadModel
from nerfhead.field.renderer import SamplingConfig
from nerfhead.io.files import atomic_path
from nerfhead.io.images import caption, write_rgb
from nerfhead.log import get_logger
from nerfhead.quality import psnr
from nerfhead.train.data import TrainingData
from nerfhead.train.preview import render_dataset_frame

log = get_logger(__name__)


def depth_image(depth: np.ndarray, opacity: np.ndarray) -> np.ndarray:
    """Expected depth where the head is, as a grey image (near = bright), (H, W, 3) uint8."""
    d = np.where(opacity > 0.05, depth / np.maximum(opacity, 1e-6), np.nan)
    if not np.isfinite(d).any():
        return np.zeros((*depth.shape, 3), np.uint8)
    lo, hi = np.nanpercentile(d, 1), np.nanpercentile(d, 99)
    g = 1.0 - np.clip((d - lo) / max(hi - lo, 1e-6), 0, 1)
    g = np.where(np.isfinite(g), g * 0.85 + 0.15, 0.0)
    return np.repeat((g * 255).astype(np.uint8)[..., None], 3, axis=2)


def panel(model: TalkingHeadModel, data: TrainingData, i: int, sampling: SamplingConfig, stage: str) -> np.ndarray:
    """(H', W', 3) uint8 picture of test frame ``i``: real | render | depth, mouths enlarged below."""
    real = np.asarray(data.store.frames[i])
    head = render_dataset_frame(model, data, i, sampling, torso=stage == "torso")
    fake = head.rgb
    top = np.concatenate([real, fake, depth_image(head.depth, head.opacity)], 1)
    size = max(32, data.store.width // 5)
    x0, y0, x1, y1 = data.mouth_box(i, size)
    box = (slice(y0, y1), slice(x0, x1))
    scale = max(1, min(3, top.shape[1] // 2 // size))
    crops = [cv2.resize(np.ascontiguousarray(x[box]), (size * scale, size * scale), interpolation=cv2.INTER_NEAREST)
             for x in (real, fake)]
    bottom = np.zeros((size * scale, top.shape[1], 3), np.uint8)
    row = np.concatenate(crops, 1)
    bottom[:, : row.shape[1]] = row
    return np.concatenate([top, bottom], 0)


class TrainingMonitor:
    """Scalars every log interval, an image panel every ``panel_every`` steps and at the end.

    The panel also goes to ``preview`` (a PNG replaced in one move) when given, TensorBoard or not:
    the studio shows it while the training runs."""

    def __init__(self, log_dir: Path, enabled: bool = True, preview: Path | None = None) -> None:
        self.writer = None
        self.preview = preview
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:  # tensorboard is a dependency; keep training if it is broken
                log.warning("TensorBoard logging off (%s)", exc)
                return
            self.writer = SummaryWriter(str(log_dir))

    def scalars(self, stage: str, step: int, metrics: dict[str, float]) -> None:
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"{stage}/{k}", v, step)

    def image(self, stage: str, step: int, model: TalkingHeadModel, data: TrainingData,
              sampling: SamplingConfig) -> None:
        if (self.writer is None and self.preview is None) or not data.test_frames:
            return
        i = data.test_frames[len(data.test_frames) // 2]
        was_training = model.training
        model.eval()
        picture = panel(model, data, i, sampling, stage)
        model.train(was_training)
        if self.preview is not None:
            with atomic_path(self.preview) as tmp:  # the temporary keeps the .png suffix
                write_rgb(tmp, caption(picture.copy(), f"{stage} step {step}: real | render | depth"))
        if self.writer is None:
            return
        real = np.asarray(data.store.frames[i])
        self.writer.add_image(f"{stage}/test_frame_{i}", picture, step, dataformats="HWC")
        self.writer.add_scalar(f"{stage}/test_frame_psnr", psnr(real, picture[: real.shape[0], real.shape[1]: 2 * real.shape[1]]), step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
