"""Re-ranking quality: does a trained re-ranker add to the retriever it re-ranks?

For each re-ranker folder saved by ``python -m kit train-ce`` (or notebook 05's, under ``.cache/full/models/ce-recipe/``), the test split's candidates (the
first stage chosen on dev with ``--retriever``) are re-scored to ``--depth`` and mixed with the first
stage at the weight the recipe chose on dev (saved with the model). Printed per re-ranker: test
nDCG@10 of the first stage, the re-ranker alone and the mix; the paired bootstrap interval of mix
minus first stage over queries and its p-value; the running example's answer rank; and the blind
spot of the judgments (queries whose top passage is unjudged for the first stage, the re-ranker, and
both with the same passage; for the bundled data, how many of those come from another writer's part,
which that writer never judged: see the datasheet's known limitations). The target
(issue 10): mix minus the fine-tuned retriever at least +0.03 with p < 0.05. Test is only read here,
never used to choose anything. About 80 s per re-ranker on 2 cores.

``--pooled`` scores the same runs again with the pooled judgments merged in (the bundled
``pooled_judgments.jsonl``, or ``--pooled-file``; ``kit.data.with_judgments``), at the saved weight and
at a weight chosen again on the pooled dev judgments (the dev candidates are re-ranked for it).

    .venv/bin/python benchmarks/bench_rerank_quality.py --retriever MODEL_DIR RERANKER_DIR [RERANKER_DIR ...]
        [--data data/expense_policy] [--depth 20] [--pooled [--pooled-file FILE]] [--against RERANKER_DIR]

``--against DIR`` also compares each re-ranker with the one in ``DIR`` (scored first, in the same run),
paired over the same test queries: the re-ranker alone and the mix (each at its own weight) minus
``DIR``'s, with a bootstrap interval and a p-value.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kit.analysis import unjudged_tops  # noqa: E402
from kit.data import load_beir, load_pooled_judgments, read_jsonl_rows, with_judgments  # noqa: E402
from kit.evaluate import bootstrap_ci, evaluate, paired_test, per_query  # noqa: E402
from kit.models import load_bi_encoder, load_cross_encoder, read_kit_settings  # noqa: E402
from kit.recipes import first_stage_runs  # noqa: E402
from kit.retrieval import choose_mix_weight, mix_scores, rerank, top_run  # noqa: E402
from kit.series import EXAMPLE  # noqa: E402


def rank(run: dict, query_id: str, doc_id: str) -> int | None:
    docs = list(run.get(query_id, {}))
    return docs.index(doc_id) + 1 if doc_id in docs else None


def writer_parts(folder: str) -> dict[str, str]:
    """Which writer's part each passage came from, where the folder keeps its sources (the bundled data)."""
    parts = {}
    for f in sorted((Path(folder) / "source").glob("*_passages.jsonl")):
        for _, row in read_jsonl_rows(f, ("_id",)):
            parts[row["_id"]] = f.name.split("_")[0]
    return parts


