"""Exact dense search over a large corpus stays in bounded memory.

Searches N synthetic normalized 384-d vectors (default 1,000,000) with Q queries and reports the
peak memory the search added, next to what a full Q x N score matrix would need.

    .venv/bin/python benchmarks/bench_search_memory.py [--docs 1000000] [--queries 1000]
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kit.retrieval import top_k  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=100)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((args.docs, 384), dtype=np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = docs[rng.choice(args.docs, args.queries, replace=False)] + 0.01
    base = rss_mb()
    peak = [base]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    t = time.perf_counter()
    _, idx = top_k(queries, docs, args.k)
    seconds = time.perf_counter() - t
    done.set()
    watcher.join()
    print(json.dumps({"docs": args.docs, "queries": args.queries, "k": args.k, "seconds": round(seconds, 1),
                      "peak_added_mb": round(peak[0] - base, 1),
                      "full_matrix_mb": round(args.queries * args.docs * 4 / 2**20, 1),
                      "corpus_mb": round(docs.nbytes / 2**20, 1)}))


if __name__ == "__main__":
    main()
