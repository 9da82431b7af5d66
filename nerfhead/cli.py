"""Command line: parses arguments and calls one library function per command."""

from __future__ import annotations

import errno
import signal
from pathlib import Path
from typing import Callable, Optional, TypeVar

import typer
from rich.markup import escape

from nerfhead.errors import NerfheadError
from nerfhead.log import console, setup_logging
from nerfhead.shipped import preset_names

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="nerfhead: turn a few minutes of one presenter into a talking-head avatar that says any audio.",
)

T = TypeVar("T")
OWN_VOICE_HELP = ("The audio is the presenter's own voice (a new recording of the person filmed): the mouth follows "
                  "what this presenter's mouth did in the capture instead of the rule made for any voice.")
VOICE_HELP = ("A voice for --text: piper:en_US-joe-medium, espeak:de, espeak:fr+f3, or a language (en, de); "
              "`nerfhead voices` lists them.")


#: errors of the machine a user can act on (a full disk, a read-only or forbidden folder): one line, exit 2
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
                       errno.ENAMETOOLONG, errno.EMFILE}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that every writer removes its temporaries on the way out."""


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    raise Terminated


def _fail_line(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _run(fn: Callable[..., T], *args, **kwargs) -> T:
    """Call library code; a user error becomes one red line and exit code 2."""
    try:
        return fn(*args, **kwargs)
    except NerfheadError as exc:
        _fail_line(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        hint = "; free some space, then run again" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        _fail_line(f"{exc.strerror or errno.errorcode.get(exc.errno, 'error')}{where}{hint}")
        raise typer.Exit(2) from None
    except Terminated:
        console.print("[yellow]terminated[/]")
        raise typer.Exit(128 + signal.SIGTERM) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging(verbose)


def _refuse_own_voice_of_a_script(own_voice: bool, text: str | None, text_file: Path | None) -> None:
    if own_voice and (text is not None or text_file is not None):
        _run(_fail, "--own-voice is for a recording of the presenter (--audio or --audio-dir), not a script a TTS "
                    "voice speaks")


@app.command()
def process(
    video: Path = typer.Argument(..., help="Capture video of one presenter talking (any container PyAV reads)."),
    identity: str = typer.Option(..., "--identity", "-i", help="Name of the identity folder to write."),
    force: bool = typer.Option(False, "--force", help="Replace an already processed identity."),
    crop: Optional[int] = typer.Option(None, help="Square output size around the head (0 = keep original frames)."),
    config: Optional[Path] = typer.Option(None, help="YAML with process settings (see configs/process.yaml)."),
    root: Optional[Path] = typer.Option(None, help="Identities folder (default ./identities or $NERFHEAD_IDENTITIES)."),
) -> None:
    """Track a capture video into an identity dataset: frames, audio, landmarks, pose, masks, QA sheet."""
    from nerfhead.capture.pipeline import ProcessConfig, process_capture

    overrides = {} if crop is None else {"crop_size": crop}
    cfg = _run(ProcessConfig.load, config, overrides)
    result = _run(process_capture, video, identity, cfg, root=root, force=force)
    console.print(f"[green]processed[/] identity '{identity}' -> {result.root}")
    console.print(f"QA sheet: {result.qa_dir / 'contact_sheet.png'}")


@app.command()
def info(
    identity: str = typer.Argument(..., help="Identity name."),
    root: Optional[Path] = typer.Option(None, help="Identities folder."),
) -> None:
    """Summarise a processed identity: frames, split, camera, tracking quality, step times."""
    from nerfhead.capture.summary import describe_identity

    text = _run(describe_identity, identity, root=root)
    console.print(text, highlight=False, markup=False, soft_wrap=True)


@app.command()
def demo(
    root: Optional[Path] = typer.Option(None, help="Identities folder."),
) -> None:
    """Run the whole studio on the shipped sample identity and print where the results are."""
    from nerfhead.demo import run_demo

    _run(run_demo, root=root)


@app.command()
def train(
    identity: str = typer.Argument(..., help="Identity name (processed with `nerfhead process`)."),
    config: Optional[str] = typer.Option(None, "--config", "-c",
                                         help=f"Preset ({', '.join(preset_names())}) or YAML file; default cpu."),
    stage: Optional[str] = typer.Option(None, "--stage", help="Run only this stage (head, lips or torso)."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Stop after this many minutes (resumable)."),
    root: Optional[Path] = typer.Option(None, help="Identities folder."),
) -> None:
    """Train the identity's avatar; re-running continues from the last checkpoint. Ctrl-C saves and exits."""
    from nerfhead.train.run import train_identity

    reports = _run(train_identity, identity, config=config, stage=stage, minutes=minutes, root=root)
    for r in reports:
        state = "done" if r.result.finished else ("interrupted" if r.result.interrupted else "stopped (time cap)")
        psnr = r.last_metrics.get("psnr")
        console.print(f"{r.stage}: {state} at step {r.result.step} after {r.result.seconds:.0f} s"
                      + (f", training PSNR {psnr:.2f} dB" if psnr is not None else "") + f" -> {r.checkpoint}",
                      highlight=False, soft_wrap=True)


