"""Command line: ``python -m kit <command>`` (also installed as ``kit``).

Commands:
  info DATA_DIR                  statistics and the validation report of a BEIR folder
  evaluate DATA_DIR              retrieve for every query of a split and score the run(s)
  train-bi DATA_DIR --out DIR    fine-tune a bi-encoder (the recipe of notebook 04), save it
  train-ce DATA_DIR --out DIR    fine-tune a re-ranker (the recipe of notebook 05), save it
  run-notebooks                  execute the notebook series into build/

The commands parse arguments, call :mod:`kit.recipes` / :mod:`kit.retrieval`, and print. Errors on
bad input print one clear message (no traceback) and exit with status 2, leaving nothing
half-written; the result is printed as one JSON object on the last line of stdout.

>>> main(["info", "data/expense_policy"])       # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from .errors import KitError


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _main_process() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0


# --------------------------------------------------------------------------- info

def cmd_info(args: argparse.Namespace) -> int:
    from .data import validate_beir

    ds, report = validate_beir(args.data_dir)
    print(report)
    if ds is None:
        return 2
    stats = ds.stats()
    width = max(len(k) for k in stats)
    for key, value in stats.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps({"dataset": str(args.data_dir), **{k: v for k, v in stats.items()}}, default=str))
    return 0


# --------------------------------------------------------------------------- shared checks

def _check_out_file(out: str | None) -> Path | None:
    if out is None:
        return None
    path = Path(out)
    if path.is_dir():
        raise KitError(f"--out {path}: is a folder; give a file name, e.g. {path / 'metrics.json'}")
    if not path.parent.is_dir():
        raise KitError(f"--out {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise KitError(f"--out {path}: not writable")
    return path


def _check_out_folder(out: str) -> None:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise KitError(f"--out {path} exists and is a file; give a new folder")
    if path.is_dir() and any(path.iterdir()):
        raise KitError(f"--out {path} exists and is not empty; give a new folder (nothing was overwritten)")
    if not path.parent.is_dir():
        raise KitError(f"--out {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise KitError(f"--out {path}: folder {path.parent} is not writable")


def _short(name: str | None) -> str:
    if name is None:
        return "all-MiniLM-L6-v2"
    p = Path(name)
    return p.name if p.exists() else name.split("/")[-1]


# --------------------------------------------------------------------------- evaluate

def cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import atomic_write_text, dev_split, load_beir
    from .evaluate import check_measures, evaluate, format_table, per_query
    from .models import choose_max_seq_length, load_bi_encoder, load_cross_encoder, read_kit_settings
    from .retrieval import FIRST_STAGES, BM25Index, DenseIndex, choose_first_stage, mix_scores, rerank, top_run, with_tail

    for flag, value, low in (("--rerank-depth", args.rerank_depth, 1), ("--k", args.k, 1),
                             ("--batch-size", args.batch_size, 1)):
        if value < low:
            raise KitError(f"{flag} must be at least {low}, got {value}")
    if args.max_seq_length is not None and args.max_seq_length < 8:
        raise KitError(f"--max-seq-length must be at least 8, got {args.max_seq_length}")
    if args.fusion and not args.bm25:
        raise KitError("--fusion fuses BM25 with the dense run: give --bm25 too")
    measures = check_measures(args.measures) if args.measures else None
    out_path = _check_out_file(args.out)

    t0 = time.perf_counter()
    ds = load_beir(args.data_dir)
    queries, qrels = ds.split(args.split)
    _log(f"{ds.name}: {len(ds.corpus)} passages, {len(queries)} {args.split} queries ({time.perf_counter() - t0:.1f}s)")
    use_dense = args.model is not None or not args.bm25
    hybrid = use_dense and not args.dense_only
    runs, timings, notes = {}, {}, {}
    dense_name = f"dense:{_short(args.model)}"
    bm25_index = None
    if args.bm25 or hybrid:
        t = time.perf_counter()
        bm25_index = BM25Index.build(ds.corpus)
        runs["bm25"] = bm25_index.search(queries, k=args.k)
        timings["bm25"] = time.perf_counter() - t
    index = None
    if use_dense:
        t = time.perf_counter()
        model = load_bi_encoder(args.model)
        if args.max_seq_length is not None:
            model.max_seq_length = args.max_seq_length
            notes["max_seq_length"] = f"{args.max_seq_length} (given)"
        else:
            need = choose_max_seq_length(model, ds.doc_texts())
            saved = model.max_seq_length
            model.max_seq_length = max(saved, need.max_seq_length)
            notes["max_seq_length"] = (f"{model.max_seq_length}: the larger of the model's ({saved}) and the data's need "
                                       f"({need.describe()})")
        _log(f"max_seq_length {notes['max_seq_length']}")
        _log(f"encoding {len(ds.corpus)} passages with {args.model or 'the default model'}")
        index = DenseIndex.build(model, ds.corpus, batch_size=args.batch_size, show_progress_bar=True)
        runs[dense_name] = index.search(queries, k=args.k)
        timings[dense_name] = time.perf_counter() - t
    chosen = dense_name if use_dense else "bm25"
    if args.fusion or hybrid:
        for stage in FIRST_STAGES[2:]:
            runs[stage.name] = stage.combine(runs[dense_name], runs["bm25"])
    if hybrid:
        try:
            dev_ds, dev_name, heldout = dev_split(ds, "train" if "train" in ds.splits else args.split, None,
                                                  log=lambda m: None)
        except KitError:
            dev_ds = None
        if dev_ds is None or dev_name == args.split:
            notes["first_stage"] = "no dev split to choose on (and none to hold out): dense is reported as the first stage"
        else:
            dq, dqr = dev_ds.split(dev_name)
            choice = choose_first_stage(index.search(dq, k=args.k), bm25_index.search(dq, k=args.k), dqr,
                                        dev_split=dev_name + (" (held out of train)" if heldout else ""))
            chosen = dense_name if choice.chosen.kind == "dense" else choice.chosen.name
            notes["first_stage"] = f"{choice.chosen.name}: {choice.reason}"
            notes["first_stage_dev_scores"] = {k: round(v, 4) for k, v in choice.dev_scores.items()}
        _log(f"first stage chosen on dev: {notes['first_stage']}")
    if args.reranker:
        t = time.perf_counter()
        reranker = load_cross_encoder(args.reranker)
        if args.max_seq_length is not None:
            reranker.max_seq_length = args.max_seq_length
        _log(f"re-ranking the top {args.rerank_depth} of {chosen} with {args.reranker}")
        first = top_run(runs[chosen], args.rerank_depth)
        name = f"{chosen} >> rerank:{_short(args.reranker)}@{args.rerank_depth}"
        runs[name] = rerank(reranker, ds.corpus, queries, runs[chosen], depth=args.rerank_depth,
                            batch_size=args.batch_size, show_progress_bar=True)
        timings[name] = time.perf_counter() - t
        weight = read_kit_settings(args.reranker).get("mix_weight") if Path(args.reranker).is_dir() else None
        if weight is not None:
            mixed = mix_scores(first, top_run(runs[name], args.rerank_depth), weight)
            runs[f"{name} + mix({weight})"] = with_tail(mixed, runs[chosen])    # the rest kept below: R@100 comparable
            notes["mix"] = f"re-ranker and first-stage scores mixed at weight {weight} (chosen on dev by train-ce)"

    kwargs = {"measures": measures} if measures else {}
    metrics = {name: evaluate(run, qrels, **kwargs) for name, run in runs.items()}
    print(format_table(metrics))
    result = {"dataset": ds.name, "split": args.split, "queries": len(queries), "documents": len(ds.corpus),
              "runs": metrics, "first_stage": chosen, "notes": notes,
              "seconds": {k: round(v, 2) for k, v in timings.items()}}
    if out_path is not None:
        detail = {**result, "per_query": {name: per_query(run, qrels, **kwargs).to_dict(orient="index")
                                          for name, run in runs.items()}}
        try:
            atomic_write_text(out_path, json.dumps(detail, indent=1) + "\n")
        except OSError as err:
            raise KitError(f"--out {out_path}: cannot write ({err.strerror or err})") from None
        _log(f"wrote {out_path}")
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- train-bi / train-ce

def _save(model, out: str, settings: dict) -> None:
    from .models import KIT_SETTINGS, save_model

    save_model(model, out, extra_files={KIT_SETTINGS: json.dumps(settings, indent=1, default=str)})


def _finish(result, args, t_start: float) -> int:
    """Rank 0 saves and prints; every rank waits for it (DDP), then all exit together."""
    failure = None
    if _main_process():
        try:
            _save(result.model, args.out, result.summary)
        except KitError as err:
            failure = err
        else:
            summary = {"model": str(args.out), **{k: v for k, v in result.summary.items() if k != "history"},
                       "total_seconds": round(time.perf_counter() - t_start, 2)}
            _log(f"saved to {args.out} (total {summary['total_seconds']:.0f}s)")
            print(json.dumps(summary))
    _barrier()
    if failure is not None:
        raise failure
    return 0


def cmd_train_bi(args: argparse.Namespace) -> int:
    if not _main_process():  # one set of progress bars, from rank 0 (tqdm reads this when first imported)
        os.environ.setdefault("TQDM_DISABLE", "1")
    t_start = time.perf_counter()
    from .data import load_beir
    from .recipes import BiRecipe, train_bi_recipe

    recipe = BiRecipe(base=args.base, split=args.split, dev_split=args.dev_split, hard_negatives=args.hard_negatives,
                      epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, max_seq_length=args.max_seq_length, coverage=args.coverage,
                      freeze_layers=args.freeze_layers, seed=args.seed)
    recipe.validate()
    _check_out_folder(args.out)
    log = _log if _main_process() else (lambda msg: None)
    result = train_bi_recipe(load_beir(args.data_dir), recipe, log=log)
    return _finish(result, args, t_start)


def cmd_train_ce(args: argparse.Namespace) -> int:
    if not _main_process():
        os.environ.setdefault("TQDM_DISABLE", "1")
    t_start = time.perf_counter()
    from .data import load_beir
    from .recipes import CrossRecipe, train_ce_recipe

    recipe = CrossRecipe(base=args.base, retriever=args.retriever, head=args.head, split=args.split,
                         dev_split=args.dev_split, hard_negatives=args.hard_negatives,
                         random_negatives=args.random_negatives, loss=args.loss, epochs=args.epochs,
                         max_steps=args.max_steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                         max_seq_length=args.max_seq_length, depth=args.depth, first_stage=args.first_stage,
                         max_related=args.max_related, seed=args.seed)
    recipe.validate()
    _check_out_folder(args.out)
    log = _log if _main_process() else (lambda msg: None)
    ds = load_beir(args.data_dir)
    if args.judgments:
        from .data import load_pooled_judgments, with_judgments

        ds = with_judgments(ds, load_pooled_judgments(args.judgments), name=Path(args.judgments).stem)
        log(f"judgments from {args.judgments} merged in (the folder's own grades stand)")
    result = train_ce_recipe(ds, recipe, log=log)
    return _finish(result, args, t_start)


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

    results = run_notebooks(args.notebooks or None, out_dir=args.out, timeout=args.timeout,
                            fast=True if args.fast else None, report=not args.no_report)
    print(json.dumps({name: round(sec, 1) for name, sec in results.items()}))
    return 0


# --------------------------------------------------------------------------- parser

def _recipe_flags(p: argparse.ArgumentParser, defaults) -> None:
    p.add_argument("data_dir", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
    p.add_argument("--out", required=True, help="folder to save the model in (must not exist, or be empty)")
    p.add_argument("--split", default=defaults.split, help="split to train on (default: train)")
    p.add_argument("--dev-split", default=None,
                   help="split that picks the checkpoint and the settings (default: dev; if the folder has none, "
                        "10%% of the training queries are held out, seeded); never test")
    p.add_argument("--base", default=defaults.base,
                   help="model name or path to start from (default: " + (
                       "all-MiniLM-L6-v2, shipped offline)" if defaults.base else "the retriever's weights)"))
    p.add_argument("--epochs", type=float, default=defaults.epochs, help=f"passes over the training data (default {defaults.epochs:g})")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"rows per step (default {defaults.batch_size})")
    p.add_argument("--max-seq-length", type=int, default=None,
                   help="tokens read per text (default: chosen from the data, keeping 95%% of the texts whole)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (overrides --epochs)")
    p.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                   help=f"peak learning rate (default {defaults.learning_rate:g})")


def build_parser() -> argparse.ArgumentParser:
    from .recipes import BiRecipe, CrossRecipe

    parser = argparse.ArgumentParser(prog="python -m kit", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="statistics and validation report of a BEIR folder (exit 2 if invalid)")
    p.add_argument("data_dir", help="folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("evaluate", help="retrieve for a split over the whole corpus and score it",
                       description="Score dense retrieval, BM25 and their fusions on a split; the first stage "
                                   "(dense, BM25 or a fusion) is chosen on the dev split (or on train queries "
                                   "held out), never on the split reported. The JSON result is the last line.")
    p.add_argument("data_dir")
    p.add_argument("--split", default="test")
    p.add_argument("--model", default=None, help="bi-encoder name or path (default: all-MiniLM-L6-v2, shipped offline)")
    p.add_argument("--bm25", action="store_true", help="BM25 alone (without --model), or beside the dense run")
    p.add_argument("--fusion", action="store_true", help="with --bm25 and a dense run: also the fusions")
    p.add_argument("--dense-only", action="store_true", help="skip BM25, the fusions and the choice on dev")
    p.add_argument("--reranker", default=None, help="cross-encoder name or path to re-rank the first stage")
    p.add_argument("--rerank-depth", type=int, default=20, help="candidates re-ranked per query (default 20)")
    p.add_argument("--k", type=int, default=100, help="passages retrieved per query (default 100)")
    p.add_argument("--measures", nargs="+", default=None, help="ir-measures names (default: nDCG@10 RR@10 R@100)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-seq-length", type=int, default=None,
                   help="tokens read per passage (default: the larger of the model's and the data's need)")
    p.add_argument("--out", default=None, help="write metrics and per-query scores to this JSON file")
    p.set_defaults(func=cmd_evaluate)

    bi = BiRecipe()
    p = sub.add_parser(
        "train-bi", help="fine-tune a bi-encoder on a BEIR folder and save it (the recipe of notebook 04)",
        description="Fine-tune a bi-encoder: MultipleNegativesRankingLoss on (query, answer) pairs plus mined "
                    "hard negatives, no duplicates in a batch, a bounded dev evaluation, best checkpoint kept, "
                    "saved with a model card. The last stdout line is the result as JSON. Runs under "
                    "`torchrun --nproc_per_node=N -m kit train-bi ...` too (DDP).")
    _recipe_flags(p, bi)
    p.add_argument("--hard-negatives", type=int, default=bi.hard_negatives,
                   help="mined hard negatives per pair (default 1; 0 = in-batch negatives only)")
    p.add_argument("--freeze-layers", type=int, default=None, metavar="N",
                   help="task adaptation: freeze the embeddings and the bottom N transformer layers, train the rest "
                        "(default: train everything)")
    p.add_argument("--coverage", type=float, default=bi.coverage,
                   help="share of passages the chosen --max-seq-length keeps whole (default 0.95)")
    p.set_defaults(func=cmd_train_bi)

    ce = CrossRecipe()
    p = sub.add_parser(
        "train-ce", help="fine-tune a cross-encoder re-ranker on a BEIR folder (the recipe of notebook 05)",
        description="Fine-tune a re-ranker: the retriever ranks every train and dev query; hard negatives come "
                    "from its candidates (false-negative guard), the re-ranker starts from --base with a fresh "
                    "head, the best dev checkpoint is kept, and the weight that mixes its score with the "
                    "retriever's is chosen on dev and saved with it. The last stdout line is the result as JSON.")
    _recipe_flags(p, ce)
    p.add_argument("--retriever", default=ce.retriever,
                   help="bi-encoder that produces the candidates (default: all-MiniLM-L6-v2; give your train-bi model)")
    p.add_argument("--hard-negatives", type=int, default=ce.hard_negatives, help=f"per query (default {ce.hard_negatives})")
    p.add_argument("--random-negatives", type=int, default=ce.random_negatives,
                   help=f"per query (default {ce.random_negatives})")
    p.add_argument("--loss", default=ce.loss, choices=["mnrl", "lambda", "bce"],
                   help=f"mnrl (listwise, in-batch), lambda (listwise, nDCG-weighted) or bce (pointwise); default {ce.loss}")
    p.add_argument("--head", default=ce.head, choices=["gated", "cosine", "mean", "cls"],
                   help="the re-ranker's head on a bi-encoder: cosine of the query's and the passage's token means "
                        "(default), the same cosine with each text read as the bi-encoder reads it plus gated "
                        "cross-attention (gated: starts at the retriever's own ranking), or a fresh linear layer "
                        "on the mean or first token")
    p.add_argument("--depth", type=int, default=ce.depth, help=f"candidates re-ranked per dev query (default {ce.depth})")
    p.add_argument("--first-stage", default=ce.first_stage, choices=["auto", "dense", "bm25", "rrf"],
                   help="candidate lists: auto = dense, BM25 or a fusion chosen on dev (default)")
    p.add_argument("--judgments", default=None, metavar="FILE",
                   help="more graded pairs (JSON lines: query_id, corpus_id, grade 0-2), e.g. an expert's or a pooled "
                        "round's, merged into the folder's qrels for training and dev (its own grades stand; grade 0 "
                        "marks a sure negative)")
    p.add_argument("--max-related", type=int, default=ce.max_related,
                   help="related (grade 1) passages listed below the answer, per query (default: all)")
    p.set_defaults(func=cmd_train_ce)

    p = sub.add_parser("run-notebooks", help="execute notebooks/NN_*.ipynb into build/")
    p.add_argument("notebooks", nargs="*", help="notebook paths (default: all, in order)")
    p.add_argument("--out", default="build")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    p.add_argument("--fast", action="store_true", help="run under KIT_FAST=1 (tiny data and step counts)")
    p.add_argument("--no-report", action="store_true", help="do not write REPORT.md and results.json")
    p.set_defaults(func=cmd_run_notebooks)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m kit``; returns the exit status."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KitError as err:
        if _main_process():  # under torchrun, one message, not one per process
            _log(f"error: {err}")
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        _log(f"error: {err}")
        return 2
    except KeyboardInterrupt:
        _log("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
