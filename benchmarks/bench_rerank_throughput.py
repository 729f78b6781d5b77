"""Re-ranking throughput: ``kit.retrieval.rerank`` against ``CrossEncoder.predict`` called directly.

Both sides score the same (query, passage) pairs (each test query's top candidates from BM25) with
the same re-ranker, batch size and length; runs are interleaved (A B A B ...) so machine noise hits
both alike. The target (issue 10): kit within 5% of the direct call (ratio kit / direct >= 0.95).
Also prints the latency per query at each depth.

    .venv/bin/python benchmarks/bench_rerank_throughput.py [--repeats 3] [--queries 40] [--depth 20]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kit.data import doc_text, load_expense_policy  # noqa: E402
from kit.models import load_cross_encoder  # noqa: E402
from kit.retrieval import BM25Index, rerank, top_run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--reranker", default=None, help="a trained re-ranker's folder (default: MiniLM + cosine head)")
    ap.add_argument("--max-seq-length", type=int, default=192)
    args = ap.parse_args()

    ds = load_expense_policy()
    queries, _ = ds.split("test")
    queries = dict(sorted(queries.items())[: args.queries])
    run = top_run(BM25Index.build(ds.corpus).search(queries, k=args.depth), args.depth)
    model = load_cross_encoder(args.reranker)
    model.max_seq_length = args.max_seq_length
    pairs = [(queries[q], doc_text(ds.corpus[d])) for q, docs in run.items() for d in docs]
    model.predict(pairs[:16], batch_size=16, show_progress_bar=False)   # warm-up

    kit_s, direct_s = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        rerank(model, ds.corpus, queries, run, depth=args.depth, batch_size=32, show_progress_bar=False)
        kit_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.predict(pairs, batch_size=32, show_progress_bar=False)
        direct_s.append(time.perf_counter() - t)
    kit_pps, direct_pps = len(pairs) / statistics.median(kit_s), len(pairs) / statistics.median(direct_s)
    latency = {}
    for depth in (5, 10, 20, 50):
        sub = top_run(BM25Index.build(ds.corpus).search(queries, k=depth), depth)
        t = time.perf_counter()
        rerank(model, ds.corpus, queries, sub, depth=depth, batch_size=32, show_progress_bar=False)
        latency[depth] = round(1000 * (time.perf_counter() - t) / len(queries), 1)
    result = {"pairs": len(pairs), "max_seq_length": args.max_seq_length, "kit_pairs_per_s": round(kit_pps, 1),
              "direct_pairs_per_s": round(direct_pps, 1), "ratio_kit_over_direct": round(kit_pps / direct_pps, 3),
              "ms_per_query_by_depth": latency}
    print(f"kit {kit_pps:.1f} pairs/s, CrossEncoder.predict {direct_pps:.1f} pairs/s: ratio {kit_pps / direct_pps:.3f} "
          f"(target >= 0.95); ms per query by depth: {latency}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
