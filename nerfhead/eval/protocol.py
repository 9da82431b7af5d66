"""``nerfhead eval``: the whole evaluation protocol of an avatar into report.json and report.html.

Self-driven test frames (with the trivial baselines and the noise floor, and the shuffled /
silent audio check), temporal stability of the rendered test sequence, cross-driven lip sync on
other audio beside the real capture, and speed. See docs/EVALUATION.md.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from nerfhead.capture.pose import euler_degrees
from nerfhead.capture.segment import BACKGROUND
from nerfhead.dataset import Identity
from nerfhead.eval import report as page
from nerfhead.eval.evaluate import GOALS, SelfDrivenRun, _mouth_strip, _picks, run_selfdriven, temporal_stability
from nerfhead.eval.lipsync import LipSyncScores, lipsync_scores
from nerfhead.eval.metrics import mouth_opening
from nerfhead.io.files import atomic_path
from nerfhead.io.images import write_rgb
from nerfhead.log import get_logger
from nerfhead.train.curves import plot_training_curves, stage_throughput
from nerfhead.train.data import load_training_data
from nerfhead.train.run import load_avatar

log = get_logger(__name__)

_SELF_COLUMNS = [("name", "source"), ("psnr", "PSNR"), ("ssim", "SSIM"), ("face_psnr", "face PSNR"),
                 ("face_ssim", "face SSIM"), ("lmd", "LMD (px@512)"), ("mouth_corr", "mouth corr")]
_LIP_COLUMNS = [("name", "audio"), ("loudness_corr", "opening~loudness r"), ("lag", "lag (frames)"),
                ("bilabial_margin", "/p b m/ margin"), ("closed_at_bilabial", "closed at /p b m/"),
                ("closed_at_vowels", "closed at vowels"), ("n_bilabial", "n /p b m/"),
                ("silence_opening", "opening in silence"), ("speech_opening", "opening in speech"),
                ("n_frames", "frames"), ("asked_corr", "asked: loudness r"), ("asked_margin", "asked: /p b m/ margin")]


def evaluate_identity(name: str, checkpoint: str | Path | None = None, root: str | Path | None = None,
                      out_dir: str | Path | None = None, audio: Sequence[str | Path] = (),
                      cross_seconds: float | None = 10.0, max_frames: int | None = None) -> tuple[dict, Path]:
    """Run the protocol; returns the report (as written to ``report.json``) and the HTML path."""
    ident = Identity.at(name, root)
    ident.manifest()
    avatar = load_avatar(ident, checkpoint)
    out = Path(out_dir) if out_dir is not None else ident.root / "eval"
    t_start = time.perf_counter()
    data = load_training_data(ident)
    run = run_selfdriven(ident, avatar, data, max_frames)
    sd = run.report
    size = data.store.width
    bg = [np.asarray(data.store.labels[i]) == BACKGROUND for i in run.test]
    temporal = {
        "ours": temporal_stability([run.ours[i] for i in run.test], run.ours_landmarks, bg, size),
        "real": temporal_stability(run.real, run.real_landmarks, bg, size),
    }
    speed = {"render_fps_test_frames": sd.n_test_frames / max(sd.seconds["render"], 1e-9),
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
    pictures = _pictures(ident, run, data, cross, own)
    for fname, png in pictures.items():
        (out / fname).write_bytes(png)
    curves = plot_training_curves(avatar.checkpoint.parent / "tb", out / "training_curves.png",
                                  title=f"training of '{ident.name}'")
    with atomic_path(out / "report.json") as tmp:
        Path(tmp).write_text(json.dumps(report, indent=1, default=_json_default))
    html_path = page.write_text(out / "report.html", _html(report, pictures, curves))
    return report, html_path


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)


def _own_audio_series(ident: Identity, run: SelfDrivenRun) -> list[LipSyncScores]:
    """Lip-sync proxies on the (contiguous) test frames with their own audio: real and ours."""
    from nerfhead.audio import features_for

    feats = features_for(ident.audio_path)
    first = run.test[0]
    if run.test != list(range(first, first + len(run.test))):
        return []
    return [lipsync_scores("test frames, real", mouth_opening(run.real_landmarks), feats, first_frame=first),
            lipsync_scores("test frames, ours", mouth_opening(run.ours_landmarks), feats, first_frame=first)]


def _pictures(ident: Identity, run: SelfDrivenRun, data, cross: list[LipSyncScores],
              own: list[LipSyncScores]) -> dict[str, bytes]:
    sd = run.report
    picks = _picks(run, 4)
    pics = {
        "frames_strip.png": page.image_png(page.frames_strip(
            [[run.real[p] for p in picks], [run.ours[run.test[p]] for p in picks]], ("real", "ours"))),
        "mouth_strip.png": page.image_png(_mouth_strip(run)),
        "per_frame_psnr.png": page.plot_per_frame_psnr(run.test, {
            k: [np.nan if v is None else v for v in s.per_frame_psnr] for k, s in sd.scores.items()}),
        "pose.png": page.plot_pose(run.test, euler_degrees(data.rotation[run.test].numpy().astype(np.float64))),
    }
    series = [(s.name, s.opening, s.loudness) for s in own + cross]
    if series:
        pics["mouth_vs_audio.png"] = page.plot_mouth_vs_audio(series, "mouth opening (red) and loudness (grey)")
    return pics


def _html(report: dict, pictures: dict[str, bytes], curves: Path | None) -> str:
    sd = report["selfdriven"]
    ours = sd["scores"]["ours"]
    goals = []
    for k, v in GOALS.items():
        met = sd["goals_met"][k]
        goals.append(f'<span class="{"met" if met else "miss"}">{k} {page.fmt(ours[k])} '
                     f'({"&le;" if k == "lmd" else "&ge;"} {v:g}: {"met" if met else "not met"})</span>')
    rows = [dict(v) for v in sd["scores"].values()]
    checks = [dict(v) for v in sd["audio_check"].values()]
    t = report["temporal"]
    sections = [
        ("Summary", f"<p>Checkpoint <code>{html.escape(report['checkpoint'])}</code> ({report['stage']} stage, "
                    f"step {report['step']}); {sd['n_test_frames']} held-out test frames (never trained on).</p>"
                    f"<p>Goals: {' &middot; '.join(goals)}</p>"),
        ("Self-driven test frames", page.html_table(rows, _SELF_COLUMNS, highlight="ours")
         + '<p class="note">frozen: the last training frame for every test frame; retrieval: the training frame '
           'with the nearest audio window; previous: the real previous frame (the metrics\' noise floor).</p>'
         + page.img_tag(pictures["frames_strip.png"], "real and rendered test frames")
         + page.img_tag(pictures["per_frame_psnr.png"], "per-frame PSNR")
         + page.img_tag(pictures["pose.png"], "head pose of the test frames")),
        ("Does audio drive the mouth?", page.html_table([dict(ours)] + checks, _SELF_COLUMNS, highlight="ours")
         + '<p class="note">The same frames rendered with the test audio shuffled among the frames, and with '
           'silence: a model that listens gets a worse LMD with them.</p>'
         + page.img_tag(pictures["mouth_strip.png"], "mouth crops: real, ours, silent")),
        ("Temporal stability (test sequence)", page.html_table(
            [{"name": k, **v} for k, v in t.items()],
            [("name", "frames"), ("landmark_jitter_px", "landmark jitter (px@512)"),
             ("background_flicker", "background flicker (/255)")], highlight="ours")),
    ]
    lips = report["test_frames_lipsync"] + report["crossdriven"]
    if lips:
        inner = page.html_table(lips, _LIP_COLUMNS)
        inner += ('<p class="note">Weak, noisy proxies (real captures score 0.15-0.36 correlation, +0.07 to +0.35 '
                  'margin): read each row against the real capture\'s.</p>')
        if "mouth_vs_audio.png" in pictures:
            inner += page.img_tag(pictures["mouth_vs_audio.png"], "mouth opening and loudness over time")
        if not report["crossdriven"]:
            inner += '<p class="note">No other audio given: run <code>nerfhead eval NAME --audio FILE</code>.</p>'
        sections.append(("Lip sync: test frames and other audio (cross-driven)", inner))
    sp = report["speed"]
    speed = f"<p>Render of the test frames (head, torso and plate): {sp['render_fps_test_frames']:.2f} frames/s at " \
            f"{sp['image_size'][1]}x{sp['image_size'][0]} on this machine.</p>"
    if sp.get("training"):
        speed += "<p>Training: " + "; ".join(f"{k} {v['steps']:.0f} steps at {v['steps_per_s']:.1f} steps/s "
                                             f"({v['seconds'] / 60:.1f} min)" for k, v in sp["training"].items()) + "</p>"
    if curves is not None:
        speed += page.img_tag(Path(curves).read_bytes(), "training curves")
    sections.append(("Speed and training", speed))
    return page.html_page(f"nerfhead evaluation: {report['identity']}", sections)


def summary(report: dict) -> str:
    """The report's tables as plain text (what `nerfhead eval` prints)."""
    from nerfhead.eval.evaluate import SelfDrivenScores

    sd = report["selfdriven"]
    lines = [f"self-driven test frames of '{report['identity']}' ({sd['n_test_frames']} frames, {report['stage']} "
             f"stage step {report['step']}):"]
    for group in ("scores", "audio_check"):
        if group == "audio_check":
            lines.append("same frames, other audio (a model that listens gets a worse LMD):")
        for v in sd[group].values():
            lines.append("  " + SelfDrivenScores(**v).row())
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
    lines.append(f"render speed (test frames): {report['speed']['render_fps_test_frames']:.2f} frames/s; "
                 f"evaluation took {report['seconds']:.0f} s")
    return "\n".join(lines)
