"""Pictures and the self-contained HTML page of an evaluation (``report.html``).

The page holds everything inline (tables, PNG plots and image strips as data URIs, no
scripts), so it can be mailed or archived as one file and opens in any browser.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from nerfhead.dataset import FPS

from nerfhead.io.images import caption


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _pyplot().close(fig)
    return buf.getvalue()


def image_png(rgb: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode image")
    return data.tobytes()


def frames_strip(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], height: int = 192) -> np.ndarray:
    """Rows of whole frames (e.g. real / ours), each resized to ``height``, one column per frame."""
    import cv2

    out = []
    for row, label in zip(rows, labels):
        imgs = [cv2.resize(f, (int(round(f.shape[1] * height / f.shape[0])), height), interpolation=cv2.INTER_AREA)
                for f in row]
        out.append(caption(np.concatenate(imgs, 1), label, 1))
    return np.concatenate(out, 0)


def plot_mouth_vs_audio(series: Sequence[tuple[str, Sequence[float | None], Sequence[float]]], title: str,
                        max_frames: int = 250) -> bytes:
    """One panel per (name, mouth opening per frame, loudness dB per frame): opening on the left
    axis, loudness on the right, time in seconds at 25 fps (the first ``max_frames`` frames)."""
    plt = _pyplot()
    n = max(1, len(series))
    fig, axes = plt.subplots(n, 1, figsize=(11, 1.9 * n + 0.6), squeeze=False, constrained_layout=True)
    for ax, (name, opening, loud) in zip(axes[:, 0], series):
        opening, loud = list(opening)[:max_frames], list(loud)[:max_frames]
        t = np.arange(len(opening)) / FPS
        op = np.array([np.nan if v is None else v for v in opening], float)
        ax.plot(t, op, color="tab:red", lw=1.2, label="mouth opening")
        ax.set_ylabel("opening", color="tab:red", fontsize=8)
        ax2 = ax.twinx()
        ax2.plot(t[: len(loud)], np.maximum(np.asarray(loud, float)[: len(t)], -70), color="0.55", lw=0.8)
        ax2.set_ylabel("loudness dB", color="0.45", fontsize=8)
        ax.set_title(name, fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def plot_per_frame_psnr(frames: Sequence[int], curves: dict[str, Sequence[float]]) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 3), constrained_layout=True)
    for name, values in curves.items():
        ax.plot(frames, np.minimum(np.asarray(values, float), 60), lw=1.1, label=name)
    ax.set_xlabel("test frame")
    ax.set_ylabel("PSNR (dB, whole frame)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=len(curves))
    return _png(fig)


def plot_pose(frames: Sequence[int], euler_deg: np.ndarray) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 2.4), constrained_layout=True)
    for k, name in enumerate(("yaw", "pitch", "roll")):
        ax.plot(frames, euler_deg[:, k], lw=1.1, label=name)
    ax.set_xlabel("test frame")
    ax.set_ylabel("degrees")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    return _png(fig)


def plot_error_maps(maps: dict[str, np.ndarray], regions: np.ndarray, names: Sequence[str]) -> bytes:
    """Heat maps of the mean absolute error per pixel (0-255) of each source in ``maps``, with the
    outlines of one real test frame's ``regions`` (named ``names``) drawn over them."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(maps), figsize=(4.2 * len(maps), 4.4), constrained_layout=True, squeeze=False)
    vmax = max(float(np.percentile(m, 99.5)) for m in maps.values()) or 1.0
    for ax, (name, m) in zip(axes[0], maps.items()):
        im = ax.imshow(m, cmap="magma", vmin=0, vmax=vmax)
        ax.contour(regions, levels=np.arange(len(names)) + 0.5, colors="white", linewidths=0.5, alpha=0.7)
        ax.set_title(f"{name}: mean |error|", fontsize=9)
        ax.axis("off")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="0-255")
    return _png(fig)


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not np.isfinite(v):
            return "inf" if v > 0 else ("-inf" if v < 0 else "n/a")
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"
    return html.escape(str(v))


def html_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], highlight: str | None = None) -> str:
    """``columns``: (key, header). The row whose ``name`` is ``highlight`` is bold."""
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in columns)
    body = []
    for r in rows:
        cls = ' class="hl"' if highlight is not None and r.get("name") == highlight else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{fmt(r.get(k, ''))}</td>" for k, _ in columns) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{font-size:22px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px} td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left} tr.hl td{font-weight:bold;background:#eef6ff}
