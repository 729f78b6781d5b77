"""The series runs top to bottom under KIT_FAST=1 through the same runner as ``make run`` (on a cache
folder of its own, so the cold paths, training included, are exercised), writes the executed copies,
their HTML and REPORT.md / results.json that agree; a failing notebook is named with its cell; the
sources carry no outputs and their links resolve."""
import json
import re

import nbformat
import pytest

from kit.cli import main
from kit.notebooks import notebook_paths, run_notebooks

NOTEBOOKS = notebook_paths()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_source_has_no_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_links_resolve(path):
    nb = json.loads(path.read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if not t.startswith(("http", "#", "mailto:"))]
    missing = [t for t in targets if not (path.parent / t).exists()]
    assert not missing, f"{path.name}: links to missing files: {missing}"


@pytest.mark.notebook
def test_the_series_runs_in_fast_mode_and_writes_a_consistent_report(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "build"
    timings = run_notebooks(out_dir=out, fast=True, timeout=900, log=lambda msg: None)
    assert list(timings) == [p.name for p in NOTEBOOKS]
    for p in NOTEBOOKS:
        executed = nbformat.read(out / p.name, as_version=4)
        assert not [c for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert (out / p.with_suffix(".html").name).is_file()
    results = json.loads((out / "results.json").read_text())
    report = (out / "REPORT.md").read_text()
    assert results["mode"] == "FAST" and set(results["seconds"]) == set(timings)
    recorded = [p.name[:2] for p in NOTEBOOKS if p.name[:2] in results["notebooks"]]
    assert recorded == [p.name[:2] for p in NOTEBOOKS], "every notebook records its results"
    for nb, entries in results["notebooks"].items():
        assert f"## {nb} ·" in report and entries
        for entry in entries:
            assert f"| {entry['name']} |" in report                    # every recorded number is in the report
    for figures in results["figures"].values():
        assert all((out / f).is_file() for f in figures)


def test_a_failing_notebook_is_named_with_its_cell_and_the_run_fails(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("text"),
                                         nbformat.v4.new_code_cell("raise ValueError('boom')")])
    path = tmp_path / "09_broken.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "build"
    assert main(["run-notebooks", str(path), "--out", str(out), "--timeout", "60"]) == 2
    captured = capsys.readouterr()
    assert "09_broken.ipynb: cell 2 (ValueError: boom) failed" in captured.err
    assert "FAILED" in captured.out and (out / "09_broken.ipynb").is_file()     # the partial copy is kept
    assert (out / "REPORT.md").is_file()


def test_rerunning_some_notebooks_keeps_the_others_in_the_report(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "09_tiny.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "build"
    out.mkdir()
    kept = NOTEBOOKS[0].name
    (out / kept).write_text("{}")
    (out / "results.json").write_text(json.dumps({"mode": "full", "seconds": {kept: 123.0, "gone.ipynb": 5.0},
                                                  "figures": {kept[:2]: ["figures/x.png"]}}))
    run_notebooks([path], out, timeout=60, fast=False, log=lambda _: None)
    report = json.loads((out / "results.json").read_text())
    assert report["seconds"][kept] == 123.0 and "09_tiny.ipynb" in report["seconds"]
    assert "gone.ipynb" not in report["seconds"]            # not a notebook of the series
    assert report["figures"][kept[:2]] == ["figures/x.png"]
    assert list(report["seconds"]) == sorted(report["seconds"])


def test_rerunning_a_notebook_forgets_its_old_results_and_figures(tmp_path):
    # a result renamed (or dropped) in a notebook must not linger in the report from an earlier run
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from kit.report import record\nrecord('09', 'renamed result', 1.0)")])
    path = tmp_path / "09_tiny.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "build"
    (out / "results").mkdir(parents=True)
    (out / "figures").mkdir()
    (out / "results" / "09.json").write_text(json.dumps([{"name": "old name", "value": 0.5, "p": None, "interval": None,
                                                          "verdict": None, "section": None}]))
    (out / "figures" / "09-cell07-0.png").write_bytes(b"old")
    run_notebooks([path], out, timeout=60, fast=False, log=lambda _: None)
    names = [e["name"] for e in json.loads((out / "results" / "09.json").read_text())]
    assert names == ["renamed result"]
    assert not (out / "figures" / "09-cell07-0.png").exists()
