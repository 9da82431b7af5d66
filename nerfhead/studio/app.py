"""``nerfhead studio``: the whole workflow in a web page (Gradio), on the same library calls as the CLI.

Long steps (process, train, render, eval) are queued as jobs (nerfhead.studio.jobs) that run the CLI's
commands one at a time in a background worker; the page reads their state, progress and logs from
disk once a second, so a reload or a second tab shows the same. Short steps (listing identities and
voices, comparing two reports) are library calls made in the request.

Paths: the page names identities (checked as the CLI checks them) and never a path; uploads are
copied into ``<output>/uploads``, renders go to ``<output>/renders``, comparisons to
``<output>/compare``, and the two media routes serve only files inside the identities folder or the
output folder.
"""

from __future__ import annotations

import html
import signal
import socket
import uuid
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from nerfhead.avatar.checkpoint import STAGES
from nerfhead.dataset import Identity, check_name, identities_root
from nerfhead.errors import NerfheadError
from nerfhead.log import get_logger
from nerfhead.shipped import preset_names
from nerfhead.studio.catalog import (contained_file, identity_state, known_identity, list_identities,
                                     progress_picture, report_path)
from nerfhead.studio.jobs import Job, JobStore, Worker, latest
from nerfhead.studio.uploads import MAX_UPLOAD_BYTES, SPEECH, VIDEO_SUFFIXES, keep_upload

log = get_logger(__name__)
REFRESH_SECONDS = 1.0
EVAL_QUICK_FRAMES = 25


