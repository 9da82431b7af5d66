"""``nerfhead dub``: a new video of the presenter (another take, not in the capture) saying new
audio, with every pixel outside the lower face kept.

1. Every frame the output needs is tracked in full (mediapipe); the identity's crop is located
   in the video (the same face size and place as in the capture's frames), the landmarks moved
   into it, and each frame's head pose fitted with the identity's camera and face shape
   (smoothed over time as the capture's).
2. Each output frame: the video's frame (replayed forwards and backwards when the audio is
   longer), its crop, the lower face rendered there by the head field with that frame's pose,
   scaled back to the video's pixels, colour-matched to a ring of the real skin around it and
   blended over a feathered edge into the full frame. Frames without a face pass through.
3. The new audio replaces the old; the video keeps its resolution and frame rate.

Streaming: frames are decoded, rendered and encoded one at a time (a backwards replay keeps a
window of decoded frames); the per-frame tracks are a few kilobytes a frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from nerfhead.audio.features import AudioFeatures
from nerfhead.avatar.drive import DrivingAudio
from nerfhead.audio.windows import n_video_frames
from nerfhead.avatar.portrait import LOWER_FACE, box_of, composite, lower_face_mask
from nerfhead.avatar.sequence import PoseTrack, conditioned_frames, render_lower_face
from nerfhead.capture.crop import CropBox
from nerfhead.capture.eyes import blink_strength, eye_ratio
from nerfhead.capture.landmarks import track_video
from nerfhead.capture.pose import PoseConfig, PoseFit, canonical_shape, fit_poses_to_camera, shape_distance
from nerfhead.dataset import FPS, Identity
from nerfhead.errors import InputError, NoFaceError
from nerfhead.field.rays import Intrinsics
from nerfhead.io.video import FrameReader, VideoWriter, probe_video
from nerfhead.log import get_logger, progress
from nerfhead.render.driven import AUDIO_RATE, NO_PRESENTER_MAP, AvatarRenderer, AudioClock, check_output
from nerfhead.render.motion import pingpong

log = get_logger(__name__)

#: a video face whose shape is farther than this from the identity's (RMS, in eye spans, after a
#: similarity fit) gets a warning. Measured on the development media (docs/EVALUATION.md): the
#: same presenter in another part of the video 0.0035-0.005, other people 0.021-0.036.
SHAPE_WARNING = 0.012


@dataclass
class DubOptions:
    loop: bool = True  # audio longer than the video: replay the video forwards and backwards
    crf: int = 18  # H.264 quality
    shape_warning: float = SHAPE_WARNING
    own_voice: bool = False  # the audio is the presenter's own voice: the mouth from the presenter map (nerfhead.field.lips)


@dataclass
class DubResult:
    path: Path
    frames: int
    passthrough: int  # frames copied unchanged (no face, or the face outside the identity's crop)
    fps: float  # the video's frame rate (kept)
    size: tuple[int, int]  # (width, height) as encoded: the video's (odd sides padded by a pixel for H.264)
    duration: float  # seconds of video written (frames / fps)
    replayed: bool  # the video was replayed to cover the audio
    seconds: dict[str, float] = field(default_factory=dict)  # tracking, render
    warnings: list[str] = field(default_factory=list)

    @property
    def render_fps(self) -> float:
        return self.frames / max(self.seconds.get("render", 0.0), 1e-9)


@dataclass
class VideoFace:
    """The presenter's face through a video: where the identity's crop lies in it and, per video
    frame, the landmarks in that crop's pixels, the head pose and the blink."""

    size: tuple[int, int]  # (height, width) of the video's frames as decoded (display rotation applied)
    crop: CropBox
    intrinsics: Intrinsics  # of the crop: the identity's focal, the video's own image centre
    landmarks: np.ndarray  # (n, 478, 3) float32 crop pixels, NaN where no face
    inside: np.ndarray  # (n,) bool: a face whose lower face lies inside the crop (what can be dubbed)
    poses: PoseTrack
    blink: np.ndarray  # (n,) 0 open .. 1 closed
    shape_distance: float
    reprojection_px512: float
    max_faces: int  # the most faces seen in one frame

    @property
    def found(self) -> np.ndarray:
        return np.isfinite(self.landmarks[:, 0, 0])


def face_size(landmarks: np.ndarray) -> tuple[float, np.ndarray]:
    """The median face height (the landmarks' vertical extent) and face centre (x, y) over the
    frames of (n, 478, 2+) pixel landmarks that hold a face."""
    lms = np.asarray(landmarks, np.float64)
    lms = lms[np.isfinite(lms[:, 0, 0])]
    return float(np.median(np.ptp(lms[:, :, 1], axis=1))), np.median(np.median(lms[:, :, :2], axis=1), axis=0)


