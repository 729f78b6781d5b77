import json

import pytest

from kit.data import (BeirDataset, DataError, doc_text, labeled_pairs, load_beir, positive_pairs, save_beir,
                      triplets, validate_beir)


def test_load_tiny(tiny_dir):
    ds = load_beir(tiny_dir)
    assert ds.splits == ["test", "train"]
    queries, qrels = ds.split("train")
    assert list(queries) == ["q1", "q2", "q3"]
    assert qrels["q2"] == {"hotel": 2, "minibar": 1}
    assert ds.doc_text("taxi") == "Taxis. Taxis and rideshares to the airport are reimbursed at the standard tier."
    stats = ds.stats()
    assert stats["documents"] == 6 and stats["train_queries"] == 3 and stats["test_grades"] == {1: 1, 2: 3}


def test_unknown_split_names_available(tiny_dir):
    with pytest.raises(DataError, match="no split 'dev'; available: test, train"):
        load_beir(tiny_dir).split("dev")
    with pytest.raises(DataError, match="split 'dev' not found"):
        load_beir(tiny_dir, splits=["dev"])


def _append(path, line):
    with open(path, "a") as fh:
        fh.write(line + "\n")


@pytest.mark.parametrize("file,line,message", [
    ("corpus.jsonl", '{"_id": "bad", "title": "x", "text": "unterminated', r"corpus.jsonl:7: malformed JSON"),
    ("corpus.jsonl", '{"title": "x", "text": "no id"}', r"corpus.jsonl:7: missing field\(s\) _id"),
    ("corpus.jsonl", '{"_id": "taxi", "title": "x", "text": "again"}', r"corpus.jsonl:7: duplicate _id 'taxi' \(first on line 1\)"),
    ("queries.jsonl", '{"_id": "q9"}', r"queries.jsonl:7: missing field\(s\) text"),
    ("qrels/test.tsv", "q4\tnope\t1", r"qrels/test.tsv:6: corpus-id 'nope' is not in corpus.jsonl"),
    ("qrels/test.tsv", "q99\ttaxi\t1", r"qrels/test.tsv:6: query-id 'q99' is not in queries.jsonl"),
    ("qrels/test.tsv", "q4\ttaxi\thigh", r"qrels/test.tsv:6: score 'high' is not an integer"),
    ("qrels/test.tsv", "q4\ttaxi", r"qrels/test.tsv:6: expected 3 tab-separated columns"),
])
def test_validation_names_file_and_line(tiny_dir, file, line, message):
    _append(tiny_dir / file, line)
    ds, report = validate_beir(tiny_dir)
    assert ds is None and not report.ok
    with pytest.raises(DataError, match=message):
        load_beir(tiny_dir)


def test_empty_split_and_missing_files(tiny_dir):
    (tiny_dir / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(DataError, match=r"qrels/dev.tsv: empty split"):
        load_beir(tiny_dir)
    (tiny_dir / "queries.jsonl").unlink()
    with pytest.raises(DataError, match=r"queries.jsonl: file not found"):
        load_beir(tiny_dir)
    with pytest.raises(DataError, match="not a folder"):
        load_beir(tiny_dir / "nowhere")


def test_nothing_dropped_silently(tiny_dir):
    """An unjudged query is kept and reported as a warning, not dropped."""
    _append(tiny_dir / "queries.jsonl", json.dumps({"_id": "q7", "text": "an extra question"}))
    ds, report = validate_beir(tiny_dir)
    assert ds is not None and "q7" in ds.queries
    assert any("1 queries have no judgments" in w for w in report.warnings)


def test_save_roundtrip(tiny_dir, tmp_path):
    ds = load_beir(tiny_dir)
    save_beir(ds, tmp_path / "copy")
    again = load_beir(tmp_path / "copy")
    assert again.corpus == ds.corpus and again.queries == ds.queries and again.qrels == ds.qrels
    assert not list((tmp_path / "copy").rglob("*.tmp"))


def test_doc_text_joins_title():
    assert doc_text({"title": "", "text": "only text"}) == "only text"
    assert doc_text({"title": "Why?", "text": "Because."}) == "Why? Because."


def test_training_views_column_order(tiny_dir):
    ds = load_beir(tiny_dir)
    pairs = positive_pairs(ds, "train")
    assert pairs.column_names == ["anchor", "positive"] and len(pairs) == 3
    assert pairs[0] == {"anchor": "can I get a cab to the airport?", "positive": ds.doc_text("taxi")}

    tri = triplets(ds, "train", seed=0)
    assert tri.column_names == ["anchor", "positive", "negative"] and len(tri) == 3
    for row, q in zip(tri, ["q1", "q2", "q3"]):
        judged = {ds.doc_text(d) for d in ds.qrels["train"][q]}
        assert row["negative"] not in judged  # judged passages are never negatives

    hard = triplets(ds, "train", negatives={"q1": ["hotel"], "q2": ["minibar", "visa"]})
    assert hard[0]["negative"] == ds.doc_text("hotel")
    assert hard[1]["negative"] == ds.doc_text("visa")  # 'minibar' is judged for q2, so skipped

    lp = labeled_pairs(ds, "train", seed=0)
    assert lp.column_names == ["sentence1", "sentence2", "label"]
    assert sorted(lp["label"]) == [0, 0, 0, 1, 1, 1]
    graded = labeled_pairs(ds, "train", graded=True, seed=0)
    assert sorted(graded["label"]) == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0]


