"""Batch jobs on Ray: one renderer per worker (an actor), each loading an avatar once.

What crosses the network: each identity once per worker (its checkpoint and the processed data a
render reads: tracks, background plate, and the capture frames that portrait mode replays), packed
into one object; each job's input files in (audio, video) and its mp4 out. The driver writes every
output whole, then its record, so a driver or worker that dies leaves nothing half-written and a
rerun renders only what is missing. Workers need nerfhead installed (the same version); they build
the kernels on first use, as any nerfhead does.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from nerfhead.avatar.load import checkpoint_path
from nerfhead.batch.jobs import BatchJob, write_record
from nerfhead.dataset import Identity
from nerfhead.errors import InputError, NerfheadError
from nerfhead.io.files import write_atomic
from nerfhead.log import get_logger, progress

log = get_logger(__name__)
#: what a render reads of an identity folder (frames: only for portrait mode, the default)
IDENTITY_FILES = ("manifest.json", "tracks.npz", "background.png")
POLL_SECONDS = 0.5


def pack_identity(ident: Identity, frames: bool) -> bytes:
    """The files a render of ``ident`` reads, as one uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in IDENTITY_FILES:
            tar.add(ident.root / name, arcname=name)
        ckpt = checkpoint_path(ident, "torso")
        tar.add(ckpt, arcname=ckpt.relative_to(ident.root).as_posix())
        if frames:
            tar.add(ident.frames_dir, arcname=ident.frames_dir.relative_to(ident.root).as_posix())
    return buf.getvalue()


def unpack_identity(data: bytes, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(folder, filter="data")


class RenderWorker:
    """One renderer (a Ray actor): avatars unpacked and loaded once, jobs rendered one at a time."""

    def __init__(self, threads: int) -> None:
        import torch

        os.environ["NERFHEAD_PROGRESS"] = "0"  # the driver shows the progress
        torch.set_num_threads(threads)
        self.tmp = Path(tempfile.mkdtemp(prefix="nerfhead-batch-"))
        self.root = self.tmp / "identities"
        self.frames = 0  # output frames rendered so far
        from nerfhead.batch.run import Renderers

        self.renderers = Renderers(self.root)

    def frames_done(self) -> int:
        return self.frames

    def _count(self, name: str, n: int) -> None:
        from nerfhead.batch.run import RENDER_BARS

        if name in RENDER_BARS:
            self.frames += n

    def run(self, job: dict, bundle: list, inputs: dict[str, bytes]) -> tuple[dict | None, bytes | None, str | None]:
        """Render one job; (summary, the mp4's bytes, None) or (None, None, its one-line error)."""
        import ray

        from nerfhead.batch.run import execute
        from nerfhead.log import progress_listener

        job = BatchJob(**job)
        here = self.tmp / f"job{job.row}"
        given = {k: getattr(job, k) for k in inputs}  # the driver's paths, for messages
        try:
            if not (self.root / job.identity).is_dir():  # unpacked beside, then moved: never half there
                part = self.root / f".{job.identity}.unpacking"
                shutil.rmtree(part, ignore_errors=True)
                unpack_identity(ray.get(bundle[0]), part)
                part.rename(self.root / job.identity)
            for key, data in inputs.items():  # each under its own name, in a folder of its own
                local = here / key / Path(getattr(job, key)).name
                local.parent.mkdir(parents=True)
                local.write_bytes(data)
                setattr(job, key, str(local))
            out = here / job.output
            with progress_listener(self._count):
                summary = execute(job, self.renderers, out)
            return summary, out.read_bytes(), None
        except NerfheadError as exc:
            message = str(exc)
            for key, path in given.items():
                message = message.replace(getattr(job, key), path)
            return None, None, message
        finally:
            shutil.rmtree(here, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _start_ray(ray, workers: int, threads: int, address: str | None) -> None:
    """Connect to the cluster at ``address``, or start a local Ray of workers x threads CPUs
    (``address`` None or "local")."""
    if address and address != "local":
        try:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InputError(f"cannot connect to the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
        return
    ray.init(num_cpus=workers * threads, include_dashboard=False, logging_level="WARNING", log_to_driver=False)


def run_on_ray(todo: list[tuple[BatchJob, str]], out_dir: Path, workers: int, threads: int, address: str | None,
               root, report) -> None:
    """Run ``todo`` on ``workers`` Ray actors of ``threads`` threads each; fills ``report``."""
    try:
        import ray
    except ImportError:
        raise InputError("more than one worker (or --ray-address) needs Ray: pip install 'nerfhead[cluster]', "
                         "or run with --workers 1") from None
    t_start = time.perf_counter()
    _start_ray(ray, workers, threads, address)
    actors: list = []
    try:
        remote = ray.remote(max_concurrency=2)(RenderWorker)  # the second thread answers frames_done
        actors = [remote.options(num_cpus=threads).remote(threads) for _ in range(min(workers, len(todo)))]
        ray.get([a.frames_done.remote() for a in actors])  # every worker up (torch imported)
        report.startup = time.perf_counter() - t_start
        portrait = {j.identity for j, _ in todo if (j.composite or "portrait") == "portrait" and j.kind == "render"}
        bundles = {name: ray.put(pack_identity(Identity.at(name, root), frames=name in portrait))
                   for name in sorted({j.identity for j, _ in todo})}
        queue = list(todo)
        running: dict = {}  # ref -> (actor, job, key)

        def give(actor) -> None:
            job, key = queue.pop(0)
            inputs = {k: Path(getattr(job, k)).read_bytes() for k in ("audio", "video") if getattr(job, k)}
            ref = actor.run.remote(asdict(job), [bundles[job.identity]], inputs)
            running[ref] = (actor, job, key)

        for actor in actors:
            if queue:
                give(actor)
        t0 = time.perf_counter()
        with progress(f"batch ({len(actors)} workers x {threads} threads)", total=len(todo)) as bar:
            while running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    actor, job, key = running.pop(ref)
                    try:
                        summary, data, error = ray.get(ref)
                    except ray.exceptions.RayActorError as exc:  # the worker died (out of memory, killed)
                        summary, data, error = None, None, f"the worker died: {str(exc).splitlines()[0]}"
                        actors.remove(actor)
                        actor = remote.options(num_cpus=threads).remote(threads)
                        actors.append(actor)
                    except ray.exceptions.RayTaskError as exc:  # a bug, not the input: its last line
                        lines = [x for x in str(exc).splitlines() if x.strip()]
                        summary, data, error = None, None, f"the job raised {lines[-1] if lines else exc}"
                    if error is None:
                        write_atomic(out_dir / job.output, data)
                        write_record(out_dir, job, key, summary)
                        report.done.append((job, summary))
                    else:
                        log.error("job %d (%s): %s", job.row, job.output, error)
                        report.failed.append((job, error))
                    bar.advance()
                    if queue:
                        give(actor)
                try:
                    frames = sum(ray.get([a.frames_done.remote() for a in actors], timeout=10))
                except ray.exceptions.RayError:  # a worker just died: its job reports it above
                    continue
                bar.update(description=f"batch: {frames} frames, {frames / max(time.perf_counter() - t0, 1e-9):.2f}/s")
    finally:
        try:  # each worker's unpacked identities and inputs
            ray.get([a.close.remote() for a in actors], timeout=30)
        except Exception:  # noqa: BLE001 - a dead worker's folder went with it (or with its node)
            pass
        ray.shutdown()
