"""Does a trained avatar open its mouth as far as it is asked? A sweep of the mouth input.

Renders test frames of an identity (their own pose, audio and blink; head over its real backdrop),
conditioned as a render conditions them (:func:`nerfhead.avatar.conditions.frame_conditions`), with
the field's mouth input set to the presenter's opening quantiles (5 % ... 95 % of the capture's
tracked openings), measures the rendered mouth with the landmarker, and prints asked
against measured opening (inner-lip gap / face height) with their correlation. With ``--image``
it also writes a strip of the mouths (rows: test frames, columns: asked opening). With ``--audio``
the audio codes come from speech frames of another clip instead (a foreign voice, as in a render):
an avatar whose mouth follows its mouth input keeps the same range. With ``--components`` (an avatar
whose mouth input has a lip-shape code, :mod:`nerfhead.field.lips`) it writes what each component
does: one row per component (the opening, then lip shape 1..K), that component swept over its
5-95 % quantiles in the capture while the others stay at their medians, on one test frame.

    python tools/mouth_sweep.py --identity cnn --frames 4 --image docs/images/mouth_sweep.jpg
    python tools/mouth_sweep.py --identity cnn --components docs/images/cnn_lip_components.jpg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nerfhead.audio import features_for  # noqa: E402
from nerfhead.audio.timeline import speech_mask  # noqa: E402
from nerfhead.avatar.drive import DrivingAudio  # noqa: E402
from nerfhead.avatar.load import load_avatar  # noqa: E402
from nerfhead.avatar.sequence import PoseTrack, render_frames  # noqa: E402
from nerfhead.dataset import Identity, mouth_opening  # noqa: E402
from nerfhead.eval.metrics import measure_landmarks, pearson  # noqa: E402
from nerfhead.eval.strips import QUANTILES, lip_component_strip, speaking_frame  # noqa: E402
from nerfhead.io.images import write_rgb  # noqa: E402
from nerfhead.train.data import load_training_data  # noqa: E402



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identity", default="cnn")
    ap.add_argument("--frames", type=int, default=4, help="test frames to sweep (spread over the test split)")
    ap.add_argument("--checkpoint", default=None, help="a stage checkpoint (default: the finished avatar)")
    ap.add_argument("--audio", type=Path, default=None,
                    help="take the audio codes from speech frames of this clip (default: each test frame's own)")
    ap.add_argument("--image", type=Path, default=None, help="write the mouth strip here (.jpg/.png)")
    ap.add_argument("--components", type=Path, default=None,
                    help="write a strip per mouth-input component here (.jpg/.png)")
    ap.add_argument("--root", default=None, help="identities folder")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ident = Identity.at(args.identity, args.root)
    avatar = load_avatar(ident, args.checkpoint)
    model = avatar.model
    if model.mouth_track is None:
        sys.exit(f"{avatar.checkpoint} was trained without the mouth input")
    data = load_training_data(ident, model.extractor)
    scale = data.mouth_scale  # opening units per field unit
    levels = np.quantile(data.mouth.numpy()[data.train_frames], QUANTILES)
    picks = [data.test_frames[int(j)] for j in np.linspace(0, len(data.test_frames) - 1, args.frames)]
    audio, sources = data.audio, picks
    if args.audio:  # speech frames spread over the clip, one per test frame
        feats = features_for(args.audio, extractor=model.extractor)
        audio = DrivingAudio.of(feats)
        speech = np.flatnonzero(speech_mask(feats, feats.n_video_frames))
        if not len(speech):
            sys.exit(f"no speech heard in {args.audio}")
        sources = [int(speech[int(j)]) for j in np.linspace(0, len(speech) - 1, args.frames + 2)[1:-1]]
    # every (test frame, level) pair is one frame of the sequence: its pose, blink and backdrop are the
    # test frame's, its audio the source frame's, its mouth input the level
    pairs = [(i, source, level) for i, source in zip(picks, sources) for level in levels]
    frames = [p[0] for p in pairs]
    renders = list(render_frames(avatar, audio, [p[1] for p in pairs], PoseTrack.of_capture(ident.tracks(), frames),
                                 data.blink[frames].numpy(), np.asarray(data.store.background),
                                 backdrop=lambda j: data.backdrop(frames[j]),
                                 mouth=np.array([p[2] for p in pairs], np.float32), chunk_frames=1))
    asked = [p[2] * scale for p in pairs]
    measured = mouth_opening(measure_landmarks(renders))
    asked = np.asarray(asked)
    print(f"{avatar.checkpoint} (step {avatar.step}); test frames {picks}; audio codes of "
          + (f"{args.audio.name} frames {sources}" if args.audio else "the test frames"))
    print("capture quantile | asked opening | measured, per test frame")
    for k, q in enumerate(QUANTILES):
        row = measured[k::len(levels)]
        print(f"  {q:4.0%}  {levels[k] * scale:.4f}  " + "  ".join(f"{v:.4f}" for v in row))
    print(f"asked ~ measured: r = {pearson(asked, measured):+.3f}; measured range "
          f"{np.nanmin(measured):.4f}-{np.nanmax(measured):.4f} for asked {asked.min():.4f}-{asked.max():.4f}")
    if args.components:
        if model.mouth_dim < 2:
            sys.exit(f"{avatar.checkpoint} has no lip-shape code in its mouth input (trained before it)")
        write_rgb(args.components, lip_component_strip(avatar, data, speaking_frame(data, data.test_frames)))
        print(f"wrote {args.components} (rows: the opening, then lip shape 1..{model.mouth_dim - 1}; first column "
              f"the real frame, then that component at the capture's {', '.join(f'{q:.0%}' for q in QUANTILES)} "
              "quantiles, the others at their medians)")
    if args.image:
        size = max(8, int(round(0.16 * data.store.width)))
        rows = []
        for r, i in enumerate(picks):
            x0, y0, x1, y1 = data.mouth_box(i, size)
            crops = [renders[r * len(levels) + c][y0:y1, x0:x1] for c in range(len(levels))]
            real = np.asarray(data.store.frames[i])[y0:y1, x0:x1]
            rows.append(np.concatenate([real] + crops, 1))
        write_rgb(args.image, np.concatenate(rows, 0))
        print(f"wrote {args.image} (columns: real test frame, then asked openings at quantiles "
              f"{', '.join(f'{q:.0%}' for q in QUANTILES)})")


if __name__ == "__main__":
    main()
