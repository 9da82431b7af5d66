"""Head pose per frame and one pinhole camera per identity, fitted jointly to all frames.

Model: a rigid per-identity 3D landmark shape ``S`` (head frame, metres) seen by a pinhole
camera with focal length ``f`` (pixels) and a fixed principal point, under a per-frame
head-to-camera pose ``x_cam = R_i @ x_head + t_i`` (OpenCV axes: x right, y down, z forward).

1. ``S`` starts as the similarity-aligned mean of mediapipe's per-frame 3D landmarks,
   put into a face-aligned frame (x: towards the image-right eye, y: towards the chin,
   z = x cross y: away from the camera for a frontal face; origin: the landmarks' centroid;
   scale: outer eye corners ``EYE_SPAN_M`` apart).
2. Each frame's pose starts from PnP on the rigid landmarks.
3. Bundle adjustment over all frames refines ``f``, the rigid part of ``S`` and every pose,
   with a robust reprojection loss and a zero-lag temporal smoothness term (second
   differences, two-sided), so smoothing does not delay the head.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from nerfhead import landmark_ids as ids
from nerfhead.log import get_logger
from nerfhead.threads import torch_threads

log = get_logger(__name__)

EYE_SPAN_M = 0.09  # mean adult outer-eye-corner (exocanthion) distance, metres


@dataclass
class PoseConfig:
    focal_init: float = 1.6  # initial focal length, in units of the source frame's longer side
    focal_prior: float = 0.05  # weight pulling log(f) towards the initial value (0 = free)
    smooth_weight: float = 0.5  # temporal smoothness (pixel-equivalent second differences)
    shape_weight: float = 0.1  # keeps the refined rigid shape near mediapipe's
    huber_px: float = 2.0
    iterations: int = 150


@dataclass
class PoseFit:
    focal: float
    principal: tuple[float, float]
    shape: np.ndarray  # (478, 3) head frame, metres
    rotation: np.ndarray  # (N, 3, 3) head -> camera; NaN where no face
    translation: np.ndarray  # (N, 3) metres; NaN where no face
    stats: dict = field(default_factory=dict)

    def project(self, frames: np.ndarray | slice = slice(None), points: np.ndarray | None = None) -> np.ndarray:
        """Pixel projection (n, P, 2) of ``points`` (default: the whole shape) in ``frames``."""
        pts = self.shape if points is None else points
        cam = np.einsum("nij,pj->npi", self.rotation[frames], pts) + self.translation[frames][:, None]
        return self.focal * cam[..., :2] / cam[..., 2:3] + np.asarray(self.principal)

    def camera_to_head(self) -> np.ndarray:
        """(N, 4, 4) camera-to-head transforms (OpenCV camera axes), the NeRF camera poses."""
        n = len(self.rotation)
        c2w = np.tile(np.eye(4), (n, 1, 1))
        rt = np.transpose(self.rotation, (0, 2, 1))
        c2w[:, :3, :3] = rt
        c2w[:, :3, 3] = -np.einsum("nij,nj->ni", rt, self.translation)
        return c2w


def euler_degrees(rotation: np.ndarray) -> np.ndarray:
    """(N, 3) yaw, pitch, roll in degrees for head->camera rotations ``R = Rz(roll) Ry(yaw) Rx(pitch)``.

    Yaw turns the face towards the image's left, pitch tilts it down, and roll (about the
    optical axis) turns it clockwise as seen in the image, for positive angles.
    """
    from scipy.spatial.transform import Rotation

    out = np.full((len(rotation), 3), np.nan)
    ok = np.isfinite(rotation).all(axis=(1, 2))
    if ok.any():
        zyx = Rotation.from_matrix(rotation[ok]).as_euler("ZYX", degrees=True)
        out[ok] = zyx[:, [1, 2, 0]]
    return out


def relative_angle_deg(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Angle in degrees of the rotation between each pair of rotation matrices."""
    rel = np.einsum("nij,nkj->nik", ra, rb)
    cos = (np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


# ----------------------------------------------------------------------------------------
# canonical shape


def _umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising ||s R src + t - dst||; src, dst: (P, 3)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    corr = np.diag([1.0, 1.0, d])
    rot = u @ corr @ vt
    scale = (sig * np.diag(corr)).sum() / (a ** 2).sum()
    return scale, rot, mu_d - scale * rot @ mu_s


def canonical_shape(landmarks: np.ndarray, max_frames: int = 300) -> np.ndarray:
    """Mean face shape (478, 3) in the head frame (metres) from per-frame pixel landmarks."""
    valid = np.flatnonzero(np.isfinite(landmarks[:, 0, 0]))
    pick = valid[np.linspace(0, len(valid) - 1, min(max_frames, len(valid))).round().astype(int)]
    frames = landmarks[pick].astype(np.float64)
    rigid = list(ids.RIGID)
    ref = np.median(frames, axis=0)
    for _ in range(2):  # align to the running mean twice: removes the reference frame's noise
        aligned = []
        for pts in frames:
            s, r, t = _umeyama(pts[rigid], ref[rigid])
            aligned.append(s * pts @ r.T + t)
        ref = np.median(np.stack(aligned), axis=0)
    # face-aligned axes
    x = ref[ids.EYE_CORNERS[3]] - ref[ids.EYE_CORNERS[0]]
    x /= np.linalg.norm(x)
    y = ref[ids.CHIN] - ref[ids.FACE_TOP]
    y -= x * (x @ y)
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    basis = np.stack([x, y, z])  # rows: head axes in pixel space
    shape = (ref - ref.mean(0)) @ basis.T
    span = np.linalg.norm(shape[ids.EYE_CORNERS[3]] - shape[ids.EYE_CORNERS[0]])
    return shape * (EYE_SPAN_M / span)


# ----------------------------------------------------------------------------------------
# fitting


def fit_poses(landmarks: np.ndarray, principal: tuple[float, float], focal_init: float,
              cfg: PoseConfig | None = None, out_scale: float = 1.0) -> PoseFit:
    """Fit camera, shape and per-frame pose to (N, 478, 3) pixel landmarks (NaN = no face).

    ``focal_init`` is in output pixels; ``out_scale`` converts pixel statistics to "at 512 px".
    """
    cfg = cfg or PoseConfig()
    n = len(landmarks)
    valid = np.isfinite(landmarks[:, 0, 0])
    shape = canonical_shape(landmarks)
    rigid = np.array(ids.RIGID)
    obs = np.ascontiguousarray(landmarks[:, rigid, :2], dtype=np.float64)

    rvecs, tvecs = _pnp_all(np.ascontiguousarray(shape[rigid]), obs, valid, focal_init, principal)
    raw_rot = _rodrigues_np(rvecs)

    with torch_threads(1):
        ba = _bundle_adjust(shape, rigid, obs, valid, rvecs, tvecs, focal_init, principal, cfg)
    focal, shape, rvecs, tvecs = ba

    rotation = np.full((n, 3, 3), np.nan)
    translation = np.full((n, 3), np.nan)
    rotation[valid] = _rodrigues_np(rvecs[valid])
    translation[valid] = tvecs[valid]
    fit = PoseFit(float(focal), (float(principal[0]), float(principal[1])), shape, rotation, translation)

    proj = fit.project(valid, shape[rigid])
    err = np.linalg.norm(proj - obs[valid], axis=-1) / out_scale
    consecutive = valid[1:] & valid[:-1]
    jitter_raw = relative_angle_deg(raw_rot[1:], raw_rot[:-1])[consecutive]
    jitter = relative_angle_deg(rotation[1:][consecutive], rotation[:-1][consecutive])
    fit.stats = {
        "reprojection_median_px512": float(np.median(err)),
        "reprojection_p95_px512": float(np.percentile(err, 95)),
        "rotation_jitter_median_deg": float(np.median(jitter)) if jitter.size else float("nan"),
        "rotation_jitter_p95_deg": float(np.percentile(jitter, 95)) if jitter.size else float("nan"),
        "rotation_jitter_unsmoothed_median_deg": float(np.median(jitter_raw)) if jitter_raw.size else float("nan"),
        "focal_px": float(focal),
    }
    return fit


def fit_poses_to_camera(landmarks: np.ndarray, shape: np.ndarray, focal: float, principal: tuple[float, float],
                        cfg: PoseConfig | None = None, out_scale: float = 1.0) -> PoseFit:
    """Per-frame poses of (N, 478, 3) pixel landmarks seen by a known camera (``focal``,
    ``principal``) with a known face ``shape`` (an identity's, from :func:`fit_poses`): PnP on the
    rigid landmarks, then the same smoothed bundle adjustment with camera and shape held fixed.
    ``stats`` holds the rigid landmarks' reprojection error ("at 512 px" by ``out_scale``)."""
    cfg = cfg or PoseConfig()
    n = len(landmarks)
    valid = np.isfinite(landmarks[:, 0, 0])
    rigid = np.array(ids.RIGID)
    obs = np.ascontiguousarray(landmarks[:, rigid, :2], dtype=np.float64)
    rvecs, tvecs = _pnp_all(np.ascontiguousarray(shape[rigid]), obs, valid, focal, principal)
    with torch_threads(1):
        _, _, rvecs, tvecs = _bundle_adjust(shape, rigid, obs, valid, rvecs, tvecs, focal, principal, cfg,
                                            fixed_camera=True)
    rotation = np.full((n, 3, 3), np.nan)
    translation = np.full((n, 3), np.nan)
    rotation[valid] = _rodrigues_np(rvecs[valid])
    translation[valid] = tvecs[valid]
    fit = PoseFit(float(focal), (float(principal[0]), float(principal[1])), shape, rotation, translation)
    err = np.linalg.norm(fit.project(valid, shape[rigid]) - obs[valid], axis=-1) / out_scale
    fit.stats = {"reprojection_median_px512": float(np.median(err)) if err.size else float("nan"),
                 "reprojection_p95_px512": float(np.percentile(err, 95)) if err.size else float("nan")}
    return fit


def shape_distance(shape: np.ndarray, reference: np.ndarray) -> float:
    """How far a face shape (478, 3) is from another once scale, rotation and position are taken
    out: RMS point distance after the best similarity fit, in units of the reference's outer eye
    corner span (measured: the same face in two parts of a video 0.0035-0.005; other people
    0.021-0.036)."""
    s, r, t = _umeyama(np.asarray(shape, np.float64), np.asarray(reference, np.float64))
    moved = s * shape @ r.T + t
    span = np.linalg.norm(reference[ids.EYE_CORNERS[3]] - reference[ids.EYE_CORNERS[0]])
    return float(np.sqrt(((moved - reference) ** 2).sum(-1).mean()) / span)


def _pnp_all(points: np.ndarray, obs: np.ndarray, valid: np.ndarray, focal: float,
             principal: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    n = len(obs)
    k = np.array([[focal, 0, principal[0]], [0, focal, principal[1]], [0, 0, 1]], dtype=np.float64)
    rvecs = np.zeros((n, 3))
    tvecs = np.zeros((n, 3))
    guess = None
    for i in np.flatnonzero(valid):
        if guess is None:
            ok, r, t = cv2.solvePnP(points, obs[i], k, None, flags=cv2.SOLVEPNP_SQPNP)
        else:
            ok, r, t = cv2.solvePnP(points, obs[i], k, None, rvec=guess[0].copy(), tvec=guess[1].copy(),
                                    useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
        if not ok or t[2, 0] <= 0:
            ok, r, t = cv2.solvePnP(points, obs[i], k, None, flags=cv2.SOLVEPNP_SQPNP)
        rvecs[i], tvecs[i] = r[:, 0], t[:, 0]
        guess = (r, t)
    # fill invalid frames (excluded from the loss) so the optimiser sees finite numbers
    for arr in (rvecs, tvecs):
        idx = np.flatnonzero(valid)
        for d in range(3):
            arr[:, d] = np.interp(np.arange(n), idx, arr[idx, d])
    return rvecs, tvecs


def _rodrigues_np(rvecs: np.ndarray) -> np.ndarray:
    return _rodrigues(torch.from_numpy(np.asarray(rvecs, dtype=np.float64))).numpy()


def _rodrigues(r: torch.Tensor) -> torch.Tensor:
    """Axis-angle (N, 3) -> rotation matrices (N, 3, 3), smooth at zero."""
    theta2 = (r * r).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2 + 1e-30)
    small = theta2 < 1e-12
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / (theta2 + 1e-30))
    zero = torch.zeros_like(r[:, 0])
    kx = torch.stack([zero, -r[:, 2], r[:, 1], r[:, 2], zero, -r[:, 0], -r[:, 1], r[:, 0], zero], -1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=r.dtype).expand_as(kx)
    return eye + a[..., None] * kx + b[..., None] * (kx @ kx)


def _bundle_adjust(shape, rigid, obs, valid, rvecs, tvecs, focal, principal, cfg: PoseConfig,
                   fixed_camera: bool = False):
    torch_dtype = torch.float64
    obs_t = torch.from_numpy(obs)
    valid_t = torch.from_numpy(valid)
    base = torch.from_numpy(shape[rigid])
    c = torch.tensor(principal, dtype=torch_dtype)
    log_f0 = float(np.log(focal))
    log_f = torch.tensor(log_f0, dtype=torch_dtype, requires_grad=not fixed_camera)
    d_shape = torch.zeros_like(base, requires_grad=not fixed_camera)
    r = torch.from_numpy(rvecs.copy()).requires_grad_(True)
    t = torch.from_numpy(tvecs.copy()).requires_grad_(True)
    # Pixel-equivalent lever arms for the smoothness term.
    face_radius = float(np.linalg.norm(shape[rigid], axis=1).mean())
    depth = float(np.median(tvecs[valid, 2]))
    px_per_rad = focal * face_radius / depth
    px_per_m = focal / depth
    triple = torch.from_numpy(valid[2:] & valid[1:-1] & valid[:-2])
    n_valid = max(int(valid.sum()), 1)
    params = [r, t] if fixed_camera else [log_f, d_shape, r, t]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=cfg.iterations, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        pts = base + d_shape
        rot = _rodrigues(r)
        cam = torch.einsum("nij,pj->npi", rot, pts) + t[:, None]
        proj = torch.exp(log_f) * cam[..., :2] / cam[..., 2:3].clamp_min(1e-6) + c
        res = (proj - obs_t)[valid_t]
        dist = torch.sqrt((res ** 2).sum(-1) + 1e-12)
        hub = torch.where(dist < cfg.huber_px, 0.5 * dist ** 2, cfg.huber_px * (dist - 0.5 * cfg.huber_px))
        loss = hub.sum() / n_valid
        if cfg.smooth_weight > 0 and len(r) > 2:
            d2r = (r[2:] - 2 * r[1:-1] + r[:-2])[triple] * px_per_rad
            d2t = (t[2:] - 2 * t[1:-1] + t[:-2])[triple] * px_per_m
            loss = loss + cfg.smooth_weight * ((d2r ** 2).sum() + (d2t ** 2).sum()) / n_valid
        loss = loss + cfg.shape_weight * ((d_shape * px_per_m) ** 2).sum() / len(rigid)
        loss = loss + cfg.focal_prior * len(rigid) * (log_f - log_f0) ** 2
        loss.backward()
        return loss

    opt.step(closure)
    new_shape = shape.copy()
    new_shape[rigid] = (base + d_shape).detach().numpy()
    return float(torch.exp(log_f.detach())), new_shape, r.detach().numpy(), t.detach().numpy()