def test_views_are_seeded(tiny_dir):
    ds = load_beir(tiny_dir)
    assert triplets(ds, "train", seed=3)["negative"] == triplets(ds, "train", seed=3)["negative"]
    assert len(positive_pairs(ds, "train", limit=2)) == 2


def test_triplets_with_several_negatives(tiny_dir):
    ds = load_beir(tiny_dir)
    tup = triplets(ds, "train", negatives={"q1": ["hotel", "visa"], "q2": ["minibar", "visa"]}, num_negatives=3)
    assert tup.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    for row, q in zip(tup, ["q1", "q2", "q3"]):
        negs = [row[f"negative_{k}"] for k in (1, 2, 3)]
        assert len(set(negs)) == 3                                     # no negative twice in a row
        assert not {ds.doc_text(d) for d in ds.qrels["train"][q]} & set(negs)
    assert tup[0]["negative_1"] == ds.doc_text("hotel") and tup[0]["negative_2"] == ds.doc_text("visa")
    assert tup[1]["negative_1"] == ds.doc_text("visa")                 # 'minibar' is judged for q2
    with pytest.raises(DataError, match="ask for fewer negatives"):
        triplets(ds, "train", num_negatives=5)                         # q2 has only 4 unjudged passages


def test_with_judgments_fills_only_unjudged_pairs_and_rejects_a_file_for_another_dataset(tmp_path):
    from kit.data import load_pooled_judgments, with_judgments

    ds = BeirDataset({d: {"title": "", "text": d} for d in "abc"}, {"q1": "?", "q2": "!"},
                     {"dev": {"q1": {"a": 2}}, "test": {"q2": {"b": 1}}}, name="toy")
    rows = [{"query_id": "q1", "corpus_id": "a", "grade": 0},      # the writer's 2 stands
            {"query_id": "q1", "corpus_id": "c", "grade": 2},
            {"query_id": "q2", "corpus_id": "a", "grade": 0},      # judged not relevant: kept as 0
            {"query_id": "q9", "corpus_id": "a", "grade": 2}]      # not in this (sampled) dataset: skipped
    merged = with_judgments(ds, rows)
    assert merged.qrels == {"dev": {"q1": {"a": 2, "c": 2}}, "test": {"q2": {"b": 1, "a": 0}}}
    assert ds.qrels["dev"] == {"q1": {"a": 2}}                      # the original is untouched
    assert merged.name == "toy+pooled" and merged.fingerprint() != ds.fingerprint()
    with pytest.raises(DataError, match="none of the 1 rows grades a query and passage of toy"):
        with_judgments(ds, [{"query_id": "x", "corpus_id": "a", "grade": 2}])
    bad = tmp_path / "pooled.jsonl"
    bad.write_text('{"query_id": "q1", "corpus_id": "c", "grade": 2}\n{"query_id": "q1", "corpus_id": "b", "grade": 3}\n')
    with pytest.raises(DataError, match=r"pooled.jsonl:2: grade 3 is not 0, 1 or 2"):
        load_pooled_judgments(bad)
    bad.write_text('{"query_id": "q1", "grade": 2}\n')
    with pytest.raises(DataError, match="pooled.jsonl:1"):
        load_pooled_judgments(bad)
