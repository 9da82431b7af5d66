"""Render speed, where the time goes, and flat memory for long audio (`nerfhead render`).

    .venv/bin/python tools/bench_render.py [--identity NAME] [--audio FILE] [--short 10] [--long 60]

1. Profile: renders ``--profile-frames`` frames in this process, timing the torso field, the head
   field and the H.264 encoder separately, and prints frames/s at the identity's resolution.
   Then full and portrait mode (``--composite``) render the same frames in one run: frames/s of
   each and their ratio.
2. Memory: renders the first ``--short`` and ``--long`` seconds of the audio with the CLI in child
   processes and prints both peak RSS figures and their ratio (streaming: they should be equal),
   and checks each mp4 as ffprobe would: video frames in the header, video and audio durations.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchlib import cpu_name, run_measured  # noqa: E402
from nerfhead.avatar.conditions import frame_conditions  # noqa: E402
from nerfhead.avatar.drive import DrivingAudio  # noqa: E402
from nerfhead.io.video import VideoWriter, probe_video  # noqa: E402
from nerfhead.log import setup_logging  # noqa: E402
from nerfhead.render.driven import AvatarRenderer, RenderOptions  # noqa: E402
from nerfhead.avatar.frame import render_frame, torso_backdrop  # noqa: E402
from nerfhead.render.poses import capture_poses  # noqa: E402


def default_audio() -> Path:
    shared = REPO.parent / "shared" / "data" / "audio" / "eng.wav"
    return shared if shared.is_file() else REPO / "identities" / "obama" / "capture.mp4"


def profile(renderer: AvatarRenderer, audio: Path, n: int) -> None:
    feats, _ = renderer.features(audio)
    model, k = renderer.model, renderer.model.intrinsics
    poses = capture_poses(renderer.ident, n)
    c2w = poses.camera_to_head.astype(np.float32)
    audio = DrivingAudio.of(feats)
    times = {"audio codes": 0.0, "torso field": 0.0, "head field": 0.0, "encode": 0.0}
    samples = 0
    with tempfile.TemporaryDirectory() as tmp, \
            VideoWriter(Path(tmp) / "p.mp4", 25, (renderer.width, renderer.height)) as writer, torch.no_grad():
        t_all = time.perf_counter()
        t0 = time.perf_counter()
        cond = frame_conditions(renderer.avatar, audio, range(n), np.zeros(n, np.float32))
        times["audio codes"] += time.perf_counter() - t0
        for f in range(n):
            t0 = time.perf_counter()
            back = torso_backdrop(model, torch.from_numpy(poses.rotation[f].astype(np.float32)),
                                  torch.from_numpy(poses.translation[f].astype(np.float32)), renderer.plate)
            t1 = time.perf_counter()
            out = render_frame(model, c2w[f], k, back, cond.rows(f, f + 1), renderer.avatar.sampling)
            t2 = time.perf_counter()
            writer.write(out.rgb)
            t3 = time.perf_counter()
            times["torso field"] += t1 - t0
            times["head field"] += t2 - t1
            times["encode"] += t3 - t2
            samples += int((out.opacity > 0).sum())
        wall = time.perf_counter() - t_all
    print(f"profile: {n} frames at {renderer.width}x{renderer.height}, {torch.get_num_threads()} threads on {cpu_name()}: "
          f"{n / wall:.2f} frames/s ({wall / n * 1000:.0f} ms a frame)")
    for name, sec in times.items():
        print(f"  {name:<12} {sec / n * 1000:7.1f} ms/frame  {100 * sec / wall:5.1f} %")


def modes(renderer: AvatarRenderer, audio: Path, n: int) -> None:
    """Full and portrait mode side by side in this process: the same audio, the same frames."""
    feats, _ = renderer.features(audio)
    fps = {}
    for mode in ("full", "portrait"):
        opts = RenderOptions(composite=mode)
        t0 = time.perf_counter()
        for _ in renderer.frames(feats, opts, 0, n):
            pass
        fps[mode] = n / (time.perf_counter() - t0)
    print(f"modes: {n} frames at {renderer.width}x{renderer.height} on {cpu_name()}: full {fps['full']:.2f} frames/s, "
          f"portrait {fps['portrait']:.2f} frames/s (portrait / full = {fps['portrait'] / fps['full']:.2f}x)")


def child_render(identity: str, audio: Path, seconds: float, out: Path, threads: int, scale: float) -> tuple[float, float]:
    """(peak RSS MiB, wall seconds) of `nerfhead render` in a child process."""
    env = dict(os.environ, NERFHEAD_PROGRESS="0", OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "nerfhead", "render", identity, "--audio", str(audio), "--duration", str(seconds),
           "--scale", str(scale), "-o", str(out)]
    return run_measured(cmd, env, out.with_suffix(".log"), "render")


def check_mp4(path: Path, seconds: float) -> str:
    info = probe_video(path)
    want = int(round(seconds * 25))
    ok = info.frames_in_header == want and info.audio_duration is not None and \
        abs(info.audio_duration - info.duration) <= 1 / 25
    line = (f"{path.name}: {info.frames_in_header} video frames (want {want}), video {info.duration:.3f} s, "
            f"audio {info.audio_duration:.3f} s, {info.width}x{info.height} {info.codec} -> {'OK' if ok else 'FAIL'}")
    return line + "\n  " + ffprobe_check(path, want)


def ffprobe_check(path: Path, want: int) -> str:
    """The same file as ffprobe sees it (decoded frame count, stream durations), where ffprobe exists."""
    exe = shutil.which("ffprobe")
    if exe is None:
        return "ffprobe: not installed here (apt-get install ffmpeg); PyAV's reading above only"
    cmd = [exe, "-v", "error", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames,duration",
           "-of", "json", str(path)]
    streams = {s["codec_type"]: s for s in json.loads(subprocess.run(cmd, capture_output=True, text=True,
                                                                    check=True).stdout)["streams"]}
    v, a = streams.get("video", {}), streams.get("audio", {})
    frames, vdur, adur = int(v.get("nb_read_frames", -1)), float(v.get("duration", "nan")), float(a.get("duration", "nan"))
    ok = frames == want and abs(vdur - adur) <= 1 / 25
    return (f"ffprobe: {frames} video frames decoded (want {want}), video {vdur:.3f} s, audio {adur:.3f} s "
            f"-> {'OK' if ok else 'FAIL'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identity", default="cnn")
    ap.add_argument("--audio", type=Path, default=default_audio())
    ap.add_argument("--profile-frames", type=int, default=20)
    ap.add_argument("--short", type=float, default=10.0)
    ap.add_argument("--long", type=float, default=60.0)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-scale", type=float, default=1.0,
                    help="--scale of the memory renders (0.5: draft, about 4x faster; memory behaviour is the same)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    args = ap.parse_args()
    setup_logging()
    if args.threads:
        torch.set_num_threads(args.threads)
    renderer = AvatarRenderer(args.identity)
    print(f"identity {args.identity}, checkpoint {renderer.avatar.checkpoint} (step {renderer.avatar.step}); "
          f"audio {args.audio}")
    profile(renderer, args.audio, args.profile_frames)
    modes(renderer, args.audio, args.profile_frames)
    if args.skip_memory:
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for seconds in (args.short, args.long):
            out = Path(tmp) / f"render_{seconds:g}s.mp4"
            rss, wall = child_render(args.identity, args.audio, seconds, out, args.threads or os.cpu_count() or 1,
                                     args.memory_scale)
            rows.append((seconds, rss, wall))
            print(f"{seconds:g} s of audio (--scale {args.memory_scale:g}): peak RSS {rss:.0f} MiB, {wall:.0f} s wall "
                  f"({seconds * 25 / wall:.2f} frames/s incl. start-up)")
            print("  " + check_mp4(out, seconds))
        ratio = rows[1][1] / rows[0][1]
        print(f"peak RSS {rows[1][0]:g} s / {rows[0][0]:g} s = {ratio:.3f} ({'within' if abs(ratio - 1) <= 0.1 else 'NOT within'} 10 %)")


if __name__ == "__main__":
    main()
