"""The bundled dataset: it validates, meets the datasheet's numbers, and its splits are clean."""
import json
import re
from collections import Counter

import numpy as np
import pytest

from kit.config import EXPENSE_POLICY
from kit.data import load_expense_policy, validate_beir

SEED_QUERY = "What is considered a business expense on a business trip?"


@pytest.fixture(scope="module")
def ds():
    return load_expense_policy()


def test_validates_without_errors_or_warnings():
    ds, report = validate_beir(EXPENSE_POLICY)
    assert ds is not None and report.errors == [] and report.warnings == []


def test_corpus(ds):
    assert len(ds.corpus) >= 600
    words = [len(d["text"].split()) for d in ds.corpus.values()]
    assert min(words) >= 40 and max(words) <= 160
    topics = Counter(d["topic"] for d in ds.corpus.values())
    assert len(topics) >= 25
    assert {d["source"] for d in ds.corpus.values()} == {"handbook", "faq", "helpdesk"}
    texts = [d["text"] for d in ds.corpus.values()]
    assert len(set(texts)) == len(texts)


def test_queries_and_qrels(ds):
    assert len(ds.queries) >= 900
    styles = Counter(m["style"] for m in ds.query_meta.values())
    assert styles["keyword"] / len(ds.queries) >= 0.10
    assert styles["typo"] + styles["abbrev"] > 0
    for split, qrels in ds.qrels.items():
        for q, docs in qrels.items():
            assert 2 in docs.values(), f"{split}/{q} has no grade-2 passage"
            assert set(docs.values()) <= {1, 2}


def test_split_sizes_and_no_overlap(ds):
    sizes = {s: len(q) for s, q in ds.qrels.items()}
    assert sizes["train"] >= 500 and sizes["dev"] >= 100 and sizes["test"] >= 250
    norm = lambda t: re.sub(r"[^a-z0-9]+", " ", t.lower()).strip()  # noqa: E731
    owner = {}
    for split, qrels in ds.qrels.items():
        for q in qrels:
            key = norm(ds.queries[q])
            assert owner.setdefault(key, split) == split, f"{ds.queries[q]!r} is in {owner[key]} and {split}"
    assert sum(sizes.values()) == len(ds.queries)


@pytest.mark.slow
def test_no_near_duplicates_across_splits(ds, model):
    from kit.retrieval import encode

    ids = {s: list(q) for s, q in ds.qrels.items()}
    emb = {s: encode(model, [ds.queries[q] for q in v]) for s, v in ids.items()}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        sim = emb[a] @ emb[b].T
        assert float(sim.max()) < 0.95, f"{a}/{b}: cosine {sim.max():.3f} between near-duplicates"


def test_seed_query(ds):
    qid = next(q for q, t in ds.queries.items() if t == SEED_QUERY)
    judged = ds.qrels["test"][qid]
    assert judged["ride-00"] == 2
    assert ds.corpus["ride-00"]["text"].startswith("Transportation can be considered a valid business expense")
    assert ds.corpus["gen-01"]["text"].startswith("Business expenses are defined as")
    assert judged.get("gen-01", 0) <= 1


def test_sme_judgments(ds):
    rows = [json.loads(l) for l in (EXPENSE_POLICY / "sme_judgments.jsonl").read_text().splitlines() if l.strip()]
    assert len(rows) >= 200
    assert Counter(r["judgment"] for r in rows).keys() <= {"hard_negative", "actually_relevant", "unclear"}
    assert len(Counter(r["judgment"] for r in rows)) == 3
    for r in rows:
        assert r["query_id"] in ds.queries and r["corpus_id"] in ds.corpus
        assert r["query"] == ds.queries[r["query_id"]]
        assert r["reason"].strip() and "\n" not in r["reason"]
    assert len({(r["query_id"], r["corpus_id"]) for r in rows}) == len(rows)


def test_datasheet_statistics_match_the_data(ds):
    """The datasheet's statistics table is checked against the files, so it cannot drift."""
    sheet = (EXPENSE_POLICY / "README.md").read_text()
    styles = Counter(m["style"] for m in ds.query_meta.values())
    expected = [
        f"| passages | {len(ds.corpus)} |",
        f"| topics | {len({d['topic'] for d in ds.corpus.values()})} |",
        f"| queries | {len(ds.queries)} |",
        f"{styles['natural']} natural, {styles['keyword']} keyword",
    ]
    sme = Counter(json.loads(l)["judgment"] for l in (EXPENSE_POLICY / "sme_judgments.jsonl").read_text().splitlines() if l.strip())
    expected.append(f"| SME judgments | {sum(sme.values())} rows: {sme['hard_negative']} hard_negative, "
                    f"{sme['actually_relevant']} actually_relevant, {sme['unclear']} unclear |")
    for split, qrels in ds.qrels.items():
        grades = Counter(g for docs in qrels.values() for g in docs.values())
        expected.append(f"| {split} | {len(qrels)} queries, {sum(grades.values())} judgments "
                        f"({grades[2]} grade 2, {grades[1]} grade 1) |")
    for line in expected:
        assert line in sheet, f"datasheet out of date: expected {line!r}"


