"""Held-out frames of one identity rendered in full mode by several avatars, side by side: the whole
frame and the neck and collar enlarged, with each avatar's PSNR by region on those frames.

    python tools/collar_strip.py --identity cnn --root DIR \
        --avatar before=OLD/torso.pt --avatar after=DIR/cnn/model/torso.pt -o docs/images/cnn_collar.jpg

Each ``--avatar LABEL=CHECKPOINT`` is a finished (torso-stage) checkpoint of this identity. The frames
are spread over the test split; every avatar renders them as the evaluation does (their own pose,
audio and blink, the torso field over the plate). The collar crop is the neck/collar band of the
first frame's regions (nerfhead/eval/regions.py), as a square grown around it, shown as large as
the whole frame beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from nerfhead.avatar.drive import capture_audio
from nerfhead.avatar.load import load_avatar
from nerfhead.dataset import Identity
from nerfhead.eval.regions import REGIONS, frame_regions, region_psnr
from nerfhead.eval.selfdriven import HeldOutRenders
from nerfhead.io.images import caption, read_labels, write_rgb
from nerfhead.quality import psnr
from nerfhead.train.data import load_training_data


def collar_box(regions: np.ndarray, grow: float = 0.6) -> tuple[slice, slice]:
    """A square around the neck/collar band: centred on it, its side the band's height grown by
    ``grow`` of it on each side (clipped to the frame)."""
    ys, xs = np.nonzero(regions == REGIONS.index("neck_collar"))
    h, w = regions.shape
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    half = (1 + 2 * grow) * np.ptp(ys) / 2
    y0, x0 = int(np.clip(cy - half, 0, h - 1)), int(np.clip(cx - half, 0, w - 1))
    return slice(y0, min(h, int(cy + half) + 1)), slice(x0, min(w, int(cx + half) + 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identity", default="cnn")
    ap.add_argument("--root", default=None)
    ap.add_argument("--avatar", action="append", required=True, help="LABEL=CHECKPOINT (repeatable)")
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--height", type=int, default=256, help="height of each whole-frame tile")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    ident = Identity.at(args.identity, args.root)
    data = load_training_data(ident)
    test = list(data.test_frames)
    picks = [test[int(k)] for k in np.linspace(0, len(test) - 1, args.frames + 2)[1:-1]]
    tracks = ident.tracks()
    reals = [np.asarray(data.store.frames[i]) for i in picks]
    regions = [frame_regions(read_labels(ident.mask_path(i)), tracks["landmarks"][i]) for i in picks]
    box = collar_box(regions[0])
    columns: dict[str, list[np.ndarray]] = {"real": reals}
    for spec in args.avatar:
        label, _, path = spec.partition("=")
        avatar = load_avatar(ident, Path(path))
        audio = capture_audio(ident, avatar.model.extractor)[1]
        renders = HeldOutRenders(avatar, data, picks).render(audio, f"render {label}")
        columns[label] = [renders[i] for i in picks]
        scores = [region_psnr(r, f, reg) for r, f, reg in zip(reals, columns[label], regions)]
        by_region = "  ".join(f"{k} {np.nanmean([s[k] for s in scores]):5.2f}" for k in REGIONS)
        print(f"{label:>10}: frame {np.mean([psnr(r, f) for r, f in zip(reals, columns[label])]):5.2f}  {by_region}")
    rows = []
    for j in range(len(picks)):
        tiles = []
        for label, images in columns.items():
            img = images[j]
            scale = args.height / img.shape[0]
            whole = cv2.resize(img, (round(img.shape[1] * scale), args.height), interpolation=cv2.INTER_AREA)
            crop = img[box]
            zoom = cv2.resize(crop, (round(crop.shape[1] * args.height / crop.shape[0]), args.height),
                              interpolation=cv2.INTER_CUBIC)
            tiles.append(np.hstack([caption(whole, label), zoom]))
        rows.append(np.hstack(tiles))
    write_rgb(args.out, np.vstack(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
