"""Which field makes the full composite's error below the chin: the head field's opacity there, or
the torso field's colours?

    python tools/composite_sources.py --identity cnn [--root DIR] [--frames 25]

On held-out test frames (every 4th, their own pose, audio and blink, as the evaluation renders
them) it prints the head field's mean opacity on each region of the real frame
(nerfhead/eval/regions.py: face, neck and collar outside the head label, torso, background), and
PSNR on the neck/collar band and on the torso of the torso field alone (over the plate) beside the
full composite (head over it): where the composite scores no better than the torso field alone, the
error is the torso field's.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from nerfhead.avatar.drive import capture_audio
from nerfhead.avatar.frame import render_frame
from nerfhead.avatar.load import load_avatar
from nerfhead.avatar.sequence import PoseTrack, conditioned_frames, pose_backdrop
from nerfhead.dataset import HEAD, Identity
from nerfhead.eval.regions import REGIONS, frame_regions
from nerfhead.io.images import read_labels, read_rgb
from nerfhead.quality import psnr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identity", default="cnn")
    ap.add_argument("--root", default=None)
    ap.add_argument("--frames", type=int, default=25)
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
        for j, cond in conditioned_frames(avatar, capture_audio(ident)[1], np.asarray(test), eye):
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
            for name, where in (("neck/collar", neck), ("torso", torso)):
                add(f"PSNR {name}: torso field alone", psnr(real, torso_only, where))
                add(f"PSNR {name}: full composite", psnr(real, full.rgb, where))
    print(f"{ident.name}: {len(test)} test frames, checkpoint {avatar.checkpoint}")
    for key, values in rows.items():
        print(f"  {key:<40} {np.mean(values):8.4f}")


if __name__ == "__main__":
    main()
