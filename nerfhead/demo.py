"""``nerfhead demo``: the whole studio on the shipped sample identity.

Processes the sample capture (QA sheet), trains the quick preset (head, lips, torso), renders
the avatar saying a sentence (spoken by the default voice: piper's natural English voice, else
espeak-ng; with neither installed, a shipped speech clip),
evaluates it (report.html) and prints where everything is, with the time of each step.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from dataclasses import dataclass, field

from nerfhead.capture.pipeline import ProcessConfig, process_capture
from nerfhead.capture.summary import describe_identity
from nerfhead.avatar.load import load_avatar
from nerfhead.config import load_yaml
from nerfhead.dataset import Identity
from nerfhead.eval.protocol import evaluate_identity, summary
from nerfhead.log import console, get_logger
from nerfhead.render.driven import AvatarRenderer, RenderOptions, default_composite
from nerfhead.train.data import load_training_data
from nerfhead.train.preview import write_preview
from nerfhead.train.run import train_identity

log = get_logger(__name__)
REPO = Path(__file__).resolve().parents[1]
SAMPLE = "obama"


@dataclass
class SampleIdentity:
    """identities/NAME/identity.yaml: how to build a shipped identity."""

    capture: str = "capture.mp4"
    process: dict = field(default_factory=dict)


def run_demo(root: str | Path | None = None) -> Identity:
    """Process the shipped sample (reusing a finished run) and print where the results are."""
    shipped = REPO / "identities" / SAMPLE
    spec = load_yaml(SampleIdentity, shipped / "identity.yaml")
    ident = Identity.at(SAMPLE, root)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    if ident.is_processed():
        log.info("sample identity already processed at %s (delete it or use `process --force` to redo)", ident.root)
    else:
        cfg = ProcessConfig.load(None, spec.process)
        process_capture(shipped / spec.capture, SAMPLE, cfg, root=root)
    times["process"] = time.perf_counter() - t0
    console.print(describe_identity(SAMPLE, root), highlight=False, markup=False, soft_wrap=True)

    t0 = time.perf_counter()
    reports = train_identity(SAMPLE, "quick", root=root)
    times["train"] = time.perf_counter() - t0
    for r in reports:
        console.print(f"{r.stage}: step {r.result.step}, training PSNR {r.last_metrics.get('psnr', float('nan')):.2f} dB",
                      highlight=False)

    t0 = time.perf_counter()
    preview = ident.root / "model" / "preview.png"
    scores = write_preview(avatar := load_avatar(ident), load_training_data(ident, avatar.model.extractor), preview)
    times["preview"] = time.perf_counter() - t0
    console.print(f"held-out test frames, full-frame PSNR: {', '.join(f'{s:.1f}' for s in scores)} dB", highlight=False)

    t0 = time.perf_counter()
    video = ident.root / "demo.mp4"
    renderer = AvatarRenderer(SAMPLE, root)
    feats, audio_file = _demo_speech(renderer)
    result = renderer.render(feats, audio_file, video, RenderOptions(duration=DEMO_SECONDS,
                                                                    composite=default_composite(None, 1.0)))
    times["render"] = time.perf_counter() - t0
    console.print(f"rendered {result.frames} frames in {result.seconds:.1f} s ({result.fps:.2f} frames/s)", highlight=False)

    t0 = time.perf_counter()
    if feats.source == "text":  # the spoken sentence, cached under a hash: a name the report can show
        audio_file = Path(shutil.copyfile(audio_file, ident.root / "demo_speech.wav"))
    report, html = evaluate_identity(SAMPLE, root=root, audio=[audio_file], cross_seconds=DEMO_SECONDS,
                                     max_frames=DEMO_TEST_FRAMES)
    times["evaluate"] = time.perf_counter() - t0
    console.print(summary(report), highlight=False, markup=False, soft_wrap=True)
    console.print("demo steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
                  + f" (total {sum(times.values()) / 60:.1f} min)", highlight=False)
    console.print(f"[green]look at[/] the video {video}\n  the report {html}\n  the QA sheet "
                  f"{ident.qa_dir / 'contact_sheet.png'} and the preview {preview}", soft_wrap=True)
    return ident


DEMO_SECONDS = 5.0  # at most this much of the speech is rendered
DEMO_TEST_FRAMES = 25  # held-out frames the demo's evaluation scores (all 50: `nerfhead eval obama`)
DEMO_TEXT = "Hello! I am a talking head, trained in a few minutes. I can say anything you type."


def _demo_speech(renderer):
    """The demo's sentence spoken by the default voice, or (with no TTS installed) the shipped
    capture's audio."""
    from nerfhead.audio.voices import piper_voices

    if piper_voices() or shutil.which("espeak-ng"):
        return renderer.features(text=DEMO_TEXT)
    log.warning("no TTS voice is installed (piper or espeak-ng): the demo speaks with the sample capture's own "
                "audio instead")
    return renderer.features(REPO / "identities" / SAMPLE / "capture.mp4")
