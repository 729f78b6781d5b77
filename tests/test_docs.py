"""Promises that are checked: the docstring examples that can run are run; the README's numbers
match the data; public functions say which notebook teaches them (or what they serve); notebook
prose does not restate a size that ``pick()`` sets."""
import doctest
import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted({".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for p in (ROOT / "kit").rglob("*.py") if p.name != "__main__.py"})


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.IGNORE_EXCEPTION_DETAIL
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} docstring examples failed"


def test_readme_numbers_match_the_data():
    from kit.data import load_expense_policy

    ds = load_expense_policy()
    readme = (ROOT / "README.md").read_text()
    sheet = (ROOT / "data" / "expense_policy" / "README.md").read_text()
    m = re.search(r"\(([\d,]+) passages, ([\d,]+) employee questions", readme)
    assert m, "the README's dataset sentence changed: update this test"
    assert (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))) == (len(ds.corpus), len(ds.queries))
    assert f"| queries | {len(ds.queries)} |" in sheet and f"| passages | {len(ds.corpus)} |" in sheet


NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _picked_numbers(nb) -> set[str]:
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    values = set()
    for full in re.findall(r"pick\(\s*full\s*=\s*(\[[^\]]*\]|[^,]+?)\s*,\s*fast", code):
        values.update(re.findall(r"\d[\d_]*(?:\.\d+)?", full))
    return {v.replace("_", "") for v in values if float(v.replace("_", "")) >= 3}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_prose_does_not_restate_picked_sizes(path):
    """A size set by pick(full=..., fast=...) changes under KIT_FAST=1: prose that types it in goes stale."""
    nb = json.loads(path.read_text())
    sizes = _picked_numbers(nb)
    stale = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = re.sub(r"`[^`]*`", "", "".join(cell["source"]))      # code spans may name a call's arguments
        text = re.sub(r"\]\([^)]*\)", "]", text)                        # links
        text = re.sub(r"(?m)^(\s*#+\s*\d+(\.\d+)*\.?|\s*\d+\.\s)", "", text)  # section numbers, list markers
        text = re.sub(r"(?i)(sections?|notebooks?|step) \d+", "", text)              # references, not sizes
        for number in sizes:
            if re.search(rf"(?<![\w.,=@\-]){re.escape(number)}(?![\w%]|\.\d)", text):
                stale.append(f"cell {i}: {number}")
    assert not stale, f"{path.name}: prose restates sizes set by pick(): {stale}; compute them into the text"
