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


def _requirement_names(lines) -> list[str]:
    import re

    return [re.split(r"[<>=!~\[; ]", line.strip())[0].lower() for line in lines
            if line.strip() and not line.strip().startswith("#")]


def test_every_dependency_has_its_licence_in_the_readme():
    """The project has a licence, and the README's licence table names every package it installs
    (requirements.txt and the optional extras), so the table cannot fall behind."""
    import tomllib

    assert "MIT License" in (REPO / "LICENSE").read_text()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert pyproject["license"] == "MIT"
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Licences"):].split("\n## ")[0].lower()
    wanted = _requirement_names((REPO / "requirements.txt").read_text().splitlines())
    wanted += _requirement_names([r for extra, reqs in pyproject["optional-dependencies"].items() for r in reqs])
    missing = [name for name in wanted if name not in table]
    assert not missing, f"README's licence table does not name: {missing}"
    assert "piper-tts" in pyproject["optional-dependencies"]["voices"][0]