def locate_crop(landmarks: np.ndarray, frame_size: tuple[int, int], capture_landmarks: np.ndarray,
                out_size: tuple[int, int]) -> CropBox:
    """The identity's crop in a video: the box whose resized image shows the video's face (its
    (n, 478, 2+) pixel ``landmarks``) at the size and place the capture's frames show it (their
    ``capture_landmarks``); clipped to the video (a face near the video's edge sits off its usual
    place; the camera model follows the crop)."""
    h, w = frame_size
    cap_height, cap_centre = face_size(capture_landmarks)
    height, centre = face_size(landmarks)
    per = height / cap_height  # video pixels per crop pixel
    out_w, out_h = out_size
    side_w, side_h = out_w * per, out_h * per
    fit = min(1.0, w / side_w, h / side_h)  # the video is smaller than the crop: the largest that fits
    side_w, side_h = max(1, int(round(side_w * fit))), max(1, int(round(side_h * fit)))
    x0 = int(np.clip(round(centre[0] - cap_centre[0] * side_w / out_w), 0, w - side_w))
    y0 = int(np.clip(round(centre[1] - cap_centre[1] * side_h / out_h), 0, h - side_h))
    return CropBox(x0, y0, side_w, side_h, out_w, out_h)


def lower_face_inside(landmarks: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """(n,) bool: the lower face's outline of (n, 478, 2+) crop-pixel landmarks lies inside the
    crop (a face that walked out of it would be cut off at the crop's edge)."""
    outline = np.asarray(landmarks, np.float64)[:, list(LOWER_FACE), :2]
    w, h = out_size
    with np.errstate(invalid="ignore"):
        return ((outline >= 0) & (outline < (w, h))).all(axis=(1, 2))


def track_face(video: str | Path, fps: float, ident: Identity, intrinsics: Intrinsics, out_size: tuple[int, int],
               count: int) -> VideoFace:
    """Track the first ``count`` frames of ``video`` and fit their poses (:class:`VideoFace`)."""
    raw, size, faces = track_video(video, fps, "tracking", count=count)
    if not np.isfinite(raw[:, 0, 0]).any():
        raise NoFaceError(f"no face found in {video} ({len(raw)} frames tracked)")
    tracks = ident.tracks()
    crop = locate_crop(raw, size, tracks["landmarks"], out_size)
    lms = crop.to_output(raw)  # float64, crop pixels
    del raw
    principal = tuple(crop.to_output(np.array([size[1] / 2.0, size[0] / 2.0])).tolist())
    k = Intrinsics(intrinsics.fx, intrinsics.fy, principal[0], principal[1])
    shape = np.asarray(tracks["canonical_shape"], np.float64)
    # the smoothness term penalises second differences per frame: the same smoothing per second
    # at another frame rate needs the weight scaled by the fourth power of the rate
    cfg = PoseConfig()
    cfg.smooth_weight *= (fps / FPS) ** 4
    fit: PoseFit = fit_poses_to_camera(lms, shape, k.fx, principal, cfg, out_scale=out_size[0] / 512.0)
    reference = canonical_shape(np.asarray(tracks["landmarks"], np.float64))
    distance = shape_distance(canonical_shape(lms), reference)
    poses = PoseTrack(np.nan_to_num(fit.rotation), np.nan_to_num(fit.translation))
    blink = np.nan_to_num(blink_strength(eye_ratio(lms))).clip(0, 1).astype(np.float32)
    return VideoFace(size, crop, k, lms.astype(np.float32), lower_face_inside(lms, out_size), poses, blink, distance,
                     fit.stats["reprojection_median_px512"], faces)


def paste_lower_face(frame: np.ndarray, head: np.ndarray, crop: CropBox, landmarks: np.ndarray,
                     mask: np.ndarray | None = None) -> np.ndarray:
    """``frame`` (the video's pixels) with the lower face of ``head`` (the crop's render, colour-
    matched) scaled to the crop's source pixels and blended in by the feathered lower-face mask
    of ``landmarks`` (the crop's pixels; ``mask``: that mask when the crop is not scaled). Pixels
    outside the mask are the frame's own."""
    if mask is None or mask.shape != (crop.height, crop.width):
        local = np.asarray(landmarks, np.float64).copy()
        local[:, :2] /= crop.scale  # crop pixels -> the crop's source pixels, from its corner
        mask = lower_face_mask(local, (crop.height, crop.width))
    out = frame.copy()
    box = box_of(mask > 0)
    if box is None:
        return out
    rows, cols = box
    if head.shape[:2] != (crop.height, crop.width):
        interp = cv2.INTER_AREA if head.shape[0] > crop.height else cv2.INTER_CUBIC
        head = cv2.resize(head, (crop.width, crop.height), interpolation=interp)
    src = (slice(crop.y0 + rows.start, crop.y0 + rows.stop), slice(crop.x0 + cols.start, crop.x0 + cols.stop))
    out[src] = composite(frame[src], head[rows, cols], mask[rows, cols])
    return out


def dub_frames(renderer: AvatarRenderer, feats: AudioFeatures, face: VideoFace, reader: FrameReader,
               order: np.ndarray, fps: float, own_voice: bool = False) -> Iterator[np.ndarray]:
    """The output frames for the video frames ``order``, the j-th speaking the audio at time j / fps
    (frames whose face cannot be dubbed pass through; ``own_voice``: the presenter is speaking)."""
    avatar = renderer.avatar
    c2w = face.poses.camera_to_head.astype(np.float32)
    dubbed = face.found & face.inside
    audio = DrivingAudio.of(feats, len(order), fps, own_voice=own_voice)
    for j, cond in conditioned_frames(avatar, audio, np.arange(len(order)), face.blink[order]):
        i = int(order[j])
        frame = reader[i]
        if not dubbed[i]:
            yield frame
            continue
        lms = face.landmarks[i]
        head, mask = render_lower_face(avatar, c2w[i], face.intrinsics, face.crop.apply(frame), lms, cond)
        yield paste_lower_face(frame, head, face.crop, lms, mask)


def dub_video(name: str, video: str | Path, out: str | Path, audio: str | Path | None = None,
              text: str | None = None, voice: str | None = None, rate: int | None = None,
              opts: DubOptions | None = None, root: str | Path | None = None,
              checkpoint: str | Path | None = None, text_file: str | Path | None = None,
              renderer: AvatarRenderer | None = None) -> DubResult:
    """Dub ``video`` (the identity's presenter) with ``audio``, or ``text`` / ``text_file`` spoken by
    ``voice``, to ``out`` (atomically). ``renderer``: the identity's avatar already loaded (a batch
    loads it once for all its jobs)."""
    opts = opts or DubOptions()
    out = check_output(out)
    video = Path(video)
    info = probe_video(video)
    fps = info.source_fps
    n_video = info.n_frames(fps)
    renderer = renderer or AvatarRenderer(name, root, checkpoint, torso=False)
    feats, audio_file = renderer.features(audio, text, voice, rate, text_file)
    n_out = n_video_frames(feats.duration, fps)
    if n_out > n_video and not opts.loop:
        raise InputError(f"the audio ({feats.duration:.2f} s) is longer than the video ({n_video / fps:.2f} s); "
                         "without --no-loop the video replays forwards and backwards")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    m = renderer.ident.manifest()
    face = track_face(video, fps, renderer.ident, renderer.model.intrinsics,
                      (m["image"]["width"], m["image"]["height"]), count=min(n_out, n_video))
    seconds["tracking"] = time.perf_counter() - t0
    warnings = []
    if face.shape_distance > opts.shape_warning:
        warnings.append(f"the face in {video.name} is shaped unlike {name}'s (distance {face.shape_distance:.3f}, "
                        f"same presenter usually below {opts.shape_warning:.3f}): another person?")
    if face.max_faces > 1:
        warnings.append(f"{face.max_faces} faces visible in some frames of {video.name}; dubbing the largest")
    n_tracked = len(face.landmarks)
    order = np.arange(n_out) if n_out <= n_tracked else pingpong(np.ones(n_tracked, bool), n_out)
    no_face = int((~face.found[order]).sum())
    outside = int((face.found & ~face.inside)[order].sum())
    passthrough = no_face + outside
    if no_face:
        warnings.append(f"no face in {no_face} of {n_out} output frames: copied unchanged")
    if outside:
        warnings.append(f"the lower face leaves the identity's crop in {outside} of {n_out} output frames "
                        "(the presenter moved far from the take's usual place): copied unchanged")
    if opts.own_voice and not renderer.model.has_presenter_map:
        warnings.append(NO_PRESENTER_MAP)
    for w in warnings:
        log.warning(w)
    log.info("crop %dx%d at (%d, %d) of %dx%d; pose reprojection %.2f px at 512", face.crop.width,
             face.crop.height, face.crop.x0, face.crop.y0, face.size[1], face.size[0], face.reprojection_px512)
    clock = AudioClock(audio_file, 0.0, AUDIO_RATE, fps)
    t0 = time.perf_counter()
    size = (face.size[1], face.size[0])  # (width, height): the video's, as a player shows it
    with FrameReader(video, fps) as reader, VideoWriter(out, fps, size, audio_rate=AUDIO_RATE,
                                                         crf=opts.crf) as writer, progress("dub", total=n_out) as bar:
        for j, frame in enumerate(dub_frames(renderer, feats, face, reader, order, fps, opts.own_voice)):
            writer.write(frame, clock.next_frame())
            bar.advance()
            if (j + 1) % 5 == 0:
                bar.update(description=f"dub ({(j + 1) / (time.perf_counter() - t0):.2f} fps)")
    seconds["render"] = time.perf_counter() - t0
    size = (size[0] + size[0] % 2, size[1] + size[1] % 2)  # as encoded (H.264 4:2:0 needs even sides)
    return DubResult(out, n_out, passthrough, fps, size, n_out / fps, n_out > n_tracked,
                     seconds, warnings)