@app.command()
def render(
    identity: str = typer.Argument(..., help="Identity name (trained with `nerfhead train`)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output .mp4 (with --audio-dir: an output folder)."),
    audio: Optional[Path] = typer.Option(None, "--audio", "-a", help="Driving speech: any audio or video file."),
    text: Optional[str] = typer.Option(None, "--text", help="A script to speak instead of --audio."),
    text_file: Optional[Path] = typer.Option(None, "--text-file", help="A UTF-8 script file to speak instead of --audio."),
    voice: Optional[str] = typer.Option(None, "--voice", help=VOICE_HELP),
    rate: Optional[int] = typer.Option(None, "--rate", help="Speech rate for --text, words per minute."),
    audio_dir: Optional[Path] = typer.Option(None, "--audio-dir", help="Render every audio file in this folder."),
    start: float = typer.Option(0.0, "--start", help="Start this many seconds into the audio."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Render only this many seconds."),
    pose_start: int = typer.Option(0, "--pose-start", help="Capture frame the head motion starts from."),
    pose_from: Optional[Path] = typer.Option(None, "--pose-from", help="Take the head motion from this video."),
    height: Optional[int] = typer.Option(None, "--height", help="Output height in pixels (default: the identity's)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the blink timing."),
    scale: float = typer.Option(1.0, "--scale", help="Draft: render at this fraction of the resolution, then upscale (0.5 ~ 4x faster)."),
    composite: Optional[str] = typer.Option(
        None, "--composite",
        help="portrait (default): the capture's own frames replayed, only the lower face rendered; full: every pixel "
             "from the fields, the default with --pose-from (no real frame exists for a borrowed pose) and --scale."),
    own_voice: bool = typer.Option(
        False, "--own-voice",
        help=OWN_VOICE_HELP),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="A torso-stage checkpoint (default: the avatar)."),
    root: Optional[Path] = typer.Option(None, help="Identities folder."),
) -> None:
    """Make a video of the avatar saying an audio file or a script: H.264 + AAC mp4 at 25 fps."""
    from nerfhead.render.driven import RenderOptions, default_composite, render_batch, render_video

    pose_video = str(pose_from) if pose_from else None
    opts = RenderOptions(start=start, duration=duration, pose_start=pose_start, pose_from=pose_video, height=height,
                         seed=seed, scale=scale, composite=composite or default_composite(pose_video, scale),
                         own_voice=own_voice)
    _refuse_own_voice_of_a_script(own_voice, text, text_file)
    if audio_dir is not None:
        if audio is not None or text is not None or text_file is not None:
            _run(_fail, "give either --audio-dir or --audio/--text/--text-file, not both")
        items = _run(render_batch, identity, audio_dir, out, opts, root=root, checkpoint=checkpoint)
        for item in items:
            if item.result is not None:
                r = item.result
                console.print(f"[green]{item.source.name}[/] -> {r.path} ({r.frames} frames, {r.fps:.2f} fps)",
                              highlight=False, soft_wrap=True)
            else:
                console.print(f"[bold red]{item.source.name}: {escape(item.error or '')}[/]", highlight=False, soft_wrap=True)
        if any(item.result is None for item in items):
            raise typer.Exit(2)
        return
    if sum(x is not None for x in (audio, text, text_file)) > 1:
        _run(_fail, "give one of --audio, --text and --text-file")
    r = _run(render_video, identity, out, audio=audio, text=text, voice=voice, rate=rate, opts=opts, root=root,
             checkpoint=checkpoint, text_file=text_file)
    console.print(f"[green]rendered[/] {r.frames} frames ({r.audio_seconds:.2f} s, {r.size[0]}x{r.size[1]}) in "
                  f"{r.seconds:.1f} s = {r.fps:.2f} frames/s -> {r.path}", highlight=False, soft_wrap=True)


