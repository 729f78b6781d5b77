"""Re-ranking against training data: how the retriever, the re-ranker and their mix grow with train queries.

The question behind issue 10's quality target (the mix at least +0.03 nDCG@10 over the fine-tuned
retriever): is the re-ranker short of the retriever because it has too little data to learn from?
For each share of the train queries (nested, seeded subsets: the smaller are inside the larger),
both models are trained from scratch with the command line's defaults on that subset only
(``train-bi``'s recipe, then ``train-ce``'s on that retriever's candidates, its mixing weight chosen
on dev as the recipe does). Each pair is scored on test (depth 20, the first stage chosen on dev):
the retriever alone, the re-ranker alone, the mix, and the mix minus the retriever with a paired
bootstrap interval over queries; then the largest share's scores minus each smaller share's, paired over
the same test queries (the retriever, the re-ranker alone, the mix, and the mix's gain). Scores use
the writers' judgments and, unless ``--no-pooled``, the folder's ``pooled_judgments.jsonl`` merged in
where it has one (the weight chosen again on pooled dev). Training never sees test. About 30 minutes on 2 cores for the default three shares.

One run per share and seed (``--seed`` draws the subsets and seeds the training): run two seeds to see
the spread, and read a difference between shares only where it exceeds both the paired interval and it.

    .venv/bin/python benchmarks/bench_rerank_data_curve.py [--data data/expense_policy]
        [--shares 0.25 0.5 1.0] [--depth 20] [--seed 42] [--no-pooled] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kit.augment import small_gold  # noqa: E402
from kit.data import load_beir, load_pooled_judgments, with_judgments  # noqa: E402
from kit.evaluate import bootstrap_ci, paired_test, per_query  # noqa: E402
from kit.recipes import BiRecipe, CrossRecipe, first_stage_runs, quiet, train_bi_recipe, train_ce_recipe  # noqa: E402
from kit.retrieval import choose_mix_weight, mix_scores, rerank, top_run  # noqa: E402


def score(first, reranked, weight: float, qrels) -> tuple[dict, dict]:
    """The first stage, the re-ranker alone and their mix on ``qrels``, with paired intervals against the
    first stage; and the three per-query score series (for comparing runs trained on other shares)."""
    base = per_query(first, qrels)["nDCG@10"]
    alone = per_query(reranked, qrels)["nDCG@10"].reindex(base.index)
    mixed = per_query(mix_scores(first, reranked, weight), qrels)["nDCG@10"].reindex(base.index)
    diff, low, high = bootstrap_ci(mixed, base)
    gap, gap_low, gap_high = bootstrap_ci(alone, base)
    series = {"retriever": base, "re-ranker alone": alone, "mixed": mixed, "mixed minus retriever": mixed - base}
    return series, {"retriever": round(float(base.mean()), 4), "re-ranker alone": round(float(alone.mean()), 4),
            "mix_weight": weight, "mixed": round(float(mixed.mean()), 4),
            "mixed minus retriever": [round(diff, 4), round(low, 4), round(high, 4)], "p": paired_test(mixed, base),
            "re-ranker alone minus retriever": [round(gap, 4), round(gap_low, 4), round(gap_high, 4)]}


def against_largest(per_share: dict[float, dict], label: str) -> dict:
    """Each smaller share's scores against the largest share's, paired over the same test queries."""
    top = max(per_share)
    out = {}
    for share in sorted(per_share)[:-1]:
        out[str(share)] = {}
        for what, big in per_share[top][label].items():
            d, lo, hi = bootstrap_ci(big, per_share[share][label][what].reindex(big.index))
            out[str(share)][what] = [round(d, 4), round(lo, 4), round(hi, 4)]
            print(f"  [{label}] {what}: share {top} minus share {share}: {d:+.4f} (95% {lo:+.4f} to {hi:+.4f})",
                  flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/expense_policy")
    ap.add_argument("--shares", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-pooled", action="store_true", help="score with the folder's judgments only")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    if any(not 0 < s <= 1 for s in args.shares):
        sys.exit(f"error: --shares must lie in (0, 1], got {args.shares}")

    ds = load_beir(args.data)
    judged = {"writers": ds}
    if not args.no_pooled and (Path(args.data) / "pooled_judgments.jsonl").is_file():
        judged["writers + pooled"] = with_judgments(ds, load_pooled_judgments(Path(args.data) / "pooled_judgments.jsonl"))
    train_ids = sorted(ds.split("train")[1])
    random.Random(args.seed).shuffle(train_ids)
    results, per_share = [], {}
    for share in sorted(args.shares):
        n = max(2, round(share * len(train_ids)))
        sub, _ = small_gold(ds, n, include=train_ids[:n], seed=args.seed)
        t = time.perf_counter()
        bi = train_bi_recipe(sub, BiRecipe(seed=args.seed), log=quiet, progress=False)
        t_bi = time.perf_counter() - t
        ce = train_ce_recipe(sub, CrossRecipe(seed=args.seed, depth=args.depth), retriever=bi.model, log=quiet,
                             progress=False)
        t_ce = time.perf_counter() - t - t_bi
        runs, stage = first_stage_runs(ds, bi.model, {"test": args.depth, "dev": args.depth})
        first = {s: top_run(runs[s], args.depth) for s in runs}
        # dev's candidates were re-ranked by the recipe already (for its mixing weight): only test is new
        reranked = {"dev": ce.dev_reranked, "test": top_run(rerank(ce.model, ds.corpus, ds.split("test")[0],
                                                                   first["test"], depth=args.depth,
                                                                   show_progress_bar=False), args.depth)}
        row = {"share": share, "train queries": n, "first stage": stage.chosen.name,
               "seconds": {"retriever": round(t_bi, 1), "re-ranker": round(t_ce, 1)},
               "re-ranker steps": ce.summary["steps"], "re-ranker best step": ce.summary["best_step"]}
        for label, j in judged.items():
            weight = ce.mix_weight if label == "writers" else \
                choose_mix_weight(first["dev"], reranked["dev"], j.split("dev")[1])[0]
            series, row[label] = score(first["test"], reranked["test"], weight, j.split("test")[1])
            per_share.setdefault(share, {})[label] = series
            r = row[label]
            print(f"{n} train queries [{label} judgments]: retriever {r['retriever']:.4f}, re-ranker alone "
                  f"{r['re-ranker alone']:.4f} ({r['re-ranker alone minus retriever'][0]:+.4f}, 95% "
                  f"{r['re-ranker alone minus retriever'][1]:+.4f} to {r['re-ranker alone minus retriever'][2]:+.4f}), "
                  f"mixed (w={r['mix_weight']}) {r['mixed']:.4f}: {r['mixed minus retriever'][0]:+.4f} "
                  f"(95% {r['mixed minus retriever'][1]:+.4f} to {r['mixed minus retriever'][2]:+.4f}), "
                  f"p = {r['p']:.3g}", flush=True)
        print(f"  trained in {t_bi:.0f} s (retriever) + {t_ce:.0f} s (re-ranker, {ce.summary['steps']} steps)",
              flush=True)
        results.append(row)
    compared = {label: against_largest(per_share, label) for label in judged} if len(per_share) > 1 else {}
    out = json.dumps({"data": args.data, "depth": args.depth, "seed": args.seed, "results": results,
                      "largest share minus each smaller one": compared})
    if args.json:
        Path(args.json).write_text(out + "\n")
    print(out)


if __name__ == "__main__":
    main()
