"""Quality-assurance images a person looks at: a contact sheet and a plot of the tracks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from nerfhead.dataset import HEAD, TORSO
from nerfhead.io.files import atomic_path
from nerfhead.io.images import caption

_HEAD_TINT = np.array([255, 60, 60], np.float32)
_TORSO_TINT = np.array([60, 120, 255], np.float32)


def annotate(rgb: np.ndarray, labels: np.ndarray, landmarks: np.ndarray | None,
             axes: np.ndarray | None, title: str) -> np.ndarray:
    """One panel: mask tint, landmarks, projected head axes (origin, x, y, z) and a title."""
    img = rgb.astype(np.float32)
    for label, tint in ((HEAD, _HEAD_TINT), (TORSO, _TORSO_TINT)):
        sel = labels == label
        img[sel] = 0.65 * img[sel] + 0.35 * tint
    img = img.clip(0, 255).astype(np.uint8)
    scale = max(1, round(img.shape[0] / 256))
    if landmarks is not None:
        for x, y in np.round(landmarks[:, :2]).astype(int):
            cv2.circle(img, (int(x), int(y)), max(1, scale // 2), (255, 255, 0), -1, cv2.LINE_AA)
    if axes is not None and np.isfinite(axes).all():
        o = tuple(np.round(axes[0]).astype(int))
        for end, colour in zip(axes[1:], ((255, 0, 0), (0, 220, 0), (0, 90, 255))):
            cv2.arrowedLine(img, o, tuple(np.round(end).astype(int)), colour, 2 * scale, cv2.LINE_AA, tipLength=0.2)
    return caption(img, title, scale)


def contact_sheet(panels: list[np.ndarray], path: Path, columns: int = 4, thumb: int = 320) -> None:
    """Grid of equally sized panels written as PNG."""
    rows = (len(panels) + columns - 1) // columns
    h = thumb
    w = int(round(thumb * panels[0].shape[1] / panels[0].shape[0]))
    sheet = np.full((rows * h, columns * w, 3), 24, np.uint8)
    for k, panel in enumerate(panels):
        r, c = divmod(k, columns)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = cv2.resize(panel, (w, h), interpolation=cv2.INTER_AREA)
    _write_png(path, sheet)


def tracks_plot(euler: np.ndarray, translation: np.ndarray, eye_ratio: np.ndarray, valid: np.ndarray,
                test_start: int, fps: float, path: Path, title: str) -> None:
    """Pose angles, translation, eye openness and face presence over time (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(euler)) / fps
    fig, axes = plt.subplots(4, 1, figsize=(11, 9), sharex=True, constrained_layout=True)
    for k, name in enumerate(("yaw", "pitch", "roll")):
        axes[0].plot(t, euler[:, k], lw=0.9, label=name)
    axes[0].set_ylabel("degrees")
    axes[0].legend(loc="upper right", ncol=3)
    for k, name in enumerate(("x", "y", "z")):
        axes[1].plot(t, translation[:, k] - np.nanmedian(translation[:, k]), lw=0.9, label=f"t{name} - median")
    axes[1].set_ylabel("metres")
    axes[1].legend(loc="upper right", ncol=3)
    axes[2].plot(t, eye_ratio, lw=0.9, color="tab:purple")
    axes[2].set_ylabel("eye openness\n(lid gap / width)")
    axes[3].fill_between(t, 0, valid.astype(float), step="mid", color="tab:green", alpha=0.6)
    axes[3].set_ylabel("face found")
    axes[3].set_ylim(-0.05, 1.05)
    axes[3].set_xlabel("seconds")
    for ax in axes:
        ax.axvspan(test_start / fps, t[-1] if len(t) else 0, color="0.85", zorder=-1)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{title}  (grey: test frames)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