def test_pooled_judgments_only_fill_what_the_writers_left_unjudged(ds):
    """The pooled rounds grade pairs the writers never judged (round 1: dev and test; round 2: train);
    the datasheet states their size and the judges' agreement with the known grades, computed from
    the committed checks."""
    import importlib.util

    from kit.data import load_pooled_judgments

    rows = load_pooled_judgments()
    split_of = {q: s for s, qrels in ds.qrels.items() for q in qrels}
    assert len({(r["query_id"], r["corpus_id"]) for r in rows}) == len(rows) > 1000
    for r in rows:
        assert split_of[r["query_id"]] == r["split"] in {1: ("dev", "test"), 2: ("train",)}[r["round"]]
        assert r["corpus_id"] in ds.corpus and r["corpus_id"] not in ds.qrels[r["split"]][r["query_id"]]
        assert r["reason"].strip() and "\n" not in r["reason"]
    sheet = (EXPENSE_POLICY / "README.md").read_text()
    flat = " ".join(sheet.split())
    grades = Counter(r["grade"] for r in rows)
    splits = Counter(r["split"] for r in rows)
    line = (f"| pooled judgments | {len(rows)} rows ({splits['dev']} dev, {splits['test']} test, {splits['train']} train): "
            f"{grades[2]} grade 2, {grades[1]} grade 1, {grades[0]} grade 0 |")
    assert line in sheet, f"datasheet out of date: expected {line!r}"
    train = Counter(r["grade"] for r in rows if r["round"] == 2)
    assert f"{sum(train.values()):,} pairs for all {len(ds.qrels['train'])} train queries" in flat
    assert f"Result: {train[2]} answers (grade 2), {train[1]:,} related (1), {train[0]:,} not relevant (0)" in flat
    assert round(5 * train[2] / sum(train.values())) == 1 and "one in five answers the question" in flat
    spec = importlib.util.spec_from_file_location("pool", EXPENSE_POLICY / "source" / "pool.py")
    pool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pool)
    all_checks = [json.loads(l) for l in (EXPENSE_POLICY / "source" / "pooled_checks.jsonl").read_text().splitlines() if l]
    checks = [c for c in all_checks if c["round"] == 1]
    stats = pool.agreement(checks)
    known = {g: Counter(c["grades"][0] for c in checks if c["known_grade"] == g) for g in (2, 1, 0)}
    expected = [
        f"the judges gave the known grade to {stats['controls: same grade']:.0%} of the pairs, and agreed on\n"
        f"relevant-or-not with {stats['controls: relevant or not agrees']:.0%} of them",
        f"all {known[2][2]} writer grade-2 pairs got a 2" if not known[2][0] + known[2][1] else "(grade-2 controls changed)",
        f"pairs, {known[1][2]} got a 2", f"{known[0][0]} got a 0 and {known[0][1]} a 1",
        f"grade to {stats['two judges: same grade']:.0%} of the {stats['two judges: pairs']} doubly judged pairs "
        f"(relevant or not: {stats['two judges: relevant or not agrees']:.0%})"]
    checks = [c for c in all_checks if c["round"] == 2]
    stats = pool.agreement(checks)
    known = {g: Counter(c["grades"][0] for c in checks if c["known_grade"] == g) for g in (2, 1, 0)}
    expected += [
        f"gave the known grade to {stats['controls: same grade']:.0%} and agreed on relevant-or-not with "
        f"{stats['controls: relevant or not agrees']:.0%}: all {known[2][2]} grade-2 pairs got a 2",
        f"of the 70 grade-1 pairs, {known[1][2]} got a 2, {known[1][1]} a 1 and one a 0" if known[1][0] == 1 else "(changed)",
        f"of the 60 hard negatives, {known[0][0]} got a 0, {known[0][1]} a 1 and one a 2" if known[0][2] == 1 else "(changed)",
        f"same grade to {stats['two judges: same grade']:.0%} of the {stats['two judges: pairs']} doubly judged pairs "
        f"(relevant or not: {stats['two judges: relevant or not agrees']:.0%})"]
    for line in expected:
        assert " ".join(line.split()) in flat, f"datasheet out of date: expected {line!r}"