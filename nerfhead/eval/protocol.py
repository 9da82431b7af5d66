"""``nerfhead eval``: the whole evaluation protocol of an avatar into report.json and report.html.

Self-driven test frames (with the trivial baselines and the noise floor, and the shuffled /
silent audio check), temporal stability of the rendered test sequence, cross-driven lip sync on
other audio beside the real capture, and speed. See docs/EVALUATION.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from nerfhead.avatar.drive import capture_audio
from nerfhead.avatar.load import load_avatar
from nerfhead.capture.pose import euler_degrees
from nerfhead.dataset import BACKGROUND, Identity, mouth_opening
from nerfhead.eval import report as page
from nerfhead.eval.curves import plot_training_curves, stage_throughput
from nerfhead.eval.lipsync import LipSyncScores, lipsync_scores
from nerfhead.eval.selfdriven import SelfDrivenRun, SelfDrivenScores, run_selfdriven
from nerfhead.eval.regions import REGIONS
from nerfhead.eval.strips import lip_component_strip, mouth_strip, open_frames, speaking_frame
from nerfhead.eval.temporal import temporal_stability
from nerfhead.io.files import write_atomic
from nerfhead.log import get_logger
from nerfhead.train.data import load_training_data

log = get_logger(__name__)

def evaluate_identity(name: str, checkpoint: str | Path | None = None, root: str | Path | None = None,
                      out_dir: str | Path | None = None, audio: Sequence[str | Path] = (),
                      cross_seconds: float | None = 10.0, max_frames: int | None = None) -> tuple[dict, Path]:
    """Run the protocol; returns the report (as written to ``report.json``) and the HTML path."""
    ident = Identity.at(name, root)
    ident.manifest()
    avatar = load_avatar(ident, checkpoint)
    out = Path(out_dir) if out_dir is not None else ident.root / "eval"
    t_start = time.perf_counter()
    data = load_training_data(ident, avatar.model.extractor)
    run = run_selfdriven(ident, avatar, data, max_frames)
    sd = run.report
    size = data.store.width
    bg = [np.asarray(data.store.labels[i]) == BACKGROUND for i in run.test]
    temporal = {
        "ours": temporal_stability([run.ours[i] for i in run.test], run.ours_landmarks, bg, size),
        "real": temporal_stability(run.real, run.real_landmarks, bg, size),
    }
    speed = {"render_fps_test_frames": sd.n_test_frames / max(sd.seconds["render"], 1e-9),
             "render_fps_test_frames_portrait": sd.n_test_frames / max(sd.seconds["render_portrait"], 1e-9),
             "image_size": [data.store.height, data.store.width],
             "training": stage_throughput(avatar.checkpoint.parent / "tb")}

    cross: list[LipSyncScores] = []
    if audio:
        from nerfhead.eval.crossdriven import cross_driven
        from nerfhead.render.driven import AvatarRenderer

        renderer = AvatarRenderer(name, root, checkpoint)
        t0 = time.perf_counter()
        cross = cross_driven(renderer, list(audio), cross_seconds)
        speed["cross_driven_seconds"] = time.perf_counter() - t0
    own = _own_audio_series(ident, run)

    report = {
        "identity": ident.name, "checkpoint": str(avatar.checkpoint), "stage": avatar.stage, "step": avatar.step,
        "selfdriven": sd.as_dict(), "temporal": temporal, "crossdriven": [c.as_dict() for c in cross],
        "test_frames_lipsync": [s.as_dict() for s in own], "speed": speed,
        "seconds": time.perf_counter() - t_start,
    }
    out.mkdir(parents=True, exist_ok=True)
    pictures = _pictures(ident, run, data, cross, own, avatar)
    for fname, png in pictures.items():
        write_atomic(out / fname, png)
    curves = plot_training_curves(avatar.checkpoint.parent / "tb", out / "training_curves.png",
                                  title=f"training of '{ident.name}'")
    write_atomic(out / "report.json", json.dumps(report, indent=1, default=_json_default))
    html_path = write_atomic(out / "report.html", page.protocol_page(report, pictures, curves))
    return report, html_path


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)


def _own_audio_series(ident: Identity, run: SelfDrivenRun) -> list[LipSyncScores]:
    """Lip-sync proxies on the (contiguous) test frames with their own audio: real and ours."""
    feats, _ = capture_audio(ident)
    first = run.test[0]
    if run.test != list(range(first, first + len(run.test))):
        return []
    return [lipsync_scores("test frames, real", mouth_opening(run.real_landmarks), feats, first_frame=first),
            lipsync_scores("test frames, ours", mouth_opening(run.ours_landmarks), feats, first_frame=first)]


def _pictures(ident: Identity, run: SelfDrivenRun, data, cross: list[LipSyncScores],
              own: list[LipSyncScores], avatar) -> dict[str, bytes]:
    sd = run.report
    picks = _picks(run, 4)
    pics = {
        "frames_strip.png": page.image_png(page.frames_strip(
            [[run.real[p] for p in picks], [run.portrait[run.test[p]] for p in picks],
             [run.ours[run.test[p]] for p in picks]], ("real", "portrait", "full"))),
        "mouth_strip.png": page.image_png(_run_mouth_strip(run)),
        "per_frame_psnr.png": page.plot_per_frame_psnr(run.test, {
            k: [np.nan if v is None else v for v in s.per_frame_psnr] for k, s in sd.scores.items()}),
        "pose.png": page.plot_pose(run.test, euler_degrees(data.rotation[run.test].numpy().astype(np.float64))),
    }
    maps = {k: run.error_maps[k] for k in ("ours", "portrait") if k in run.error_maps}
    if maps and run.regions is not None:
        pics["error_maps.png"] = page.plot_error_maps({("full" if k == "ours" else k): m for k, m in maps.items()},
                                                      run.regions, REGIONS)
    if avatar.model.mouth_dim > 1:
        pics["lip_components.png"] = page.image_png(lip_component_strip(avatar, data, speaking_frame(data, run.test)))
    series = [(s.name, s.opening, s.loudness) for s in own + cross]
    if series:
        pics["mouth_vs_audio.png"] = page.plot_mouth_vs_audio(series, "mouth opening (red) and loudness (grey)")
    return pics


def summary(report: dict) -> str:
    """The report's tables as plain text (what `nerfhead eval` prints)."""
    sd = report["selfdriven"]
    lines = [f"self-driven test frames of '{report['identity']}' ({sd['n_test_frames']} frames, {report['stage']} "
             f"stage step {report['step']}):"]
    for group in ("scores", "audio_check"):
        if group == "audio_check":
            lines.append("same frames, other audio (a model that listens gets a worse LMD):")
        for v in sd[group].values():
            lines += ["  " + line for line in SelfDrivenScores(**v).row().splitlines()]
    met = sd["goals_met"]
    lines.append("goals: " + ", ".join(f"{k} {'met' if ok else 'not met'}" for k, ok in met.items()))
    t = report["temporal"]
    lines.append("temporal stability: " + "; ".join(f"{k} landmark jitter {v['landmark_jitter_px']:.2f} px, background "
                                                   f"flicker {v['background_flicker']:.2f}/255" for k, v in t.items()))
    lips = report["test_frames_lipsync"] + report["crossdriven"]
    if lips:
        lines.append("lip sync (mouth opening vs audio):")
        lines += ["  " + LipSyncScores(**v).row() for v in lips]
    for k, v in report["speed"].get("training", {}).items():
        lines.append(f"training {k}: {v['steps']:.0f} steps at {v['steps_per_s']:.1f} steps/s ({v['seconds'] / 60:.1f} min)")
    lines.append(f"render speed (test frames): {report['speed']['render_fps_test_frames']:.2f} frames/s full, "
                 f"{report['speed']['render_fps_test_frames_portrait']:.2f} portrait; "
                 f"evaluation took {report['seconds']:.0f} s")
    return "\n".join(lines)


def _picks(run: SelfDrivenRun, k: int) -> list[int]:
    return list(range(0, len(run.test), max(1, len(run.test) // k)))[:k]


def _run_mouth_strip(run: SelfDrivenRun) -> np.ndarray:
    """Mouth crops of the 8 test frames with the widest real openings (teeth show there)."""
    picks = open_frames(mouth_opening(run.real_landmarks), 8) or _picks(run, 8)  # no face measured: spread
    ids = [run.test[p] for p in picks]
    return mouth_strip([[run.real[p] for p in picks], [run.ours[i] for i in ids], [run.silent[i] for i in ids]],
                       [run.real_landmarks[p] for p in picks], labels=("real", "ours", "silent"))
