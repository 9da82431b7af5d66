"""Which field makes the full composite's error below the chin: the head field's opacity there, or
the torso field's colours?

    python tools/composite_sources.py --identity cnn [--root DIR] [--frames 25]

On held-out test frames (every 4th, their own pose, audio and blink, as the evaluation renders
them) it prints the head field's mean opacity on each region of the real frame
(nerfhead/eval/regions.py: face, neck and collar outside the head label, torso, background), and
PSNR on the neck/collar band and on the torso of the torso field alone (over the plate) beside the
full composite (head over it): where the composite scores no better than the torso field alone, the
error is the torso field's. For the torso field it adds its mean alpha on the pixels labelled torso
and background (a torso alpha well below 1 mixes the plate into the clothes: a white shirt renders
grey), and (``--fit-code``) PSNR with a frame code fitted to each held-out frame's real pixels: an
upper bound no render has, which tells torso motion the pose does not predict from a field that
cannot draw the clothes.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from nerfhead.avatar.drive import capture_audio
from nerfhead.avatar.frame import render_frame, torso_alpha, torso_backdrop
from nerfhead.avatar.load import load_avatar
from nerfhead.avatar.sequence import PoseTrack, conditioned_frames, pose_backdrop
from nerfhead.dataset import BACKGROUND, HEAD, TORSO, Identity
from nerfhead.field.torso import pixel_coords
from nerfhead.eval.regions import REGIONS, frame_regions
from nerfhead.io.images import read_labels, read_rgb
from nerfhead.quality import psnr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identity", default="cnn")
    ap.add_argument("--root", default=None)
    ap.add_argument("--frames", type=int, default=25)
    ap.add_argument("--fit-code", action="store_true", help="also fit a torso code to each frame (slower)")
    args = ap.parse_args()
    ident = Identity.at(args.identity, args.root)
    avatar = load_avatar(ident)
    model = avatar.model
    tracks = ident.tracks()
    test = ident.manifest()["split"]["test"][::4][: args.frames]
    poses = PoseTrack.of_capture(tracks, test)
    c2w = poses.camera_to_head.astype(np.float32)
    plate = read_rgb(ident.background_path)
    eye = np.nan_to_num(tracks["blink"][test]).astype(np.float32)
    rows: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(value)

    with torch.no_grad():
        for j, cond in conditioned_frames(avatar, capture_audio(ident, avatar.model.extractor)[1], np.asarray(test), eye):
            i = test[j]
            real, labels = read_rgb(ident.frame_path(i)), read_labels(ident.mask_path(i))
            regions = frame_regions(labels, tracks["landmarks"][i])
            torso_only = pose_backdrop(model, poses, j, plate)
            full = render_frame(model, c2w[j], model.intrinsics, torso_only, cond, avatar.sampling)
            neck = (regions == REGIONS.index("neck_collar")) & (labels != HEAD)
            torso = regions == REGIONS.index("torso")
            for name, where in (("face", regions == REGIONS.index("face")), ("neck/collar", neck), ("torso", torso),
                                ("background", regions == REGIONS.index("background"))):
                add(f"head opacity on {name}", float(full.opacity[where].mean()))
            alpha = torso_alpha(model, *pose_tensors(poses, j)).numpy()
            add("torso alpha on torso label", float(alpha[labels == TORSO].mean()))
            add("torso alpha on background label", float(alpha[labels == BACKGROUND].mean()))
            fitted = fitted_code_frame(model, poses, j, plate, real, neck | torso) if args.fit_code else None
            for name, where in (("neck/collar", neck), ("torso", torso)):
                add(f"PSNR {name}: torso field alone", psnr(real, torso_only, where))
                add(f"PSNR {name}: full composite", psnr(real, full.rgb, where))
                if fitted is not None:
                    add(f"PSNR {name}: torso alone, fitted code", psnr(real, fitted, where))
    print(f"{ident.name}: {len(test)} test frames, checkpoint {avatar.checkpoint}")
    for key, values in rows.items():
        print(f"  {key:<40} {np.mean(values):8.4f}")


def pose_tensors(poses: PoseTrack, j: int) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(poses.rotation[j].astype(np.float32)),
            torch.from_numpy(poses.translation[j].astype(np.float32)))


def fitted_code_frame(model, poses: PoseTrack, j: int, plate: np.ndarray, real: np.ndarray, where: np.ndarray,
                      steps: int = 60) -> np.ndarray:
    """The torso field over the plate with a frame code fitted (Adam) to ``real`` on ``where``."""
    torso = model.torso
    rotation, translation = pose_tensors(poses, j)
    pose = torso.anchor_positions(rotation[None], translation[None], model.intrinsics)
    h, w = model.meta.image_size
    ys, xs = np.nonzero(where)
    xy = pixel_coords(torch.from_numpy(np.stack([xs, ys], 1)), h, w)
    target = torch.from_numpy(real[ys, xs].astype(np.float32) / 255)
    behind = torch.from_numpy(plate[ys, xs].astype(np.float32) / 255)
    code = torso.neutral_code(1).detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([code], lr=0.05)
    with torch.enable_grad():
        for _ in range(steps):
            rgb, a = torso.for_frame(pose, code)(xy)
            loss = ((rgb * a[:, None] + behind * (1 - a[:, None]) - target) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return torso_backdrop(model, rotation, translation, plate, code=code.detach())


if __name__ == "__main__":
    main()
