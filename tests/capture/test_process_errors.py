"""Bad input gets one clear line, a non-zero exit and nothing half-written; runs resume."""

from __future__ import annotations

from itertools import islice

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from nerfhead.capture import pipeline
from nerfhead.capture.pipeline import ProcessConfig, process_capture
from nerfhead.cli import app
from nerfhead.dataset import Identity
from nerfhead.io.audio import load_audio
from nerfhead.io.video import iter_frames, write_video

runner = CliRunner()


@pytest.fixture(scope="module")
def sample_frames(sample_capture):
    return list(islice(iter_frames(sample_capture), 75))


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, sample_capture, sample_frames):
    d = tmp_path_factory.mktemp("bad")
    audio = load_audio(sample_capture)
    (d / "text.mp4").write_text("not a video\n" * 50)
    (d / "empty.mp4").write_bytes(b"")
    write_video(d / "noaudio.mp4", sample_frames)
    blank = [np.full((240, 320, 3), 60 + (i % 40), np.uint8) for i in range(75)]
    write_video(d / "noface.mp4", blank, audio)
    cv2.imwrite(str(d / "still.png"), sample_frames[0][..., ::-1])
    cv2.imwrite(str(d / "still.jpg"), sample_frames[0][..., ::-1])
    write_video(d / "short.mp4", sample_frames[:10], audio)
    return d


CASES = [
    ("missing.mp4", "file not found"),
    ("text.mp4", "cannot read"),
    ("empty.mp4", "file is empty"),
    ("noaudio.mp4", "no audio track"),
    ("noface.mp4", "no face found"),
    ("still.png", "still image"),
    ("still.jpg", "still image"),
    ("short.mp4", "at least"),
]


@pytest.mark.parametrize("name, message", CASES)
def test_bad_video_is_one_line_error(bad_inputs, tmp_path, name, message):
    result = runner.invoke(app, ["process", str(bad_inputs / name), "--identity", "x", "--root", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists(), "nothing may be left behind"


@pytest.mark.parametrize("name", ["../up", "a/b", "", ".hidden", "x" * 65, "sp ace"])
def test_unsafe_identity_name(sample_capture, tmp_path, name):
    result = runner.invoke(app, ["process", str(sample_capture), "--identity", name, "--root", str(tmp_path)])
    assert result.exit_code == 2 and "not a safe folder name" in result.output
    assert list(tmp_path.iterdir()) == []


def test_existing_identity_needs_force(sample_identity, sample_capture, ids_root):
    result = runner.invoke(app, ["process", str(sample_capture), "--identity", "sample", "--root", str(ids_root)])
    assert result.exit_code == 2 and "--force" in result.output
    assert sample_identity.is_processed()


def test_info_on_unprocessed_identity(tmp_path):
    result = runner.invoke(app, ["info", "ghost", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "not processed" in result.output


def test_interrupted_run_resumes_and_never_looks_complete(sample_capture, sample_frames, tmp_path, monkeypatch):
    audio = load_audio(sample_capture)
    clip = write_video(tmp_path / "clip.mp4", sample_frames, audio)
    cfg = ProcessConfig()
    calls = {"track": 0}
    real_track = pipeline._Run.track

    def counting_track(self, crop):
        calls["track"] += 1
        return real_track(self, crop)

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline._Run, "track", counting_track)
    monkeypatch.setattr(pipeline._Run, "build_plate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        process_capture(clip, "resumable", cfg, root=tmp_path)
    ident = Identity.at("resumable", tmp_path)
    assert not ident.is_processed() and ident.work_dir.is_dir()
    assert not (ident.root / "frames").exists()  # outputs appear only when the run finishes
    result = runner.invoke(app, ["info", "resumable", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "resumed" in result.output

    monkeypatch.undo()
    monkeypatch.setattr(pipeline._Run, "track", counting_track)
    process_capture(clip, "resumable", cfg, root=tmp_path)
    assert calls["track"] == 1, "the finished tracking step is reused"
    assert ident.is_processed() and not ident.work_dir.exists()
    assert len(list(ident.frames_dir.glob("*.jpg"))) == 75

    # --force replaces it; a changed setting discards the unfinished work of another run
    process_capture(clip, "resumable", ProcessConfig(test_fraction=0.2), root=tmp_path, force=True)
    assert ident.manifest()["split"]["test_start"] == 60


def test_several_faces_tracks_largest_and_warns(sample_capture, sample_frames, tmp_path):
    frames = []
    for f in sample_frames:
        canvas = np.full((512, 768, 3), 40, np.uint8)
        canvas[:, :512] = cv2.resize(f, (512, 512))
        canvas[160:352, 560:752] = cv2.resize(f, (192, 192))
        frames.append(canvas)
    clip = write_video(tmp_path / "two.mp4", frames, load_audio(sample_capture))
    ident = process_capture(clip, "two", ProcessConfig(), root=tmp_path)
    m = ident.manifest()
    assert any("faces visible" in w for w in m["warnings"]), m["warnings"]
    lms = ident.tracks()["landmarks"]
    crop = m["crop"]
    # the tracked face is the big one: its width in the crop is far more than the small face's
    width = np.nanmedian(np.ptp(lms[:, :, 0], axis=1)) / crop["scale"]
    assert width > 120


def test_frames_without_face_are_listed_and_excluded(sample_capture, sample_frames, tmp_path):
    frames = [f if not 30 <= i < 40 else np.full_like(f, 50) for i, f in enumerate(sample_frames)]
    clip = write_video(tmp_path / "gap.mp4", frames, load_audio(sample_capture))
    ident = process_capture(clip, "gap", ProcessConfig(), root=tmp_path)
    m = ident.manifest()
    assert m["no_face_frames"] == list(range(30, 40))
    split = m["split"]
    assert not set(range(30, 40)) & set(split["train"] + split["test"])
    assert len(split["train"]) + len(split["test"]) == 65
    t = ident.tracks()
    assert np.isnan(t["landmarks"][30:40]).all() and np.isnan(t["rotation"][30:40]).all()
    assert not t["face_found"][30:40].any() and t["face_found"][:30].all()
    assert any("no face in 10 of 75 frames" in w for w in m["warnings"])
    # poses either side of the gap stay sane (no garbage filled in and fitted)
    assert np.isfinite(t["rotation"][[29, 40]]).all()
