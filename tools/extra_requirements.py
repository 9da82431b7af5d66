"""Print the requirements of optional extras of pyproject.toml (``make install`` installs them
with pip, so the pins live in one place): ``python tools/extra_requirements.py voices studio``."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def extra(name: str) -> list[str]:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    if name not in extras:
        raise SystemExit(f"no extra {name!r} in {PYPROJECT} (there are: {', '.join(extras)})")
    return extras[name]


if __name__ == "__main__":
    print(" ".join(r for name in sys.argv[1:] for r in extra(name)))
