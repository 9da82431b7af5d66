"""Processed identities shared by the capture tests (processed once per session)."""

from __future__ import annotations

import pytest

from nerfhead.capture.pipeline import ProcessConfig, process_capture


@pytest.fixture(scope="session")
def ids_root(tmp_path_factory):
    return tmp_path_factory.mktemp("identities")


@pytest.fixture(scope="session")
def sample_identity(sample_capture, ids_root):
    """The shipped sample capture, processed with default settings."""
    return process_capture(sample_capture, "sample", ProcessConfig(), root=ids_root)
