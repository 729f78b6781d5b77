"""kit's encoding + exact search against sentence-transformers called directly, side by side.

Both sides encode the same passages and queries with the same model and settings and search
the same top-100; the runs are interleaved (A B A B ...) so machine noise hits both alike.
The target (issue 2): kit adds at most 5% (ratio kit / direct <= 1.05).

    .venv/bin/python benchmarks/bench_encode_search.py [--repeats 3] [--docs N]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kit.data import load_expense_policy  # noqa: E402
from kit.models import load_bi_encoder  # noqa: E402
from kit.retrieval import DenseIndex  # noqa: E402


def direct(model, doc_texts, query_texts, k):
    from sentence_transformers.util import semantic_search

    d = model.encode(doc_texts, batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
    q = model.encode(query_texts, batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
    return semantic_search(q, d, top_k=k)


def with_kit(model, corpus, queries, k):
    return DenseIndex.build(model, corpus, batch_size=64).search(queries, k=k)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--docs", type=int, default=None, help="use only the first N passages")
    ap.add_argument("--max-seq-length", type=int, default=128)
    args = ap.parse_args()

    ds = load_expense_policy()
    queries, _ = ds.split("test")
    ids = list(ds.corpus)[: args.docs]
    corpus = {i: ds.corpus[i] for i in ids}
    doc_texts, query_texts = ds.doc_texts(ids), list(queries.values())
    model = load_bi_encoder(max_seq_length=args.max_seq_length)
    direct(model, doc_texts[:64], query_texts[:8], 10)  # warm-up

    times = {"direct": [], "kit": []}
    for _ in range(args.repeats):
        for name, fn in (("direct", lambda: direct(model, doc_texts, query_texts, 100)),
                         ("kit", lambda: with_kit(model, corpus, queries, 100))):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)

    # Same results: the top-10 of every query agrees.
    hits = direct(model, doc_texts, query_texts, 10)
    run = with_kit(model, corpus, queries, 10)
    same = sum([ids[h["corpus_id"]] for h in hits_q] == list(run[q]) for q, hits_q in zip(queries, hits))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {"passages": len(ids), "queries": len(queries), "max_seq_length": args.max_seq_length,
              "repeats": args.repeats, "direct_s": round(med["direct"], 2), "kit_s": round(med["kit"], 2),
              "ratio_kit_over_direct": round(med["kit"] / med["direct"], 3),
              "identical_top10": f"{same}/{len(queries)}"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
