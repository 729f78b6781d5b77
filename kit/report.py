"""What the notebooks measured, recorded as they run and assembled into one report.

Each notebook records its key numbers with one call, :func:`record`, so ``build/REPORT.md`` and
``build/results.json`` are assembled from what the notebooks computed, never retyped. ``make run``
points ``KIT_RESULTS_DIR`` at ``build/results``; run interactively, a notebook records there too
(``build/results`` of the repository) unless told otherwise.

>>> from kit.report import record
>>> record("05", "test nDCG@10", {"retriever": 0.735, "re-ranked": 0.749}, p=0.03, section="Re-ranking")  # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .config import ROOT
from .data import atomic_write_text
from .errors import KitError

SECTIONS = {
    "01": "Representations: zero-shot vs a first fine-tune",
    "02": "Losses and metrics by task",
    "03": "Augmentation when good data is scarce",
    "04": "The bi-encoder recipe",
    "05": "Re-ranking with a cross-encoder",
    "06": "RAG, end to end",
}


def results_dir() -> Path:
    """Where :func:`record` writes: ``$KIT_RESULTS_DIR``, else ``build/results`` of the repository."""
    return Path(os.environ.get("KIT_RESULTS_DIR", ROOT / "build" / "results"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):     # numpy scalars
        return value.item()
    if isinstance(value, float):
        return round(value, 6)
    return value


def record(notebook: str, name: str, value: Any, *, p: float | None = None, interval: tuple | None = None,
           verdict: str | None = None, section: str | None = None, folder: str | os.PathLike | None = None) -> dict:
    """Record one result of a notebook: ``value`` (a number, or a small dict of numbers such as
    before/after), with its significance (``p``, a 95% ``interval``, a one-line ``verdict``) when it
    has one. Re-recording a name replaces it. ``folder`` overrides :func:`results_dir`. Returns the entry.

    >>> import tempfile
    >>> record("05", "test nDCG@10", {"before": 0.7, "after": 0.75}, p=0.01, folder=tempfile.mkdtemp())["value"]
    {'before': 0.7, 'after': 0.75}
    """
    if not re.fullmatch(r"\d\d", str(notebook)):
        raise KitError(f"record: notebook must be its two-digit number, e.g. '05', got {notebook!r}")
    path = Path(folder or results_dir()) / f"{notebook}.json"
    entries = json.loads(path.read_text()) if path.is_file() else []
    entry = {"name": name, "value": _jsonable(value), "p": _jsonable(p), "interval": _jsonable(interval),
             "verdict": verdict, "section": section}
    entries = [e for e in entries if e["name"] != name] + [entry]
    atomic_write_text(path, json.dumps(entries, indent=1))
    return entry


def clear_results(notebook: str | None = None) -> None:
    """Forget recorded results (of one notebook, or all), e.g. before a fresh run."""
    folder = results_dir()
    for path in folder.glob(f"{notebook or '*'}.json") if folder.is_dir() else []:
        path.unlink()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


def write_report(build: str | os.PathLike, *, timings: dict[str, float] | None = None, mode: str = "full",
                 machine: str | None = None, figures: dict[str, list[str]] | None = None) -> Path:
    """Assemble ``build/results.json`` and ``build/REPORT.md`` from the recorded results.

    ``timings``: seconds per executed notebook; ``figures``: notebook -> figure paths (relative to
    ``build``). Every number in the report is read from ``results.json``, which the test suite checks.

    >>> write_report("build", timings={"05_cross_encoder.ipynb": 300.0})     # doctest: +SKIP
    """
    import datetime
    import platform

    build = Path(build)
    folder = Path(os.environ.get("KIT_RESULTS_DIR", build / "results"))
    results = {}
    for path in sorted(folder.glob("[0-9][0-9].json")):
        results[path.stem] = json.loads(path.read_text())
    machine = machine or f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    payload = {"date": datetime.date.today().isoformat(), "mode": mode, "machine": machine,
               "seconds": {k: round(v, 1) for k, v in (timings or {}).items()},
               "total_seconds": round(sum((timings or {}).values()), 1), "notebooks": results,
               "figures": figures or {}}
    atomic_write_text(build / "results.json", json.dumps(payload, indent=1))
    lines = [f"# Report: what fine-tuning achieved ({mode} mode)", "",
             f"{payload['date']}, {machine}. Every number below was computed by the executed notebooks in this "
             "folder and recorded with `kit.report.record`; `results.json` holds the same numbers.", ""]
    if timings:
        lines += ["| notebook | seconds |", "|---|---|"]
        lines += [f"| [{name}]({Path(name).with_suffix('.html').name}) | {sec:.0f} |" for name, sec in timings.items()]
        lines += [f"| **total** | **{payload['total_seconds']:.0f}** |", ""]
    for nb, entries in results.items():
        lines += [f"## {nb} · {SECTIONS.get(nb, 'notebook ' + nb)}", "", "| result | value | significance |", "|---|---|---|"]
        for e in entries:
            sig = []
            if e.get("p") is not None:
                sig.append(f"p = {e['p']:.2g}")
            if e.get("interval"):
                sig.append(f"95% interval {_fmt(e['interval'][0])} to {_fmt(e['interval'][1])}")
            if e.get("verdict"):
                sig.append(e["verdict"])
            lines.append(f"| {e['name']} | {_fmt(e['value'])} | {'; '.join(sig)} |")
        for fig in (figures or {}).get(nb, []):
            lines.append(f"\n![{Path(fig).stem}]({fig})")
        lines.append("")
    atomic_write_text(build / "REPORT.md", "\n".join(lines))
    return build / "REPORT.md"
