"""Assemble the hand-written parts into the BEIR folder ``data/expense_policy``.

The passages and queries were written by hand, one part per group of topics
(``part*_passages.jsonl``, ``part*_queries.jsonl``, ``core_*.jsonl``; see BRIEF.md and WRITERS.md).
This script only checks them and arranges them: it gives query ids, splits the queries into
train / dev / test (whole groups of near-duplicates go to one split), and writes the BEIR files.

    .venv/bin/python data/expense_policy/source/build.py

Re-running it on the same sources gives the same files (seeded).
"""
from __future__ import annotations

import json
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE.parent
sys.path.insert(0, str(HERE.parents[2]))

from kit.data import BeirDataset, save_beir  # noqa: E402

SEED = 13
SEED_QUERY = "What is considered a business expense on a business trip?"
SPLIT_SHARE = {"test": 0.28, "dev": 0.12}  # the rest is train
NEAR_DUPLICATE = 0.95


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                sys.exit(f"{path.name}:{n}: malformed JSON ({err.msg})")
    return rows


def parts() -> list[str]:
    names = sorted({p.name.split("_")[0] for p in HERE.glob("*_passages.jsonl")})
    return ["core"] + [n for n in names if n != "core"]


def normalize(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def main() -> None:
    passages, queries, errors = {}, [], []
    for part in parts():
        for p in read_jsonl(HERE / f"{part}_passages.jsonl"):
            if p["_id"] in passages:
                errors.append(f"{part}: duplicate passage id {p['_id']}")
            words = len(p["text"].split())
            if not 40 <= words <= 160:
                errors.append(f"{part}: {p['_id']} has {words} words")
            passages[p["_id"]] = {"title": p["title"].strip(), "text": p["text"].strip(),
                                  "topic": p["topic"], "source": p["source"]}
        for q in read_jsonl(HERE / f"{part}_queries.jsonl"):
            queries.append({**q, "part": part})
    for q in queries:
        missing = [d for d in q["qrels"] if d not in passages]
        if missing:
            errors.append(f"{q['part']}: query {q['text']!r} judges unknown passages {missing}")
        if 2 not in q["qrels"].values():
            errors.append(f"{q['part']}: query {q['text']!r} has no grade-2 passage")
    # Exact duplicates (after normalizing case and punctuation) are dropped here, loudly.
    seen, unique = {}, []
    for q in queries:
        key = normalize(q["text"])
        if key in seen:
            print(f"dropping duplicate query {q['text']!r} ({q['part']}; same as {seen[key]['part']})")
            continue
        seen[key] = q
        unique.append(q)
    queries = unique
    if errors:
        sys.exit("\n".join(errors))

    # Near-duplicate groups (cosine >= 0.95 with the default bi-encoder) never straddle splits.
    from kit.models import load_bi_encoder
    from kit.retrieval import encode

    emb = encode(load_bi_encoder(), [q["text"] for q in queries])
    sim = emb @ emb.T
    parent = list(range(len(queries)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs = np.argwhere(np.triu(sim >= NEAR_DUPLICATE, k=1))
    for i, j in pairs:
        parent[find(int(i))] = find(int(j))
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(queries)):
        groups[find(i)].append(i)
    print(f"{len(pairs)} near-duplicate query pairs -> {sum(len(g) > 1 for g in groups.values())} groups kept together")

    # Stratify by part: each group of topics contributes to every split.
    rng = random.Random(SEED)
    split_of: dict[int, str] = {}
    by_part: dict[str, list[list[int]]] = defaultdict(list)
    for members in groups.values():
        by_part[queries[members[0]]["part"]].append(sorted(members))
    for part in sorted(by_part):
        glist = sorted(by_part[part])
        rng.shuffle(glist)
        total = sum(len(g) for g in glist)
        quota = {s: round(share * total) for s, share in SPLIT_SHARE.items()}
        filled = Counter()
        for g in glist:
            if any(queries[i]["text"] == SEED_QUERY for i in g):
                target = "test"
            else:
                target = next((s for s in ("test", "dev") if filled[s] + len(g) <= quota[s]), "train")
            filled[target] += len(g)
            for i in g:
                split_of[i] = target

    ids = {i: f"q{i + 1:04d}" for i in range(len(queries))}
    qrels: dict[str, dict[str, dict[str, int]]] = {"train": {}, "dev": {}, "test": {}}
    for i, q in enumerate(queries):
        qrels[split_of[i]][ids[i]] = dict(sorted(q["qrels"].items(), key=lambda x: (-x[1], x[0])))
    ds = BeirDataset(
        corpus=passages,
        queries={ids[i]: q["text"] for i, q in enumerate(queries)},
        qrels=qrels,
        name="expense_policy",
        query_meta={ids[i]: {"style": q["style"], "topic": passages[next(d for d, g in q["qrels"].items() if g == 2)]["topic"]}
                    for i, q in enumerate(queries)},
    )
    save_beir(ds, OUT)
    print(json.dumps({s: len(v) for s, v in qrels.items()}), len(passages), "passages")


if __name__ == "__main__":
    main()
