"""Audio tests: a private feature cache, and real speech to work on."""

from __future__ import annotations

import os

import numpy as np
import pytest

from nerfhead.audio.loading import load_normalized


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    old = os.environ.get("NERFHEAD_CACHE")
    os.environ["NERFHEAD_CACHE"] = str(tmp_path_factory.mktemp("nerfhead-cache"))
    yield
    if old is None:
        os.environ.pop("NERFHEAD_CACHE", None)
    else:
        os.environ["NERFHEAD_CACHE"] = old


@pytest.fixture(scope="session")
def speech(sample_capture) -> np.ndarray:
    """20 s of real speech: the shipped sample capture's audio, 16 kHz mono, normalised."""
    samples, _ = load_normalized(sample_capture)
    return samples