@dataclass
class Studio:
    """The folders the page works in and its job worker."""

    root: Path  # identities
    out: Path  # uploads, renders, comparisons, jobs
    worker: Worker

    @classmethod
    def open(cls, root: str | Path | None, out: str | Path) -> "Studio":
        root, out = identities_root(root).resolve(), Path(out).resolve()
        root.mkdir(parents=True, exist_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        return cls(root, out, Worker(JobStore(out / "jobs")))

    @property
    def store(self) -> JobStore:
        return self.worker.store

    # --- what the page shows ------------------------------------------------------------
    def media_url(self, path: Path) -> str | None:
        """The page's address of a file inside the identities or the output folder (None if absent)."""
        path = Path(path).resolve()
        if not path.is_file():
            return None
        for prefix, base in (("identities", self.root), ("out", self.out)):
            if path.is_relative_to(base):
                rel = path.relative_to(base).as_posix()
                return f"/media/{prefix}/{quote(rel)}?v={path.stat().st_mtime_ns}"
        return None

    def media_file(self, prefix: str, relative: str) -> Path | None:
        base = {"identities": self.root, "out": self.out}.get(prefix)
        return None if base is None else contained_file(base, relative)

    def identity_choices(self, need: str) -> list[str]:
        states = list_identities(self.root)
        if need == "trained":
            return [s.name for s in states if s.trained]
        if need == "evaluated":
            return [s.name for s in states if s.evaluated]
        return [s.name for s in states if s.processed]

    def identities_html(self) -> str:
        rows = []
        for s in list_identities(self.root):
            rows.append(f"<tr><td>{html.escape(s.name)}</td><td>{s.frames or ''}</td>"
                        f"<td>{html.escape(s.summary)}</td><td>{', '.join(s.stages)}</td>"
                        f"<td>{'yes' if s.evaluated else ''}</td></tr>")
        if not rows:
            return "<p>No identities yet: upload a capture video in <b>New avatar</b>.</p>"
        return ("<table class='nh-table'><tr><th>identity</th><th>frames</th><th>state</th><th>checkpoints</th>"
                f"<th>report</th></tr>{''.join(rows)}</table>")

    def job_html(self, job: Job | None, jobs: list[Job] | None = None) -> str:
        """One job's state line: a progress bar with its ETA, or its one-line error (``jobs``: the
        store's jobs when the caller has read them already)."""
        if job is None:
            return ""
        title = html.escape(job.title or f"{job.kind} {job.identity}")
        if job.state == "queued":
            jobs = self.store.all() if jobs is None else jobs
            ahead = sum(1 for j in jobs if j.state in ("queued", "running") and j.id < job.id)
            return f"<div class='nh-job'>#{job.id} {title}: queued ({ahead} ahead)</div>"
        if job.state == "running":
            p = self.store.progress(job.id)
            ran = time.time() - (job.started or time.time())
            if p is None or p.fraction is None:
                bar = f"<progress></progress> {html.escape(p.task) if p else 'starting'} ({ran:.0f} s)"
            else:
                eta = f", about {_duration(p.eta)} left" if p.eta is not None else ""
                stage = f"stage {STAGES.index(p.task) + 1} of {len(STAGES)}: " if job.kind == "train" and p.task in STAGES else ""
                bar = (f"<progress value='{p.fraction:.3f}' max='1'></progress> {stage}{html.escape(p.task)} "
                       f"{p.done}/{p.total} ({100 * p.fraction:.0f} %{eta}; running {_duration(ran)})")
            return f"<div class='nh-job'>#{job.id} {title}: {bar}</div>"
        took = _duration((job.ended or 0) - (job.started or job.ended or 0))
        if job.state == "done":
            return f"<div class='nh-job nh-done'>#{job.id} {title}: done in {took}</div>"
        why = html.escape(job.error or "")
        return f"<div class='nh-job nh-{job.state}'>#{job.id} {title}: {job.state}{': ' + why if why else ''}</div>"

    def jobs_html(self, jobs: list[Job]) -> str:
        if not jobs:
            return "<p>No jobs yet.</p>"
        return "".join(self.job_html(j, jobs) for j in reversed(jobs[-12:]))

    # --- actions (each returns the status line for the page) ------------------------------
    def submit_process(self, upload: str | None, name: str, replace: bool) -> str:
        if not upload:
            raise NerfheadError("choose a capture video to upload first")
        ident = Identity.at(check_name((name or "").strip()), self.root)
        if ident.is_processed() and not replace:
            raise NerfheadError(f"identity '{ident.name}' already exists; tick 'replace' to process it again")
        kept = keep_upload(upload, Path(upload).name, self.out / "uploads", "video")
        argv = ["process", str(kept), "-i", ident.name, "--root", str(self.root)] + (["--force"] if replace else [])
        return _queued(self.worker.submit("process", ident.name, argv, title=f"process {ident.name}"))

    def submit_train(self, name: str, preset: str, minutes: float | None) -> str:
        ident = known_identity(name, self.root)
        if preset not in preset_names():
            raise NerfheadError(f"unknown preset '{preset}'; presets: {', '.join(preset_names())}")
        running = [j for j in self.store.all() if j.kind == "train" and j.identity == ident.name and not j.finished]
        if running:
            return f"<div class='nh-job'>job #{running[-1].id} trains this identity already</div>"
        argv = ["train", ident.name, "-c", preset, "--root", str(self.root)]
        if minutes:
            argv += ["--minutes", f"{float(minutes):g}"]
        return _queued(self.worker.submit("train", ident.name, argv, title=f"train {ident.name} ({preset})"))

    def stop_train(self, name: str) -> str:
        job = self.store.latest("train", check_name(name or ""))
        if job is None or job.finished:
            return self.job_html(job) or "no training of this identity is running"
        self.worker.stop(job.id)
        return f"<div class='nh-job'>#{job.id}: stopping (the training saves its checkpoint; start again to resume)</div>"

    def submit_render(self, name: str, script: str, voice: str | None, audio: str | None,
                      seconds: float | None) -> str:
        ident = known_identity(name, self.root, need="trained")
        job_out = self.out / "renders"
        job_out.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"  # two renders in one second differ
        target = job_out / f"{ident.name}-{stamp}.mp4"
        argv = ["render", ident.name, "-o", str(target), "--root", str(self.root)]
        if audio:
            argv += ["--audio", str(keep_upload(audio, Path(audio).name, self.out / "uploads", "audio"))]
        elif (script or "").strip():
            script_file = self.out / "uploads" / f"script-{ident.name}-{stamp}.txt"
            script_file.parent.mkdir(parents=True, exist_ok=True)
            script_file.write_text(script.strip() + "\n", encoding="utf-8")
            argv += ["--text-file", str(script_file)]
            if voice:
                argv += ["--voice", voice]
        else:
            raise NerfheadError("type a script or upload an audio file to render")
        if seconds:
            argv += ["--duration", f"{float(seconds):g}"]
        return _queued(self.worker.submit("render", ident.name, argv, title=f"render {ident.name}",
                                          output=target.relative_to(self.out).as_posix()))

    def submit_eval(self, name: str, quick: bool) -> str:
        ident = known_identity(name, self.root, need="trained")
        argv = ["eval", ident.name, "--root", str(self.root)] + (["--frames", str(EVAL_QUICK_FRAMES)] if quick else [])
        return _queued(self.worker.submit("eval", ident.name, argv, title=f"evaluate {ident.name}"))

    def compare(self, a: str, b: str) -> str:
        from nerfhead.eval.compare import write_comparison

        idents = [known_identity(n, self.root, need="trained") for n in (a, b)]
        if idents[0].name == idents[1].name:
            raise NerfheadError("choose two different avatars to compare")
        reports = [report_path(i).with_suffix(".json") for i in idents]  # paths, never a name read as one
        for ident, report in zip(idents, reports):
            if not report.is_file():
                raise NerfheadError(f"'{ident.name}' has no evaluation yet: evaluate it first")
        folder = self.out / "compare" / f"{idents[0].name}-vs-{idents[1].name}"
        _, page = write_comparison([str(r) for r in reports], folder, root=self.root)
        return _frame(self.media_url(page), 520)

    # --- views for the refresh tick (each given the jobs the tick read once) ----------------
    def process_view(self, jobs: list[Job]) -> tuple[str, str]:
        job = latest(jobs, "process")
        picture = ""
        if job is not None and job.state == "done":
            ident = Identity.at(job.identity, self.root)
            url = self.media_url(ident.qa_dir / "contact_sheet.png")
            if url:
                picture = f"<p>QA sheet of {html.escape(job.identity)}:</p><img class='nh-img' src='{url}'>"
        return self.job_html(job, jobs), picture

    def _chosen(self, name: str | None) -> Identity | None:
        """The identity a dropdown names, None when it names none (or a name the CLI would refuse)."""
        try:
            return Identity.at(check_name(name), self.root) if name else None
        except NerfheadError:
            return None

    def train_view(self, name: str | None, jobs: list[Job]) -> tuple[str, str]:
        ident = self._chosen(name)
        if ident is None:
            return "", ""
        url = self.media_url(progress_picture(ident))
        picture = f"<img class='nh-img' src='{url}'>" if url else "<p>The held-out preview appears here as training goes.</p>"
        status = self.job_html(latest(jobs, "train", ident.name), jobs) or html.escape(identity_state(ident).summary)
        return status, picture

    def render_view(self, jobs: list[Job]) -> tuple[str, str]:
        job = latest(jobs, "render")
        video = ""
        if job is not None and job.state == "done" and job.output:
            url = self.media_url(self.out / job.output)
            if url:
                video = (f"<video id='nh-video' controls preload='metadata' src='{url}' class='nh-video'></video>"
                         f"<p><a href='{url}' download='{html.escape(Path(job.output).name)}'>download "
                         f"{html.escape(Path(job.output).name)}</a></p>")
        return self.job_html(job, jobs), video

    def eval_view(self, name: str | None, jobs: list[Job]) -> tuple[str, str]:
        ident = self._chosen(name)
        if ident is None:
            return "", ""
        return self.job_html(latest(jobs, "eval", ident.name), jobs), _frame(self.media_url(report_path(ident)), 720)


def _queued(job: Job) -> str:
    return f"<div class='nh-job'>queued as job #{job.id}: {html.escape(job.title)}</div>"


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
        except OSError as exc:
            raise NerfheadError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host") from None


def _frame(url: str | None, height: int) -> str:
    return "" if not url else f"<iframe class='nh-frame' src='{url}' style='height:{height}px'></iframe>"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


CSS = """
.nh-table td, .nh-table th { padding: 2px 10px; text-align: left; }
.nh-job { margin: 2px 0; font-family: monospace; }
.nh-job progress { width: 220px; vertical-align: middle; }
.nh-failed, .nh-error { color: #b00020; }
.nh-done { color: #1b6e20; }
.nh-img { max-width: 100%; }
.nh-video { max-width: 100%; max-height: 520px; }
.nh-frame { width: 100%; border: 1px solid #ccc; }
"""


def _error_html(exc: NerfheadError) -> str:
    return f"<div class='nh-job nh-error'>error: {html.escape(str(exc))}</div>"


def build_page(studio: Studio):
    """The Gradio page over ``studio``."""
    import gradio as gr

    from nerfhead.audio.voices import default_voice, espeak_languages, piper_voices

    def guarded(fn):
        """A page action: a user error shows as its one line in the status box, never a traceback."""
        def call(*args):
            try:
                return fn(*args)
            except NerfheadError as exc:
                return _error_html(exc)
        return call

    def choices(need: str):
        names = studio.identity_choices(need)
        return gr.update(choices=names, value=names[0] if names else None)

    voices = [v.name for v in piper_voices()] + [f"espeak:{lang}" for lang in espeak_languages()]
    voice0 = default_voice().name if voices else None

    # uploads wait in Gradio's temporary folder until kept (copied into <output>/uploads): cleared hourly
    with gr.Blocks(title="nerfhead studio", analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        gr.Markdown("# nerfhead studio\nTrain a talking-head avatar of one presenter, then make it say any script.")
        with gr.Tabs():
            with gr.Tab("Avatars", id="avatars"):
                table = gr.HTML(elem_id="identities")
                refresh = gr.Button("Refresh", size="sm")
            with gr.Tab("New avatar", id="new"):
                gr.Markdown("Upload a few minutes of one presenter talking to the camera (a video with its sound).")
                with gr.Row():
                    capture = gr.File(label="capture video", file_types=list(VIDEO_SUFFIXES), type="filepath",
                                      elem_id="capture-file")
                    with gr.Column():
                        new_name = gr.Textbox(label="identity name", placeholder="anna", elem_id="identity-name")
                        replace = gr.Checkbox(label="replace an identity of that name", value=False)
                        process_btn = gr.Button("Process", variant="primary", elem_id="process-btn")
                process_msg = gr.HTML(elem_id="process-message")
                process_status = gr.HTML(elem_id="process-status")
                process_result = gr.HTML(elem_id="process-result")
            with gr.Tab("Train", id="train"):
                with gr.Row():
                    train_name = gr.Dropdown(label="identity", choices=[], elem_id="train-identity")
                    preset = gr.Dropdown(label="preset", choices=list(preset_names()), value="quick")
                    minutes = gr.Number(label="stop after minutes (0: to the end)", value=None)
                with gr.Row():
                    train_btn = gr.Button("Start / resume", variant="primary", elem_id="train-btn")
                    stop_btn = gr.Button("Stop (saves)", elem_id="stop-btn")
                train_msg = gr.HTML(elem_id="train-message")
                train_status = gr.HTML(elem_id="train-status")
                train_preview = gr.HTML(elem_id="train-preview")
            with gr.Tab("Render", id="render"):
                with gr.Row():
                    render_name = gr.Dropdown(label="avatar", choices=[], elem_id="render-identity")
                    voice = gr.Dropdown(label="voice", choices=voices, value=voice0, elem_id="voice")
                    seconds = gr.Number(label="render only the first seconds (0: all)", value=None,
                                        elem_id="render-seconds")
                script = gr.Textbox(label="script", lines=4, elem_id="script",
                                    placeholder="Hello! Welcome to this week's update.")
                speech = gr.File(label="or speech to say (audio or video; replaces the script)",
                                 file_types=list(SPEECH), type="filepath", elem_id="speech-file")
                render_btn = gr.Button("Render", variant="primary", elem_id="render-btn")
                render_msg = gr.HTML(elem_id="render-message")
                render_status = gr.HTML(elem_id="render-status")
                render_result = gr.HTML(elem_id="render-result")
            with gr.Tab("Evaluate", id="eval"):
                with gr.Row():
                    eval_name = gr.Dropdown(label="avatar", choices=[], elem_id="eval-identity")
                    quick = gr.Checkbox(label=f"quick ({EVAL_QUICK_FRAMES} test frames)", value=True)
                    eval_btn = gr.Button("Evaluate", variant="primary", elem_id="eval-btn")
                eval_msg = gr.HTML(elem_id="eval-message")
                eval_status = gr.HTML(elem_id="eval-status")
                eval_report = gr.HTML(elem_id="eval-report")
            with gr.Tab("Compare", id="compare"):
                with gr.Row():
                    cmp_a = gr.Dropdown(label="reference avatar", choices=[])
                    cmp_b = gr.Dropdown(label="other avatar", choices=[])
                    cmp_btn = gr.Button("Compare", variant="primary")
                cmp_result = gr.HTML(elem_id="compare-result")
        with gr.Accordion("Jobs", open=True):
            jobs = gr.HTML(elem_id="jobs")
            with gr.Row():
                job_pick = gr.Number(label="show the log of job # (0: the latest)", precision=0, value=None)
                job_stop = gr.Button("Stop that job", size="sm")
            job_log = gr.Textbox(label="log (its last lines)", lines=12, max_lines=12, interactive=False, elem_id="job-log")

        lists = [train_name, render_name, eval_name, cmp_a, cmp_b]
        NEEDS = ("processed", "trained", "trained", "evaluated", "evaluated")  # what each list offers

        def load_lists():
            return [choices(need) for need in NEEDS]

        def tick(train_id, eval_id, pick, known):
            listing = studio.identities_html()
            jobs_now = studio.store.all()  # read once for every view of this tick
            out = [listing, studio.jobs_html(jobs_now), *studio.process_view(jobs_now),
                   *studio.train_view(train_id, jobs_now), *studio.render_view(jobs_now),
                   *studio.eval_view(eval_id, jobs_now)]
            shown = int(pick) if pick else (jobs_now[-1].id if jobs_now else None)
            out.append(studio.store.log_tail(shown, 12) if shown else "")
            if listing != known:  # an identity changed: offer the new lists, keep what is chosen where it still exists
                out += [listing] + [gr.update(choices=studio.identity_choices(need)) for need in NEEDS]
            else:
                out += [gr.skip()] * (1 + len(lists))
            return out

        known = gr.State("")
        timer = gr.Timer(REFRESH_SECONDS)
        views = [table, jobs, process_status, process_result, train_status, train_preview, render_status,
                 render_result, eval_status, eval_report, job_log, known, *lists]
        timer.tick(tick, [train_name, eval_name, job_pick, known], views, show_progress="hidden", queue=False)
        page.load(load_lists, None, lists)
        refresh.click(lambda: studio.identities_html(), None, table)
        process_btn.click(guarded(studio.submit_process), [capture, new_name, replace], process_msg)
        train_btn.click(guarded(studio.submit_train), [train_name, preset, minutes], train_msg)
        stop_btn.click(guarded(studio.stop_train), [train_name], train_msg)
        render_btn.click(guarded(studio.submit_render), [render_name, script, voice, speech, seconds], render_msg)
        eval_btn.click(guarded(studio.submit_eval), [eval_name, quick], eval_msg)
        cmp_btn.click(guarded(studio.compare), [cmp_a, cmp_b], cmp_result)
        job_stop.click(lambda pick: (studio.worker.stop(int(pick)) if pick else None) or studio.jobs_html(studio.store.all()),
                       [job_pick], jobs)
    return page


def make_app(studio: Studio):
    """The web app: the page at / and the two media routes."""
    import gradio as gr
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import FileResponse

    app = FastAPI()

    @app.get("/media/{prefix}/{relative:path}")
    def media(prefix: str, relative: str):
        path = studio.media_file(prefix, relative)
        if path is None:
            raise HTTPException(status_code=404)
        return FileResponse(path)

    page = build_page(studio)
    return gr.mount_gradio_app(app, page, path="", max_file_size=MAX_UPLOAD_BYTES, ssr_mode=False, css=CSS,
                               footer_links=[])


def serve(host: str = "127.0.0.1", port: int = 7860, root: str | Path | None = None,
          out: str | Path = "studio_output") -> None:
    """Run the studio until SIGTERM or Ctrl-C; the running job is stopped cleanly on the way out."""
    try:
        import gradio  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise NerfheadError(f"the studio needs the 'studio' extra ({exc.name} is not installed): "
                            "pip install 'nerfhead[studio]'") from None
    _check_port(host, port)
    studio = Studio.open(root, out)
    app = make_app(studio)
    studio.worker.start()
    # An open page keeps Gradio's heartbeat stream open until Gradio's stop event is set, which
    # uvicorn's graceful shutdown would wait for: the exit signal sets it (and 5 s is the backstop).
    stop_events = [r.app.stop_event for r in app.routes if hasattr(getattr(r, "app", None), "stop_event")]

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            for event in stop_events:
                event.set()
            super().handle_exit(sig, frame)

    server = Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                                   timeout_graceful_shutdown=5))
    log.info("nerfhead studio on http://%s:%d (identities %s, output %s)", host, port, studio.root, studio.out)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn raises the SIGTERM or Ctrl-C it stopped on again once it has shut down
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not leave the running job orphaned
            signal.signal(sig, signal.SIG_IGN)
        studio.worker.shutdown()
        log.info("studio stopped")
