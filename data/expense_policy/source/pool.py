"""Pooled judging: which pairs were graded, in which round, and how the grades were merged.

The writers judged passages of their own part only (WRITERS.md), so a passage from another part that
answers a question was never judged for it, and a model that finds it is scored as wrong. Pooling is
how test collections are completed: the compared systems' top results are graded, blind to which
system found each. Each round has two steps:

    .venv/bin/python data/expense_policy/source/pool.py batches WORK_DIR [--depth 5] [--judges 8]
            [--splits dev,test|train] [--trained-on writers|pooled]
        # dev,test (round 1): every dev and test pair that notebook 04's retriever (its dev-chosen first
        # stage), notebook 05's re-ranker (re-scoring that retriever's top 20; --trained-on pooled: the
        # one trained with the pooled judgments merged in) or their dev-chosen mix ranks in its top DEPTH;
        # train (round 2): every train pair in the top DEPTH of the first stage the re-ranker recipe
        # mines from, and the hard negatives its defaults draw. Only pairs neither the writers nor an
        # earlier round judged; plus control pairs whose grade is known (writers' grades 2 and 1, the
        # expert's confirmed hard negatives) and a few pairs given to two judges. Shuffled, ids only, no
        # system, rank or grade shown: WORK_DIR/batch_K.jsonl and key.json (with the round's number).
    .venv/bin/python data/expense_policy/source/pool.py merge WORK_DIR
        # reads WORK_DIR/judged/batch_K.jsonl (one {"pair", "grade", "reason"} per input line),
        # writes the round's rows into ../pooled_judgments.jsonl (the pool's grades) and
        # pooled_checks.jsonl (the controls and the doubly judged pairs), keeping the other rounds'
        # rows, and prints the judges' agreement with the writers and each other.

The judges' instructions are JUDGING.md (same folder). The models come from the kit's cache
(``kit.series.recipe_retriever`` / ``recipe_reranker``; trained if missing, about 15 minutes).
``kit.data.with_judgments`` merges the grades; the writers' own judgments always stand.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from kit.data import atomic_write_text, load_expense_policy, load_judgments, read_jsonl_rows  # noqa: E402

SEED = 2026
SPLITS = ("dev", "test")             # the compared systems' results (--splits train: what the re-ranker learns from)
SPLIT_ORDER = ["dev", "test", "train"]
POOLED = HERE.parent / "pooled_judgments.jsonl"
CHECKS = HERE / "pooled_checks.jsonl"
CONTROLS = {2: 70, 1: 70, 0: 60}   # known grades mixed in, per grade
OVERLAP = 15                       # pool pairs of each batch also given to the next judge


def system_runs(ds, trained_on=None, first_depth: int = 20) -> dict[str, dict[str, dict]]:
    """Per split, the three compared systems' rankings of the split's queries; the re-ranker is the
    recipe's trained on ``trained_on`` (``ds``, or ``ds`` with the pooled judgments merged in)."""
    from kit.recipes import first_stage_runs
    from kit.retrieval import mix_scores, rerank, top_run
    from kit.series import recipe_reranker, recipe_retriever

    retriever = recipe_retriever(ds)
    reranker = recipe_reranker(trained_on or ds, retriever)
    first, _ = first_stage_runs(ds, retriever.model, {s: first_depth for s in SPLITS})
    out = {}
    for s in SPLITS:
        queries = ds.split(s)[0]
        top = top_run(first[s], first_depth)
        alone = top_run(rerank(reranker.model, ds.corpus, queries, top, depth=first_depth, show_progress_bar=False),
                        first_depth)
        out[s] = {"retriever": top, "re-ranker": alone, "mixed": mix_scores(top, alone, reranker.meta["mix_weight"])}
    return out


def train_pool(ds, depth: int, known: dict) -> list[tuple[str, str]]:
    """The train round's pool: what notebook 05's recipe learns from. Every unjudged pair in the top
    ``depth`` of the first stage it mines negatives from (notebook 04's retriever, its dev-chosen first
    stage), and every hard negative the recipe's defaults draw (ranks 0-30, some below ``depth``)."""
    from kit.analysis import pool_unjudged
    from kit.data import rerank_pairs
    from kit.recipes import CrossRecipe, first_stage_runs
    from kit.series import recipe_retriever

    r = CrossRecipe()
    first, _ = first_stage_runs(ds, recipe_retriever(ds).model, {"train": r.range_max})
    pool = {(q, d) for q, docs in pool_unjudged({"retriever": first["train"]}, known, depth=depth).items() for d in docs}
    rows = rerank_pairs(ds, "train", first["train"], hard_negatives=r.hard_negatives, random_negatives=0,
                        range_min=r.range_min, range_max=r.range_max, relative_margin=r.relative_margin)
    pool |= {(x["query_id"], x["doc_id"]) for x in rows if x["kind"] == "hard" and x["doc_id"] not in known[x["query_id"]]}
    return sorted(pool)


