"""``nerfhead batch``: many renders from one job list, in this process or on Ray workers, resumable.

Each job renders (or dubs) with an avatar that its process loaded once (:class:`Renderers`). With
one worker and no Ray address the jobs run here, one after another; otherwise on Ray
(:mod:`nerfhead.batch.cluster`): a local instance started for the run, or a running cluster.
Outputs appear whole (a temporary file renamed), each followed by its record in ``.batch/``; a
rerun skips the jobs whose output is complete. A job that fails is reported with its one-line
error and the others go on.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from nerfhead.avatar.load import checkpoint_path
from nerfhead.batch.jobs import RECORDS, BatchJob, is_complete, job_key, load_jobs, write_record
from nerfhead.dataset import Identity
from nerfhead.errors import InputError, NerfheadError
from nerfhead.log import get_logger
from nerfhead.render.driven import AvatarRenderer, RenderOptions, default_composite

log = get_logger(__name__)
RENDER_BARS = ("render", "dub")  # the progress bars whose steps are output frames


@dataclass
class BatchReport:
    done: list[tuple[BatchJob, dict]] = field(default_factory=list)
    skipped: list[BatchJob] = field(default_factory=list)  # complete from an earlier run
    failed: list[tuple[BatchJob, str]] = field(default_factory=list)
    seconds: float = 0.0  # the whole run, start-up included
    startup: float = 0.0  # of which starting Ray and its workers (0 in-process)
    workers: int = 1
    threads: int = 1

    @property
    def frames(self) -> int:
        return sum(int(s.get("frames", 0)) for _, s in self.done)


class Renderers:
    """The avatars one process has loaded, by identity (each loaded once, on first use)."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = root
        self._loaded: dict[str, AvatarRenderer] = {}

    def get(self, name: str) -> AvatarRenderer:
        if name not in self._loaded:
            self._loaded[name] = AvatarRenderer(name, self.root, torso=False)
        return self._loaded[name]


def execute(job: BatchJob, renderers: Renderers, out: Path, label: str = "render") -> dict:
    """Render (or dub) one job to ``out`` (written whole); a summary of what was made."""
    from nerfhead.render.dub import DubOptions, dub_video

    renderer = renderers.get(job.identity)
    if job.kind == "dub":
        r = dub_video(job.identity, job.video, out, audio=job.audio, text=job.text, voice=job.voice,
                      opts=DubOptions(own_voice=job.own_voice), renderer=renderer)
        return {"kind": "dub", "frames": r.frames, "seconds": round(sum(r.seconds.values()), 2)}
    opts = RenderOptions(start=job.start, duration=job.duration,
                         composite=job.composite or default_composite(None, 1.0), own_voice=job.own_voice)
    feats, audio_file = renderer.features(job.speech, text=job.text, voice=job.voice)
    r = renderer.render(feats, audio_file, out, opts, label=label)
    return {"kind": "render", "frames": r.frames, "seconds": round(r.seconds, 2)}


def untrained(job: BatchJob, root: str | Path | None) -> str | None:
    """The one-line reason a job's identity cannot render, checked before any worker starts."""
    ident = Identity.at(job.identity, root)
    if not ident.is_processed():
        return f"identity '{job.identity}' not found in {ident.root.parent}"
    if not checkpoint_path(ident, "torso").is_file():
        return f"identity '{job.identity}' is not trained yet: run `nerfhead train {job.identity}`"
    return None


def remove_stale_temporaries(out_dir: Path) -> None:
    """Temporaries of a run that was killed (a render's partial mp4 beside its output)."""
    for tmp in out_dir.glob(".*.tmp.mp4"):
        tmp.unlink(missing_ok=True)


def default_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def run_batch(jobs_file: str | Path, out_dir: str | Path, workers: int = 1, threads: int | None = None,
              ray_address: str | None = None, root: str | Path | None = None) -> BatchReport:
    """Run the jobs of ``jobs_file`` into ``out_dir``; see the module's docstring."""
    if workers < 1:
        raise InputError(f"--workers must be at least 1, not {workers}")
    threads = threads or default_threads(workers)
    if threads < 1:
        raise InputError(f"--threads must be at least 1, not {threads}")
    jobs = load_jobs(jobs_file)
    out_dir = Path(out_dir)
    with output_lock(out_dir):
        return _run_jobs(jobs, out_dir, workers, threads, ray_address, root)


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """One batch at a time per output folder (a second one would take the first's outputs as its own)."""
    (out_dir / RECORDS).mkdir(parents=True, exist_ok=True)
    with open(out_dir / RECORDS / "lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another batch is writing to {out_dir}; wait for it or choose another -o") from None
        yield


def _run_jobs(jobs: list[BatchJob], out_dir: Path, workers: int, threads: int, ray_address: str | None,
              root) -> BatchReport:
    remove_stale_temporaries(out_dir)
    report = BatchReport(workers=workers, threads=threads)
    todo: list[tuple[BatchJob, str]] = []
    for job in jobs:
        why = untrained(job, root)
        if why:
            report.failed.append((job, why))
            continue
        key = job_key(job, root)
        if is_complete(out_dir, job, key):
            report.skipped.append(job)
        else:
            todo.append((job, key))
    if report.skipped:
        log.info("%d of %d outputs already complete in %s: skipped", len(report.skipped), len(jobs), out_dir)
    t0 = time.perf_counter()
    if todo:
        if workers == 1 and ray_address is None:  # ("local" asks for a local Ray even for one worker)
            _run_here(todo, out_dir, threads, root, report)
        else:
            from nerfhead.batch.cluster import run_on_ray

            run_on_ray(todo, out_dir, workers, threads, ray_address, root, report)
    report.seconds = time.perf_counter() - t0
    report.failed.sort(key=lambda f: f[0].row)
    return report


def _run_here(todo, out_dir: Path, threads: int, root, report: BatchReport) -> None:
    import torch

    torch.set_num_threads(threads)
    renderers = Renderers(root)
    for k, (job, key) in enumerate(todo):
        try:
            summary = execute(job, renderers, out_dir / job.output, label=f"[{k + 1}/{len(todo)}] {job.output}")
        except NerfheadError as exc:
            log.error("job %d (%s): %s", job.row, job.output, exc)
            report.failed.append((job, str(exc)))
            continue
        write_record(out_dir, job, key, summary)
        report.done.append((job, summary))
