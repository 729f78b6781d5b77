"""Execute the notebook series (``make run``), write HTML renderings and the report, and check it.

Notebooks are committed without outputs; executed copies, their HTML, the figures they drew,
``REPORT.md`` and ``results.json`` go to ``build/``. A failing notebook is named with the cell that
failed, its partial executed copy is kept, and the run stops with a non-zero exit status.

>>> from kit.notebooks import run_notebooks
>>> run_notebooks(out_dir="build")                     # doctest: +SKIP
{'01_representations.ipynb': 95.2, ...}
"""
from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterable

from .config import ROOT
from .data import atomic_write, atomic_write_text
from .errors import KitError

NOTEBOOKS_DIR = ROOT / "notebooks"


def notebook_paths() -> list[Path]:
    """``notebooks/NN_*.ipynb`` in reading order."""
    return sorted(p for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def _failed_cell(nb) -> tuple[int, str] | None:
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return i, f"{out.get('ename')}: {out.get('evalue')}"
    return None


def execute_notebook(path: str | os.PathLike, out_path: str | os.PathLike | None = None, *,
                     timeout: int = 1800, env: dict[str, str] | None = None) -> float:
    """Run every cell of one notebook (cwd = its folder); write the executed copy; return seconds.

    A failing cell raises :class:`KitError` naming the notebook and the cell (its number, counting
    from 0, and the error); the executed copy, with the error in it, is still written.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    old_env = dict(os.environ)
    os.environ.update(env or {})
    t0 = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellExecutionError as err:
        where = _failed_cell(nb)
        cell = f"cell {where[0]} ({where[1]})" if where else "a cell"
        raise KitError(f"{path.name}: {cell} failed:\n{str(err)[-3000:]}") from None
    finally:
        os.environ.clear()
        os.environ.update(old_env)
        if out_path is not None:
            atomic_write_text(out_path, nbformat.writes(nb))
    return time.perf_counter() - t0


def export(executed: Path, out_dir: Path) -> list[str]:
    """The HTML rendering of an executed notebook, and its figures as PNG files; returns the figures' paths
    relative to ``out_dir``."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    html, _ = HTMLExporter().from_notebook_node(nb)
    atomic_write_text(out_dir / executed.with_suffix(".html").name, html)
    figures = []
    number = executed.name[:2]
    for stale in (out_dir / "figures").glob(f"{number}-cell*.png"):   # figures of an earlier run of this notebook
        stale.unlink()
    for i, cell in enumerate(nb.cells):
        for j, out in enumerate(cell.get("outputs", [])):
            png = out.get("data", {}).get("image/png") if isinstance(out, dict) else None
            if png:
                name = f"figures/{number}-cell{i:02d}-{j}.png"
                atomic_write(out_dir / name, lambda fh, data=png: fh.write(base64.b64decode(data)))
                figures.append(name)
    return figures


def _copy_linked_files(out: Path) -> None:
    """The glossary, the workshop guide and the solutions next to the executed copies, so their links resolve."""
    import shutil

    for md in NOTEBOOKS_DIR.glob("*.md"):
        shutil.copy(md, out / md.name)
    if (NOTEBOOKS_DIR / "solutions").is_dir():
        shutil.copytree(NOTEBOOKS_DIR / "solutions", out / "solutions", dirs_exist_ok=True)


def _previous_run(out: Path, mode: str, keep: set[str]) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Timings and figures of the notebooks in ``keep`` from the last report in ``out`` (same mode), so
    that re-running some notebooks keeps the rest of the report whole."""
    try:
        last = json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return {}, {}
    if last.get("mode") != mode:
        return {}, {}
    timings = {k: float(v) for k, v in last.get("seconds", {}).items() if k in keep and (out / k).is_file()}
    figures = {k: v for k, v in last.get("figures", {}).items() if any(n[:2] == k for n in timings)}
    return timings, figures


def run_notebooks(paths: Iterable[str | os.PathLike] | None = None, out_dir: str | os.PathLike = "build",
                  timeout: int = 1800, *, fast: bool | None = None, report: bool = True,
                  log: Callable[[str], None] = print) -> dict[str, float]:
    """Execute notebooks in order into ``out_dir`` with HTML and figures, then write the report.

    ``fast=True`` runs them under ``KIT_FAST=1`` (``None``: whatever the environment says). Each
    notebook records its results into ``out_dir/results`` (``KIT_RESULTS_DIR``). Progress goes to
    ``log``: which notebook is running, its time and the total so far. Returns seconds per notebook.
    """
    from .report import write_report

    chosen = [Path(p) for p in paths] if paths else notebook_paths()
    if not chosen:
        raise KitError(f"no notebooks found in {NOTEBOOKS_DIR}")
    missing = [str(p) for p in chosen if not p.is_file()]
    if missing:
        raise KitError(f"no such notebook: {', '.join(missing)}")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _copy_linked_files(out)
    env = {"KIT_RESULTS_DIR": str(out / "results")}
    if fast is not None:
        env["KIT_FAST"] = "1" if fast else "0"
    mode = "FAST" if (fast if fast is not None else os.environ.get("KIT_FAST", "0") in ("1", "true", "yes", "on")) else "full"
    timings, figures = _previous_run(out, mode, keep={nb.name for nb in notebook_paths()} - {nb.name for nb in chosen})
    t_all = time.perf_counter()
    for i, nb in enumerate(chosen, 1):
        log(f"[{i}/{len(chosen)}] {nb.name}: running ({mode} mode) ...")
        target = out / nb.name
        (out / "results" / f"{nb.name[:2]}.json").unlink(missing_ok=True)   # its results are recorded afresh
        try:
            seconds = execute_notebook(nb, target, timeout=timeout, env=env)
        except KitError:
            if target.is_file():
                export(target, out)
            log(f"[{i}/{len(chosen)}] {nb.name}: FAILED; the partial executed copy is {target}")
            if report:
                write_report(out, timings=timings, mode=mode, figures=figures)
            raise
        timings[nb.name] = seconds
        figures[nb.name[:2]] = export(target, out)
        timings, figures = dict(sorted(timings.items())), dict(sorted(figures.items()))
        total = time.perf_counter() - t_all
        log(f"[{i}/{len(chosen)}] {nb.name}: done in {seconds:.0f} s (total {total / 60:.1f} min) -> {target}")
    if report:
        path = write_report(out, timings=timings, mode=mode, figures=figures)
        log(f"report: {path} ({sum(timings.values()) / 60:.1f} min in all)")
    return timings
