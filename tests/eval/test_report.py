"""`nerfhead eval` and `nerfhead compare` on the briefly trained sample: the whole protocol writes a
report whose numbers hang together, the HTML opens in headless Chromium, and comparisons show
differences the right way round."""

from __future__ import annotations

import json
import wave

import cv2
import numpy as np
import pytest

from nerfhead.eval.compare import compare, load_item, write_comparison
from nerfhead.eval.protocol import evaluate_identity, summary
from nerfhead.eval.report import chromium_path, screenshot

N_TEST = 10


@pytest.fixture(scope="module")
def evaluated(trained_sample, sample_capture, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    report, html = evaluate_identity(trained_sample.name, root=trained_sample.root.parent, out_dir=out,
                                     audio=[sample_capture], cross_seconds=2.0, max_frames=N_TEST)
    return report, html


def test_report_has_the_protocol_and_baselines(evaluated):
    report, html = evaluated
    sd = report["selfdriven"]
    assert set(sd["scores"]) == {"ours", "portrait", "frozen", "retrieval", "previous"}
    # portrait keeps the real frame outside the lower face: better full-frame PSNR than full mode
    assert sd["scores"]["portrait"]["psnr"] > sd["scores"]["ours"]["psnr"]
    assert {"shuffled", "silent"} <= set(sd["audio_check"]) <= {"shuffled", "silent", "as another voice"}
    ours, prev = sd["scores"]["ours"], sd["scores"]["previous"]
    assert sd["n_test_frames"] == N_TEST and len(ours["per_frame_psnr"]) == N_TEST
    assert 15 < ours["psnr"] < prev["psnr"]  # a real render, below the noise floor of real frames
    assert sd["scores"]["frozen"]["mouth_corr"] == 0.0
    assert report["temporal"]["ours"]["landmark_jitter_px"] > 0
    assert [c["name"] for c in report["crossdriven"]] == ["real capture, own audio", "capture.mp4"]
    assert report["crossdriven"][1]["n_frames"] == 50
    capture, driven = report["crossdriven"]
    assert capture["asked_corr"] is None  # tracked landmarks, no mouth input
    assert -1 <= driven["asked_corr"] <= 1 and driven["asked_margin"] is not None
    assert report["speed"]["render_fps_test_frames"] > 0
    for name in ("report.json", "frames_strip.png", "mouth_strip.png", "per_frame_psnr.png", "pose.png",
                 "mouth_vs_audio.png"):
        assert (html.parent / name).is_file(), name
    assert json.loads((html.parent / "report.json").read_text())["identity"] == report["identity"]
    # the mouth box, seam and lower-face flicker of every source, in the JSON, the summary and the page
    for scores in list(sd["scores"].values()) + list(sd["audio_check"].values()):
        assert {"mouth_psnr", "mouth_ssim", "mouth_stlpips", "seam", "flicker"} <= set(scores)
    frozen = sd["scores"]["frozen"]
    assert frozen["flicker"] == 0.0 and 0.5 < prev["flicker"] < 2 and 0.5 < prev["seam"] < 2
    assert 0 < prev["mouth_stlpips"] < frozen["mouth_stlpips"] and ours["mouth_stlpips"] > 0
    assert np.isfinite(sd["scores"]["portrait"]["seam"]) and np.isfinite(ours["flicker"])
    text = summary(report)
    assert "retrieval" in text and "previous" in text and "lip sync" in text and "ST-LPIPS" in text
    assert "mouth ST-LPIPS" in html.read_text() and "seam (x real)" in html.read_text()


@pytest.mark.skipif(chromium_path() is None, reason="Chromium is not installed (`make install` installs it as root)")
def test_html_report_opens_in_headless_chromium(evaluated, tmp_path):
    _, html = evaluated
    page = html.read_text()
    assert "<script" not in page and page.count("data:image/png;base64,") >= 5
    png, log = screenshot(html, tmp_path / "report.png", height=1600)
    assert "Uncaught" not in log and "ERR_FILE_NOT_FOUND" not in log
    shot = cv2.imread(str(png))
    assert shot.shape[:2] == (1600, 1200)
    assert shot.std() > 20  # tables and pictures, not a blank page


def test_compare_shows_differences_the_right_way_round(evaluated, tmp_path):
    report, html = evaluated
    worse = json.loads(json.dumps(report))
    worse["selfdriven"]["scores"]["ours"]["psnr"] -= 2.0
    worse["selfdriven"]["scores"]["ours"]["lmd"] += 0.5
    (tmp_path / "worse").mkdir()
    (tmp_path / "worse" / "report.json").write_text(json.dumps(worse))
    result = compare([load_item(str(html.with_suffix(".json"))), load_item(str(tmp_path / "worse"))])
    rows = {r["key"]: r for r in result["metrics"]}
    assert rows["psnr"]["deltas"][1] == pytest.approx(-2.0) and rows["psnr"]["better"][1] is False
    assert rows["lmd"]["deltas"][1] == pytest.approx(0.5) and rows["lmd"]["better"][1] is False
    assert rows["ssim"]["better"][1] is None  # unchanged
    _, page = write_comparison([str(html.parent), str(tmp_path / "worse")], tmp_path / "cmp")
    assert page.is_file() and "(-2.000)" in page.read_text()
