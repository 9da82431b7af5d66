"""Dub check: dub the end of a capture video (never trained on) and measure what the issue asks.

    python tools/dub_check.py --identity cnn --video ../shared/data/identities/cnn.mp4 \
        --audio ../shared/data/audio/korean1.wav --out /tmp/dubcheck

Makes three clips of the video's last ``--seconds`` (as filmed; upscaled into 1920x1080; at
30 fps), dubs each with ``--audio`` and prints per clip: resolution and frame rate in and out,
frames out against audio length x frame rate, PSNR outside the blend mask against the input
frame (after H.264 both ways), the lip-sync proxies (a)-(c) of docs/EVALUATION.md of the dubbed
mouth beside the real capture's, tracking and render speed. ``--memory A``: peak RSS of `nerfhead
dub` in child processes with the first 10 s and all of audio file A (the clip replayed to cover it):
streaming keeps them equal.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from benchlib import run_measured
from nerfhead.avatar.portrait import lower_face_mask
from nerfhead.dataset import FPS, Identity, mouth_opening
from nerfhead.eval.crossdriven import capture_scores
from nerfhead.eval.lipsync import lipsync_scores
from nerfhead.eval.metrics import measure_landmarks
from nerfhead.io.audio import load_audio, save_wav
from nerfhead.io.video import FrameReader, iter_frames, probe_video, write_video
from nerfhead.quality import psnr
from nerfhead.render.driven import AvatarRenderer
from nerfhead.render.dub import dub_video


def tail_clip(video: Path, seconds: float, out: Path, size: tuple[int, int] | None = None, fps: float = FPS) -> Path:
    """The last ``seconds`` of ``video`` with its audio, optionally scaled to fit ``size`` (W, H) and
    pillarboxed, at ``fps``."""
    info = probe_video(video)
    n = info.n_frames(fps)
    first = max(0, n - int(round(seconds * fps)))
    rate = 48000
    audio = load_audio(video, rate)[int(round(first / fps * rate)):]

    def frames():
        for img in iter_frames(video, fps, start=first):
            if size is not None:
                w, h = size
                s = min(w / img.shape[1], h / img.shape[0])
                img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_CUBIC)
                canvas = np.zeros((h, w, 3), np.uint8)
                y, x = (h - img.shape[0]) // 2, (w - img.shape[1]) // 2
                canvas[y:y + img.shape[0], x:x + img.shape[1]] = img
                img = canvas
            yield img

    return write_video(out, frames(), audio, fps=fps, audio_rate=rate)


def outside_mask_psnr(src: Path, dubbed: Path, fps: float, every: int = 5) -> float:
    """Mean PSNR of the dubbed frames against the input's outside the lower-face mask (every
    ``every``-th frame of the part that plays forwards)."""
    values = []
    n = min(probe_video(src).n_frames(fps), probe_video(dubbed).n_frames(fps))
    from nerfhead.capture.landmarks import FaceMeshTracker

    with FrameReader(src, fps) as a, FrameReader(dubbed, fps) as b, FaceMeshTracker(video=False) as tracker:
        for i in range(0, n, every):
            real, out = a[i], b[i]
            lms = tracker(real)
            keep = np.ones(real.shape[:2], bool) if lms is None else lower_face_mask(lms, real.shape) == 0
            # the mask of the input's own landmarks, grown a little (the dub's were tracked separately)
            keep = cv2.erode(keep.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
            values.append(psnr(real[keep][None], out[keep][None]))
    return float(np.mean(values))


def child_dub(identity: str, root: str | None, video: Path, audio: Path, out: Path) -> tuple[float, float]:
    """(peak RSS MiB, wall seconds) of `nerfhead dub` in a child process."""
    cmd = [sys.executable, "-m", "nerfhead", "dub", identity, str(video), "--audio", str(audio), "-o", str(out)]
    if root:
        cmd += ["--root", root]
    return run_measured(cmd, dict(os.environ, NERFHEAD_PROGRESS="0"), out.with_suffix(".log"), "dub")


def memory_check(args, clip: Path) -> None:
    rate = 16000
    samples = load_audio(args.memory, rate)
    short = args.out / "audio_10s.wav"
    save_wav(short, samples[: 10 * rate], rate)
    rows = []
    for audio in (short, args.memory):
        rss, wall = child_dub(args.identity, args.root, clip, audio, args.out / f"mem_{audio.stem}.mp4")
        info = probe_video(args.out / f"mem_{audio.stem}.mp4")
        rows.append((rss, wall, info.duration))
        print(f"memory: dub of {info.duration:.1f} s ({info.frames_in_header} frames): peak RSS {rss:.0f} MiB, "
              f"wall {wall:.1f} s")
    print(f"memory: peak RSS {rows[1][2]:.0f} s / {rows[0][2]:.0f} s = {rows[1][0] / rows[0][0]:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identity", default="cnn")
    ap.add_argument("--root", default=None)
    ap.add_argument("--video", type=Path, required=True)
    ap.add_argument("--audio", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/dubcheck"))
    ap.add_argument("--clips", default="as-filmed,1080p,30fps")
    ap.add_argument("--memory", type=Path, default=None, help="an audio file of a minute or so: peak RSS check")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    makers = {"as-filmed": dict(), "1080p": dict(size=(1920, 1080)), "30fps": dict(fps=30.0)}
    renderer = AvatarRenderer(args.identity, args.root, torso=False)
    real = capture_scores(renderer)
    print(real.row())
    feats, _ = renderer.features(args.audio)
    for name in args.clips.split(","):
        clip = tail_clip(args.video, args.seconds, args.out / f"clip_{name}.mp4", **makers[name])
        cin = probe_video(clip)
        dubbed = args.out / f"dub_{name}.mp4"
        t0 = time.perf_counter()
        r = dub_video(args.identity, clip, dubbed, audio=args.audio, root=args.root)
        wall = time.perf_counter() - t0
        cout = probe_video(dubbed)
        frames_out = cout.frames_in_header
        expected = int(round(feats.duration * cin.source_fps))
        keep = outside_mask_psnr(clip, dubbed, cin.source_fps)
        lms = measure_landmarks(iter_frames(dubbed, FPS))
        sync = lipsync_scores(f"dub {name}", mouth_opening(lms), feats)
        print(f"[{name}] in {cin.width}x{cin.height} @ {cin.source_fps:g} fps -> out {cout.width}x{cout.height} @ "
              f"{cout.source_fps:g} fps; frames {frames_out} (audio {feats.duration:.2f} s x {cin.source_fps:g} = "
              f"{expected}); re-rendered {r.frames - r.passthrough}, passthrough {r.passthrough}, replayed "
              f"{r.replayed}; outside-mask PSNR {keep:.2f} dB; tracking {r.seconds['tracking']:.1f} s, render "
              f"{r.render_fps:.2f} frames/s, wall {wall:.1f} s; warnings {r.warnings}")
        print("   ", sync.row())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this script {rss:.0f} MiB")
    if args.memory is not None:
        memory_check(args, args.out / f"clip_{args.clips.split(',')[0]}.mp4")
    return 0


if __name__ == "__main__":
    sys.exit(main())
