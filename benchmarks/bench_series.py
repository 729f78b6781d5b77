"""The whole series' wall time: ``make run`` cold (empty cache) and warm (a second run), in FAST mode
by default (``--full`` for full mode: about an hour cold on a 2-core CPU), from the runner's own timings.

    .venv/bin/python benchmarks/bench_series.py [--full] [--work /tmp/kit-series]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--work", default="/tmp/kit-series")
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.environ["KIT_CACHE_DIR"] = str(work / "cache")
    os.environ["KIT_FAST"] = "0" if args.full else "1"
    from kit.notebooks import run_notebooks

    result = {"mode": "full" if args.full else "FAST"}
    for phase in ("cold", "warm"):
        t = time.perf_counter()
        seconds = run_notebooks(out_dir=work / phase, fast=not args.full, log=lambda m: print(m, flush=True))
        result[phase] = {"total_s": round(time.perf_counter() - t, 1), **{k: round(v, 1) for k, v in seconds.items()}}
    result["warm_over_cold"] = round(result["warm"]["total_s"] / result["cold"]["total_s"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
