"""A picture of the features: waveform, log-mel, visemes and voice activity on one time axis."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nerfhead.audio.visemes import N_VISEMES, VISEME_NAMES
from nerfhead.io.files import atomic_path


def plot_features(feats, path: str | Path, max_seconds: float | None = 60.0) -> Path:
    """Write a PNG of ``feats`` (an :class:`~nerfhead.audio.features.AudioFeatures`) to ``path``.

    Long audio is shown up to ``max_seconds`` (None: all of it), so the picture stays readable.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    span = feats.duration if max_seconds is None else min(feats.duration, max_seconds)
    n = min(feats.n_feature_frames, int(np.ceil(span * 100)))
    t = np.arange(n) / 100.0
    samples = feats.samples[: int(span * 16000)]
    a, b = feats.spec.parts.get("logmel", [0, 0])

    rows = [("waveform", 1.0)] + ([("log-mel", 2.0)] if b > a else []) + \
           ([("visemes", 1.6), ("voice activity", 0.8)] if feats.viseme_ids is not None else [])
    fig, axes = plt.subplots(len(rows), 1, figsize=(14, 1.6 * sum(h for _, h in rows)), sharex=True,
                             gridspec_kw={"height_ratios": [h for _, h in rows]}, squeeze=False)
    axes = axes[:, 0]
    ax = axes[0]
    step = max(1, samples.size // 20000)
    ax.plot(np.arange(samples.size)[::step] / 16000.0, samples[::step], lw=0.5, color="0.2")
    ax.set_ylabel("waveform")
    ax.set_ylim(-1, 1)
    title = f"{Path(str(feats.source)).name} - {feats.duration:.2f} s, {feats.spec}, phones: {feats.phone_source}"
    if span < feats.duration:
        title += f" (first {span:.0f} s shown)"
    ax.set_title(title, fontsize=10)
    k = 1
    if b > a:
        axes[k].imshow(feats.features[:n, a:b].T, origin="lower", aspect="auto", extent=(0, n / 100.0, 0, b - a),
                       cmap="magma", vmin=-1, vmax=1, interpolation="nearest")
        axes[k].set_ylabel("log-mel bin")
        k += 1
    if feats.viseme_ids is not None:
        ids = feats.viseme_ids[:n].astype(int)
        img = np.full((N_VISEMES, n), np.nan)
        img[ids, np.arange(n)] = ids
        axes[k].imshow(img, origin="lower", aspect="auto", extent=(0, n / 100.0, -0.5, N_VISEMES - 0.5),
                       cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
        axes[k].set_yticks(range(N_VISEMES), VISEME_NAMES, fontsize=7)
        axes[k].set_ylabel("viseme")
        for phone, s, e in feats.phones:
            if s < n and phone not in ("SIL",) and (e - s) >= 4 and n <= 1500:
                axes[k].text((s + e + 1) / 200.0, N_VISEMES - 0.9, phone.lower(), fontsize=6, ha="center")
        axes[k + 1].fill_between(t, feats.vad[:n], step="mid", color="tab:green", alpha=0.6)
        axes[k + 1].set_ylim(0, 1)
        axes[k + 1].set_ylabel("speech p")
    axes[-1].set_xlabel("time (s); feature frame k is at k/100 s, video frame i at i/25 s")
    axes[-1].set_xlim(0, max(span, 0.01))
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path