img{max-width:100%;border:1px solid #ddd;margin:6px 0} .note{color:#555;font-size:13px} .met{color:#18794e} .miss{color:#b42318}
"""


def html_page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """A complete page: ``sections`` are (heading, inner HTML)."""
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{inner}\n" for h, inner in sections)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>\n{body}</body></html>\n")


def img_tag(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars")


def chromium_path() -> str | None:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html_path: str | Path, png_path: str | Path, width: int = 1200, height: int = 2400,
               timeout: float = 120.0) -> tuple[Path, str]:
    """Open ``html_path`` in headless Chromium and save a screenshot; returns (png, Chromium's log).
    Raises InputError when Chromium is not installed."""
    import subprocess
    import tempfile

    from nerfhead.errors import InputError

    exe = chromium_path()
    if exe is None:
        raise InputError("Chromium is not installed (Debian: apt-get install chromium)")
    png_path = Path(png_path)
    with tempfile.TemporaryDirectory(prefix="nerfhead-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               f"--window-size={width},{height}", f"--screenshot={png_path}", Path(html_path).resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not png_path.is_file():
        raise InputError(f"Chromium could not render {html_path}: {proc.stderr.strip()[-300:]}")
    return png_path, proc.stderr


_SELF_COLUMNS = [("name", "source"), ("psnr", "PSNR"), ("ssim", "SSIM"), ("face_psnr", "face PSNR"),
                 ("face_ssim", "face SSIM"), ("lmd", "LMD (px@512)"), ("mouth_corr", "mouth corr"),
                 ("mouth_psnr", "mouth PSNR"), ("mouth_ssim", "mouth SSIM"), ("mouth_stlpips", "mouth ST-LPIPS"),
                 ("mouth_sharpness", "mouth sharpness (x real)"),
                 ("seam", "seam (x real)"), ("flicker", "lower-face flicker (x real)")]
_REGION_COLUMNS = [("name", "source"), ("face", "face"), ("hair", "hair"), ("neck_collar", "neck and collar"),
                   ("torso", "torso"), ("background", "background")]
_LIP_COLUMNS = [("name", "audio"), ("loudness_corr", "opening~loudness r"), ("lag", "lag (frames)"),
                ("bilabial_margin", "/p b m/ margin"), ("closed_at_bilabial", "closed at /p b m/"),
                ("closed_at_vowels", "closed at vowels"), ("n_bilabial", "n /p b m/"),
                ("silence_opening", "opening in silence"), ("speech_opening", "opening in speech"),
                ("n_frames", "frames"), ("asked_corr", "asked: loudness r"), ("asked_margin", "asked: /p b m/ margin")]


def protocol_page(report: dict, pictures: dict[str, bytes], curves: Path | None) -> str:
    """The HTML page of an evaluation report (``nerfhead eval``): tables, plots and strips."""
    sd = report["selfdriven"]
    ours = sd["scores"]["ours"]
    goals = []
    for k, v in sd["goals"].items():
        met = sd["goals_met"][k]
        goals.append(f'<span class="{"met" if met else "miss"}">{k} {fmt(ours[k])} '
                     f'({"&le;" if k == "lmd" else "&ge;"} {v:g}: {"met" if met else "not met"})</span>')
    rows = [dict(v) for v in sd["scores"].values()]
    checks = [dict(v) for v in sd["audio_check"].values()]
    t = report["temporal"]
    sections = [
        ("Summary", f"<p>Checkpoint <code>{html.escape(report['checkpoint'])}</code> ({report['stage']} stage, "
                    f"step {report['step']}); {sd['n_test_frames']} held-out test frames (never trained on).</p>"
                    f"<p>Goals: {' &middot; '.join(goals)}</p>"),
        ("Self-driven test frames", html_table(rows, _SELF_COLUMNS, highlight="ours")
         + '<p class="note">ours: full mode, every pixel from the fields; portrait: the real test frame with only '
           'its lower face rendered (the real pixels elsewhere inflate its full-frame PSNR: compare the modes on '
           'the face box and LMD); '
           'frozen: the last training frame for every test frame; retrieval: the training frame '
           'with the nearest audio window; previous: the real previous frame (the metrics\' noise floor).</p>'
         + '<p class="note">mouth PSNR, SSIM: inside the box of the real frame\'s lip landmarks, grown by a quarter '
           'of its width on every side; mouth ST-LPIPS: shift-tolerant LPIPS (AlexNet) of that box resized to '
           '128x128 (0 = identical, lower is better; a pixel or two of shift costs little); mouth sharpness: '
           'mean |Laplacian| in that box over the real frame\'s (1 = as much fine detail, below 1 = softer); '
           'seam: mean Sobel gradient on the portrait blend\'s border (the feathered edge of the lower-face mask '
           'and 2 px beyond it) over the real frame\'s there (1 = no added edge, above 1 = a visible seam, '
           'below 1 = smoother than the real skin); lower-face flicker: mean frame-to-frame change inside the '
           'lower-face mask over the real video\'s (1 = as steady as the real video, frozen = 0).</p>'
         + img_tag(pictures["frames_strip.png"], "real test frames, portrait and full renders")
         + img_tag(pictures["per_frame_psnr.png"], "per-frame PSNR")
         + img_tag(pictures["pose.png"], "head pose of the test frames")),
        ("Where the error is", html_table([{"name": k, **v.get("regions", {})} for k, v in sd["scores"].items()],
                                          _REGION_COLUMNS, highlight="ours")
         + '<p class="note">PSNR on each region of the real test frames: face (hull of the landmarks), hair '
           '(head label outside it), neck and collar (below the chin, half a face height deep, the jaw\'s width '
           'and a quarter more on each side), torso and background (the rest of their labels). A seam under the '
           'chin or a torso of the wrong colour shows as a low neck/collar or torso PSNR against the face\'s.</p>'
         + (img_tag(pictures["error_maps.png"], "mean error per pixel") if "error_maps.png" in pictures else "")),
        ("Does audio drive the mouth?", html_table([dict(ours)] + checks, _SELF_COLUMNS, highlight="ours")
         + '<p class="note">The same frames rendered with the test audio shuffled among the frames, and with '
           'silence: a model that listens gets a worse LMD with them.</p>'
         + img_tag(pictures["mouth_strip.png"], "mouth crops: real, ours, silent")
         + ('<p class="note">What each number of the mouth input does (rows: the opening, then the lip-shape '
            'components; columns: the real frame, then that number at the capture\'s 5, 25, 50, 75 and 95 % '
            'quantiles with the others at their medians).</p>' + img_tag(pictures["lip_components.png"],
                                                                        "mouth input components")
            if "lip_components.png" in pictures else "")),
        ("Temporal stability (test sequence)", html_table(
            [{"name": k, **v} for k, v in t.items()],
            [("name", "frames"), ("landmark_jitter_px", "landmark jitter (px@512)"),
             ("background_flicker", "background flicker (/255)")], highlight="ours")),
    ]
    lips = report["test_frames_lipsync"] + report["crossdriven"]
    if lips:
        inner = html_table(lips, _LIP_COLUMNS)
        inner += ('<p class="note">Weak, noisy proxies (real captures score 0.15-0.36 correlation, +0.07 to +0.35 '
                  'margin): read each row against the real capture\'s.</p>')
        if "mouth_vs_audio.png" in pictures:
            inner += img_tag(pictures["mouth_vs_audio.png"], "mouth opening and loudness over time")
        if not report["crossdriven"]:
            inner += '<p class="note">No other audio given: run <code>nerfhead eval NAME --audio FILE</code>.</p>'
        sections.append(("Lip sync: test frames and other audio (cross-driven)", inner))
    sp = report["speed"]
    speed = f"<p>Render of the test frames (head, torso and plate): {sp['render_fps_test_frames']:.2f} frames/s at " \
            f"{sp['image_size'][1]}x{sp['image_size'][0]} on this machine; portrait mode (lower face only): " \
            f"{sp['render_fps_test_frames_portrait']:.2f} frames/s.</p>"
    if sp.get("training"):
        speed += "<p>Training: " + "; ".join(f"{k} {v['steps']:.0f} steps at {v['steps_per_s']:.1f} steps/s "
                                             f"({v['seconds'] / 60:.1f} min)" for k, v in sp["training"].items()) + "</p>"
    if curves is not None:
        speed += img_tag(Path(curves).read_bytes(), "training curves")
    sections.append(("Speed and training", speed))
    return html_page(f"nerfhead evaluation: {report['identity']}", sections)
