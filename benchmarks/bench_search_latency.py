"""Dense search latency: exact top-k (``kit.retrieval.top_k``, chunked numpy) against FAISS, exact
(``IndexFlatIP``) and approximate (``IndexHNSWFlat``), for 1,000, 100,000 and 1,000,000 random
normalized 384-dimensional vectors, side by side in one run. Milliseconds per query (a batch of
queries, divided), and HNSW's recall@10 against the exact result.

    .venv/bin/python benchmarks/bench_search_latency.py [--sizes 1000 100000 1000000] [--queries 100]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kit.retrieval import top_k  # noqa: E402


def unit(rows: int, dim: int, rng) -> np.ndarray:
    x = rng.standard_normal((rows, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    import faiss

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    queries = unit(args.queries, args.dim, rng)
    rows = []
    for n in args.sizes:
        docs = unit(n, args.dim, rng)
        t = time.perf_counter()
        _, exact = top_k(queries, docs, args.k)
        kit_ms = 1000 * (time.perf_counter() - t) / args.queries
        flat = faiss.IndexFlatIP(args.dim)
        flat.add(docs)
        t = time.perf_counter()
        flat.search(queries, args.k)
        flat_ms = 1000 * (time.perf_counter() - t) / args.queries
        t = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(args.dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.add(docs)
        build_s = time.perf_counter() - t
        hnsw.hnsw.efSearch = 64
        t = time.perf_counter()
        _, approx = hnsw.search(queries, args.k)
        hnsw_ms = 1000 * (time.perf_counter() - t) / args.queries
        recall = float(np.mean([len(set(a) & set(e)) / args.k for a, e in zip(approx, exact)]))
        rows.append({"vectors": n, "kit exact ms/query": round(kit_ms, 3), "faiss flat ms/query": round(flat_ms, 3),
                     "faiss hnsw ms/query": round(hnsw_ms, 3), "hnsw build s": round(build_s, 1),
                     "hnsw recall@10": round(recall, 3), "kit / faiss flat": round(kit_ms / flat_ms, 2)})
        print(rows[-1], flush=True)
        del docs, flat, hnsw
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
