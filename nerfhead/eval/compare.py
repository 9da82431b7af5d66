"""``nerfhead compare``: the evaluation metrics of several avatars or checkpoints side by side.

Each item is an identity name (its ``identities/NAME/eval/report.json``), a ``report.json`` (or a
folder holding one), or a checkpoint file ``identities/NAME/model/STAGE.pt`` (evaluated first
into ``identities/NAME/eval/STAGE``). The first item is the reference: every other column also
shows its difference, and whether that is better or worse.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from nerfhead.dataset import Identity
from nerfhead.errors import InputError
from nerfhead.eval import report as page
from nerfhead.io.files import write_atomic


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    get: Callable[[dict], float]


def _cross_mean(field: str) -> Callable[[dict], float]:
    def get(r: dict) -> float:
        vals = [c[field] for c in r.get("crossdriven", []) if c.get(field) is not None and np.isfinite(c[field])]
        return float(np.mean(vals)) if vals else float("nan")

    return get


def _ours(field: str) -> Callable[[dict], float]:
    return lambda r: float(r["selfdriven"]["scores"]["ours"][field])


METRICS: tuple[Metric, ...] = (
    Metric("psnr", "PSNR (dB)", True, _ours("psnr")),
    Metric("ssim", "SSIM", True, _ours("ssim")),
    Metric("face_psnr", "face PSNR (dB)", True, _ours("face_psnr")),
    Metric("face_ssim", "face SSIM", True, _ours("face_ssim")),
    Metric("lmd", "LMD (px@512)", False, _ours("lmd")),
    Metric("mouth_corr", "mouth corr", True, _ours("mouth_corr")),
    Metric("lmd_silent", "LMD, silent audio (higher: audio matters)", True,
           lambda r: float(r["selfdriven"]["audio_check"]["silent"]["lmd"])),
    Metric("jitter", "landmark jitter (px@512)", False, lambda r: float(r["temporal"]["ours"]["landmark_jitter_px"])),
    Metric("flicker", "background flicker (/255)", False, lambda r: float(r["temporal"]["ours"]["background_flicker"])),
    Metric("cross_corr", "other audio: opening~loudness r", True, _cross_mean("loudness_corr")),
    Metric("cross_margin", "other audio: /p b m/ margin", True, _cross_mean("bilabial_margin")),
    Metric("cross_silence", "other audio: opening in silence", False, _cross_mean("silence_opening")),
    Metric("render_fps", "render frames/s", True, lambda r: float(r["speed"]["render_fps_test_frames"])),
)


@dataclass
class Item:
    label: str
    report: dict
    path: Path


def load_item(spec: str, root: str | Path | None = None, evaluate: Callable[..., tuple[dict, Path]] | None = None) -> Item:
    p = Path(spec)
    if p.suffix == ".pt":
        if not p.is_file():
            raise InputError(f"checkpoint not found: {p}")
        name = p.resolve().parent.parent.name
        if evaluate is None:
            from nerfhead.eval.protocol import evaluate_identity as evaluate
        report, html_path = evaluate(name, checkpoint=p, root=root, out_dir=Identity.at(name, root).root / "eval" / p.stem)
        return Item(f"{name}:{p.stem}", report, html_path.with_suffix(".json"))
    if p.is_dir():
        p = p / "report.json"
    if p.suffix != ".json":
        ident = Identity.at(spec, root)
        p = ident.root / "eval" / "report.json"
        if not p.is_file():
            raise InputError(f"no evaluation of '{spec}' yet ({p}): run `nerfhead eval {spec}` first")
    if not p.is_file():
        raise InputError(f"report not found: {p}")
    try:
        report = json.loads(p.read_text())
        report["selfdriven"]["scores"]["ours"]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{p} is not a nerfhead report.json") from None
    label = spec if not spec.endswith(".json") else f"{report.get('identity', '?')}:{p.parent.name}"
    return Item(label, report, p)


def compare(items: Sequence[Item]) -> dict:
    """{"items": [...], "metrics": [{key, label, higher_is_better, values, deltas, better}]}."""
    rows = []
    for m in METRICS:
        values = []
        for it in items:
            try:
                values.append(m.get(it.report))
            except (KeyError, TypeError, IndexError):
                values.append(float("nan"))
        ref = values[0]
        deltas = [v - ref for v in values]
        better = [None if not (np.isfinite(d) and d != 0) else bool((d > 0) == m.higher_is_better) for d in deltas]
        rows.append({"key": m.key, "label": m.label, "higher_is_better": m.higher_is_better, "values": values,
                     "deltas": deltas, "better": better})
    return {"items": [{"label": it.label, "report": str(it.path)} for it in items], "metrics": rows}


def table(result: dict) -> str:
    labels = [i["label"] for i in result["items"]]
    width = max(12, *(len(x) for x in labels))
    lines = [f"{'metric':<44}" + "".join(f"{x:>{width + 2}}" for x in labels)]
    for row in result["metrics"]:
        cells = []
        for k, (v, d, b) in enumerate(zip(row["values"], row["deltas"], row["better"])):
            txt = page.fmt(v)
            if k and np.isfinite(d):
                txt += f" ({d:+.2f}{'' if b is None else (' better' if b else ' worse')})"
            cells.append(f"{txt:>{width + 2}}")
        lines.append(f"{row['label']:<44}" + "".join(cells))
    return "\n".join(lines)


def write_comparison(specs: Sequence[str], out_dir: str | Path, root: str | Path | None = None) -> tuple[dict, Path]:
    """Compare the items; write ``compare.json`` and ``compare.html`` into ``out_dir``."""
    if len(specs) < 2:
        raise InputError("give at least two identities, reports or checkpoints to compare")
    items = [load_item(s, root) for s in specs]
    result = compare(items)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "compare.json", json.dumps(result, indent=1))
    head = "".join(f"<th>{html.escape(i['label'])}</th>" for i in result["items"])
    body = []
    for row in result["metrics"]:
        cells = []
        for k, (v, d, b) in enumerate(zip(row["values"], row["deltas"], row["better"])):
            extra = ""
            if k and np.isfinite(d):
                cls = "" if b is None else (' class="met"' if b else ' class="miss"')
                extra = f" <span{cls}>({d:+.3f})</span>"
            cells.append(f"<td>{page.fmt(v)}{extra}</td>")
        arrow = "&uarr;" if row["higher_is_better"] else "&darr;"
        body.append(f"<tr><td>{html.escape(row['label'])} {arrow}</td>{''.join(cells)}</tr>")
    sources = "".join(f"<li>{html.escape(i['label'])}: <code>{html.escape(i['report'])}</code></li>"
                      for i in result["items"])
    inner = (f"<table><thead><tr><th>metric (&uarr; higher is better)</th>{head}</tr></thead><tbody>{''.join(body)}"
             f"</tbody></table><p class=\"note\">Differences are against the first column; green is better.</p>"
             f"<ul>{sources}</ul>")
    html_path = write_atomic(out / "compare.html", page.html_page("nerfhead comparison", [("Metrics", inner)]))
    return result, html_path
