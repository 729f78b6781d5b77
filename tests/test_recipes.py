"""The pieces the recipes choose with: hard negatives and their guard (the rules of
sentence-transformers' mine_hard_negatives), re-ranker training pairs, the first stage and the
mixing weight chosen on dev, the bounded dev pool, the sequence length from the data."""
import random

import numpy as np
import pytest

from kit.data import BeirDataset, dev_split, load_beir, rerank_pairs
from kit.errors import KitError
from kit.evaluate import classification_on_dev
from kit.retrieval import (FirstStage, choose_first_stage, choose_mix_weight, hard_negatives, mix_scores,
                           normalize_scores, weighted_fusion)
from kit.train import plan_pool, reranker_dataset


def synthetic(n_docs=40, n_queries=12, seed=0):
    rng = random.Random(seed)
    corpus = {f"d{i}": {"title": "", "text": f"passage {i}"} for i in range(n_docs)}
    queries = {f"q{i}": f"question {i}" for i in range(n_queries)}
    qrels = {q: {f"d{rng.randrange(n_docs)}": 2, f"d{rng.randrange(n_docs)}": 1} for q in queries}
    run = {q: {f"d{j}": rng.random() for j in range(n_docs)} for q in queries}
    return BeirDataset(corpus, queries, {"train": qrels}), run


def test_rerank_pairs_never_label_a_judged_passage_negative():
    ds, run = synthetic()
    rows = rerank_pairs(ds, "train", run, hard_negatives=3, random_negatives=2, relative_margin=None)
    qrels = ds.qrels["train"]
    assert {r["kind"] for r in rows} == {"positive", "related", "hard", "random"}
    for r in rows:
        judged = qrels[r["query_id"]].get(r["doc_id"], 0)
        if r["label"] == 0:
            assert judged == 0, r
        elif r["kind"] == "related":
            assert judged == 1 and r["label"] == 0.5, r       # relevant, less than the answer: never 0
        else:
            assert judged == 2 and r["kind"] == "positive" and r["label"] == 1.0


def test_rerank_pairs_balance_and_random_negatives():
    ds, run = synthetic()
    rows = rerank_pairs(ds, "train", run, hard_negatives=3, random_negatives=2, relative_margin=None, seed=1)
    per_query = {}
    for r in rows:
        per_query.setdefault(r["query_id"], []).append(r["kind"])
    for kinds in per_query.values():
        assert kinds.count("hard") == 3 and kinds.count("random") == 2 and kinds.count("positive") >= 1
    # random negatives are unjudged and not among the query's hard ones; the draw is seeded
    again = rerank_pairs(ds, "train", run, hard_negatives=3, random_negatives=2, relative_margin=None, seed=1)
    assert [r["doc_id"] for r in rows] == [r["doc_id"] for r in again]
    hard = {(r["query_id"], r["doc_id"]) for r in rows if r["kind"] == "hard"}
    assert not any((r["query_id"], r["doc_id"]) in hard for r in rows if r["kind"] == "random")


def test_rerank_pairs_take_a_judged_negative_past_the_guard_and_cap_related_passages():
    """A passage judged not relevant (grade 0, e.g. from pooled judgments) needs no false-negative guard;
    ``max_related`` keeps the related passages the retriever ranks highest."""
    corpus = {d: {"title": "", "text": d} for d in "abcdefg"}
    run = {"q": {"a": 1.0, "x": 0.99, "b": 0.98, "e": 0.9, "d": 0.8, "c": 0.7, "f": 0.1}}
    corpus["x"] = {"title": "", "text": "x"}
    unjudged = BeirDataset(corpus, {"q": "?"}, {"train": {"q": {"a": 2, "e": 1, "c": 1, "d": 1}}})
    judged = BeirDataset(corpus, {"q": "?"}, {"train": {"q": {"a": 2, "e": 1, "c": 1, "d": 1, "x": 0}}})
    kinds = lambda ds, **kw: [(r["doc_id"], r["kind"]) for r in rerank_pairs(  # noqa: E731
        ds, "train", run, hard_negatives=1, random_negatives=0, relative_margin=0.05, **kw)]
    assert kinds(unjudged) == [("a", "positive"), ("c", "related"), ("d", "related"), ("e", "related"), ("f", "hard")]
    assert ("x", "hard") in kinds(judged)                   # within 5% of the answer, but judged 0: a sure negative
    assert kinds(judged, max_related=2)[1:3] == [("d", "related"), ("e", "related")]   # c ranks lower: left out
    assert kinds(judged, max_related=0) == [("a", "positive"), ("x", "hard")]


def test_hard_negatives_follow_the_margin_and_rank_range():
    run = {"q": {"a": 1.0, "x": 0.97, "y": 0.9, "z": 0.5, "w": 0.4}}
    qrels = {"q": {"a": 2}}
    assert hard_negatives(run, qrels, num_negatives=2) == {"q": ["y", "z"]}           # x is within 5% of a
    assert hard_negatives(run, qrels, num_negatives=2, relative_margin=None) == {"q": ["x", "y"]}
    assert hard_negatives(run, qrels, num_negatives=2, range_min=3, relative_margin=None) == {"q": ["z", "w"]}
    assert hard_negatives(run, qrels, num_negatives=5, max_score=0.6) == {"q": ["z", "w"]}


