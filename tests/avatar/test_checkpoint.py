"""The avatar checkpoint: versioned, with stage, sampling and the capture's rest codes; old or
foreign files get one line that says what to do."""

from __future__ import annotations

import shutil

import pytest
import torch
from typer.testing import CliRunner

from nerfhead.avatar.checkpoint import FORMAT_VERSION, load_checkpoint
from nerfhead.avatar.load import checkpoint_path, load_avatar
from nerfhead.avatar.rest import silence_code
from nerfhead.cli import app
from nerfhead.dataset import Identity
from nerfhead.errors import IdentityError, InputError
from nerfhead.train.data import load_training_data


def _ident(trained_sample):
    return Identity.at(trained_sample.name, trained_sample.root.parent)


def test_checkpoint_carries_stage_sampling_and_rest_codes(trained_sample):
    ident = _ident(trained_sample)
    payload = load_checkpoint(checkpoint_path(ident, "torso"), own=True)
    assert payload["format"] == FORMAT_VERSION and payload["stage_name"] == "torso" and payload["finished"]
    avatar = load_avatar(ident)
    assert avatar.stage == "torso" and avatar.has_torso
    assert avatar.sampling.max_samples == 24  # the tiny fixture's setting, not the default
    data = load_training_data(ident, avatar.model.extractor)
    expected = silence_code(avatar.model, data.windows, data.vad, data.train_frames)
    assert expected is not None and torch.allclose(avatar.rest.silence, expected, atol=1e-6)
    # a copied stage file keeps its stage (no guessing from the file name)
    copy = ident.root / "copied.pt"
    shutil.copy(checkpoint_path(ident, "lips"), copy)
    assert load_avatar(ident, copy).stage == "lips"


def test_older_format_is_refused_with_the_advice_to_retrain(trained_sample, tmp_path):
    ident = _ident(trained_sample)
    payload = load_checkpoint(checkpoint_path(ident, "torso"), own=True)
    old = {k: v for k, v in payload.items() if k not in ("format", "rest_codes", "stage_name", "sampling")}
    path = tmp_path / "torso.pt"
    torch.save(old, path)
    with pytest.raises(IdentityError, match=r"older nerfhead \(checkpoint format 1.*nerfhead train sample"):
        load_avatar(ident, path)


def test_foreign_file_is_not_a_checkpoint_and_nobody_is_told_to_delete_it(trained_sample, tmp_path):
    ident = _ident(trained_sample)
    notes = tmp_path / "notes.pt"
    notes.write_text("my notes, not a checkpoint")
    with pytest.raises(InputError, match="is not a nerfhead checkpoint") as err:
        load_avatar(ident, notes)
    assert "delete" not in str(err.value)
    r = CliRunner().invoke(app, ["eval", ident.name, "--root", str(ident.root.parent), "--checkpoint", str(notes)])
    assert r.exit_code == 2 and "not a nerfhead checkpoint" in r.output and "delete" not in r.output
    assert "Traceback" not in r.output and notes.read_text() == "my notes, not a checkpoint"


def test_broken_own_checkpoint_is_to_be_deleted(tmp_path):
    ident = Identity("x", tmp_path / "x")
    path = checkpoint_path(ident, "head")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x80\x04truncated")
    with pytest.raises(IdentityError, match="delete it"):
        load_checkpoint(path, own=True)
