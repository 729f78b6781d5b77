"""Helpers added for notebooks 01 and 02 (kit.analysis run analysis, kit.plots.encoder_diagram).

Seeded and exact; no model is loaded (a deterministic fake encoder stands in where one is needed).
"""
import zlib

import matplotlib

matplotlib.use("Agg")  # no display needed
import numpy as np
import pandas as pd
import pytest

from kit.data import load_beir
from kit.errors import KitError
from kit.analysis import (duplicate_batch_rate, pair_similarities, pair_similarities_from_index, pair_summary,
                          rank_disagreements, ranking_failures, top_unjudged, unjudged_tops)
from kit.plots import encoder_diagram
from kit.retrieval import DenseIndex

RUN = {
    "q1": {"x": 0.9, "a": 0.7, "y": 0.6, "b": 0.5},   # unjudged x beats the answer a
    "q2": {"c": 0.8, "z": 0.4},                       # answer first: not a failure
    "q3": {"r": 0.95, "w": 0.9, "d": 0.3},            # a related passage (grade 1) beats the answer
    "q4": {"v": 0.5},                                 # the answer was not retrieved at all
}
QRELS = {"q1": {"a": 2, "b": 1}, "q2": {"c": 2}, "q3": {"d": 2, "r": 1}, "q4": {"e": 2}}


class FakeEncoder:
    """Deterministic unit vectors from a checksum of the text (what encode() needs of a model)."""

    def encode(self, texts, **kwargs):
        out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts])
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_top_unjudged_skips_judged_and_respects_n():
    assert top_unjudged(RUN, QRELS, n=2) == {"q1": ["x", "y"], "q2": ["z"], "q3": ["w"], "q4": ["v"]}
    assert top_unjudged(RUN, QRELS)["q3"] == ["w"]        # r is judged (grade 1): never a negative
    assert top_unjudged({}, {"q9": {"a": 2}}) == {"q9": []}
    with pytest.raises(KitError, match="at least 1"):
        top_unjudged(RUN, QRELS, n=0)


def test_ranking_failures_rows_scores_and_order():
    f = ranking_failures(RUN, QRELS)
    assert f.loc["q1"].to_dict() == {"top_doc": "x", "top_grade": 0, "top_score": 0.9, "answer_doc": "a",
                                     "answer_score": 0.7, "answer_rank": 2, "margin": pytest.approx(0.2)}
    assert f.loc["q3", "top_grade"] == 1 and f.loc["q3", "answer_rank"] == 3
    assert f.loc["q3", "margin"] == pytest.approx(0.65)
    assert f.loc["q4", "answer_rank"] == 0 and np.isnan(f.loc["q4", "answer_score"])
    assert "q2" not in f.index
    # by decreasing margin (NaN last), the preferred query first when it fails
    assert list(ranking_failures(RUN, QRELS).index) == ["q3", "q1", "q4"]
    assert list(ranking_failures(RUN, QRELS, prefer=["q1", "q2"]).index) == ["q1", "q3", "q4"]


def test_unjudged_tops_counts_each_run_and_keeps_only_the_same_unjudged_passage():
    other = {"q1": {"x": 0.3, "a": 0.9},               # the answer first: not unjudged here
             "q3": {"w": 0.9, "r": 0.1},               # unjudged w first (in RUN, judged r is first)
             "q4": {"v": 0.8}}                          # the same unjudged v as RUN
    counts, shared = unjudged_tops({"retriever": RUN, "re-ranker": other}, QRELS)
    assert counts == {"queries": 4, "top unjudged: retriever": 2, "top unjudged: re-ranker": 2,
                      "same unjudged top in all": 1}
    assert shared.to_dict("index") == {"q4": {"top_doc": "v", "answer_doc": "e"}}
    counts, shared = unjudged_tops({"retriever": RUN}, QRELS)   # one run: all its unjudged tops
    assert counts["same unjudged top in all"] == 2 and list(shared.index) == ["q1", "q4"]
    assert shared.loc["q1", "answer_doc"] == "a"
    counts, shared = unjudged_tops({"retriever": {}}, QRELS)
    assert counts["same unjudged top in all"] == 0 and shared.empty
    with pytest.raises(KitError, match="at least one run"):
        unjudged_tops({}, QRELS)


def test_pair_similarities_from_index_matches_encoding_again(tiny_dir):
    ds = load_beir(tiny_dir)
    model = FakeEncoder()
    index = DenseIndex.build(model, ds.corpus)
    queries, _ = ds.split("test")
    q_emb = index.encode_queries(queries)
    negatives = {"q4": ["visa"]}
    fast = pair_similarities_from_index(index, q_emb, ds, "test", negatives=negatives, seed=7)
    slow = pair_similarities(model, ds, "test", negatives=negatives, seed=7)
    pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-6)
    assert fast[["query_id", "doc_id", "grade"]].values.tolist() == [
        ["q4", "mileage", 2], ["q4", "taxi", 1], ["q4", "visa", 0],
        ["q5", "meals", 2], ["q5", slow.doc_id[4], 0], ["q6", "visa", 2], ["q6", slow.doc_id[6], 0]]
    with pytest.raises(KitError, match="2 query embeddings for 3 test queries"):
        pair_similarities_from_index(index, q_emb[:2], ds, "test")