def batches(work: Path, depth: int, judges: int, splits: tuple[str, ...] = SPLITS, trained_on: str = "writers") -> None:
    from kit.analysis import pool_unjudged
    from kit.data import load_pooled_judgments, with_judgments

    ds = load_expense_policy()
    done = load_pooled_judgments(POOLED) if POOLED.exists() else []
    rnd = 1 + max((r["round"] for r in done), default=0)
    known = with_judgments(ds, done) if done else ds      # a later round grades only what is still unjudged
    rng = random.Random(SEED + rnd - 1)
    if splits == ("train",):
        items = [(q, d, "pool", "train") for q, d in train_pool(ds, depth, known.split("train")[1])]
    else:
        runs = system_runs(ds, known if trained_on == "pooled" else ds)
        items = [(q, d, "pool", s) for s in splits
                 for q, docs in pool_unjudged(runs[s], known.split(s)[1], depth=depth).items() for d in docs]
    judged = [(q, d, g, s) for s in splits for q, docs in ds.split(s)[1].items() for d, g in docs.items()]
    controls = [(q, d, f"control{g}", s) for g in (2, 1)
                for q, d, _, s in rng.sample([x for x in judged if x[2] == g], CONTROLS[g])]
    pooled = {(q, d) for q, d, _, _ in items}
    negatives = [r for r in load_judgments() if r["judgment"] == "hard_negative"
                 and (r["query_id"], r["corpus_id"]) not in pooled]
    controls += [(r["query_id"], r["corpus_id"], "control0", "train") for r in rng.sample(negatives, CONTROLS[0])]
    pairs = items + controls
    rng.shuffle(pairs)
    prefix = "p" if rnd == 1 else f"r{rnd}-"
    key = [{"pair": f"{prefix}{i:04d}", "query_id": q, "corpus_id": d, "kind": k, "split": s}
           for i, (q, d, k, s) in enumerate(pairs)]
    groups = [key[i::judges] for i in range(judges)]
    for i in range(judges):
        groups[(i + 1) % judges] = groups[(i + 1) % judges] + [p for p in groups[i] if p["kind"] == "pool"][:OVERLAP]
    work.mkdir(parents=True, exist_ok=True)
    for i, group in enumerate(groups):
        group = list(group)
        random.Random(i).shuffle(group)
        lines = []
        for p in group:
            doc = ds.corpus[p["corpus_id"]]
            lines.append(json.dumps({"pair": p["pair"], "query": ds.queries[p["query_id"]], "title": doc.get("title", ""),
                                     "passage": doc["text"]}, ensure_ascii=False))
        atomic_write_text(work / f"batch_{i}.jsonl", "\n".join(lines) + "\n")
    atomic_write_text(work / "key.json", json.dumps({"round": rnd, "splits": list(splits), "pairs": key}))
    print(f"round {rnd}: {len(items)} pool pairs, {len(controls)} controls, {judges} batches of about "
          f"{len(groups[0])} -> {work}")


