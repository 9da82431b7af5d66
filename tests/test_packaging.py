"""A non-editable install carries the presets and the kernel sources (``setup.py`` maps
``configs/`` and ``cuda_ext/`` into the package)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_wheel_holds_presets_and_kernel_sources(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("nerfhead-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for preset in REPO.glob("configs/*.yaml"):
        assert f"nerfhead/presets/{preset.name}" in names
    for source in REPO.glob("cuda_ext/*"):
        assert f"nerfhead/kernels/{source.name}" in names
    for data in REPO.glob("nerfhead/audio/*.npz"):  # the shipped lips-closed detector
        assert f"nerfhead/audio/{data.name}" in names
    assert "nerfhead/avatar/load.py" in names


@pytest.mark.slow
def test_fresh_venv_install_runs_from_another_folder(tmp_path):
    """``pip install .`` into a new venv, then from another folder: the CLI, the presets named in
    ``train --help``, and the kernels compiled from the installed sources."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(REPO)], check=True, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["NERFHEAD_BUILD_DIR"] = str(tmp_path / "build")
    run = dict(cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert "process" in subprocess.run([str(venv / "bin" / "nerfhead"), "--help"], **run).stdout
    assert "quick" in subprocess.run([str(venv / "bin" / "nerfhead"), "train", "--help"], **run).stdout
    code = ("import nerfhead, nerfhead.ops.backend as b\n"
            "assert 'site-packages' in nerfhead.__file__, nerfhead.__file__\n"
            "from nerfhead.train.run import TrainConfig; TrainConfig.load('quick')\n"
            "for f in b.FAMILIES:\n    b.native(f); print(f, b.backend_name(f))\n")
    out = subprocess.run([str(py), "-c", code], **run).stdout
    assert out.split() == ["hashgrid", "native", "raymarch", "native", "volrend", "native"], out
