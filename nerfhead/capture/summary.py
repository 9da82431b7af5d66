"""Human-readable summary of a processed identity (``nerfhead info``)."""

from __future__ import annotations

from pathlib import Path

from nerfhead.dataset import Identity


def describe_identity(name: str, root: str | Path | None = None) -> str:
    ident = Identity.at(name, root)
    m = ident.manifest()
    q = m["quality"]
    cam = m["camera"]
    split = m["split"]
    lines = [
        f"identity     {m['name']}  ({ident.root})",
        f"source       {m['source']['path']}  {m['source']['width']}x{m['source']['height']} "
        f"{m['source']['source_fps']:.2f} fps, {m['source']['duration']:.1f} s",
        f"frames       {m['n_frames']} at {m['fps']:g} fps, {m['image']['width']}x{m['image']['height']}",
        f"split        {len(split['train'])} train, {len(split['test'])} test (from frame {split['test_start']}), "
        f"{len(m['no_face_frames'])} without a face",
        f"camera       focal {cam['fx']:.1f} px, principal point ({cam['cx']:.1f}, {cam['cy']:.1f})",
        f"tracking     face on {100 * q['face_coverage']:.2f}% of frames; reprojection median "
        f"{q['reprojection_median_px512']:.2f} px (p95 {q['reprojection_p95_px512']:.2f}) at 512 px",
        f"stability    rotation jitter median {q['rotation_jitter_median_deg']:.3f} deg/frame "
        f"(p95 {q['rotation_jitter_p95_deg']:.3f})",
        f"background   {q['background_error_mae']:.2f}/255 mean abs error ({q['background_error_psnr_db']:.1f} dB) "
        f"on never-covered pixels",
        f"QA           {ident.root / m['qa']['contact_sheet']}, {ident.root / m['qa']['tracks_plot']}",
        "timings      " + ", ".join(f"{k} {v:.1f} s" for k, v in m["timings_s"].items())
        + f"  (total {sum(m['timings_s'].values()):.1f} s)",
    ]
    if m["warnings"]:
        lines.append("warnings     " + "; ".join(m["warnings"]))
    return "\n".join(lines)
