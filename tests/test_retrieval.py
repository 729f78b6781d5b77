import numpy as np
import pytest

from kit.errors import KitError
from kit.retrieval import BM25Index, DenseIndex, FaissIndex, rerank, rrf, top_docs, top_k

from fakes import BagOfLetters


def brute_force(q, d, k):
    s = q @ d.T
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, idx, 1), idx


@pytest.mark.parametrize("doc_chunk,query_chunk", [(7, 3), (1000, 1000), (1, 1)])
def test_top_k_chunked_equals_brute_force(doc_chunk, query_chunk):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(11, 16)).astype("float32")
    d = rng.normal(size=(53, 16)).astype("float32")
    s, i = top_k(q, d, k=10, doc_chunk=doc_chunk, query_chunk=query_chunk)
    bs, bi = brute_force(q, d, 10)
    np.testing.assert_allclose(s, bs, rtol=1e-5)
    np.testing.assert_array_equal(i, bi)


def test_top_k_k_larger_than_corpus():
    s, i = top_k(np.eye(2, dtype="float32"), np.eye(2, dtype="float32"), k=10)
    assert i.tolist() == [[0, 1], [1, 0]]


CORPUS = {"a": {"title": "", "text": "aaaa"}, "b": {"title": "", "text": "bbbb"}, "ab": {"title": "", "text": "abab"}}


def test_dense_index_and_faiss_agree():
    dense = DenseIndex.build(BagOfLetters(), CORPUS)
    run = dense.search({"q1": "aaa", "q2": "bbb"}, k=2)
    assert list(run["q1"]) == ["a", "ab"] and list(run["q2"]) == ["b", "ab"]
    assert run["q1"]["a"] == pytest.approx(1.0)
    faiss_run = FaissIndex.build(BagOfLetters(), CORPUS).search({"q1": "aaa", "q2": "bbb"}, k=2)
    assert {q: list(d) for q, d in faiss_run.items()} == {q: list(d) for q, d in run.items()}


def test_empty_inputs_raise_clear_errors():
    with pytest.raises(KitError, match="corpus is empty"):
        DenseIndex.build(BagOfLetters(), {})
    with pytest.raises(KitError, match="no queries"):
        DenseIndex.build(BagOfLetters(), CORPUS).search({})
    with pytest.raises(KitError, match="corpus is empty"):
        BM25Index.build({})


def test_bm25_ranks_lexical_match_first():
    corpus = {"taxi": {"title": "Taxis", "text": "Taxis to the airport are reimbursed."},
              "hotel": {"title": "Hotels", "text": "Hotel rooms are capped per night."},
              "meal": {"title": "Meals", "text": "Meals are covered by the per diem."}}
    run = BM25Index.build(corpus).search({"q": "taxi airport", "z": "zzzz unknownword"}, k=3)
    assert top_docs(run, "q", 1)[0][0] == "taxi"
    assert run["z"] == {}      # no known term: it matches nothing (and scores 0 when evaluated)
    assert set(run["q"]) == {"taxi"}   # passages sharing no term are not returned with a score of 0


def test_bm25_unknown_terms_score_nothing_in_every_process():
    """A query of unknown words used to be scored with a stand-in term picked in string-hash order."""
    import subprocess
    import sys

    code = ("from kit.retrieval import BM25Index\n"
            "c = {str(i): {'title': '', 'text': t} for i, t in enumerate(['taxi airport', 'hotel night', 'meal per diem'])}\n"
            "print(BM25Index.build(c).search({'z': 'zzzz qqqq', 'q': 'hotel'}, k=3))\n")
    outs = {subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "PYTHONHASHSEED": seed},
                           capture_output=True, text=True, check=True).stdout for seed in ("1", "2", "3")}
    assert len(outs) == 1 and "'z': {}" in outs.pop()


def test_rrf_exact():
    fused = rrf([{"q": {"a": 2.0, "b": 1.0}}, {"q": {"b": 9.0, "c": 1.0}}], k=60)
    assert list(fused["q"]) == ["b", "a", "c"]
    assert fused["q"]["b"] == pytest.approx(1 / 61 + 1 / 62)


class FakeReranker:
    def predict(self, pairs, **kwargs):
        return np.array([float(p.count("b")) for _, p in pairs])


def test_rerank_reorders_top_depth_and_keeps_the_rest():
    run = {"q": {"a": 3.0, "ab": 2.0, "b": 1.0}}
    out = rerank(FakeReranker(), CORPUS, {"q": "x"}, run, depth=2)
    assert list(out["q"]) == ["ab", "a", "b"]  # 'b' was below depth: kept, ranked last
    with pytest.raises(KitError, match="not in queries"):
        rerank(FakeReranker(), CORPUS, {}, run)
