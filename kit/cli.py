"""Command line: ``python -m kit <command>`` (also installed as ``kit``).

Commands:
  info DATA_DIR                  statistics and the validation report of a BEIR folder
  evaluate DATA_DIR              retrieve for every query of a split and score the run(s)
  train-bi DATA_DIR --out DIR    fine-tune a bi-encoder (the recipe of notebook 04), save it
  run-notebooks                  execute the notebook series into build/

Errors on bad input print one clear message (no traceback) and exit with status 2; the
metrics are printed as one JSON object on the last line of ``evaluate`` and ``train-bi``.

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


# --------------------------------------------------------------------------- train-bi

def _check(name: str, value, ok: bool, need: str) -> None:
    if not ok:
        raise KitError(f"{name} must be {need}, got {value}")


def _validate_train_args(args: argparse.Namespace) -> None:
    import math

    _check("--epochs", args.epochs, math.isfinite(args.epochs) and args.epochs > 0, "a number above 0")
    _check("--batch-size", args.batch_size, args.batch_size >= 1, "at least 1")
    _check("--max-seq-length", args.max_seq_length, args.max_seq_length >= 8, "at least 8 (tokens)")
    _check("--hard-negatives", args.hard_negatives, args.hard_negatives >= 0, "0 or more")
    if args.freeze_layers is not None:
        _check("--freeze-layers", args.freeze_layers, args.freeze_layers >= 0, "0 or more")
    _check("--seed", args.seed, args.seed >= 0, "0 or more")
    if args.max_steps is not None:
        _check("--max-steps", args.max_steps, args.max_steps >= 1, "at least 1")
    _check("--learning-rate", args.learning_rate, math.isfinite(args.learning_rate) and 0 < args.learning_rate < 1,
           "a number between 0 and 1 (e.g. 5e-5)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise KitError(f"--out {out} exists and is a file; give a new folder")
    if out.is_dir() and any(out.iterdir()):
        raise KitError(f"--out {out} exists and is not empty; give a new folder (nothing was overwritten)")
    if not out.parent.is_dir():
        raise KitError(f"--out {out}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise KitError(f"--out {out}: folder {out.parent} is not writable")


def _pick_dev_split(ds, args: argparse.Namespace, log) -> tuple[object, str, bool]:
    """The dataset to train on and the name of its dev split; holds out train queries if there is none."""
    from .train import holdout_split

    if args.split not in ds.splits:
        raise KitError(f"{ds.name}: split {args.split!r} not found (available: {', '.join(ds.splits)})")
    dev = args.dev_split
    if dev is not None:
        if dev == args.split:
            raise KitError(f"--dev-split {dev!r} is the training split; the dev split must hold other queries")
        if dev == "test":
            raise KitError("--dev-split test: the test split is never used while training (it would leak into "
                           "checkpoint selection); give a dev split, or none to hold out train queries")
        if dev not in ds.splits:
            raise KitError(f"{ds.name}: dev split {dev!r} not found (available: {', '.join(ds.splits)})")
        return ds, dev, False
    if "dev" in ds.splits and args.split != "dev":
        return ds, "dev", False
    name = "heldout-dev"
    held = holdout_split(ds, args.split, fraction=0.1, seed=args.seed, name=name)
    log(f"note: {ds.name} has no dev split: holding out {len(held.qrels[name])} of {len(ds.qrels[args.split])} "
        f"{args.split} queries (10%, seed {args.seed}) as the dev split; they are not trained on")
    return held, name, True


def _quick_estimate(model, data, batch_size: int, steps: int, n_evals: int, eval_texts: int) -> tuple[float, float]:
    """Rough seconds for the run: time one forward pass over a batch of training texts;
    a training step costs about 3 forward passes (backward is about twice the forward)."""
    import time as _time

    texts = [t for row in data.select(range(min(batch_size, len(data)))) for t in row.values()]
    model.encode(texts[:8], batch_size=len(texts), show_progress_bar=False)  # warm-up
    t = _time.perf_counter()
    model.encode(texts, batch_size=len(texts), show_progress_bar=False)
    forward = _time.perf_counter() - t
    per_text = forward / max(len(texts), 1)
    return 3 * forward * steps, per_text * eval_texts * n_evals


def cmd_train_bi(args: argparse.Namespace) -> int:
    rank, world = int(os.environ.get("RANK", "0") or 0), int(os.environ.get("WORLD_SIZE", "1") or 1)
    main_process = rank == 0
    log = _log if main_process else (lambda msg: None)
    if not main_process:  # one set of progress bars, from rank 0 (tqdm reads this when first imported)
        os.environ.setdefault("TQDM_DISABLE", "1")
    t_start = time.perf_counter()
    _validate_train_args(args)

    from .data import load_beir, positive_pairs, triplets
    from .models import load_bi_encoder
    from .train import (EtaCallback, RetrievalEvaluator, TrainConfig, count_parameters, format_seconds, freeze,
                        planned_steps, save_model, train_bi_encoder, transformer_layers)

    ds = load_beir(args.data_dir)
    ds, dev_name, heldout = _pick_dev_split(ds, args, log)
    queries, qrels = ds.split(args.split)
    top = max(g for docs in qrels.values() for g in docs.values())
    min_grade = 2 if top >= 2 else 1   # graded judgments: "answers" only; binary: every judged passage

    model = load_bi_encoder(args.base)
    limit = getattr(model[0].auto_model.config, "max_position_embeddings", None)
    if limit and args.max_seq_length > limit:
        raise KitError(f"--max-seq-length {args.max_seq_length} is above what {args.base} supports ({limit})")
    model.max_seq_length = args.max_seq_length
    if args.freeze_layers:  # freeze the embeddings and the bottom N layers; the top layers train
        n_layers = len(transformer_layers(model)[1])
        if args.freeze_layers > n_layers:
            raise KitError(f"--freeze-layers {args.freeze_layers}: {args.base} has {n_layers} transformer layers")
        if args.freeze_layers == n_layers:
            raise KitError(f"--freeze-layers {n_layers} would freeze every layer and train nothing; "
                           f"give fewer than {n_layers}")
        freeze(model, n_layers - args.freeze_layers)
    trainable, total = count_parameters(model)

    if args.hard_negatives:
        from .augment import mine_negatives

        log(f"mining {args.hard_negatives} hard negative(s) per {args.split} query with the base model "
            f"(encodes the {len(ds.corpus)} passages) ...")
        t = time.perf_counter()
        negatives = mine_negatives(model, ds, args.split, num_negatives=args.hard_negatives)
        log(f"mined in {format_seconds(time.perf_counter() - t)}")
        data = triplets(ds, args.split, negatives=negatives, num_negatives=args.hard_negatives,
                        min_grade=min_grade, seed=args.seed)
    else:
        data = positive_pairs(ds, args.split, min_grade=min_grade, seed=args.seed)
    if len(data) == 0:
        raise KitError(f"{ds.name}: split {args.split!r} has no (query, passage) pair judged {min_grade} or more")

    evaluator = RetrievalEvaluator(ds, dev_name)
    cfg = TrainConfig(epochs=args.epochs, max_steps=args.max_steps or -1, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, max_seq_length=args.max_seq_length, seed=args.seed)
    steps = planned_steps(len(data), cfg)
    eval_steps = max(1, steps // 4)
    n_evals = 1 + sum(1 for s in range(1, steps + 1) if s % eval_steps == 0 or s == steps)
    train_s, eval_s = _quick_estimate(model, data, args.batch_size, steps, n_evals,
                                      len(evaluator.corpus) + len(evaluator.queries))
    log(f"training {args.base} on {len(data)} {'/'.join(data.column_names)} rows of {ds.name}/{args.split}: "
        f"{steps} steps of {args.batch_size} x {world} process(es), max_seq_length {args.max_seq_length}, "
        f"{trainable:,} of {total:,} parameters trainable; dev: {len(evaluator.queries)} {dev_name} queries, "
        f"{n_evals} evaluations")
    log(f"rough estimate before training: about {format_seconds(train_s + eval_s)} "
        f"({format_seconds(train_s)} training + {format_seconds(eval_s)} dev evaluation); refined after the first steps")

    eta = EtaCallback(log, evaluator=evaluator, eval_steps=eval_steps)
    result = train_bi_encoder(model, data, config=cfg, evaluator=evaluator, callbacks=[eta], eval_steps=eval_steps)
    best = next((h for h in result.history if h["step"] == result.best_step), result.history[-1])
    start = result.history[0]
    measures = [m for m in evaluator.measures]
    summary = {
        "model": str(args.out), "base": args.base, "dataset": ds.name, "split": args.split,
        "dev_split": dev_name, "dev_heldout_from_train": heldout, "dev_queries": len(evaluator.queries),
        "rows": len(data), "columns": data.column_names, "hard_negatives": args.hard_negatives,
        "batch_size": args.batch_size, "world_size": world, "max_seq_length": args.max_seq_length,
        "learning_rate": args.learning_rate, "seed": args.seed, "freeze_layers": args.freeze_layers,
        "trainable_params": trainable, "total_params": total,
        "steps": result.steps, "best_step": result.best_step,
        "seconds": round(result.seconds, 2), "step_seconds": round(result.step_seconds or 0.0, 2),
        "pairs_per_second": round(result.train_examples_per_second, 3),
        "dev": {m: round(best[m], 4) for m in measures},
        "dev_step0": {m: round(start[m], 4) for m in measures},
    }
    failure = None
    if main_process:  # under DDP every rank holds the same weights; one saves
        try:
            if result.best_step is not None:
                result.model.model_card_data.set_best_model_step(result.best_step)
            result.model.model_card_data.model_name = f"{Path(args.base).name} fine-tuned on {ds.name} ({args.split})"
            save_model(result.model, args.out)
        except KitError as err:
            failure = err
        else:
            summary["total_seconds"] = round(time.perf_counter() - t_start, 2)
            log(f"best dev {measures[0]} {best[measures[0]]:.4f} at step {result.best_step} (step 0: "
                f"{start[measures[0]]:.4f}); {result.steps} steps in {format_seconds(result.seconds)}, "
                f"{summary['pairs_per_second']} pairs/s; saved to {args.out} "
                f"(total {format_seconds(summary['total_seconds'])})")
            print(json.dumps(summary))
    _barrier()   # the other ranks wait for the save, then all exit together
    if failure is not None:
        raise failure
    return 0


def _barrier() -> None:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
    except Exception:  # pragma: no cover - best effort at exit
        pass


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

    p = sub.add_parser(
        "train-bi", help="fine-tune a bi-encoder on a BEIR folder and save it (the recipe of notebook 04)",
        description="Fine-tune a bi-encoder: MultipleNegativesRankingLoss on (query, answer) pairs plus mined "
                    "hard negatives, no duplicates in a batch, dev-split evaluation, best checkpoint kept, saved "
                    "with a model card. The last stdout line is the result as JSON. Runs under "
                    "`torchrun --nproc_per_node=N -m kit train-bi ...` too (DDP).")
    p.add_argument("data_dir", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
    p.add_argument("--out", required=True, help="folder to save the model in (must not exist, or be empty)")
    p.add_argument("--split", default="train", help="split to train on (default: train)")
    p.add_argument("--dev-split", default=None,
                   help="split for checkpoint selection (default: dev; if the folder has none, 10%% of the "
                        "training queries are held out, seeded); never test")
    p.add_argument("--base", default="sentence-transformers/all-MiniLM-L6-v2",
                   help="model name or path to start from (default: all-MiniLM-L6-v2, shipped offline)")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the training pairs (default 1)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="pairs per step; each query's in-batch negatives are the other passages (default 32)")
    p.add_argument("--max-seq-length", type=int, default=128, help="truncate texts to this many tokens (default 128)")
    p.add_argument("--hard-negatives", type=int, default=1,
                   help="mined hard negatives per pair (default 1; 0 = in-batch negatives only)")
    p.add_argument("--freeze-layers", type=int, default=None, metavar="N",
                   help="task adaptation: freeze the embeddings and the bottom N transformer layers, train the rest "
                        "(default 0: train everything)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (overrides --epochs)")
    p.add_argument("--learning-rate", type=float, default=5e-5, help="peak learning rate (default 5e-5)")
    p.set_defaults(func=cmd_train_bi)

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
        if int(os.environ.get("RANK", "0") or 0) == 0:  # under torchrun, one message, not one per process
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
