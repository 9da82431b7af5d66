"""Training curves from the TensorBoard scalars, as a PNG a person can look at without TensorBoard."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nerfhead.io.files import atomic_path

# what each panel shows: (title, metric names); the first found per stage is drawn
_PANELS = (("training PSNR (dB, rays of the batch)", ("psnr",)),
           ("held-out test frame PSNR (dB, whole frame as rendered)", ("test_frame_psnr",)), ("loss", ("loss",)),
           ("occupied fraction of the grid", ("occupied",)), ("samples per ray", ("samples_per_ray",)))


def _events(tb_dir: str | Path) -> dict[str, list]:
    """{"stage/metric": [ScalarEvent(wall_time, step, value), ...]} from every event file under ``tb_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb_dir = Path(tb_dir)
    if not tb_dir.is_dir():
        return {}
    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: list(acc.Scalars(tag)) for tag in acc.Tags().get("scalars", [])}


def read_scalars(tb_dir: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"stage/metric": (steps, values)} from every event file under ``tb_dir`` (a resumed stage's
    repeated steps keep their last value)."""
    out = {}
    for tag, events in _events(tb_dir).items():
        by_step = {e.step: e.value for e in events}
        steps = np.array(sorted(by_step))
        out[tag] = (steps, np.array([by_step[s] for s in steps]))
    return out


def stage_throughput(tb_dir: str | Path) -> dict[str, dict[str, float]]:
    """Training speed per stage from the wall times of the logged steps: {stage: {steps_per_s
    (median over log intervals, so pauses and restarts do not count), steps, seconds (sum of the
    intervals, pauses left out)}}."""
    out = {}
    for tag, events in _events(tb_dir).items():
        stage, metric = tag.split("/", 1)
        if metric != "loss" or len(events) < 3:
            continue
        ev = sorted(events, key=lambda e: e.wall_time)
        rates, secs = [], []
        for a, b in zip(ev, ev[1:]):
            if b.step > a.step and b.wall_time > a.wall_time:
                rates.append((b.step - a.step) / (b.wall_time - a.wall_time))
                secs.append(b.wall_time - a.wall_time)
        if not rates:
            continue
        med = float(np.median(rates))
        # an interval much slower than usual holds a pause (a restart, a panel render): count it at the median
        steps = [r * t for r, t in zip(rates, secs)]
        seconds = sum(min(t, n / med * 1.5) for n, t in zip(steps, secs))
        out[stage] = {"steps_per_s": med, "steps": float(max(e.step for e in ev)), "seconds": float(seconds)}
    return out


def plot_training_curves(tb_dir: str | Path, path: str | Path, title: str = "") -> Path | None:
    """One PNG: PSNR, loss, grid occupancy and samples per ray over the steps of every stage
    (stages one after another on a shared step axis). None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scalars = read_scalars(tb_dir)
    stages = [s for s in ("head", "lips", "torso") if any(t.startswith(s + "/") for t in scalars)]
    if not stages:
        return None
    fig, axes = plt.subplots(len(_PANELS), 1, figsize=(10, 2.4 * len(_PANELS)), sharex=True, constrained_layout=True)
    offset = 0
    for stage in stages:
        end = offset
        for ax, (name, metrics) in zip(axes, _PANELS):
            for m in metrics:
                if f"{stage}/{m}" in scalars:
                    steps, values = scalars[f"{stage}/{m}"]
                    ax.plot(steps + offset, values, label=stage, lw=1.2)
                    end = max(end, offset + int(steps.max()))
                    break
        axes[0].axvline(offset, color="0.7", lw=0.8)
        offset = end
    for ax, (name, _) in zip(axes, _PANELS):
        ax.set_title(name, fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[2].set_yscale("log")
    axes[0].legend(loc="lower right")
    axes[-1].set_xlabel("step (stages one after another)")
    if title:
        fig.suptitle(title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