def merge(work: Path) -> None:
    saved = json.loads((work / "key.json").read_text())
    saved = saved if isinstance(saved, dict) else {"round": 1, "pairs": saved}   # the first round's key: a list
    rnd = saved["round"]
    key = {p["pair"]: p for p in saved["pairs"]}
    grades: dict[str, list[tuple[int, str, str]]] = {}
    for f in sorted((work / "judged").glob("batch_*.jsonl")):
        inputs = [json.loads(x)["pair"] for x in (work / f.name).read_text().splitlines() if x.strip()]
        rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        got = [r["pair"] for r in rows]
        if sorted(got) != sorted(inputs):
            sys.exit(f"error: {f}: graded pairs differ from {work / f.name} ({len(got)} lines for {len(inputs)} pairs)")
        for r in rows:
            if r.get("grade") not in (0, 1, 2):
                sys.exit(f"error: {f}: pair {r['pair']}: grade {r.get('grade')!r} is not 0, 1 or 2")
            grades.setdefault(r["pair"], []).append((int(r["grade"]), str(r.get("reason", "")).strip(), f.stem))
    missing = sorted(set(key) - set(grades))
    if missing:
        sys.exit(f"error: {len(missing)} pairs have no grade (first: {missing[0]})")
    pooled, checks = [], []
    for pair, p in sorted(key.items(), key=lambda x: (x[1]["split"], x[1]["query_id"], x[1]["corpus_id"])):
        (grade, reason, _), *second = grades[pair]   # the first judge's grade counts; a second one is a check
        if p["kind"] == "pool":
            pooled.append({"query_id": p["query_id"], "split": p["split"], "corpus_id": p["corpus_id"],
                           "grade": grade, "reason": reason, "round": rnd})
        if p["kind"] != "pool" or second:
            checks.append({"query_id": p["query_id"], "corpus_id": p["corpus_id"], "kind": p["kind"],
                           "known_grade": int(p["kind"][-1]) if p["kind"] != "pool" else None,
                           "grades": [g for g, _, _ in grades[pair]], "round": rnd})
    # One file of each kind for all rounds: this round's rows replace its own earlier ones, the others stay.
    kept = [r for r in _read(POOLED, ("query_id", "corpus_id", "grade", "round")) if r["round"] != rnd]
    kept_checks = [c for c in _read(CHECKS, ("query_id", "corpus_id", "grades", "round")) if c["round"] != rnd]
    lines = lambda rows: "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"  # noqa: E731
    order = lambda r: (r["round"], SPLIT_ORDER.index(r["split"]), r["query_id"], r["corpus_id"])  # noqa: E731
    atomic_write_text(POOLED, lines(sorted(kept + pooled, key=order)))
    atomic_write_text(CHECKS, lines(sorted(kept_checks + checks, key=lambda c: c["round"])))
    print(json.dumps({"round": rnd, "pool": dict(sorted(Counter(r["grade"] for r in pooled).items())), **agreement(checks)}))


def _read(path: Path, fields: tuple[str, ...]) -> list[dict]:
    return [row for _, row in read_jsonl_rows(path, fields)] if path.exists() else []


def agreement(checks: list[dict]) -> dict:
    """The judges against the known grades (controls) and against each other (doubly judged pairs)."""
    out: dict = {}
    for g in (2, 1, 0):
        rows = [c for c in checks if c["known_grade"] == g]
        out[f"known {g}"] = dict(sorted(Counter(c["grades"][0] for c in rows).items()))
    known = [c for c in checks if c["known_grade"] is not None]
    out["controls: same grade"] = round(sum(c["grades"][0] == c["known_grade"] for c in known) / len(known), 3)
    out["controls: relevant or not agrees"] = round(
        sum((c["grades"][0] > 0) == (c["known_grade"] > 0) for c in known) / len(known), 3)
    double = [c for c in checks if len(c["grades"]) > 1]
    if double:
        out["two judges: pairs"] = len(double)
        out["two judges: same grade"] = round(sum(c["grades"][0] == c["grades"][1] for c in double) / len(double), 3)
        out["two judges: relevant or not agrees"] = round(
            sum((c["grades"][0] > 0) == (c["grades"][1] > 0) for c in double) / len(double), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="step", required=True)
    b = sub.add_parser("batches")
    b.add_argument("work", type=Path)
    b.add_argument("--depth", type=int, default=5)
    b.add_argument("--judges", type=int, default=8)
    b.add_argument("--splits", default=",".join(SPLITS), choices=[",".join(SPLITS), "train"],
                   help="dev,test (the systems' pool) or train (what the re-ranker recipe learns from)")
    b.add_argument("--trained-on", default="writers", choices=["writers", "pooled"],
                   help="dev,test: pool the re-ranker trained on the writers' judgments or on the pooled ones too")
    m = sub.add_parser("merge")
    m.add_argument("work", type=Path)
    args = ap.parse_args()
    if args.step == "batches":
        batches(args.work, args.depth, args.judges, tuple(args.splits.split(",")), args.trained_on)
    else:
        merge(args.work)


if __name__ == "__main__":
    main()
