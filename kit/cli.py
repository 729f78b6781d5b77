"""Command line: ``python -m kit <command>`` (also installed as ``kit``).

Commands:
  info DATA_DIR                  statistics and the validation report of a BEIR folder
  evaluate DATA_DIR              retrieve for every query of a split and score the run(s)
  run-notebooks                  execute the notebook series into build/

Errors on bad input print one clear message (no traceback) and exit with status 2; the
metrics are printed as one JSON object on the last line of ``evaluate``.

>>> main(["info", "data/expense_policy"])       # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from .errors import KitError


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- info

def cmd_info(args: argparse.Namespace) -> int:
    from .data import validate_beir

    ds, report = validate_beir(args.data_dir)
    print(report)
    if ds is None:
        return 1
    stats = ds.stats()
    width = max(len(k) for k in stats)
    for key, value in stats.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps({"dataset": str(args.data_dir), **{k: v for k, v in stats.items()}}, default=str))
    return 0


# --------------------------------------------------------------------------- evaluate

def cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import atomic_write_text, load_beir
    from .evaluate import evaluate, format_table, per_query
    from .models import load_bi_encoder, load_cross_encoder
    from .retrieval import BM25Index, DenseIndex, rerank, rrf

    if args.rerank_depth < 1:
        raise KitError(f"--rerank-depth must be at least 1, got {args.rerank_depth}")
    if args.k < 1:
        raise KitError(f"--k must be at least 1, got {args.k}")
    out_path = Path(args.out) if args.out else None
    if out_path is not None and not out_path.parent.exists():
        raise KitError(f"--out {out_path}: folder {out_path.parent} does not exist")
    measures = args.measures or None

    t0 = time.perf_counter()
    ds = load_beir(args.data_dir, splits=[args.split])
    queries, qrels = ds.split(args.split)
    _log(f"{ds.name}: {len(ds.corpus)} passages, {len(queries)} {args.split} queries ({time.perf_counter() - t0:.1f}s)")

    runs, timings = {}, {}
    use_dense = args.model is not None or not args.bm25
    if args.bm25:
        t = time.perf_counter()
        runs["bm25"] = BM25Index.build(ds.corpus).search(queries, k=args.k)
        timings["bm25"] = time.perf_counter() - t
    if use_dense:
        t = time.perf_counter()
        model = load_bi_encoder(args.model, max_seq_length=args.max_seq_length)
        _log(f"encoding {len(ds.corpus)} passages with {args.model or 'the default model'} (max_seq_length={model.max_seq_length})")
        index = DenseIndex.build(model, ds.corpus, batch_size=args.batch_size, show_progress_bar=True)
        name = f"dense:{_short(args.model)}"
        runs[name] = index.search(queries, k=args.k)
        timings[name] = time.perf_counter() - t
    if args.bm25 and use_dense and args.fusion:
        runs["rrf(bm25+dense)"] = rrf(list(runs.values()))
    if args.reranker:
        first = list(runs)[-1] if not (args.bm25 and use_dense) else next(k for k in runs if k.startswith("dense"))
        t = time.perf_counter()
        reranker = load_cross_encoder(args.reranker, max_length=args.max_seq_length)
        _log(f"re-ranking the top {args.rerank_depth} of {first} with {args.reranker}")
        name = f"{first} >> rerank:{_short(args.reranker)}@{args.rerank_depth}"
        runs[name] = rerank(reranker, ds.corpus, queries, runs[first], depth=args.rerank_depth,
                            batch_size=args.batch_size, show_progress_bar=True)
        timings[name] = time.perf_counter() - t

    kwargs = {"measures": measures} if measures else {}
    metrics = {name: evaluate(run, qrels, **kwargs) for name, run in runs.items()}
    print(format_table(metrics))
    result = {"dataset": ds.name, "split": args.split, "queries": len(queries), "documents": len(ds.corpus),
              "runs": metrics, "seconds": {k: round(v, 2) for k, v in timings.items()}}
    if out_path is not None:
        detail = {**result, "per_query": {name: per_query(run, qrels, **kwargs).to_dict(orient="index")
                                          for name, run in runs.items()}}
        atomic_write_text(out_path, json.dumps(detail, indent=1) + "\n")
        _log(f"wrote {out_path}")
    print(json.dumps(result))
    return 0


def _short(name: str | None) -> str:
    if name is None:
        return "all-MiniLM-L6-v2"
    p = Path(name)
    return p.name if p.exists() else name.split("/")[-1]


# --------------------------------------------------------------------------- run-notebooks

def cmd_run_notebooks(args: argparse.Namespace) -> int:
    from .notebooks import run_notebooks

    results = run_notebooks(args.notebooks or None, out_dir=args.out, timeout=args.timeout)
    print(json.dumps({name: round(sec, 1) for name, sec in results.items()}))
    return 0


# --------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kit", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="statistics and validation report of a BEIR folder")
    p.add_argument("data_dir", help="folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("evaluate", help="retrieve for a split over the whole corpus and score it")
    p.add_argument("data_dir")
    p.add_argument("--split", default="test")
    p.add_argument("--model", default=None, help="bi-encoder name or path (default: all-MiniLM-L6-v2, shipped offline)")
    p.add_argument("--bm25", action="store_true", help="evaluate BM25 (alone, or beside --model)")
    p.add_argument("--fusion", action="store_true", help="with --bm25 and --model: also reciprocal-rank fusion")
    p.add_argument("--reranker", default=None, help="cross-encoder name or path to re-rank the first-stage run")
    p.add_argument("--rerank-depth", type=int, default=100)
    p.add_argument("--k", type=int, default=100, help="passages retrieved per query (default 100)")
    p.add_argument("--measures", nargs="+", default=None, help="ir-measures names (default: nDCG@10 RR@10 R@100)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-seq-length", type=int, default=None, help="truncate passages to this many tokens")
    p.add_argument("--out", default=None, help="write metrics and per-query scores to this JSON file")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("run-notebooks", help="execute notebooks/NN_*.ipynb into build/")
    p.add_argument("notebooks", nargs="*", help="notebook paths (default: all, in order)")
    p.add_argument("--out", default="build")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    p.set_defaults(func=cmd_run_notebooks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m kit``; returns the exit status."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KitError as err:
        _log(f"error: {err}")
        return 2
    except FileNotFoundError as err:
        _log(f"error: {err}")
        return 2
    except KeyboardInterrupt:
        _log("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
