"""``nerfhead demo``: the whole studio on the shipped sample identity.

Today this processes the sample capture (QA sheet), trains the quick preset (head and torso) and
writes a preview of held-out test frames, real beside rendered; rendering new audio and the
evaluation report join as they land.
"""

from __future__ import annotations

import time
from pathlib import Path

from dataclasses import dataclass, field

from nerfhead.capture.pipeline import ProcessConfig, process_capture
from nerfhead.capture.summary import describe_identity
from nerfhead.config import load_yaml
from nerfhead.dataset import Identity
from nerfhead.log import console, get_logger
from nerfhead.train.data import load_training_data
from nerfhead.train.preview import write_preview
from nerfhead.train.run import TrainConfig, load_model, train_identity

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
    cfg = TrainConfig.load("quick")
    reports = train_identity(SAMPLE, "quick", root=root)
    times["train"] = time.perf_counter() - t0
    for r in reports:
        console.print(f"{r.stage}: step {r.result.step}, training PSNR {r.last_metrics.get('psnr', float('nan')):.2f} dB",
                      highlight=False)

    t0 = time.perf_counter()
    preview = ident.root / "model" / "preview.png"
    scores = write_preview(load_model(ident, "torso"), load_training_data(ident), preview, cfg.head.sampling)
    times["preview"] = time.perf_counter() - t0
    console.print(f"held-out test frames, full-frame PSNR: {', '.join(f'{s:.1f}' for s in scores)} dB", highlight=False)
    console.print("demo steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()), highlight=False)
    console.print(f"[green]look at[/] {ident.qa_dir / 'contact_sheet.png'}, {ident.qa_dir / 'tracks.png'} and {preview}")
    return ident
