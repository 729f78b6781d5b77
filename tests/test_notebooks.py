"""Every notebook runs top to bottom under KIT_FAST=1, on a cache folder of its own (so the cold paths,
training included, are exercised; later notebooks reuse what earlier ones trained), and the sources
carry no outputs."""
import json

import pytest

from kit.notebooks import execute_notebook, notebook_paths

NOTEBOOKS = notebook_paths()


@pytest.fixture(scope="session")
def notebook_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("kit-cache")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_source_has_no_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them before committing"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_in_fast_mode(path, tmp_path, notebook_cache):
    seconds = execute_notebook(path, tmp_path / path.name, timeout=900,
                               env={"KIT_FAST": "1", "HF_HUB_OFFLINE": "1", "KIT_CACHE_DIR": str(notebook_cache)})
    assert seconds > 0
