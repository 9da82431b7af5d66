"""What the page may reach: identity names as the CLI checks them, uploads by type and content,
media only from inside the identities and output folders."""

from __future__ import annotations

import importlib.util
import os

import pytest

from nerfhead.errors import InputError, NerfheadError
from nerfhead.studio.catalog import contained_file, list_identities
from nerfhead.studio.uploads import check_upload, keep_upload


def test_uploads_are_checked_by_type_and_content(tmp_path, sample_capture):
    notes = tmp_path / "notes.mp4"
    notes.write_text("my notes\n")
    with pytest.raises(InputError, match=r"^cannot read notes.mp4 as audio/video"):
        check_upload(notes, "notes.mp4", "video")
    with pytest.raises(InputError, match="expected a video"):
        check_upload(sample_capture, "capture.txt", "video")
    with pytest.raises(InputError, match="expected an audio or video file"):
        check_upload(sample_capture, "run.sh", "audio")
    kept = keep_upload(sample_capture, "../../my capture!.mp4", tmp_path / "uploads", "video")
    assert kept.parent == tmp_path / "uploads" and kept.name.endswith("-my_capture_.mp4")
    check_upload(sample_capture, "speech.mp4", "audio")  # a video's sound can drive a render


def test_media_stays_inside_its_folder(tmp_path):
    base = tmp_path / "out"
    (base / "renders").mkdir(parents=True)
    (base / "renders" / "a.mp4").write_bytes(b"x")
    (tmp_path / "secret.png").write_bytes(b"x")
    (base / "notes.txt").write_text("x")
    os.symlink(tmp_path / "secret.png", base / "link.png")
    assert contained_file(base, "renders/a.mp4") == (base / "renders" / "a.mp4").resolve()
    assert contained_file(base, "../secret.png") is None
    assert contained_file(base, "link.png") is None  # a link out of the folder
    assert contained_file(base, "notes.txt") is None  # not a kind of file the page shows
    assert contained_file(base, "/etc/passwd") is None


def test_identity_listing_and_names(tmp_path, sample_identity):
    root = sample_identity.root.parent
    states = {s.name: s for s in list_identities(root)}
    assert states[sample_identity.name].processed and states[sample_identity.name].frames > 0
    assert list_identities(tmp_path / "none") == []


@pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="the 'studio' extra (gradio) is not installed")
def test_page_actions_refuse_bad_names_and_states(tmp_path, sample_identity, sample_capture):
    from nerfhead.studio.app import Studio

    studio = Studio.open(sample_identity.root.parent, tmp_path / "out")
    with pytest.raises(InputError, match="not a safe folder name"):
        studio.submit_process(str(sample_capture), "../evil", False)
    with pytest.raises(NerfheadError, match="already exists"):
        studio.submit_process(str(sample_capture), sample_identity.name, False)
    with pytest.raises(NerfheadError, match="not processed"):
        studio.submit_train("nobody", "quick", None)
    with pytest.raises(NerfheadError, match="unknown preset"):
        studio.submit_train(sample_identity.name, "../../etc/x", None)
    with pytest.raises(NerfheadError, match="not processed"):
        studio.submit_render("nobody", "Hello.", None, None, None)
    assert studio.store.all() == []  # nothing was queued
    assert studio.media_file("identities", f"{sample_identity.name}/qa/contact_sheet.png") is not None
    assert studio.media_file("etc", "passwd") is None
