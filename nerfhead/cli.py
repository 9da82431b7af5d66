"""Command line: parses arguments and calls one library function per command."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, TypeVar

import typer
from rich.markup import escape

from nerfhead.errors import NerfheadError
from nerfhead.log import console, setup_logging

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="nerfhead: turn a few minutes of one presenter into a talking-head avatar that says any audio.",
)

T = TypeVar("T")


def _run(fn: Callable[..., T], *args, **kwargs) -> T:
    """Call library code; a user error becomes one red line and exit code 2."""
    try:
        return fn(*args, **kwargs)
    except NerfheadError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging(verbose)


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
