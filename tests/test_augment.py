"""kit.augment, each function on hand-made data: guards against an expert, clusters, synthetic
queries and their round-trip filter, silver labels, labeling functions and the label model, slices."""
import numpy as np
import pandas as pd
import pytest

from kit.augment import (ABSTAIN, NEGATIVE, POSITIVE, cluster_negatives, cluster_passages, crop_queries, guard_report,
                         keyword_queries, labeling_functions, llm_queries, pair_features, query_slices,
                         round_trip_filter, silver_pairs, slice_table, typo_queries, weak_labels)
from kit.data import BeirDataset
from kit.errors import KitError
from kit.retrieval import DenseIndex

from fakes import BagOfLetters


CORPUS = {"taxi": {"title": "Taxis", "text": "Taxis to the airport are reimbursed at the standard tier.", "topic": "ground"},
          "hotel": {"title": "Hotels", "text": "Hotel rooms are capped at 225 dollars a night in most cities.", "topic": "lodging"},
          "minibar": {"title": "Minibar", "text": "Minibar charges are personal and never reimbursed by the company.", "topic": "lodging"}}


def test_guard_report_counts_false_negatives_per_setting():
    run = {"q": {"a": 1.0, "x": 0.99, "y": 0.5, "z": 0.4}}
    sme = [{"query_id": "q", "corpus_id": "x", "judgment": "actually_relevant"},
           {"query_id": "q", "corpus_id": "y", "judgment": "hard_negative"}]
    table = guard_report(run, {"q": {"a": 2}}, sme, {"none": {"relative_margin": None}, "margin": {"relative_margin": 0.05}})
    assert table.loc["none", "false_negative_rate"] == 0.5 and table.loc["margin", "false_negative_rate"] == 0.0
    assert table.loc["none", "mined"] == 3 and table.loc["margin", "mined"] == 2


def test_clusters_and_cluster_negatives():
    emb = np.array([[1, 0], [0.95, 0.05], [0.9, 0.1], [0, 1], [0.05, 0.95]], float)
    labels = cluster_passages(emb, 2)
    assert labels[0] == labels[1] == labels[2] != labels[3] == labels[4]
    ids = ["a", "b", "c", "d", "e"]
    same = cluster_negatives({"q": {"a": 2, "b": 1}}, ids, labels, per_query=5)
    assert same == {"q": ["c"]}                               # same cluster, never a judged passage
    cent = np.array([emb[labels == k].mean(axis=0) for k in range(2)])
    far = cluster_negatives({"q": {"a": 2}}, ids, labels, cent, per_query=5, far=True, seed=0)
    assert set(far["q"]) == {"d", "e"}
    with pytest.raises(KitError, match="k must be between 2"):
        cluster_passages(emb, 9)


def test_synthetic_queries_and_the_round_trip_filter():
    crops = crop_queries(CORPUS, list(CORPUS), seed=0)
    assert all(len(q.split()) <= 12 and not q.endswith(".") for qs in crops.values() for q in qs)
    assert crops["taxi"] == ["Taxis to the airport are reimbursed at the standard tier"]
    keys = keyword_queries(CORPUS, ["minibar"], words=2)["minibar"][0].split()
    assert len(keys) == 2 and "minibar" in keys
    index = DenseIndex.build(BagOfLetters(), CORPUS)
    kept, share = round_trip_filter(index, {"taxi": ["taxis to the airport", "zzzz hotel rooms capped"]}, k=1)
    assert kept == {"taxi": ["taxis to the airport"]} and share == 0.5
    assert typo_queries({"q": "abc"}, rate=0.0) == {"q": "abc"} and typo_queries({"q": "hotel rooms"}, rate=0.5)["q"] != "hotel rooms"


