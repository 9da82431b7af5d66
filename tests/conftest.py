"""Shared fixtures: where the real media lives.

The shipped sample capture (identities/obama/capture.mp4) is always present. The larger
development media in ../shared/data (or $NERFHEAD_SHARED_DATA) may be absent on a user's
machine: tests that need it use the ``shared_data`` fixture and are skipped, saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CAPTURE = REPO / "identities" / "obama" / "capture.mp4"

os.environ.setdefault("NERFHEAD_PROGRESS", "0")


def _shared_data_dir() -> Path:
    env = os.environ.get("NERFHEAD_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (development media); skips the test when it is not on this machine."""
    path = _shared_data_dir()
    if not (path / "identities" / "cnn.mp4").is_file():
        pytest.skip(f"development media not found at {path} (set NERFHEAD_SHARED_DATA); shipped-sample tests still run")
    return path


@pytest.fixture(scope="session")
def sample_capture() -> Path:
    """The shipped 20 s sample capture (always present in the repo)."""
    assert SAMPLE_CAPTURE.is_file(), "identities/obama/capture.mp4 is part of the repository"
    return SAMPLE_CAPTURE


@pytest.fixture(scope="session")
def ids_root(tmp_path_factory):
    """A temporary identities folder shared by the session."""
    return tmp_path_factory.mktemp("identities")


@pytest.fixture(scope="session")
def sample_identity(sample_capture, ids_root):
    """The shipped sample capture, processed once per session with default settings."""
    from nerfhead.capture.pipeline import ProcessConfig, process_capture

    return process_capture(sample_capture, "sample", ProcessConfig(), root=ids_root)


# A few minutes of training is enough for tests that need *a* trained avatar (render, eval):
# every stage runs, so the checkpoints are complete; quality is not the point here.
TINY_TRAINING = """\
model: {grid_resolution: 32, lip_code: 0}
features: default
head: {steps: 300, rays: 1024, grid_update_every: 16, grid_warmup_steps: 64, sampling: {samples_per_box: 32, max_samples: 24}}
lips: {steps: 20, rays: 1024}
torso: {steps: 150, rays: 1024}
tensorboard: false
checkpoint_every: 1000
log_every: 1000
"""


@pytest.fixture(scope="session")
def trained_sample(sample_identity, tmp_path_factory):
    """The processed sample identity with a briefly trained avatar (all three stages)."""
    from nerfhead.train.run import train_identity

    cfg = tmp_path_factory.mktemp("configs") / "tiny.yaml"
    cfg.write_text(TINY_TRAINING)
    reports = train_identity(sample_identity.name, config=cfg, root=sample_identity.root.parent)
    assert [r.stage for r in reports] == ["head", "lips", "torso"] and reports[-1].result.finished
    return sample_identity
