"""``nerfhead process``: capture video -> identity dataset, step by step, resumable and atomic.

Every step writes into ``identities/NAME/.work/`` and records itself as done there; a
re-run with the same video and settings skips finished steps. Only when all steps are done
are the outputs moved into place and ``manifest.json`` written, last: an identity without a
manifest is never taken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from nerfhead import __version__
from nerfhead import landmark_ids as ids
from nerfhead.capture.background import background_plate
from nerfhead.capture.crop import CropBox, full_frame, head_crop
from nerfhead.capture.eyes import blink_strength, eye_ratio
from nerfhead.capture.landmarks import N_LANDMARKS, FaceMeshTracker
from nerfhead.capture.pose import PoseConfig, PoseFit, euler_degrees, fit_poses
from nerfhead.capture.qa import annotate, contact_sheet, tracks_plot
from nerfhead.capture.segment import PersonSegmenter, label_mask
from nerfhead.config import from_dict, load_yaml
from nerfhead.dataset import FPS, LABELS, Identity, frame_name, mask_name
from nerfhead.errors import IdentityError, InputError, NerfheadError, NoFaceError
from nerfhead.io.audio import align_audio, audio_start_offset, load_audio, save_wav
from nerfhead.io.files import atomic_path, remove
from nerfhead.io.images import read_labels, read_rgb, write_labels, write_rgb
from nerfhead.io.video import VideoInfo, iter_frames, probe_video, sample_indices
from nerfhead.log import get_logger, progress, quiet_native_stderr

log = get_logger(__name__)

OUTPUTS = ("frames", "masks", "audio.wav", "tracks.npz", "background.png", "qa")


@dataclass
class ProcessConfig:
    crop_size: int = 512  # square output size around the head; 0 keeps the original frames
    head_scale: float = 3.0  # crop side / face height
    face_center_y: float = 0.42  # where the face centre sits in the crop, from the top
    audio_rate: int = 16000
    test_fraction: float = 0.1  # last fraction of frames held out for evaluation
    min_duration: float = 2.0  # seconds
    min_face_fraction: float = 0.5  # fail when fewer frames than this show a face
    jpeg_quality: int = 95
    crop_samples: int = 40  # frames examined to place the crop
    plate_samples: int = 120  # frames used for the background plate
    sheet_frames: int = 12  # panels on the QA contact sheet
    pose: PoseConfig = field(default_factory=PoseConfig)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> "ProcessConfig":
        if path is None:
            return from_dict(cls, overrides or {}, where="process settings")
        return load_yaml(cls, path, overrides)

    def validate(self) -> None:
        if self.crop_size < 0 or (0 < self.crop_size < 64):
            raise InputError(f"crop size must be 0 (keep frames) or at least 64, got {self.crop_size}")
        if not 0 < self.test_fraction < 1:
            raise InputError(f"test_fraction must be between 0 and 1, got {self.test_fraction}")


def probe_capture(video: str | Path, min_duration: float = 0.0) -> VideoInfo:
    """``probe_video`` of a capture, which must also have sound (the lip sync is learnt from it)."""
    info = probe_video(video, min_duration=min_duration)
    if not info.has_audio:
        raise InputError(f"{video} has no audio track; nerfhead learns lip sync from the presenter's speech")
    return info


def process_capture(video: str | Path, name: str, cfg: ProcessConfig | None = None,
                    root: str | Path | None = None, force: bool = False) -> Identity:
    """Process ``video`` into the identity ``name``; returns the finished :class:`Identity`."""
    cfg = cfg or ProcessConfig()
    cfg.validate()
    ident = Identity.at(name, root)
    video = Path(video)
    if ident.is_processed() and not force:
        raise IdentityError(f"identity '{name}' already exists at {ident.root}; use --force to replace it")
    info = probe_capture(video, min_duration=cfg.min_duration)

    created_root = not ident.root.exists()
    if force and ident.is_processed():
        ident.manifest_path.unlink()
        for out in OUTPUTS:
            remove(ident.root / out)
    run = _Run(ident, video, info, cfg)
    try:
        run.prepare()
        with quiet_native_stderr():
            run.execute()
    except NerfheadError:
        # A problem with the input: nothing to resume, leave nothing behind.
        remove(ident.work_dir)
        if created_root:
            remove(ident.root)
        raise
    return ident


class _Run:
    """One processing run over the work folder (internal to :func:`process_capture`)."""

    def __init__(self, ident: Identity, video: Path, info: VideoInfo, cfg: ProcessConfig) -> None:
        self.ident, self.video, self.info, self.cfg = ident, video, info, cfg
        self.work = ident.work_dir
        self.n = info.n_frames(FPS)
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []

    # --- bookkeeping -------------------------------------------------------------------
    def prepare(self) -> None:
        key = self._key()
        key_path = self.work / "key.json"
        if self.work.exists():
            old = json.loads(key_path.read_text()) if key_path.is_file() else None
            if old != key:
                log.info("discarding an unfinished run made with another video or other settings")
                remove(self.work)
            else:
                log.info("resuming an unfinished run in %s", self.work)
        (self.work / "steps").mkdir(parents=True, exist_ok=True)
        with atomic_path(key_path) as tmp:
            tmp.write_text(json.dumps(key))

    def _key(self) -> dict:
        st = self.video.stat()
        return {"video": str(self.video.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns,
                "config": asdict(self.cfg), "version": __version__}

    def step(self, name: str, fn: Callable[[], dict]) -> dict:
        done = self.work / "steps" / f"{name}.json"
        if done.is_file():
            record = json.loads(done.read_text())
            log.info("%-10s reused (%.1f s when it ran)", name, record["seconds"])
        else:
            t0 = time.perf_counter()
            result = fn()
            record = {"seconds": time.perf_counter() - t0, "result": result}
            with atomic_path(done) as tmp:
                tmp.write_text(json.dumps(record, default=_plain))
            log.info("%-10s %.1f s", name, record["seconds"])
        self.timings[name] = record["seconds"]
        self.warnings += record["result"].get("warnings", [])
        return record["result"]

    # --- steps ---------------------------------------------------------------------------
    def execute(self) -> None:
        crop = CropBox(**{k: v for k, v in self.step("crop", self.find_crop).items() if k in CropBox.__annotations__})
        track = self.step("track", lambda: self.track(crop))
        self.step("audio", self.extract_audio)
        pose = self.step("pose", lambda: self.fit_pose(crop))
        plate = self.step("background", self.build_plate)
        self.step("qa", self.draw_qa)
        self.finalize(crop, track, pose, plate)

    def find_crop(self) -> dict:
        picks = set(sample_indices(self.n, self.cfg.crop_samples).tolist())
        found, faces = [], 0
        with FaceMeshTracker(video=False) as tracker:
            for i, rgb in enumerate(iter_frames(self.video, FPS)):
                if i in picks:
                    lms = tracker(rgb)
                    if lms is not None:
                        found.append(lms)
            faces = tracker.max_faces_seen
        if not found:
            raise NoFaceError(f"no face found in {self.video} (looked at {len(picks)} frames across the video)")
        warnings = []
        if faces > 1:
            warnings.append(f"{faces} faces visible in some frames; tracking the largest")
            log.warning(warnings[-1])
        w, h = self.info.width, self.info.height
        if self.cfg.crop_size:
            box = head_crop(found, w, h, self.cfg.crop_size, self.cfg.head_scale, self.cfg.face_center_y)
            if box.scale > 1.5:
                warnings.append(f"the head region is {box.width} px wide in the video and is upscaled "
                                f"{box.scale:.1f}x to {box.out_width} px: expect soft frames")
                log.warning(warnings[-1])
        else:
            box = full_frame(w, h)
        return {**asdict(box), "warnings": warnings}

    def track(self, crop: CropBox) -> dict:
        for sub in ("frames", "masks"):
            remove(self.work / sub)
            (self.work / sub).mkdir(parents=True)
        landmarks = np.full((self.n, N_LANDMARKS, 3), np.nan, np.float32)
        with FaceMeshTracker(video=True) as tracker, PersonSegmenter() as segmenter, \
                progress("tracking", total=self.n) as bar:
            for i, rgb in enumerate(iter_frames(self.video, FPS)):
                img = crop.apply(rgb)
                write_rgb(self.work / "frames" / frame_name(i), img, self.cfg.jpeg_quality)
                lms = tracker(img)
                if lms is not None:
                    landmarks[i] = lms
                write_labels(self.work / "masks" / mask_name(i), label_mask(segmenter(img), lms))
                bar.advance()
            faces = tracker.max_faces_seen
        np.save(self.work / "landmarks.npy", landmarks)
        found = np.isfinite(landmarks[:, 0, 0])
        coverage = float(found.mean())
        if coverage < self.cfg.min_face_fraction:
            raise NoFaceError(f"a face was found in only {coverage:.0%} of the frames of {self.video}; "
                              f"nerfhead needs the presenter's face in at least {self.cfg.min_face_fraction:.0%}")
        missing = np.flatnonzero(~found).tolist()
        warnings = []
        if faces > 1:
            warnings.append(f"{faces} faces visible in some frames; tracking the largest")
        if missing:
            warnings.append(f"no face in {len(missing)} of {self.n} frames; they are excluded from training")
            log.warning(warnings[-1])
        log.info("landmarks on %.2f%% of %d frames", 100 * coverage, self.n)
        return {"face_coverage": coverage, "no_face_frames": missing, "warnings": warnings}

    def extract_audio(self) -> dict:
        samples = load_audio(self.video, self.cfg.audio_rate)
        offset = audio_start_offset(self.video)
        samples = align_audio(samples, offset, self.cfg.audio_rate, self.n / FPS)
        save_wav(self.work / "audio.wav", samples, self.cfg.audio_rate)
        rms = float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0
        warnings = [] if rms > 1e-4 else [f"the audio track of {self.video} is silent"]
        return {"samples": int(samples.size), "offset_s": offset, "rms": rms, "warnings": warnings}

    def fit_pose(self, crop: CropBox) -> dict:
        landmarks = np.load(self.work / "landmarks.npy")
        # The source camera's principal point (its image centre) in output pixels.
        principal = tuple(crop.to_output(np.array([self.info.width / 2, self.info.height / 2])).tolist())
        focal0 = self.cfg.pose.focal_init * max(self.info.width, self.info.height) * crop.scale
        fit = fit_poses(landmarks, principal, focal0, self.cfg.pose, out_scale=crop.out_width / 512)
        ratio = eye_ratio(landmarks.astype(np.float64))
        np.savez(self.work / "pose.npz", rotation=fit.rotation, translation=fit.translation, shape=fit.shape,
                 focal=fit.focal, principal=np.array(fit.principal), eye_ratio=ratio)
        s = fit.stats
        log.info("camera focal %.1f px; rigid-landmark reprojection median %.2f px (p95 %.2f) at 512 px; "
                 "rotation jitter median %.3f deg/frame (%.3f before smoothing)", fit.focal,
                 s["reprojection_median_px512"], s["reprojection_p95_px512"], s["rotation_jitter_median_deg"],
                 s["rotation_jitter_unsmoothed_median_deg"])
        return dict(s)

    def _pose(self) -> PoseFit:
        with np.load(self.work / "pose.npz") as d:
            return PoseFit(float(d["focal"]), tuple(d["principal"].tolist()), d["shape"], d["rotation"], d["translation"])

    def build_plate(self) -> dict:
        picks = sample_indices(self.n, self.cfg.plate_samples)
        frames = np.stack([read_rgb(self.work / "frames" / frame_name(i)) for i in picks])
        labels = np.stack([read_labels(self.work / "masks" / mask_name(i)) for i in picks])
        plate = background_plate(frames, labels)
        write_rgb(self.work / "background.png", plate.image)
        log.info("background plate: %.2f (0-255) mean abs error, %.1f dB PSNR on the %.0f%% of pixels never "
                 "covered by the person; %.1f%% inpainted", plate.error_mae, plate.error_psnr,
                 100 * plate.always_visible.mean(), 100 * plate.inpainted.mean())
        return {"error_mae": plate.error_mae, "error_psnr_db": plate.error_psnr,
                "always_visible_fraction": float(plate.always_visible.mean()),
                "inpainted_fraction": float(plate.inpainted.mean())}

    def draw_qa(self) -> dict:
        landmarks = np.load(self.work / "landmarks.npy")
        fit = self._pose()
        with np.load(self.work / "pose.npz") as d:
            ratio = d["eye_ratio"]
        valid = np.isfinite(landmarks[:, 0, 0])
        axes_pts = np.array([[0, 0, 0], [0.08, 0, 0], [0, 0.08, 0], [0, 0, 0.08]], np.float64)
        panels = []
        for i in sample_indices(self.n, self.cfg.sheet_frames):
            rgb = read_rgb(self.work / "frames" / frame_name(i))
            labels = read_labels(self.work / "masks" / mask_name(i))
            lms = landmarks[i] if valid[i] else None
            axes = fit.project(slice(i, i + 1), axes_pts)[0] if valid[i] else None
            yaw, pitch, roll = euler_degrees(fit.rotation[i:i + 1])[0]
            title = f"#{i} yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}" if valid[i] else f"#{i} no face"
            panels.append(annotate(rgb, labels, lms, axes, title))
        qa = self.work / "qa"
        qa.mkdir(exist_ok=True)
        contact_sheet(panels, qa / "contact_sheet.png")
        tracks_plot(euler_degrees(fit.rotation), fit.translation, ratio, valid, self._test_start(), FPS,
                    qa / "tracks.png", f"{self.ident.name}: head pose and eyes")
        return {"files": ["qa/contact_sheet.png", "qa/tracks.png"]}

    # --- finish ------------------------------------------------------------------------------
    def _test_start(self) -> int:
        return int(round(self.n * (1 - self.cfg.test_fraction)))

    def finalize(self, crop: CropBox, track: dict, pose_stats: dict, plate: dict) -> None:
        t0 = time.perf_counter()
        landmarks = np.load(self.work / "landmarks.npy")
        fit = self._pose()
        with np.load(self.work / "pose.npz") as d:
            ratio = d["eye_ratio"]
        valid = np.isfinite(landmarks[:, 0, 0])
        test_start = self._test_start()
        idx = np.arange(self.n)
        np.savez(self.work / "tracks.npz", landmarks=landmarks, face_found=valid, rotation=fit.rotation,
                 translation=fit.translation, camera_to_head=fit.camera_to_head(), euler_deg=euler_degrees(fit.rotation),
                 eye_ratio=ratio, blink=blink_strength(ratio), canonical_shape=fit.shape,
                 rigid_ids=np.array(ids.RIGID), lip_ids=np.array(ids.LIPS))
        root = self.ident.root
        for out in OUTPUTS:
            remove(root / out)
            (self.work / out).rename(root / out)
        self.timings["finalize"] = time.perf_counter() - t0
        manifest = _manifest(self, crop, fit, track, pose_stats, plate, valid, test_start, idx)
        self.ident.write_manifest(manifest)
        remove(self.work)
        total = sum(self.timings.values())
        log.info("processed %d frames (%.1f s of video) in %.1f s: %s", self.n, self.n / FPS, total,
                 ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items()))


def _manifest(run: _Run, crop: CropBox, fit: PoseFit, track: dict, pose_stats: dict, plate: dict,
              valid: np.ndarray, test_start: int, idx: np.ndarray) -> dict:
    cfg, info, n = run.cfg, run.info, run.n
    return {
        "name": run.ident.name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "nerfhead_version": __version__,
        "source": {**asdict(info), "sha256": _sha256(run.video)},
        "fps": FPS,
        "n_frames": n,
        "image": {"width": crop.out_width, "height": crop.out_height, "frames": "frames/{index:06d}.jpg",
                  "color": "RGB, 8 bit, JPEG quality %d" % cfg.jpeg_quality},
        "crop": {**crop.as_dict(), "doc": "source pixels [x0, x0+width) x [y0, y0+height), resized to out_width x out_height"},
        "camera": {
            "model": "pinhole, no distortion, one for all frames",
            "fx": fit.focal, "fy": fit.focal, "cx": fit.principal[0], "cy": fit.principal[1],
            "axes": "OpenCV: x right, y down, z forward (into the scene)",
        },
        "head_frame": {
            "units": "metres, assuming outer eye corners 0.09 m apart",
            "origin": "centroid of the canonical 478-point face shape",
            "axes": "x towards the image-right eye, y towards the chin, z = x cross y (away from the camera when frontal)",
        },
        "masks": {"files": "masks/{index:06d}.png", "labels": {str(k): v for k, v in LABELS.items()},
                  "format": "8-bit single-channel PNG of label values"},
        "audio": {"file": "audio.wav", "rate": cfg.audio_rate, "channels": 1, "format": "16-bit PCM",
                  "alignment": "sample 0 plays with frame 0; frame i starts at i / fps seconds"},
        "background": {"file": "background.png", **plate},
        "arrays": _ARRAY_DOCS,
        "split": {
            "rule": f"last {cfg.test_fraction:.0%} of frames are test frames (contiguous, never trained on); "
                    "frames without a face are in neither list",
            "test_start": test_start,
            "train": idx[:test_start][valid[:test_start]].tolist(),
            "test": idx[test_start:][valid[test_start:]].tolist(),
        },
        "no_face_frames": track["no_face_frames"],
        "quality": {"face_coverage": track["face_coverage"], **pose_stats,
                    "background_error_mae": plate["error_mae"], "background_error_psnr_db": plate["error_psnr_db"]},
        "qa": {"contact_sheet": "qa/contact_sheet.png", "tracks_plot": "qa/tracks.png"},
        "timings_s": run.timings,
        "warnings": sorted(set(run.warnings)),
        "settings": asdict(cfg),
    }


_ARRAY_DOCS = {
    "file": "tracks.npz (numpy); N = n_frames; NaN where face_found is false",
    "landmarks": "(N, 478, 3) float32: mediapipe face mesh; x, y in output-image pixels; z depth relative to the "
                 "head centre in the same pixel scale, larger = farther",
    "face_found": "(N,) bool",
    "rotation": "(N, 3, 3) float64: head -> camera rotation R, x_cam = R x_head + t",
    "translation": "(N, 3) float64: t in metres",
    "camera_to_head": "(N, 4, 4) float64: camera pose in the head frame (OpenCV camera axes), the NeRF camera",
    "euler_deg": "(N, 3) float64: yaw, pitch, roll in degrees, R = Rz(roll) Ry(yaw) Rx(pitch); positive roll "
                 "turns the head clockwise in the image",
    "eye_ratio": "(N,) float64: mean eyelid gap / eye width of both eyes (3D)",
    "blink": "(N,) float64: 0 = open as usual (identity median), 1 = closed",
    "canonical_shape": "(478, 3) float64: the identity's fitted face shape in the head frame, metres",
    "rigid_ids": "(29,) int: landmark indices used for pose (forehead, nose bridge, eye corners, face sides)",
    "lip_ids": "(40,) int: mediapipe FACEMESH_LIPS landmark indices (LMD metric)",
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(type(obj).__name__)
