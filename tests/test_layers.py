"""The package's layer map (docs/ARCHITECTURE.md): every import inside nerfhead runs down the map.

Each top-level unit of the package (a subpackage such as ``nerfhead.avatar`` or a module such as
``nerfhead.dataset``) sits on one floor. A unit may import units of lower floors and itself;
an import up the map, or sideways to another unit of the same floor, fails this test. Imports
inside functions count as much as those at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nerfhead"

#: bottom to top; keep in step with docs/ARCHITECTURE.md
FLOORS: list[tuple[str, ...]] = [
    ("__init__", "errors"),
    ("log", "threads", "config", "landmark_ids", "quality", "perceptual", "shipped"),
    ("io",),
    ("dataset", "ops"),
    ("audio", "capture", "field"),
    ("avatar",),
    ("train", "render"),
    ("eval", "batch"),
    ("demo", "studio"),
    ("cli",),
    ("__main__",),
]
FLOOR = {unit: i for i, units in enumerate(FLOORS) for unit in units}


def unit_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_units(path: Path) -> list[tuple[int, str]]:
    """(line, unit) of every nerfhead unit ``path`` imports."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(("nerfhead",) + path.relative_to(PACKAGE).parent.parts)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from nerfhead import x``: a unit, or a name of the package's __init__ (its version)
            names = [mod] if mod != "nerfhead" else [f"nerfhead.{a.name if a.name in FLOOR else '__init__'}"
                                                     for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "nerfhead" and len(parts) > 1:
                out.append((node.lineno, parts[1]))
    return out


def test_every_unit_is_on_the_map():
    units = {unit_of(p) for p in PACKAGE.rglob("*.py")}
    assert not units - set(FLOOR), f"units missing from the layer map: {sorted(units - set(FLOOR))}"


def test_imports_run_down_the_map():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = unit_of(path)
        for line, other in imported_units(path):
            if other == me or other not in FLOOR:
                continue
            if FLOOR[other] >= FLOOR[me]:
                way = "up" if FLOOR[other] > FLOOR[me] else "sideways"
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {me} imports {other} ({way})")
    assert not bad, "imports against the layer map (docs/ARCHITECTURE.md):\n" + "\n".join(bad)


def test_no_private_names_imported_across_modules():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nerfhead"):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        bad.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.module}.{a.name}")
    assert not bad, "private names imported from another module:\n" + "\n".join(bad)