@pytest.mark.slow
def test_hard_negatives_match_sentence_transformers_mining(model, tiny_dir):
    """Same embeddings, same rules: kit.retrieval.hard_negatives picks what mine_hard_negatives picks."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    from kit.retrieval import DenseIndex

    ds = load_beir(tiny_dir)
    queries, qrels = ds.split("train")
    index = DenseIndex.build(model, ds.corpus)
    ours = hard_negatives(index.search(queries, k=6), qrels, num_negatives=2, range_max=6, relative_margin=0.05)
    texts = ds.doc_texts()
    by_text = dict(zip(texts, ds.corpus))
    for q in qrels:   # one query at a time: each has one positive here
        pos = max(qrels[q], key=qrels[q].get)
        others = [t for t in texts if by_text[t] not in qrels[q] or by_text[t] == pos]
        data = Dataset.from_dict({"anchor": [queries[q]], "positive": [ds.doc_text(pos)]})
        mined = mine_hard_negatives(data, model, corpus=others, num_negatives=2, range_max=6, relative_margin=0.05,
                                    sampling_strategy="top", output_format="n-tuple", verbose=False)
        theirs = [by_text[mined[0][c]] for c in mined.column_names if c.startswith("negative") and mined[0][c]]
        assert ours[q] == theirs, q


def test_weighted_fusion_and_normalization():
    assert normalize_scores({"q": {"a": 2.0, "b": 2.0}}) == {"q": {"a": 1.0, "b": 1.0}}
    fused = weighted_fusion({"q": {"a": 1.0, "b": 0.0}}, {"q": {"b": 10.0, "a": 0.0}}, 0.25)
    assert fused["q"] == {"a": 0.75, "b": 0.25}
    with pytest.raises(KitError, match=r"weight must be in \[0, 1\]"):
        weighted_fusion({}, {}, 1.5)


def test_first_stage_is_chosen_on_the_qrels_given_and_prefers_dense_on_near_ties():
    dense = {"q1": {"a": 0.9, "b": 0.8}, "q2": {"c": 0.9, "d": 0.1}}
    bm25 = {"q1": {"b": 9.0, "a": 1.0}, "q2": {"d": 5.0, "c": 4.0}}
    dev = {"q1": {"b": 1}, "q2": {"d": 1}}          # BM25 puts both answers first, dense neither
    choice = choose_first_stage(dense, bm25, dev)
    assert choice.chosen.needs_bm25 and choice.dev_scores["dense"] < choice.dev_scores[choice.chosen.name]
    tie = choose_first_stage(dense, dense, {"q1": {"a": 1}, "q2": {"c": 1}})
    assert tie.chosen == FirstStage("dense") and "no fusion beats it" in tie.reason
    assert FirstStage("rrf").combine(dense, bm25)["q1"]  # every stage combines the two runs


def test_mix_weight_chosen_on_dev_is_never_worse_than_the_first_stage_on_dev():
    rng = np.random.default_rng(0)
    first = {f"q{i}": {f"d{j}": float(rng.random()) for j in range(10)} for i in range(30)}
    rerank_run = {q: {d: float(rng.random()) for d in docs} for q, docs in first.items()}
    qrels = {q: {max(docs, key=docs.get): 1} for q, docs in first.items()}   # the first stage is right
    weight, grid = choose_mix_weight(first, rerank_run, qrels)
    assert grid[weight] >= grid[0.0] and weight < 0.5
    assert mix_scores(first, rerank_run, 0.0)["q0"].keys() == first["q0"].keys()


def test_plan_pool_keeps_every_query_when_the_corpus_fits():
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(50)}
    cands = {q: {f"d{j}": 1 - j / 100 for j in range(100)} for q in qrels}
    assert plan_pool(qrels, cands, n_docs=100, max_texts=500) == (sorted(qrels), None, None)
    keep, depth, pool = plan_pool(qrels, cands, n_docs=10_000, max_texts=60, min_queries=20)
    assert depth == 5 and 20 <= len(keep) < 50 and len(pool) + len(keep) <= 60 or len(keep) == 20
    assert all(f"d{q[1:]}" in pool for q in keep)   # judged passages are always in the pool


def test_classification_threshold_comes_from_dev_only():
    dev = classification_on_dev([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0], [0.4, 0.3], [1, 0])
    assert dev["threshold"] == 0.5 and dev["accuracy"] == 0.5   # 0.4 is below the dev threshold


def test_reranker_dataset_shapes():
    rows = [{"query_id": "1", "doc_id": d, "query": "q", "passage": d, "label": l, "kind": k}
            for d, l, k in [("a", 1.0, "positive"), ("b", 0.0, "hard"), ("c", 0.0, "random")]]
    assert reranker_dataset(rows, "bce").column_names == ["query", "passage", "label"]
    mnrl = reranker_dataset(rows, "mnrl")
    assert mnrl.column_names == ["query", "positive", "negative_1", "negative_2"] and mnrl[0]["negative_1"] == "b"
    assert reranker_dataset(rows, "lambda")[0]["labels"] == [1.0, 0.0, 0.0]
    with pytest.raises(KitError, match="unknown re-ranker loss"):
        reranker_dataset(rows, "hinge")


def test_dev_split_never_test(tiny_dir):
    ds = load_beir(tiny_dir)
    with pytest.raises(KitError, match="never used while training"):
        dev_split(ds, "train", "test")
    held, name, heldout = dev_split(ds, "train", None, seed=1)
    assert heldout and name == "heldout-dev" and set(held.qrels[name]) <= set(ds.qrels["train"])
