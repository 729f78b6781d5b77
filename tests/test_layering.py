"""The kit's layers only point down: a module never imports one above it (module level or inside a
function), so there are no import cycles and the layout in the README stays true."""
import ast
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parents[1] / "kit"

# Lowest first. A module may import modules of lower layers only.
LAYERS = [
    {"config", "errors"},
    {"data"},
    {"heads"},
    {"models"},
    {"evaluate"},
    {"retrieval"},
    {"analysis"},
    {"train"},
    {"augment", "annotate"},
    {"recipes"},
    {"rag"},
    {"cache"},
    {"series"},
    {"plots", "report"},
    {"notebooks"},
    {"cli"},
    {"__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def kit_module(path: Path) -> str:
    rel = path.relative_to(KIT).with_suffix("")
    return rel.parts[0]


def imported_kit_modules(source: str, rel: Path) -> set[tuple[str, int]]:
    """Top-level kit modules imported anywhere in ``source`` (the text of ``kit/<rel>``), as (name, line):
    absolute ``kit.x`` or relative ``.x`` / ``..x``, at module level or inside functions."""
    tree = ast.parse(source)
    package = list(rel.parent.parts)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "kit" and len(parts) > 1:
                    found.add((parts[1], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:  # "from . import x": x are top-level kit modules (or names of kit/__init__)
                    found.update((alias.name, node.lineno) for alias in node.names if alias.name in RANK)
                    continue
            elif node.module and node.module.split(".")[0] == "kit":
                parts = node.module.split(".")[1:]
                if not parts:
                    found.update((alias.name, node.lineno) for alias in node.names if alias.name in RANK)
                    continue
            else:
                continue
            found.add((parts[0], node.lineno))
    return found


MODULES = sorted(p for p in KIT.rglob("*.py") if p.name != "__init__.py" or p.parent != KIT)


def test_every_module_has_a_layer():
    names = {kit_module(p) for p in MODULES}
    assert names - set(RANK) == set(), f"put these modules in a layer of tests/test_layering.py: {names - set(RANK)}"


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(KIT)) for p in MODULES])
def test_imports_point_down(path):
    me = kit_module(path)
    up = [(name, line) for name, line in imported_kit_modules(path.read_text(), path.relative_to(KIT))
          if name in RANK and name != me and RANK[name] >= RANK[me]]
    assert not up, f"kit/{path.relative_to(KIT)} imports a module at or above its layer: " + ", ".join(
        f"kit.{n} (line {line})" for n, line in sorted(up))


def test_the_checker_sees_imports_inside_functions():
    src = ("import numpy\nfrom .errors import KitError\n\n\ndef f():\n    from .cache import cached_model\n"
           "    from kit.series import EXAMPLE\n    import kit.cli\n")
    assert {n for n, _ in imported_kit_modules(src, Path("data.py"))} == {"errors", "cache", "series", "cli"}
    sub = "from ..data import Run\nfrom .core import fit\n"
    assert {n for n, _ in imported_kit_modules(sub, Path("train/bi.py"))} == {"data", "train"}
