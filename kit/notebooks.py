"""Execute the notebook series (``make run``) and check it (the test suite).

Notebooks are committed without outputs; executed copies go to ``build/``.

>>> from kit.notebooks import run_notebooks
>>> run_notebooks(out_dir="build")                     # doctest: +SKIP
{'01_representations.ipynb': 95.2, ...}
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable

from .config import ROOT
from .errors import KitError

NOTEBOOKS_DIR = ROOT / "notebooks"


def notebook_paths() -> list[Path]:
    """``notebooks/NN_*.ipynb`` in reading order."""
    return sorted(p for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def execute_notebook(path: str | os.PathLike, out_path: str | os.PathLike | None = None, *,
                     timeout: int = 1800, env: dict[str, str] | None = None) -> float:
    """Run every cell of one notebook (cwd = its folder); write the executed copy; return seconds.

    A failing cell raises :class:`KitError` naming the notebook and the cell; the executed copy,
    with the error in it, is still written so it can be inspected.
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
        raise KitError(f"{path.name}: a cell failed:\n{str(err)[-3000:]}") from None
    finally:
        os.environ.clear()
        os.environ.update(old_env)
        if out_path is not None:
            from .data import atomic_write_text

            atomic_write_text(out_path, nbformat.writes(nb))
    return time.perf_counter() - t0


def run_notebooks(paths: Iterable[str | os.PathLike] | None = None, out_dir: str | os.PathLike = "build",
                  timeout: int = 1800) -> dict[str, float]:
    """Execute notebooks in order into ``out_dir``; returns seconds per notebook."""
    chosen = [Path(p) for p in paths] if paths else notebook_paths()
    if not chosen:
        raise KitError(f"no notebooks found in {NOTEBOOKS_DIR}")
    out = Path(out_dir)
    results = {}
    for nb in chosen:
        seconds = execute_notebook(nb, out / nb.name, timeout=timeout)
        results[nb.name] = seconds
        print(f"{nb.name}: {seconds:.1f}s -> {out / nb.name}", flush=True)
    return results
