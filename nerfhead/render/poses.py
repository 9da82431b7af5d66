"""Head pose tracks for rendered videos: the capture's own poses, or those of a reference video.

A track (:class:`nerfhead.avatar.sequence.PoseTrack`) holds, per output frame, the head -> camera
rotation and translation and the camera -> head transform the head field is rendered from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from nerfhead.avatar.sequence import PoseTrack
from nerfhead.dataset import FPS, Identity
from nerfhead.errors import InputError
from nerfhead.log import get_logger
from nerfhead.render.motion import pingpong, smooth_c2w

log = get_logger(__name__)


def smoothed(track: PoseTrack, sigma: float) -> PoseTrack:
    """Zero-lag Gaussian smoothing over ``sigma`` frames (no jitter, no lag)."""
    return PoseTrack.from_camera_to_head(smooth_c2w(track.camera_to_head, sigma))


def capture_frames(ident: Identity, n_out: int, start_frame: int = 0) -> np.ndarray:
    """(n_out,) capture frames with a face, played forwards and backwards (ping-pong) from
    ``start_frame``, so a video of any length has natural motion with smooth turns at the ends."""
    tracks = ident.tracks()
    valid = np.asarray(tracks["face_found"], bool) & np.isfinite(tracks["rotation"]).all(axis=(1, 2))
    n = len(valid)
    if not 0 <= start_frame < n:
        raise InputError(f"--pose-start must be a capture frame in 0..{n - 1}, not {start_frame}")
    return pingpong(valid, n_out, start_frame)


def capture_poses(ident: Identity, n_out: int, start_frame: int = 0, sigma: float = 2.0) -> PoseTrack:
    """The capture's own pose track over :func:`capture_frames`, smoothed over ``sigma`` frames."""
    idx = capture_frames(ident, n_out, start_frame)
    tracks = ident.tracks()
    track = PoseTrack(tracks["rotation"][idx].astype(np.float64), tracks["translation"][idx].astype(np.float64))
    return smoothed(track, sigma)


def reference_poses(video: str | Path, ident: Identity, n_out: int, sigma: float = 2.0) -> PoseTrack:
    """Head motion of a reference video, moved onto the identity: each reference frame's rotation and
    translation relative to the reference's median pose are applied to the capture's median pose
    (translation scaled by the ratio of the two median distances). Shorter references ping-pong."""
    from nerfhead.capture.landmarks import track_video
    from nerfhead.capture.pose import fit_poses

    video = Path(video)
    lms, (h, w), _ = track_video(video, FPS, "track pose video")
    valid = np.isfinite(lms[:, 0, 0])
    if valid.mean() < 0.5:
        raise InputError(f"{video}: a face is found on only {valid.mean():.0%} of the frames; "
                         "the pose video must show one face most of the time")
    fit = fit_poses(lms, (w / 2.0, h / 2.0), 1.6 * max(h, w), out_scale=max(h, w) / 512.0)
    ref_r, ref_t = fit.rotation, fit.translation

    tracks = ident.tracks()
    ok = np.asarray(tracks["face_found"], bool) & np.isfinite(tracks["rotation"]).all(axis=(1, 2))
    cap_r = Rotation.from_matrix(tracks["rotation"][ok]).mean()
    cap_t = np.median(tracks["translation"][ok], axis=0)
    ref_mean = Rotation.from_matrix(ref_r[valid]).mean()
    ref_tm = np.median(ref_t[valid], axis=0)
    scale = cap_t[2] / ref_tm[2] if ref_tm[2] > 0 else 1.0

    idx = pingpong(valid, n_out)
    rel = Rotation.from_matrix(ref_r[idx]) * ref_mean.inv()  # motion in camera axes
    rotation = (rel * cap_r).as_matrix()
    translation = cap_t + (ref_t[idx] - ref_tm) * scale
    log.info("pose video: %d frames, face on %.0f%%, reprojection %.2f px", len(lms), 100 * valid.mean(),
             fit.stats["reprojection_median_px512"])
    return smoothed(PoseTrack(rotation, translation), sigma)
