"""Screenshots of the studio's Train, Evaluate and Avatars steps for the docs, taken in headless Chromium.

Over a trained and evaluated identity (the demo's: ``make demo`` first): a copy of its processed data
without the model is trained with the quick preset in the studio until the held-out preview shows,
then stopped from the page (the training saves): the Train tab is shot while it runs, the Evaluate
tab with the identity's report, and the Avatars tab with both. (Upload, processing and rendering
are shot by tests/studio/test_studio_browser.py with NERFHEAD_STUDIO_SHOTS=docs/images.)

    python tools/studio_screenshots.py --identity obama --out docs/images
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from nerfhead.dataset import Identity
from nerfhead.eval.report import CHROMIUM_FLAGS, chromium_path

KEEP = ("manifest.json", "tracks.npz", "audio.wav", "background.png", "frames", "masks", "qa")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--identity", default="obama", help="a trained and evaluated identity")
    ap.add_argument("--root", default="identities", help="its identities folder")
    ap.add_argument("--out", default="docs/images", help="where the PNGs go")
    ap.add_argument("--port", type=int, default=7871)
    args = ap.parse_args()
    src = Identity.at(args.identity, args.root)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "identities"
        shutil.copytree(src.root, root / src.name, ignore=shutil.ignore_patterns("cache"))
        fresh = root / f"{src.name}-new"
        fresh.mkdir()
        for name in KEEP:
            item = src.root / name
            (shutil.copytree if item.is_dir() else shutil.copyfile)(item, fresh / name)
        log = open(Path(tmp) / "studio.log", "wb")
        server = subprocess.Popen([sys.executable, "-m", "nerfhead", "studio", "--port", str(args.port), "--root", str(root),
                                   "-o", str(Path(tmp) / "out")], stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "NERFHEAD_PROGRESS": "0"})
        url = f"http://127.0.0.1:{args.port}/"
        try:
            for _ in range(120):
                try:
                    urllib.request.urlopen(url, timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.5)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_FLAGS))
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.goto(url)
                page.get_by_role("tab", name="Train").click()
                page.locator("#train-identity input").click()
                page.get_by_role("option", name=fresh.name, exact=True).click()
                page.locator("#train-btn").click()
                expect(page.locator("#train-preview img")).to_be_visible(timeout=900_000)
                page.wait_for_timeout(2500)
                page.screenshot(path=str(out / "studio_train.png"), full_page=True)
                page.locator("#stop-btn").click()
                expect(page.locator("#train-status")).to_contain_text("stopped", timeout=120_000)
                page.get_by_role("tab", name="Evaluate").click()
                expect(page.locator("#eval-report iframe")).to_be_visible(timeout=30_000)
                page.wait_for_timeout(3000)
                page.screenshot(path=str(out / "studio_evaluate.png"))
                page.get_by_role("tab", name="Avatars").click()
                page.wait_for_timeout(1500)
                page.screenshot(path=str(out / "studio_avatars.png"))
                browser.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
            log.close()
    print(f"screenshots in {out}: studio_train.png, studio_evaluate.png, studio_avatars.png")


if __name__ == "__main__":
    main()
