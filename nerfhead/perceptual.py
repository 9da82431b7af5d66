"""Shift-tolerant LPIPS (ST-LPIPS; Ghildyal and Liu, ECCV 2022), AlexNet variant: a learnt
perceptual distance of two images that a shift of a pixel or two barely changes.

The network is defined here (the ``stlpips-pytorch`` package itself imports torchvision, IPython
and torchsummary, which nerfhead does not install); only its weights are read from the package
(``stlpips_pytorch/weights/vST0.0/alex_shift_tolerant.pth``, BSD-2 licence), once per device,
with ``torch.load(weights_only=True)`` and a strict key match.

The trunk is AlexNet made shift tolerant: the first convolution runs at stride 1, and every
down-sampling is a 3x3 binomial blur at stride 2 over a reflect padding of two pixels (after the
first convolution, and after each max pool, which runs at stride 1). The outputs of the five
ReLU stages are unit-normalised over channels; the squared difference of two images' features
is weighted per channel by a 1x1 linear head, averaged over the image and summed over stages.
Inputs are RGB in [-1, 1], shifted and scaled per channel first (LPIPS v0.1's input layer,
which ST-LPIPS keeps). The distance is differentiable in the inputs (a training loss); the
weights are frozen.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nerfhead.errors import NerfheadError

PACKAGE = "stlpips_pytorch"
WEIGHTS = ("weights", "vST0.0", "alex_shift_tolerant.pth")
INSTALL = "pip install stlpips-pytorch==0.0.2"
CHANNELS = (64, 192, 384, 256, 256)  # of the five ReLU stages
BATCH = 16  # images per forward pass in image_features

# the weights file's keys (the package's module names) -> this module's
_CONVS = {"net.slice1.0": "convs.0", "net.slice2.5": "convs.1", "net.slice3.9": "convs.2",
          "net.slice4.11": "convs.3", "net.slice5.13": "convs.4"}


def weights_path() -> Path:
    """The ST-LPIPS AlexNet weights inside the installed ``stlpips-pytorch`` (not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NerfheadError(f"stlpips-pytorch (the ST-LPIPS weights) is not installed: run `{INSTALL}`")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*WEIGHTS)
    if not path.is_file():
        raise NerfheadError(f"the ST-LPIPS weights are missing ({path}): run `{INSTALL} --force-reinstall`")
    return path


def blur_downsample(x: torch.Tensor) -> torch.Tensor:
    """Anti-aliased stride-2 down-sampling of (N, C, H, W): each channel reflect-padded by 2 and
    blurred with the 3x3 binomial filter [1 2 1]^T [1 2 1] / 16."""
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    kernel = (taps[:, None] * taps[None, :] / 16.0).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, stride=2, groups=x.shape[1])


class STLPIPS(nn.Module):
    """ST-LPIPS, AlexNet variant. ``forward(x, y)``: (N,) distances of two (N, 3, H, W) batches
    of RGB in [-1, 1] (H, W >= 32)."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList([
            nn.Conv2d(3, 64, 11, padding=2), nn.Conv2d(64, 192, 5, padding=2), nn.Conv2d(192, 384, 3, padding=1),
            nn.Conv2d(384, 256, 3, padding=1), nn.Conv2d(256, 256, 3, padding=1)])
        self.heads = nn.ModuleList([nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS])
        self.register_buffer("shift", torch.zeros(1, 3, 1, 1))
        self.register_buffer("scale", torch.ones(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five stages' features of (N, 3, H, W) RGB in [-1, 1], each unit-normalised over channels."""
        c = self.convs
        h = (x - self.shift) / self.scale
        f1 = F.relu(blur_downsample(c[0](h)))
        f2 = F.relu(c[1](blur_downsample(F.max_pool2d(f1, 3, stride=1))))
        f3 = F.relu(c[2](blur_downsample(F.max_pool2d(f2, 3, stride=1))))
        f4 = F.relu(c[3](f3))
        f5 = F.relu(c[4](f4))
        return [F.normalize(f, dim=1, eps=1e-10) for f in (f1, f2, f3, f4, f5)]

    def compare(self, a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
        """(N,) distances of two images' :meth:`features` (or (1,) against N: broadcast)."""
        return sum(head((fa - fb) ** 2).mean(dim=(1, 2, 3)) for head, fa, fb in zip(self.heads, a, b))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.compare(self.features(x), self.features(y))


def _state_dict(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights file's tensors under this module's names; its fixed blur filters (the binomial
    filter of :func:`blur_downsample`) are dropped."""
    out = {}
    for key, value in raw.items():
        module, _, name = key.rpartition(".")
        if key.startswith("scaling_layer."):
            out[name] = value
        elif module in _CONVS:
            out[f"{_CONVS[module]}.{name}"] = value
        elif key.startswith("lin") and key.endswith(".model.1.weight"):
            out[f"heads.{int(key[3:key.index('.')])}.weight"] = value
        elif name != "filt":
            raise NerfheadError(f"unexpected tensor {key} in the ST-LPIPS weights: run `{INSTALL} --force-reinstall`")
    return out


@lru_cache(maxsize=None)
def stlpips_model(device: str = "cpu") -> STLPIPS:
    """The ST-LPIPS network with its weights, in eval mode with frozen parameters; loaded once per
    device and shared (do not modify it)."""
    with torch.random.fork_rng(devices=[]):  # its random init (overwritten) leaves the caller's RNG alone
        model = STLPIPS()
    raw = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(_state_dict(raw), strict=True)
    model.eval().requires_grad_(False)
    return model.to(device)


def image_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """(N, 3, H, W) float32 in [-1, 1] of N same-sized (H, W, 3) uint8 RGB images."""
    x = torch.from_numpy(np.stack([np.asarray(im) for im in images])).permute(0, 3, 1, 2)
    return x.float() / 127.5 - 1.0


def image_features(images: Sequence[np.ndarray], batch: int = BATCH) -> list[torch.Tensor]:
    """:meth:`STLPIPS.features` of N same-sized uint8 RGB images (no gradients), ``batch`` at a time."""
    model = stlpips_model()
    parts = []
    with torch.inference_mode():
        for k in range(0, len(images), batch):
            parts.append(model.features(image_tensor(images[k:k + batch])))
    return [torch.cat(stage) for stage in zip(*parts)]


def st_lpips(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> np.ndarray:
    """(N,) ST-LPIPS distances of the pairs of two equally long lists of same-sized uint8 RGB
    images (or (N, H, W, 3) arrays); 0 for identical images."""
    if len(a) != len(b):
        raise ValueError(f"st_lpips: {len(a)} images against {len(b)}")
    if len(a) == 0:
        return np.zeros(0)
    fa, fb = image_features(a), image_features(b)
    with torch.inference_mode():
        return stlpips_model().compare(fa, fb).numpy().astype(np.float64)