def test_pair_summary_exact():
    pairs = pd.DataFrame({"query_id": ["q1", "q1", "q1", "q2", "q2"], "grade": [2, 1, 0, 2, 0],
                          "cosine": [0.8, 0.6, 0.5, 0.3, 0.4]})
    s = pair_summary(pairs)
    assert s == {"answer": 0.55, "related": 0.6, "negative": 0.45, "gap": 0.1, "answer_beats_negative": 0.5}


def test_duplicate_batch_rate():
    distinct = [(f"q{i}", f"d{i}") for i in range(10)]
    assert duplicate_batch_rate(distinct, batch_size=4) == 0.0
    assert duplicate_batch_rate([("q1", "a"), ("q2", "a")], batch_size=2) == 1.0
    # 4 rows, two share a passage, batches of 2: they meet with probability 1/3, in 1 of 2 batches
    rows = [("q1", "a"), ("q2", "a"), ("q3", "b"), ("q4", "c")]
    rate = duplicate_batch_rate(rows, batch_size=2, trials=3000, seed=0)
    assert rate == pytest.approx(1 / 6, abs=0.01)
    assert rate == duplicate_batch_rate(rows, batch_size=2, trials=3000, seed=0)   # seeded: repeatable
    with pytest.raises(KitError, match="at least 2"):
        duplicate_batch_rate(rows, batch_size=1)


def test_rank_disagreements():
    t = pd.DataFrame({"nDCG@10": [0.7, 0.6, 0.5], "accuracy": [0.8, 0.9, 0.7], "spearman": [0.3, 0.2, 0.1]},
                     index=["mnrl", "cosent", "zero-shot"])
    d = rank_disagreements(t)
    assert d[["model_a", "model_b", "metric_a", "metric_b"]].values.tolist() == [
        ["mnrl", "cosent", "nDCG@10", "accuracy"], ["cosent", "mnrl", "accuracy", "spearman"]]
    assert d.a_minus_b_on_metric_a.tolist() == [0.1, 0.1]
    assert rank_disagreements(t, ["nDCG@10", "spearman"]).empty
    with pytest.raises(KitError, match="no column 'F1'"):
        rank_disagreements(t, ["nDCG@10", "F1"])


def test_encoder_diagram_draws_both_architectures():
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    ax = encoder_diagram(dim=384)
    texts = [t.get_text() for t in ax.texts]
    assert "Bi-encoder" in texts and "Cross-encoder" in texts
    assert texts.count("vector (384 numbers)") == 2 and "relevance score" in texts
    assert sum(isinstance(p, FancyBboxPatch) for p in ax.patches) == 11
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == 9
    matplotlib.pyplot.close(ax.figure)


def test_score_bi_encoder_is_search_plus_pairs(tiny_dir):
    from kit.analysis import score_bi_encoder

    ds = load_beir(tiny_dir)
    model = FakeEncoder()
    queries, _ = ds.split("test")
    run, pairs = score_bi_encoder(model, ds, "test", k=3, seed=3)
    assert run == DenseIndex.build(model, ds.corpus).search(queries, k=3)
    assert all(len(docs) == 3 for docs in run.values())
    pd.testing.assert_frame_equal(pairs, pair_similarities(model, ds, "test", seed=3), check_exact=False, rtol=1e-6)


def test_value_heatmap_shows_values_not_ranks():
    from kit.plots import value_heatmap

    table = pd.DataFrame({"nDCG@10": [0.7, 0.699, 0.6], "accuracy": [0.8, 0.9, 0.85]}, index=["mnrl", "cosent", "zero-shot"])
    ax = value_heatmap(table, title="Scores")
    assert [t.get_text() for t in ax.texts] == ["0.700", "0.800", "0.699", "0.900", "0.600", "0.850"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["mnrl", "cosent", "zero-shot"]
    matplotlib.pyplot.close(ax.figure)


def test_in_batch_matrix_marks_the_diagonal():
    from kit.plots import in_batch_matrix

    ax = in_batch_matrix(np.array([[0.9, 0.1], [0.2, 0.8]]), ["q1", "q2"], ["a1", "a2"], title="batch")
    assert len(ax.patches) == 2 and [t.get_text() for t in ax.texts] == ["0.90", "0.10", "0.20", "0.80"]
    matplotlib.pyplot.close(ax.figure)