def blind_spot(runs: dict, qrels: dict, parts: dict[str, str]) -> dict:
    """Queries whose top passage is unjudged in each run and in all (the same passage), and how many
    of the shared ones come from another writer's part than the query's judged passages."""
    counts, shared = unjudged_tops(runs, qrels)
    if parts:
        counts["same unjudged top, from another writer's part"] = sum(
            parts.get(row.top_doc) not in {parts.get(d) for d in qrels[q]} for q, row in shared.iterrows())
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rerankers", nargs="+", help="folders saved by train-ce")
    ap.add_argument("--retriever", required=True, help="the bi-encoder whose candidates are re-ranked")
    ap.add_argument("--data", default="data/expense_policy")
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--pooled", action="store_true", help="also score with the pooled judgments merged in")
    ap.add_argument("--pooled-file", default=None, help="pooled judgments (default: the bundled file)")
    ap.add_argument("--against", default=None, help="a re-ranker folder to compare each re-ranker with, paired "
                    "over the same queries (alone and mixed, each at its own weight)")
    args = ap.parse_args()

    ds = load_beir(args.data)
    splits = {"test": args.depth, "dev": args.depth} if args.pooled else {"test": args.depth}
    runs, stage = first_stage_runs(ds, load_bi_encoder(args.retriever), splits)
    judgments = {"writers": ds}
    if args.pooled:
        judgments["writers + pooled"] = with_judgments(ds, load_pooled_judgments(args.pooled_file))
    queries = ds.split("test")[0]
    first = top_run(runs["test"], args.depth)
    results, parts, scored = {}, writer_parts(args.data), {}
    folders = list(dict.fromkeys(([args.against] if args.against else []) + args.rerankers))
    for folder in folders:
        weight = read_kit_settings(folder).get("mix_weight")
        cached = Path(folder) / "kit_cache.json"              # notebook 05's model in the kit's cache
        if weight is None and cached.is_file():
            weight = json.loads(cached.read_text()).get("meta", {}).get("mix_weight")
        if weight is None:
            sys.exit(f"error: {folder}: no mix_weight saved with the model (train it with python -m kit train-ce)")
        model = load_cross_encoder(folder)
        reranked = top_run(rerank(model, ds.corpus, queries, first, depth=args.depth, show_progress_bar=False),
                           args.depth)
        if args.pooled:
            dev_first = top_run(runs["dev"], args.depth)
            dev_reranked = rerank(model, ds.corpus, ds.split("dev")[0], dev_first, depth=args.depth,
                                  show_progress_bar=False)
        for label, judged in judgments.items():
            qrels = judged.split("test")[1]
            weights = {"saved": weight}
            if label != "writers":
                weights["chosen on pooled dev"] = choose_mix_weight(dev_first, dev_reranked, judged.split("dev")[1])[0]
            base = per_query(first, qrels)["nDCG@10"]
            alone = per_query(reranked, qrels)["nDCG@10"].reindex(base.index)
            blind = blind_spot({"first stage": first, "re-ranker": reranked}, qrels, parts)
            for how, w in weights.items():
                mixed = mix_scores(first, reranked, w)
                scores = per_query(mixed, qrels)["nDCG@10"].reindex(base.index)
                scored[folder, label, how] = {"re-ranker alone": alone, "mixed": scores}
                diff, low, high = bootstrap_ci(scores, base)
                p = paired_test(scores, base)
                r = results.setdefault(folder, {}).setdefault(f"{label} judgments, weight {how}", {
                    "first stage": round(float(base.mean()), 4),
                    "re-ranker alone": round(float(alone.mean()), 4),
                    "mix_weight": w, "mixed": round(float(scores.mean()), 4), "mixed minus first stage": round(diff, 4),
                    "interval": [round(low, 4), round(high, 4)], "p": p,
                    "example answer rank (first, re-ranker, mixed)": [rank(x, EXAMPLE.query_id, EXAMPLE.answer)
                                                                      for x in (first, reranked, mixed)]
                    if EXAMPLE.query_id in queries else None,
                    "target met (>= +0.03, p < 0.05)": bool(diff >= 0.03 and p < 0.05),
                    "blind spot": blind})
                print(f"{folder} [{label} judgments, weight {how}]: first stage {r['first stage']:.4f}, re-ranker alone "
                      f"{r['re-ranker alone']:.4f}, mixed (w={w}) {r['mixed']:.4f}: {diff:+.4f} "
                      f"(95% {low:+.4f} to {high:+.4f}), p = {p:.3g}", flush=True)
                print(f"  where the judgments cannot tell: {r['blind spot']}", flush=True)
                if args.against and folder != args.against:
                    other = scored[args.against, label, how]
                    r["against"] = {"folder": args.against}
                    for what in ("re-ranker alone", "mixed"):
                        d, lo, hi = bootstrap_ci(scored[folder, label, how][what], other[what])
                        pv = paired_test(scored[folder, label, how][what], other[what])
                        r["against"][what] = {"minus": round(d, 4), "interval": [round(lo, 4), round(hi, 4)], "p": pv}
                        print(f"  {what} minus {args.against}'s: {d:+.4f} (95% {lo:+.4f} to {hi:+.4f}), p = {pv:.3g}",
                              flush=True)
    print(json.dumps({"first_stage": stage.chosen.name, "depth": args.depth, "results": results}))


if __name__ == "__main__":
    main()
