"""``nerfhead render``: a trained avatar says new audio or a script -> H.264 + AAC mp4.

Streaming: audio codes, mouth openings, poses and blinks are per-frame arrays (a few numbers a
frame); frames are rendered one at a time and handed to the encoder with the audio samples that
play with them, so memory does not grow with the length of the audio. The file appears only when it is complete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from nerfhead.audio.features import AudioFeatures
from nerfhead.avatar.drive import DrivingAudio
from nerfhead.avatar.load import Avatar, load_avatar
from nerfhead.avatar.sequence import CHUNK_FRAMES, PoseTrack, render_frames, render_portrait_frames
from nerfhead.dataset import FPS, Identity
from nerfhead.errors import InputError, NerfheadError
from nerfhead.io.audio import iter_audio
from nerfhead.io.images import read_rgb
from nerfhead.io.video import VideoWriter
from nerfhead.log import get_logger, progress
from nerfhead.render.motion import blink_track
from nerfhead.render.poses import capture_frames, capture_poses, reference_poses

log = get_logger(__name__)
NO_PRESENTER_MAP = ("this avatar has no presenter map (trained before it, or its capture taught it nothing better "
                    "than the rule): --own-voice drives the mouth as for any voice")

AUDIO_RATE = 48000
COMPOSITES = ("full", "portrait")
AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".mp4", ".mkv", ".mov", ".webm"}


@dataclass
class RenderOptions:
    start: float = 0.0  # seconds into the audio where the video starts
    duration: float | None = None  # seconds to render (default: to the end of the audio)
    pose_start: int = 0  # capture frame the ping-pong pose track starts at
    pose_from: str | None = None  # a video whose head motion to use instead
    pose_smooth: float = 2.0  # Gaussian sigma (frames) on the pose track
    blinks_per_minute: float = 17.0
    height: int | None = None  # output height in pixels (default: the identity's)
    scale: float = 1.0  # draft: render at this fraction of the resolution and upscale (0.5: about 4x faster)
    seed: int = 0  # blink timing
    crf: int = 18  # H.264 quality (lower = better, bigger)
    chunk_frames: int = CHUNK_FRAMES  # frames whose audio codes are computed together
    closed_code: bool = True  # the capture's closed-lips code where the articulation track closes the lips
    own_voice: bool = False  # the audio is the presenter's own voice: the mouth from the presenter map (nerfhead.field.lips)
    composite: str = "full"  # full: every pixel from the fields; portrait: the capture's frames, lower face rendered
    # (the command line's default is default_composite(): portrait, except where only full mode can render)


@dataclass
class RenderResult:
    path: Path
    frames: int
    seconds: float
    audio_seconds: float
    size: tuple[int, int]  # (width, height)

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def default_composite(pose_from: str | None, scale: float) -> str:
    """The composite ``nerfhead render`` uses when none is asked for: portrait (it beat full mode on
    every image measure of the self-driven test frames, LMD a draw, docs/EVALUATION.md, and renders
    about 4x faster), except with a
    borrowed pose (``pose_from``: no real frame exists for it) or a draft ``scale``, which need full."""
    return "full" if pose_from or scale < 1.0 else "portrait"


def check_output(path: str | Path, suffix: str = ".mp4") -> Path:
    """The output path, checked before any work: right suffix, folder exists and is writable."""
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise InputError(f"output {path} must end in {suffix}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output folder {parent} does not exist")
    probe = parent / f".{path.name}.nerfhead-write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write to {parent} ({exc.strerror or exc})") from None
    return path


class AudioClock:
    """Hands out the audio samples of each video frame, streaming the source file."""

    def __init__(self, path: Path, start: float, rate: int = AUDIO_RATE, fps: float = FPS) -> None:
        self.per = rate / fps
        self._chunks = iter_audio(path, rate, chunk_seconds=2.0)
        self._buf = np.zeros(0, np.float32)
        self._skip = int(round(start * rate))
        self._frame = 0

    def _fill(self, need: int) -> None:
        while self._buf.size < need:
            chunk = next(self._chunks, None)
            if chunk is None:  # past the end: silence (the last frame may reach a little beyond)
                self._buf = np.concatenate([self._buf, np.zeros(need - self._buf.size, np.float32)])
                return
            if self._skip:
                drop = min(self._skip, chunk.size)
                chunk, self._skip = chunk[drop:], self._skip - drop
            self._buf = np.concatenate([self._buf, chunk])

    def next_frame(self) -> np.ndarray:
        """Samples that play with the next video frame (exactly the frame's share of the time)."""
        a = int(round(self._frame * self.per))
        b = int(round((self._frame + 1) * self.per))
        self._frame += 1
        self._fill(b - a)
        out, self._buf = self._buf[: b - a], self._buf[b - a:]
        return out


class AvatarRenderer:
    """A trained avatar loaded once, rendering any number of videos (``render``)."""

    def __init__(self, name: str, root: str | Path | None = None, checkpoint: str | Path | None = None,
                 torso: bool = True) -> None:
        self.ident = Identity.at(name, root)
        self.ident.manifest()
        self.avatar: Avatar = load_avatar(self.ident, checkpoint)
        if torso:
            self._need_torso()
        self.model = self.avatar.model
        self.plate = read_rgb(self.ident.background_path)
        self.height, self.width = self.plate.shape[:2]

    def _need_torso(self) -> None:
        if not self.avatar.has_torso:
            raise InputError(f"{self.avatar.checkpoint} has no trained torso; render from the finished avatar "
                             f"(`nerfhead train {self.ident.name}` runs all stages) or with --composite portrait")

    # --- inputs ------------------------------------------------------------------------
    def features(self, audio: str | Path | None = None, text: str | None = None, voice: str | None = None,
                 rate: int | None = None, text_file: str | Path | None = None) -> tuple[AudioFeatures, Path]:
        """Features of the driving audio (or of ``text`` / ``text_file`` spoken by a TTS voice,
        :mod:`nerfhead.audio.voices`) and the file to mux."""
        from nerfhead.audio import features_for

        if audio is None and text is None and text_file is None:
            raise InputError("give --audio FILE, --text \"...\" or --text-file SCRIPT.txt")
        if audio is not None and not Path(audio).is_file():
            raise InputError(f"audio file not found: {audio}")
        spoken = audio is None
        feats = features_for(audio, text=text if spoken else None, text_file=text_file if spoken else None,
                             voice=voice, rate=rate, extractor=self.model.extractor)
        return feats, Path(audio) if audio is not None else feats.audio_path

    def poses(self, n: int, opts: RenderOptions) -> PoseTrack:
        if opts.pose_from:
            if not Path(opts.pose_from).is_file():
                raise InputError(f"pose video not found: {opts.pose_from}")
            return reference_poses(opts.pose_from, self.ident, n, opts.pose_smooth)
        return capture_poses(self.ident, n, opts.pose_start, opts.pose_smooth)

    # --- rendering ---------------------------------------------------------------------
    def frames(self, feats: AudioFeatures, opts: RenderOptions, first: int, n: int, torso: bool = True,
               poses: PoseTrack | None = None, eye: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """Rendered RGB frames ``first .. first + n - 1`` of the audio's video frames (``torso``
        False: the head over the background plate only, for measurements of the face). ``poses``
        and ``eye`` (n each) replace the options' pose track and blinks (full mode; portrait mode
        takes both from the capture frames it replays)."""
        if not 0.1 <= opts.scale <= 1.0:
            raise InputError(f"--scale must be between 0.1 and 1, not {opts.scale:g}")
        if opts.composite not in COMPOSITES:
            raise InputError(f"--composite must be {' or '.join(COMPOSITES)}, not '{opts.composite}'")
        if opts.composite == "portrait":
            yield from self._portrait_frames(feats, opts, first, n)
            return
        if torso:
            self._need_torso()
        poses = self.poses(n, opts) if poses is None else poses
        if eye is None:
            eye = blink_track(n, FPS, per_minute=opts.blinks_per_minute, seed=opts.seed).astype(np.float32)
        k, plate = self.model.intrinsics, self.plate
        if opts.scale < 1.0:  # draft: fewer rays for the head and fewer pixels for the torso
            size = (max(8, round(self.width * opts.scale)), max(8, round(self.height * opts.scale)))
            k = k.scaled(size[0] / self.width)
            plate = cv2.resize(self.plate, size, interpolation=cv2.INTER_AREA)
        audio = DrivingAudio.of(feats, own_voice=opts.own_voice)
        for rgb in render_frames(self.avatar, audio, range(first, first + n), poses, eye, plate,
                                 backdrop=None if torso else (lambda f: plate), intrinsics=k,
                                 closed_code=opts.closed_code, chunk_frames=opts.chunk_frames):
            if rgb.shape[:2] != (self.height, self.width):
                rgb = cv2.resize(rgb, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
            yield rgb

    def _portrait_frames(self, feats: AudioFeatures, opts: RenderOptions, first: int, n: int) -> Iterator[np.ndarray]:
        """Portrait mode: the capture's own frames replayed (ping-pong from ``opts.pose_start``) with
        the lower face rendered at each frame's tracked pose and blended in."""
        if opts.pose_from:
            raise InputError("--pose-from needs --composite full: portrait mode replays the capture's own frames")
        if opts.scale != 1.0:
            raise InputError("--scale is a draft of full mode; portrait mode renders only the lower face already")
        idx = capture_frames(self.ident, n, opts.pose_start)
        tracks = self.ident.tracks()
        eye = np.nan_to_num(tracks["blink"][idx]).clip(0, 1).astype(np.float32)
        yield from render_portrait_frames(self.avatar, DrivingAudio.of(feats, own_voice=opts.own_voice), range(first, first + n),
                                          PoseTrack.of_capture(tracks, idx), eye,
                                          lambda j: read_rgb(self.ident.frame_path(int(idx[j]))),
                                          tracks["landmarks"][idx].astype(np.float32), closed_code=opts.closed_code,
                                          chunk_frames=opts.chunk_frames)

    def render(self, feats: AudioFeatures, audio_file: Path, out: str | Path, opts: RenderOptions | None = None,
               label: str = "render") -> RenderResult:
        """Render the video of ``feats`` (muxing ``audio_file``) to ``out``, atomically."""
        opts = opts or RenderOptions()
        out = check_output(out)
        total = feats.n_video_frames
        if opts.start < 0 or (opts.duration is not None and opts.duration <= 0):
            raise InputError("--start must be >= 0 and --duration > 0")
        first = int(round(opts.start * FPS))
        if first >= total:
            raise InputError(f"--start {opts.start:g} s is past the end of the audio ({feats.duration:.2f} s)")
        n = total - first if opts.duration is None else min(total - first, max(1, int(round(opts.duration * FPS))))
        size = self._output_size(opts.height)
        if opts.own_voice and not self.model.has_presenter_map:
            log.warning(NO_PRESENTER_MAP)
        clock = AudioClock(audio_file, first / FPS)
        t0 = time.perf_counter()
        with VideoWriter(out, FPS, size, audio_rate=AUDIO_RATE, crf=opts.crf) as writer, \
                progress(label, total=n) as bar:
            for i, frame in enumerate(self.frames(feats, opts, first, n)):
                if size != (self.width, self.height):
                    frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if size[1] < self.height
                                       else cv2.INTER_CUBIC)
                writer.write(frame, clock.next_frame())
                bar.advance()
                if (i + 1) % 5 == 0:
                    bar.update(description=f"{label} ({(i + 1) / (time.perf_counter() - t0):.2f} fps)")
        seconds = time.perf_counter() - t0
        return RenderResult(out, n, seconds, n / FPS, size)

    def _output_size(self, height: int | None) -> tuple[int, int]:
        if height is None or height == self.height:
            return self.width, self.height
        if not 16 <= height <= 4320:
            raise InputError(f"output height {height} is outside 16-4320 pixels")
        width = int(round(self.width * height / self.height / 2)) * 2
        return width, height + height % 2


def render_video(name: str, out: str | Path, audio: str | Path | None = None, text: str | None = None,
                 voice: str | None = None, rate: int | None = None, opts: RenderOptions | None = None,
                 root: str | Path | None = None, checkpoint: str | Path | None = None,
                 text_file: str | Path | None = None) -> RenderResult:
    """Render identity ``name`` saying ``audio`` (any file PyAV reads), or ``text`` / ``text_file``
    spoken by ``voice`` (:mod:`nerfhead.audio.voices`)."""
    check_output(out)
    opts = opts or RenderOptions()
    renderer = AvatarRenderer(name, root, checkpoint, torso=opts.composite != "portrait")
    feats, audio_file = renderer.features(audio, text, voice, rate, text_file)
    return renderer.render(feats, audio_file, out, opts)


@dataclass
class BatchItem:
    source: Path
    result: RenderResult | None
    error: str | None


def audio_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"audio folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise InputError(f"no audio files in {folder} (looked for {', '.join(sorted(AUDIO_SUFFIXES))})")
    return files


def render_batch(name: str, audio_dir: str | Path, out_dir: str | Path, opts: RenderOptions | None = None,
                 root: str | Path | None = None, checkpoint: str | Path | None = None) -> list[BatchItem]:
    """Render every audio file of ``audio_dir`` to ``out_dir/STEM.mp4`` with the model loaded once;
    a file that fails is reported and skipped."""
    files = audio_files(audio_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    opts = opts or RenderOptions()
    renderer = AvatarRenderer(name, root, checkpoint, torso=opts.composite != "portrait")
    items = []
    for k, path in enumerate(files):
        try:
            feats, audio_file = renderer.features(path)
            result = renderer.render(feats, audio_file, out_dir / f"{path.stem}.mp4", opts,
                                     label=f"[{k + 1}/{len(files)}] {path.name}")
            items.append(BatchItem(path, result, None))
        except NerfheadError as exc:
            log.error("%s: %s", path.name, exc)
            items.append(BatchItem(path, None, str(exc)))
    return items