@app.command()
def dub(
    identity: str = typer.Argument(..., help="Identity name (trained with `nerfhead train`)."),
    video: Path = typer.Argument(..., help="A video of the same presenter (another take, any resolution and frame rate)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output .mp4."),
    audio: Optional[Path] = typer.Option(None, "--audio", "-a", help="The new speech: any audio or video file."),
    text: Optional[str] = typer.Option(None, "--text", help="A script to speak instead of --audio."),
    text_file: Optional[Path] = typer.Option(None, "--text-file", help="A UTF-8 script file to speak instead of --audio."),
    voice: Optional[str] = typer.Option(None, "--voice", help=VOICE_HELP),
    rate: Optional[int] = typer.Option(None, "--rate", help="Speech rate for --text, words per minute."),
    loop: bool = typer.Option(True, "--loop/--no-loop",
                              help="Audio longer than the video: replay the video forwards and backwards (default), "
                                   "or stop with an error."),
    own_voice: bool = typer.Option(False, "--own-voice", help=OWN_VOICE_HELP),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="A checkpoint (default: the avatar)."),
    root: Optional[Path] = typer.Option(None, help="Identities folder."),
) -> None:
    """Dub a video of the presenter with new speech: only the lower face is re-rendered, every other pixel,
    the resolution and the frame rate stay the video's; the new audio replaces the old."""
    from nerfhead.render.dub import DubOptions, dub_video

    if sum(x is not None for x in (audio, text, text_file)) > 1:
        _run(_fail, "give one of --audio, --text and --text-file")
    _refuse_own_voice_of_a_script(own_voice, text, text_file)
    r = _run(dub_video, identity, video, out, audio=audio, text=text, voice=voice, rate=rate,
             opts=DubOptions(loop=loop, own_voice=own_voice), root=root, checkpoint=checkpoint, text_file=text_file)
    for w in r.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    replay = ", video replayed forwards and backwards" if r.replayed else ""
    console.print(f"[green]dubbed[/] {r.frames} frames ({r.duration:.2f} s at {r.fps:g} fps, {r.size[0]}x{r.size[1]}; "
                  f"{r.frames - r.passthrough} re-rendered, {r.passthrough} copied unchanged{replay}); tracking "
                  f"{r.seconds['tracking']:.1f} s, render {r.seconds['render']:.1f} s = {r.render_fps:.2f} frames/s "
                  f"-> {r.path}", highlight=False, soft_wrap=True)


def _fail(message: str) -> None:
    from nerfhead.errors import InputError

    raise InputError(message)


