"""kit.cache: keys fingerprint what made an artifact; a change retrains (and says so); embeddings are
kept per model and dropped with it; writes are atomic with unique temporary names."""
import json
import threading

import numpy as np
import pytest
import torch

from kit.cache import cached_encode, cached_index, cached_json, cached_model, fingerprint
from kit.data import BeirDataset
from kit.errors import KitError


class TinyModel(torch.nn.Module):
    """A stand-in 'model': weights, a max_seq_length, encode(), save(); instant."""

    max_seq_length = 16

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = torch.nn.Parameter(torch.randn(26, 4, generator=g))
        self.calls = 0

    def encode(self, texts, **kwargs):
        self.calls += 1
        bag = np.zeros((len(texts), 26), np.float32)
        for r, t in enumerate(texts):
            for ch in t.lower():
                if "a" <= ch <= "z":
                    bag[r, ord(ch) - 97] += 1
        out = bag @ self.w.detach().numpy()
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def predict(self, pairs, **kwargs):
        q, p = self.encode([a for a, _ in pairs]), self.encode([b for _, b in pairs])
        return (q * p).sum(1)

    def save(self, path):
        torch.save(self.state_dict(), f"{path}/w.pt")


def load_tiny(path):
    m = TinyModel()
    m.load_state_dict(torch.load(f"{path}/w.pt"))
    return m


def test_fingerprint_ignores_dict_order_and_sees_values():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_cached_model_trains_once_then_loads(tmp_path):
    calls = []

    def train():
        calls.append(1)
        return TinyModel(1), {"seconds": 1.5}

    first = cached_model("m", {"lr": 1}, train, loader=load_tiny, root=tmp_path)
    again = cached_model("m", {"lr": 1}, train, loader=load_tiny, root=tmp_path)
    assert len(calls) == 1 and first.trained and not again.trained
    assert again.meta == {"seconds": 1.5} and torch.equal(again.model.w, first.model.w)


def test_a_changed_recipe_or_dataset_retrains_and_says_so(tmp_path):
    said = []
    ds_a = BeirDataset({"d": {"title": "", "text": "x"}}, {"q": "y"}, {"test": {"q": {"d": 1}}})
    ds_b = BeirDataset({"d": {"title": "", "text": "x, edited"}}, {"q": "y"}, {"test": {"q": {"d": 1}}})
    seeds = iter([1, 2, 3])
    train = lambda: (TinyModel(next(seeds)), {})
    a = cached_model("m", {"lr": 1, "data": ds_a.fingerprint()}, train, loader=load_tiny, root=tmp_path, log=said.append)
    b = cached_model("m", {"lr": 2, "data": ds_a.fingerprint()}, train, loader=load_tiny, root=tmp_path, log=said.append)
    c = cached_model("m", {"lr": 2, "data": ds_b.fingerprint()}, train, loader=load_tiny, root=tmp_path, log=said.append)
    assert a.trained and b.trained and c.trained
    assert sum("changed" in s and "retraining" in s for s in said) == 2
    assert [p.name for p in (tmp_path / "models" / "m").iterdir()] == [c.key]   # the stale ones are gone


def test_embeddings_are_keyed_by_the_weights_not_a_name(tmp_path):
    texts = ["taxi to the airport", "hotel cap", "minibar"]
    m1, m2 = TinyModel(1), TinyModel(2)
    e1 = cached_encode(m1, texts, root=tmp_path)
    assert m1.calls == 1 and np.array_equal(cached_encode(m1, texts, root=tmp_path), e1) and m1.calls == 1
    e2 = cached_encode(m2, texts, root=tmp_path)          # other weights: never served m1's vectors
    assert m2.calls == 1 and not np.allclose(e1, e2)
    with torch.no_grad():
        m1.w.add_(1.0)                                     # "retrained in place": new weights, new key
    cached_encode(m1, texts, root=tmp_path)
    assert m1.calls == 2
    m1.max_seq_length = 8                                  # another input length: another key too
    cached_encode(m1, texts, root=tmp_path)
    assert m1.calls == 3


def test_retraining_a_model_drops_only_its_own_embeddings_and_scores(tmp_path):
    from kit.cache import cached_rerank

    seeds = iter([1, 2])
    train = lambda: (TinyModel(next(seeds)), {})
    old = cached_model("m", {"v": 1}, train, loader=load_tiny, root=tmp_path)
    other = TinyModel(9)
    corpus, queries, run = {"d": {"title": "", "text": "taxi"}}, {"q": "a taxi"}, {"q": {"d": 1.0}}
    for model in (old.model, other):
        cached_encode(model, ["a b"], root=tmp_path)
        cached_rerank(model, corpus, queries, run, 1, root=tmp_path)
    emb, scores = tmp_path / "embeddings", tmp_path / "reranked"
    assert len(list(emb.iterdir())) == 2 and len(list(scores.iterdir())) == 2
    cached_model("m", {"v": 2}, train, loader=load_tiny, root=tmp_path)
    left = [p.name for p in emb.iterdir()]
    from kit.models import model_fingerprint

    assert left == [model_fingerprint(other)]               # the other model's vectors survive
    assert [p.name for p in scores.iterdir()] == [f"{fingerprint(model_fingerprint(other))}.json"]   # and its scores