def test_llm_queries_are_cleaned_and_cached():
    class Fake:
        name = "fake"
        calls = 0

        def generate(self, messages, max_new_tokens=None):
            Fake.calls += 1
            return "Q: How much is the hotel cap?\nExtra line"

    store = {}

    def cache(key, compute):
        k = str(key)
        if k not in store:
            store[k] = compute()
        return store[k]

    out = llm_queries(Fake(), CORPUS, ["hotel", "hotel"], cache=cache)
    assert out == {"hotel": ["How much is the hotel cap?"]} and Fake.calls == 1


class CountsWords:
    """A 're-ranker': the share of the query's words found in the passage."""

    def predict(self, pairs, **kwargs):
        return np.array([len(set(q.lower().split()) & set(p.lower().split())) / len(q.split()) for q, p in pairs])


def test_silver_pairs_keep_only_confident_labels():
    ds = BeirDataset(CORPUS, {"q": "taxis to the airport"}, {"train": {}})
    cands = {"q": {"taxi": 0.9, "hotel": 0.5, "minibar": 0.4}}
    silver = silver_pairs(CountsWords(), ds, {"q": "taxis to the airport"}, cands, positive_above=0.7, negative_below=0.3)
    assert silver.set_index("doc_id").label.to_dict() == {"taxi": 1, "hotel": 0, "minibar": 0}
    judged = silver_pairs(CountsWords(), ds, {"q": "taxis to the airport"}, cands, positive_above=0.7, negative_below=0.3,
                          exclude={"q": {"taxi": 2}})
    assert "taxi" not in set(judged.doc_id)
    with pytest.raises(KitError, match="negative_below must not exceed"):
        silver_pairs(CountsWords(), ds, {}, {}, positive_above=0.2, negative_below=0.5)


def test_labeling_functions_on_hand_made_pairs():
    ds = BeirDataset(CORPUS, {"q1": "are taxis to the airport reimbursed", "q2": "minibar snacks"}, {},
                     query_meta={"q1": {"topic": "ground"}, "q2": {"topic": "lodging"}})
    pairs = pd.DataFrame({"query_id": ["q1", "q1", "q2"], "doc_id": ["taxi", "hotel", "minibar"]})
    retriever = {"q1": {"taxi": 0.9, "hotel": 0.1}, "q2": {"taxi": 0.5, "hotel": 0.4, "x": 0.3, "minibar": 0.2}}
    features = pair_features(ds, pairs, ds.queries, retriever_run=retriever)
    lfs = {lf.name: lf for lf in labeling_functions()}
    votes = {name: [lf(row) for row in features.itertuples()] for name, lf in lfs.items()}
    assert votes["lf_overlap_high"] == [POSITIVE, ABSTAIN, POSITIVE]    # "minibar snacks": half its words are in the passage
    assert votes["lf_other_topic"] == [ABSTAIN, NEGATIVE, ABSTAIN]
    assert votes["lf_retriever_top1"] == [POSITIVE, ABSTAIN, ABSTAIN]
    assert votes["lf_retriever_deep"] == [ABSTAIN, ABSTAIN, NEGATIVE]
    probs, summary, L = weak_labels(features, list(lfs.values()), epochs=50)
    assert L.shape == (3, len(lfs)) and set(summary.columns) >= {"Polarity", "Coverage", "Overlaps", "Conflicts"}
    assert probs[0] > probs[1]                                        # the taxi pair looks relevant, the hotel one not


def test_slices_and_the_slice_table():
    ds = BeirDataset({}, {"a": "x", "b": "one two three four five six", "c": "y z", "d": "w"}, {},
                     query_meta={q: {"style": s, "topic": "t"} for q, s in zip("abcd", ["typo", "natural", "typo", "natural"])})
    sl = query_slices(ds, list("abcd"), extra={"first letter": lambda q: q})
    assert list(sl.columns) == ["topic", "style", "length", "first letter"]
    table = slice_table(pd.Series({"a": 0.1, "b": 0.9, "c": 0.3, "d": 0.7}), sl, min_queries=2)
    assert table.iloc[0][["view", "slice"]].tolist() == ["style", "typo"] and table.iloc[0]["mean"] == pytest.approx(0.2)