@app.command(name="eval")
def evaluate(
    identity: str = typer.Argument(..., help="Identity name (trained with `nerfhead train`)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="A stage checkpoint (default: the finished avatar)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Output folder (default identities/NAME/eval)."),
    audio: Optional[list[Path]] = typer.Option(None, "--audio", "-a", help="Other audio to drive the avatar with (repeatable)."),
    audio_dir: Optional[Path] = typer.Option(None, "--audio-dir", help="Drive the avatar with every audio file here."),
    seconds: float = typer.Option(10.0, "--seconds", help="Seconds of each other audio to render and measure."),
    frames: Optional[int] = typer.Option(None, "--frames", help="Score only the first N test frames (quicker)."),
    root: Optional[Path] = typer.Option(None, help="Identities folder."),
) -> None:
    """Evaluate an avatar: test frames beside trivial baselines, lip sync on other audio, stability, speed.

    Writes report.json and a self-contained report.html (tables, plots, image strips)."""
    from nerfhead.eval.protocol import evaluate_identity, summary

    files = list(audio or [])
    if audio_dir is not None:
        from nerfhead.render.driven import audio_files

        files += _run(audio_files, audio_dir)
    report, html = _run(evaluate_identity, identity, checkpoint=checkpoint, root=root, out_dir=out, audio=files,
                        cross_seconds=seconds, max_frames=frames)
    console.print(summary(report), highlight=False, markup=False, soft_wrap=True)
    console.print(f"[green]report[/] {html} (and {html.with_suffix('.json').name}, pictures beside it)", soft_wrap=True)


@app.command()
def compare(
    items: list[str] = typer.Argument(..., help="Identity names, report.json files or checkpoint .pt files (first = reference)."),
    out: Path = typer.Option(Path("compare"), "-o", "--out", help="Folder for compare.json and compare.html."),
    root: Optional[Path] = typer.Option(None, help="Identities folder."),
) -> None:
    """Put the evaluation metrics of several avatars or checkpoints side by side, with differences."""
    from nerfhead.eval.compare import table, write_comparison

    result, html = _run(write_comparison, items, out, root=root)
    console.print(table(result), highlight=False, markup=False, soft_wrap=True)
    console.print(f"[green]comparison[/] {html}", soft_wrap=True)


@app.command()
def features(
    audio: Optional[Path] = typer.Argument(None, help="Audio or video file (any format PyAV reads); omit to speak --text."),
    text: Optional[str] = typer.Option(None, "--text", help="Words spoken in AUDIO (aligned), or a script to speak if no AUDIO."),
    text_file: Optional[Path] = typer.Option(None, "--text-file", help="UTF-8 file with the text, instead of --text."),
    voice: Optional[str] = typer.Option(None, "--voice", help=VOICE_HELP + " With AUDIO: the language of --text."),
    rate: Optional[int] = typer.Option(None, "--rate", help="Speech rate for --text in words per minute (80-450, default 160)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Output .npz (default: AUDIO.features.npz)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also write a PNG: waveform, log-mel, visemes, voice activity."),
    extractor: str = typer.Option("default", "--extractor", help="Feature extractor name (whisper, default, mel80)."),
) -> None:
    """Compute the audio features that drive the lips (100 Hz log-mel, visemes, voice activity)."""
    from nerfhead.audio.features import write_features

    feats, path = _run(write_features, audio, text=text, text_file=text_file, voice=voice, rate=rate, out=out,
                       plot=plot, extractor=extractor)
    console.print(f"[green]features[/] {feats.features.shape[0]} x {feats.features.shape[1]} at 100 Hz "
                  f"({feats.duration:.2f} s, {feats.n_video_frames} video frames, phones: {feats.phone_source}) -> {path}",
                  soft_wrap=True)
    if plot is not None:
        console.print(f"plot: {plot}")


@app.command()
def voices() -> None:
    """List the installed TTS voices for --voice: piper's (natural; the `voices` extra) and espeak-ng's languages."""
    from rich.table import Table

    from nerfhead.audio.voices import default_voice, espeak_languages, piper_voices

    default = _run(default_voice).name
    table = Table(box=None)
    table.add_column("voice", no_wrap=True)
    table.add_column("language", no_wrap=True)
    table.add_column("about")
    for v in _run(piper_voices):
        table.add_row(v.name + (" (default)" if v.name == default else ""), v.language, v.description)
    langs = _run(espeak_languages)
    if langs:
        table.add_row("espeak:LANG" + (" (default)" if default.startswith("espeak:") else ""), f"{len(langs)} languages",
                      "espeak-ng (formant synthesiser); add +VARIANT for another voice quality, e.g. espeak:de+f3")
    console.print(table)
    if langs:
        console.print("espeak-ng languages: " + " ".join(langs), highlight=False, soft_wrap=False)
    if not piper_voices():
        console.print("no piper voice installed: pip install 'nerfhead[voices]' (GPL-3.0) for a natural English voice")


@app.command()
def batch(
    jobs: Path = typer.Argument(..., help="Job list: CSV with a header row (identity, audio|text|video, voice, composite, "
                                          "start, duration, output) or the same as YAML."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (a rerun skips the outputs already complete)."),
    workers: int = typer.Option(1, "--workers", help="Renderers in parallel (more than 1: on Ray, the 'cluster' extra)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Threads per worker (default: this machine's cores / workers)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="A running Ray cluster (HOST:6379 or ray://HOST:10001); 'local' "
                                                                         "starts one here even for one worker; default with --workers 2 or "
                                                                         "more: a local Ray started for the run."),
    root: Optional[Path] = typer.Option(None, help="Identities folder."),
) -> None:
    """Render many videos from a job list, one avatar load per worker; resumable; exit code 2 if any job failed."""
    from nerfhead.batch.run import run_batch

    report = _run(run_batch, jobs, out, workers=workers, threads=threads, ray_address=ray_address, root=root)
    for job, summary in report.done:
        console.print(f"[green]{escape(job.output)}[/] {summary['frames']} frames in {summary['seconds']:.1f} s",
                      highlight=False, soft_wrap=True)
    console.print(f"batch: {len(report.done)} rendered ({report.frames} frames in {report.seconds:.1f} s"
                  + (f" = {report.frames / report.seconds:.2f} frames/s" if report.seconds > 0 and report.frames else "")
                  + (f", {report.startup:.1f} s of it starting Ray" if report.startup else "")
                  + f", {report.workers} worker{'s' if report.workers > 1 else ''} x {report.threads} thread{'s' if report.threads > 1 else ''}), {len(report.skipped)} already complete, "
                  f"{len(report.failed)} failed -> {out}", highlight=False, soft_wrap=True)
    for job, error in report.failed:
        console.print(f"[bold red]failed:[/] job {job.row} ({escape(job.output)}): {escape(error)}", highlight=False,
                      soft_wrap=True)
    if report.failed:
        raise typer.Exit(2)


@app.command()
def studio(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 opens it to the network)."),
    port: int = typer.Option(7860, "--port", help="Port of the page."),
    out: Path = typer.Option(Path("studio_output"), "-o", "--out", help="Folder for uploads, renders and the job queue."),
    root: Optional[Path] = typer.Option(None, help="Identities folder."),
) -> None:
    """Open the web studio: upload a capture, process, train, render a script, evaluate, compare."""
    from nerfhead.studio.app import serve

    console.print(f"[green]nerfhead studio[/] on http://{host}:{port} (Ctrl-C stops it)", soft_wrap=True)
    _run(serve, host=host, port=port, root=root, out=out)


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    app()


if __name__ == "__main__":
    main()
