"""The studio page driven in headless Chromium (Debian's chromium, Playwright pointed at it).

A real server process on a free port, over a session identities folder that holds the briefly
trained sample: upload a short clip of the sample capture and process it, render a sentence with
the trained sample, play the video in the page; a text file named .mp4 shows its error in the page;
SIGTERM stops the server and its worker. Screenshots go to tests' tmp folder (and to
$NERFHEAD_STUDIO_SHOTS when set: docs/images is made that way).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from itertools import islice
from pathlib import Path

import pytest

from nerfhead.eval.report import CHROMIUM_FLAGS, chromium_path
from nerfhead.io.audio import load_audio
from nerfhead.io.video import iter_frames, write_video

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="the 'studio' extra (gradio) is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright is not installed"),
    pytest.mark.skipif(chromium_path() is None, reason="Chromium is not installed (`make install` installs it as root)"),
]

CLIP_SECONDS = 4.0
LONG = 600_000  # ms: processing a clip or rendering a sentence on 2 cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _short_clip(src: Path, out: Path, seconds: float) -> Path:
    """The first ``seconds`` of a real capture, with its audio."""
    n = int(seconds * 25)
    audio = load_audio(src, 16000)[: int(seconds * 16000)]
    return write_video(out, islice(iter_frames(src, 25.0), n), audio, fps=25.0, audio_rate=16000)


@pytest.fixture(scope="module")
def studio_server(trained_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("studio_out")
    port = _free_port()
    log = open(out.parent / "studio_server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "nerfhead", "studio", "--port", str(port), "-o", str(out),
                             "--root", str(trained_sample.root.parent)], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "NERFHEAD_PROGRESS": "0"})
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            break
        except OSError:
            assert proc.poll() is None, (out.parent / "studio_server.log").read_text()
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the studio did not answer in 120 s")
    yield proc, url, out
    if proc.poll() is None:
        proc.kill()
    log.close()


def _shot(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    shots = os.environ.get("NERFHEAD_STUDIO_SHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(shots) / path.name)


def test_studio_in_headless_chromium(studio_server, trained_sample, sample_capture, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    proc, url, out = studio_server
    clip = _short_clip(sample_capture, tmp_path / "presenter clip.mp4", CLIP_SECONDS)
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my notes, not a video\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_FLAGS))
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        expect(page.locator("#identities")).to_contain_text(trained_sample.name, timeout=30_000)
        _shot(page, tmp_path / "studio_avatars.png")

        # a text file named .mp4 is refused with its one line, in the page
        page.get_by_role("tab", name="New avatar").click()
        page.locator("#capture-file input[type=file]").set_input_files(str(fake))
        page.locator("#identity-name textarea, #identity-name input").first.fill("notes")
        page.locator("#process-btn").click()
        expect(page.locator("#process-message")).to_contain_text("cannot read notes.mp4 as audio/video", timeout=30_000)
        _shot(page, tmp_path / "studio_bad_upload.png")
        assert not (trained_sample.root.parent / "notes").exists()

        # a real clip: processed by the worker, the QA sheet shown
        page.locator("#capture-file button[aria-label='Clear']").first.click()
        page.locator("#capture-file input[type=file]").set_input_files(str(clip))
        page.locator("#identity-name textarea, #identity-name input").first.fill("clip")
        page.locator("#process-btn").click()
        expect(page.locator("#process-message")).to_contain_text("queued as job", timeout=30_000)
        expect(page.locator("#process-status")).to_contain_text("done", timeout=LONG)
        expect(page.locator("#process-result img")).to_be_visible(timeout=30_000)
        _shot(page, tmp_path / "studio_processed.png")
        assert (trained_sample.root.parent / "clip" / "manifest.json").is_file()

        # a sentence rendered by the trained sample; the video plays in the page
        page.get_by_role("tab", name="Render").click()
        page.locator("#script textarea").fill("Hello from the studio.")
        page.locator("#render-seconds input").fill("1.5")
        page.locator("#render-btn").click()
        expect(page.locator("#render-message")).to_contain_text("queued as job", timeout=30_000)
        expect(page.locator("#render-status")).to_contain_text("done", timeout=LONG)
        video = page.locator("#render-result video")
        expect(video).to_be_visible(timeout=30_000)
        page.wait_for_function("() => { const v = document.querySelector('#render-result video');"
                               " return v && v.readyState >= 1 && v.duration > 0; }", timeout=30_000)
        duration = video.evaluate("v => v.duration")
        video.evaluate("v => { v.muted = true; return v.play(); }")
        page.wait_for_function("() => document.querySelector('#render-result video').currentTime > 0", timeout=30_000)
        _shot(page, tmp_path / "studio_render.png")

        # SIGTERM with the page still open (its heartbeat stream too): the server and its worker stop cleanly
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert time.monotonic() - t0 < 15
        browser.close()
    assert "studio stopped" in (out.parent / "studio_server.log").read_text()
    assert "Traceback" not in (out.parent / "studio_server.log").read_text()
    assert 1.0 < duration < 3.0
    renders = list((out / "renders").glob("*.mp4"))
    assert len(renders) == 1