def test_cached_index_matches_a_fresh_one(tmp_path):
    corpus = {"a": {"title": "", "text": "taxi"}, "b": {"title": "", "text": "hotel"}}
    m = TinyModel(3)
    idx = cached_index(m, corpus, root=tmp_path)
    again = cached_index(m, corpus, root=tmp_path)
    assert m.calls == 1 and np.array_equal(idx.embeddings, again.embeddings) and idx.doc_ids == ["a", "b"]


def test_concurrent_writers_never_clash_or_leave_temporaries(tmp_path):
    texts = [f"text {i}" for i in range(20)]
    errors = []

    def work(seed):
        try:
            cached_encode(TinyModel(seed % 2), texts, root=tmp_path)
        except Exception as err:  # pragma: no cover - the assertion below reports it
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    files = [p.name for p in (tmp_path / "embeddings").rglob("*") if p.is_file()]
    assert len(files) == 2 and all(f.endswith(".npy") and ".tmp" not in f for f in files)


def test_cached_json_recomputes_when_its_key_changes(tmp_path):
    said, calls = [], []
    compute = lambda: calls.append(1) or {"x": len(calls)}
    assert cached_json("r", {"k": 1}, compute, root=tmp_path, log=said.append) == {"x": 1}
    assert cached_json("r", {"k": 1}, compute, root=tmp_path, log=said.append) == {"x": 1}
    assert cached_json("r", {"k": 2}, compute, root=tmp_path, log=said.append) == {"x": 2}
    assert len(calls) == 2 and any("inputs changed" in s for s in said)
    assert len(list((tmp_path / "results" / "r").glob("*.json"))) == 1


def test_interrupted_training_leaves_nothing(tmp_path):
    def boom():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cached_model("m", {"v": 1}, boom, loader=load_tiny, root=tmp_path)
    assert list((tmp_path / "models" / "m").iterdir()) == []
    meta = cached_model("m", {"v": 1}, lambda: (TinyModel(), {"ok": True}), loader=load_tiny, root=tmp_path)
    assert json.loads((meta.path / "kit_cache.json").read_text())["meta"] == {"ok": True}


class PairCounter(torch.nn.Module):
    """A stand-in re-ranker: scores a pair by shared letters (scaled by its weight) and counts the pairs it scored."""

    max_seq_length = 16

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale))
        self.scored: list[tuple[str, str]] = []

    def predict(self, pairs, **kwargs):
        self.scored += list(pairs)
        return np.array([float(self.scale) * len(set(q) & set(p)) for q, p in pairs])


def test_cached_rerank_scores_each_pair_once_across_depths_runs_and_stored_results(tmp_path):
    from kit.cache import cached_rerank, remember_rerank
    from kit.retrieval import rerank

    corpus = {d: {"title": "", "text": t} for d, t in {"a": "taxi", "b": "hotel", "c": "meal", "d": "flight"}.items()}
    queries = {"q1": "taxi fare", "q2": "hotel meal"}
    run = {"q1": {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.5}, "q2": {"b": 3.0, "c": 2.0, "a": 1.0}}
    model = PairCounter()
    shallow = cached_rerank(model, corpus, queries, run, 2, root=tmp_path)
    assert len(model.scored) == 4
    deep = cached_rerank(model, corpus, queries, run, 3, root=tmp_path)       # only the third candidates are new
    assert len(model.scored) == 6
    fresh = rerank(PairCounter(), corpus, queries, run, depth=3)
    assert deep == {q: {d: fresh[q][d] for d in list(fresh[q])[:3]} for q in run}
    assert set(shallow["q1"]) == {"a", "b"} and list(deep["q1"]) == list(fresh["q1"])[:3]
    other = {"q1": {"d": 1.0, "a": 0.5}}                                          # another first stage: d is new
    cached_rerank(model, corpus, queries, other, 2, root=tmp_path)
    assert len(model.scored) == 7
    changed = PairCounter(scale=2.0)                                             # other weights: nothing is reused
    assert cached_rerank(changed, corpus, queries, run, 2, root=tmp_path)["q1"]["a"] == 2 * deep["q1"]["a"]
    assert len(changed.scored) == 4
    seeded = PairCounter(scale=3.0)                                              # scores computed elsewhere are kept
    assert remember_rerank(seeded, corpus, queries, rerank(PairCounter(scale=3.0), corpus, queries, run, depth=2), 2,
                           root=tmp_path) == 4
    cached_rerank(seeded, corpus, queries, run, 2, root=tmp_path)
    assert seeded.scored == []
    with pytest.raises(KitError, match="'q9'"):
        cached_rerank(model, corpus, queries, {"q9": {"a": 1.0}}, 2, root=tmp_path)
    assert not list(tmp_path.rglob("*.tmp*"))
