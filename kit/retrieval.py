"""Retrieval: exact dense search, BM25, hybrid fusion chosen on dev, hard-negative mining and
cross-encoder re-ranking.

Every retriever returns a *run*: ``{query_id: {doc_id: score}}`` (:data:`kit.data.Run`), the dict
form that ir-measures reads directly (see :mod:`kit.evaluate`). Taught in
``notebooks/01_representations.ipynb`` (dense), ``04`` (BM25, hybrid, mining), ``05`` (re-ranking)
and ``06`` (RAG).

>>> from kit.retrieval import DenseIndex
>>> index = DenseIndex.build(model, ds.corpus)               # doctest: +SKIP
>>> run = index.search(queries, k=100)                       # doctest: +SKIP
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

import numpy as np

from .data import Corpus, Qrels, Queries, Run, doc_text
from .errors import KitError

if TYPE_CHECKING:
    import pandas as pd
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from .data import BeirDataset


def _progress(show: bool | None, n: int) -> bool:
    return bool(show) if show is not None else n >= 2000


def encode(model: "SentenceTransformer", texts: Sequence[str], *, batch_size: int = 64,
           show_progress_bar: bool | None = None, prompt_name: str | None = None) -> np.ndarray:
    """Encode ``texts`` into L2-normalized float32 vectors (so dot product = cosine similarity).

    >>> emb = encode(model, ["Taxis are fine.", "Minibar is personal."])   # doctest: +SKIP
    >>> emb.shape, float((emb[0] ** 2).sum())                               # ((2, 384), 1.0)  # doctest: +SKIP
    """
    if len(texts) == 0:
        raise KitError("encode: no texts to encode (empty input)")
    emb = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                       show_progress_bar=_progress(show_progress_bar, len(texts)), prompt_name=prompt_name)
    return np.asarray(emb, dtype=np.float32)


def top_k(query_emb: np.ndarray, doc_emb: np.ndarray, k: int, *, query_chunk: int = 1024,
          doc_chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` by dot product, chunked so memory stays bounded.

    Never builds the full query x corpus matrix: at most ``query_chunk x doc_chunk`` scores
    (64 MB at the defaults) exist at once, so a 1M x 384 corpus searches in bounded memory.
    Returns ``(scores, indices)``, each ``(n_queries, min(k, n_docs))``, best first.

    >>> s, i = top_k(np.eye(3, dtype="float32"), np.eye(3, dtype="float32"), k=1)
    >>> i.ravel().tolist()
    [0, 1, 2]
    """
    n_q, n_d = len(query_emb), len(doc_emb)
    k = min(k, n_d)
    if n_q == 0 or k <= 0:
        return np.zeros((n_q, 0), np.float32), np.zeros((n_q, 0), np.int64)
    out_s = np.empty((n_q, k), np.float32)
    out_i = np.empty((n_q, k), np.int64)
    for qs in range(0, n_q, query_chunk):
        q = query_emb[qs:qs + query_chunk]
        best_s = np.full((len(q), 0), -np.inf, np.float32)
        best_i = np.zeros((len(q), 0), np.int64)
        for ds in range(0, n_d, doc_chunk):
            scores = q @ doc_emb[ds:ds + doc_chunk].T
            kk = min(k, scores.shape[1])
            idx = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < scores.shape[1] else \
                np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
            cand_s = np.concatenate([best_s, np.take_along_axis(scores, idx, 1)], axis=1)
            cand_i = np.concatenate([best_i, idx + ds], axis=1)
            if cand_s.shape[1] > k:
                keep = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
                cand_s, cand_i = np.take_along_axis(cand_s, keep, 1), np.take_along_axis(cand_i, keep, 1)
            best_s, best_i = cand_s, cand_i
        order = np.argsort(-best_s, axis=1, kind="stable")
        out_s[qs:qs + len(q)] = np.take_along_axis(best_s, order, 1)
        out_i[qs:qs + len(q)] = np.take_along_axis(best_i, order, 1)
    return out_s, out_i


def _to_run(query_ids: Sequence[str], doc_ids: Sequence[str], scores: np.ndarray, idx: np.ndarray) -> Run:
    return {q: {doc_ids[j]: float(s) for s, j in zip(srow, irow)} for q, srow, irow in zip(query_ids, scores, idx)}


class DenseIndex:
    """Exact dense search over normalized embeddings (cosine similarity).

    >>> index = DenseIndex.build(model, ds.corpus)           # doctest: +SKIP
    >>> run = index.search(queries, k=100)                   # doctest: +SKIP
    """

    def __init__(self, model: "SentenceTransformer", doc_ids: Sequence[str], embeddings: np.ndarray):
        if len(doc_ids) != len(embeddings):
            raise KitError(f"DenseIndex: {len(doc_ids)} doc ids but {len(embeddings)} embeddings")
        self.model, self.doc_ids, self.embeddings = model, list(doc_ids), np.ascontiguousarray(embeddings, np.float32)

    @classmethod
    def build(cls, model: "SentenceTransformer", corpus: Corpus, *, batch_size: int = 64,
              show_progress_bar: bool | None = None,
              encoder: Callable[[Sequence[str]], np.ndarray] | None = None) -> "DenseIndex":
        """Encode every passage (``"title. text"``) of ``corpus``.

        ``encoder(texts)`` replaces :func:`encode` (e.g. :func:`kit.cache.cached_encode` bound to the
        model, which is what :func:`kit.cache.cached_index` does so notebooks never re-encode a corpus).
        """
        ids = list(corpus)
        if not ids:
            raise KitError("DenseIndex.build: the corpus is empty")
        texts = [doc_text(corpus[d]) for d in ids]
        if encoder is not None:
            return cls(model, ids, encoder(texts))
        return cls(model, ids, encode(model, texts, batch_size=batch_size, show_progress_bar=show_progress_bar))

    def encode_queries(self, queries: Queries, batch_size: int = 64) -> np.ndarray:
        return encode(self.model, list(queries.values()), batch_size=batch_size)

    def search(self, queries: Queries, k: int = 100, *, query_embeddings: np.ndarray | None = None) -> Run:
        """Top-``k`` passages for each query, as a run."""
        if not queries:
            raise KitError("search: no queries (empty input)")
        q_emb = self.encode_queries(queries) if query_embeddings is None else query_embeddings
        scores, idx = self._top_k(q_emb, k)
        return _to_run(list(queries), self.doc_ids, scores, idx)

    def _top_k(self, q_emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return top_k(q_emb, self.embeddings, k)


class FaissIndex(DenseIndex):
    """The same interface backed by a FAISS inner-product index (extra ``faiss``: ``pip install kit[faiss]``).

    ``IndexFlatIP`` is exact; pass any FAISS ``index`` (e.g. HNSW) for approximate search at scale.

    >>> index = FaissIndex.build(model, ds.corpus)           # doctest: +SKIP
    """

    def __init__(self, model: "SentenceTransformer", doc_ids: Sequence[str], embeddings: np.ndarray, index=None):
        super().__init__(model, doc_ids, embeddings)
        try:
            import faiss
        except ImportError as err:
            raise KitError("FaissIndex needs faiss: pip install 'kit[faiss]' (faiss-cpu)") from err
        self.index = index if index is not None else faiss.IndexFlatIP(self.embeddings.shape[1])
        if self.index.ntotal == 0:
            self.index.add(self.embeddings)

    def _top_k(self, q_emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, idx = self.index.search(np.ascontiguousarray(q_emb, np.float32), min(k, len(self.doc_ids)))
        return scores, idx


class BM25Index:
    """Lexical BM25 (``bm25s``) with English stop words and Snowball stemming.

    >>> bm25 = BM25Index.build(ds.corpus)                    # doctest: +SKIP
    >>> run = bm25.search(queries, k=100)                    # doctest: +SKIP
    """

    def __init__(self, doc_ids: Sequence[str], retriever, stemmer):
        self.doc_ids, self.retriever, self.stemmer = list(doc_ids), retriever, stemmer

    @classmethod
    def build(cls, corpus: Corpus, *, k1: float = 1.5, b: float = 0.75) -> "BM25Index":
        import bm25s
        import Stemmer

        ids = list(corpus)
        if not ids:
            raise KitError("BM25Index.build: the corpus is empty")
        stemmer = Stemmer.Stemmer("english")
        tokens = bm25s.tokenize([doc_text(corpus[d]) for d in ids], stopwords="en", stemmer=stemmer,
                                show_progress=False)
        retriever = bm25s.BM25(k1=k1, b=b)
        retriever.index(tokens, show_progress=False)
        return cls(ids, retriever, stemmer)

    def search(self, queries: Queries, k: int = 100) -> Run:
        import bm25s

        if not queries:
            raise KitError("search: no queries (empty input)")
        k = min(k, len(self.doc_ids))
        tokens = bm25s.tokenize(list(queries.values()), stopwords="en", stemmer=self.stemmer, show_progress=False,
                                return_ids=False)
        vocab = self.retriever.vocab_dict
        tokens = [[t for t in q if t in vocab] for q in tokens]
        # A query with no known term matches nothing: it gets an empty result (it scores 0 when evaluated),
        # the same in every process, instead of a list scored against some stand-in term.
        run: Run = {q: {} for q in queries}
        known = [i for i, t in enumerate(tokens) if t]
        if known:
            qids = list(queries)
            idx, scores = self.retriever.retrieve([tokens[i] for i in known], k=k, show_progress=False)
            for row, i in enumerate(known):
                run[qids[i]] = {self.doc_ids[j]: float(sc) for sc, j in zip(scores[row], idx[row]) if sc > 0}
        return run


def rrf(runs: Iterable[Run], k: int = 60, depth: int | None = None) -> Run:
    """Reciprocal-rank fusion: ``score(d) = sum over runs of 1 / (k + rank(d))``.

    >>> rrf([{"q": {"a": 2.0, "b": 1.0}}, {"q": {"b": 9.0, "c": 1.0}}])["q"]
    {'b': 0.03252247488101534, 'a': 0.01639344262295082, 'c': 0.016129032258064516}
    """
    fused: dict[str, dict[str, float]] = {}
    for run in runs:
        for q, docs in run.items():
            ranked = sorted(docs.items(), key=lambda x: -x[1])[:depth]
            acc = fused.setdefault(q, {})
            for rank, (d, _) in enumerate(ranked, 1):
                acc[d] = acc.get(d, 0.0) + 1.0 / (k + rank)
    return {q: dict(sorted(docs.items(), key=lambda x: -x[1])) for q, docs in fused.items()}


def rerank(reranker: "CrossEncoder", corpus: Corpus, queries: Queries, run: Run, depth: int = 100, *,
           batch_size: int = 32, show_progress_bar: bool | None = None) -> Run:
    """Re-score the top ``depth`` candidates of each query with a cross-encoder.

    Passages below ``depth`` keep their order, ranked after the re-scored ones, so recall at
    deeper cut-offs is unchanged.

    >>> reranked = rerank(reranker, ds.corpus, queries, run, depth=50)   # doctest: +SKIP
    """
    pairs, owners = [], []
    for q, docs in run.items():
        if q not in queries:
            raise KitError(f"rerank: query id {q!r} is in the run but not in queries")
        for d, _ in sorted(docs.items(), key=lambda x: -x[1])[:depth]:
            pairs.append((queries[q], doc_text(corpus[d])))
            owners.append((q, d))
    if not pairs:
        return {q: {} for q in run}
    scores = reranker.predict(pairs, batch_size=batch_size, convert_to_numpy=True,
                              show_progress_bar=_progress(show_progress_bar, len(pairs)))
    out: Run = {q: {} for q in run}
    for (q, d), s in zip(owners, np.asarray(scores, dtype=np.float64).reshape(len(pairs), -1)[:, -1]):
        out[q][d] = float(s)
    for q, docs in run.items():
        rest = sorted(docs.items(), key=lambda x: -x[1])[depth:]
        floor = min(out[q].values(), default=0.0)
        for i, (d, _) in enumerate(rest, 1):
            out[q][d] = floor - i
        out[q] = dict(sorted(out[q].items(), key=lambda x: -x[1]))
    return out


def top_docs(run: Run, query_id: str, n: int = 5) -> list[tuple[str, float]]:
    """The ``n`` best (doc id, score) pairs of one query, best first."""
    return sorted(run.get(query_id, {}).items(), key=lambda x: -x[1])[:n]


def search_dense(model: "SentenceTransformer", corpus: Corpus, queries: Queries, k: int = 100) -> Run:
    """Build a :class:`DenseIndex` and search it in one call.

    >>> run = search_dense(model, ds.corpus, queries)        # doctest: +SKIP
    """
    return DenseIndex.build(model, corpus).search(queries, k=k)


def search_bm25(corpus: Corpus, queries: Queries, k: int = 100) -> Run:
    """Build a :class:`BM25Index` and search it in one call."""
    return BM25Index.build(corpus).search(queries, k=k)



def top_run(run: Run, depth: int) -> Run:
    """Each query's ``depth`` best passages (a shorter run: a re-ranker's candidate lists).

    >>> top_run({"q": {"a": 1.0, "b": 3.0, "c": 2.0}}, 2)
    {'q': {'b': 3.0, 'c': 2.0}}
    """
    return {q: dict(sorted(docs.items(), key=lambda x: (-x[1], x[0]))[:depth]) for q, docs in run.items()}


def with_tail(head: Run, first: Run) -> Run:
    """Each query's ``head`` passages in their order, then the rest of ``first``'s below them in its order.

    A re-ranked (or mixed) top ``d`` compared with the whole first-stage list needs the passages below
    ``d`` too, or a shallow depth loses ranks the first stage had. Taught in ``notebooks/05_cross_encoder.ipynb``.

    >>> with_tail({"q": {"b": 2.0, "a": 1.0}}, {"q": {"a": 0.9, "b": 0.8, "c": 0.7}})
    {'q': {'b': 2.0, 'a': 1.0, 'c': 0.0}}
    """
    out: Run = {}
    for q, docs in first.items():
        top = dict(sorted(head.get(q, {}).items(), key=lambda x: (-x[1], x[0])))
        floor = min(top.values(), default=0.0)
        rest = [d for d, _ in sorted(docs.items(), key=lambda x: (-x[1], x[0])) if d not in top]
        out[q] = {**top, **{d: floor - i for i, d in enumerate(rest, 1)}}
    return out


# --------------------------------------------------------------------------- hard negatives

def hard_negatives(run: Run, qrels: Qrels, *, num_negatives: int = 1, range_min: int = 0, range_max: int = 50,
                   relative_margin: float | None = 0.05, max_score: float | None = None) -> dict[str, list[str]]:
    """Hard negatives read off a run: high-ranked passages that are **not judged** relevant.

    The rules of :func:`sentence_transformers.util.mine_hard_negatives` (``sampling_strategy="top"``),
    applied to a run you already have, so that trying another guard costs nothing:

    - only ranks ``range_min`` .. ``range_max`` of the run are candidates;
    - a passage judged relevant at any grade is never a negative;
    - ``relative_margin``: skip candidates scoring above ``(1 - relative_margin) x`` the best judged
      passage's score (near-ties with the answer are often relevant passages nobody judged: false negatives);
    - ``max_score``: skip candidates scoring above it.

    Taught in ``notebooks/04_bi_encoder.ipynb`` (the recipe) and ``03_augmentation.ipynb`` (the guards).

    >>> hard_negatives({"q": {"x": 0.99, "y": 0.8, "a": 1.0, "z": 0.5}}, {"q": {"a": 2}}, num_negatives=2)
    {'q': ['y', 'z']}
    """
    if num_negatives < 1:
        raise KitError(f"hard_negatives: num_negatives must be at least 1, got {num_negatives}")
    out: dict[str, list[str]] = {}
    for q, judged in qrels.items():
        ranked = sorted(run.get(q, {}).items(), key=lambda x: (-x[1], x[0]))
        relevant = {d for d, g in judged.items() if g > 0}
        pos = [s for d, s in ranked if d in relevant]
        ceiling = pos[0] * (1 - relative_margin) if pos and relative_margin is not None else None
        picked = []
        for d, s in ranked[range_min:range_max]:
            if d in relevant or (ceiling is not None and s > ceiling) or (max_score is not None and s > max_score):
                continue
            picked.append(d)
            if len(picked) == num_negatives:
                break
        out[q] = picked
    return out


def mine_negatives(model: "SentenceTransformer | DenseIndex", ds: "BeirDataset", split: str = "train", *,
                   num_negatives: int = 3, range_min: int = 0, range_max: int = 50,
                   relative_margin: float | None = 0.05, batch_size: int = 64) -> dict[str, list[str]]:
    """Hard negatives per query of ``split``, mined with a bi-encoder (or an index already built with one).

    Encodes the corpus (unless given a :class:`DenseIndex`), retrieves ``range_max`` passages per
    query and applies :func:`hard_negatives`. Taught in ``notebooks/04_bi_encoder.ipynb``.

    >>> negatives = mine_negatives(load_bi_encoder(), ds, "train", num_negatives=2)    # doctest: +SKIP
    >>> negatives["q0002"]                                                            # doctest: +SKIP
    ['meal-04', 'meal-11']
    """
    queries, qrels = ds.split(split)
    index = model if isinstance(model, DenseIndex) else DenseIndex.build(model, ds.corpus, batch_size=batch_size)
    run = index.search(queries, k=range_max)
    return hard_negatives(run, qrels, num_negatives=num_negatives, range_min=range_min, range_max=range_max,
                          relative_margin=relative_margin)


# --------------------------------------------------------------------------- hybrid retrieval

def normalize_scores(run: Run) -> Run:
    """Min-max normalize each query's scores to [0, 1] (1 = its best passage), so runs on different
    scales (cosine, BM25) can be added. A query whose scores are all equal gets 1 for each.

    >>> normalize_scores({"q": {"a": 3.0, "b": 1.0, "c": 2.0}})
    {'q': {'a': 1.0, 'b': 0.0, 'c': 0.5}}
    """
    out: Run = {}
    for q, docs in run.items():
        if not docs:
            out[q] = {}
            continue
        lo, hi = min(docs.values()), max(docs.values())
        out[q] = {d: (s - lo) / (hi - lo) if hi > lo else 1.0 for d, s in docs.items()}
    return out


def weighted_fusion(dense: Run, lexical: Run, weight: float) -> Run:
    """``weight x`` normalized lexical score ``+ (1 - weight) x`` normalized dense score, per passage.

    A passage missing from one run gets 0 from it. ``weight=0`` is the dense run's order, ``1`` the
    lexical run's. Taught in ``notebooks/04_bi_encoder.ipynb``.

    >>> weighted_fusion({"q": {"a": 0.9, "b": 0.1}}, {"q": {"b": 5.0, "c": 1.0}}, 0.5)["q"]
    {'a': 0.5, 'b': 0.5, 'c': 0.0}
    """
    if not 0 <= weight <= 1:
        raise KitError(f"weighted_fusion: weight must be in [0, 1], got {weight}")
    nd, nl = normalize_scores(dense), normalize_scores(lexical)
    out: Run = {}
    for q in dict.fromkeys([*nd, *nl]):
        a, b = nd.get(q, {}), nl.get(q, {})
        fused = {d: (1 - weight) * a.get(d, 0.0) + weight * b.get(d, 0.0) for d in dict.fromkeys([*a, *b])}
        out[q] = dict(sorted(fused.items(), key=lambda x: (-x[1], x[0])))
    return out


@dataclass(frozen=True)
class FirstStage:
    """One way to combine a dense and a BM25 run: ``dense``, ``bm25``, ``rrf`` or ``weighted`` (with
    the BM25 share ``weight``). ``combine(dense, bm25)`` returns the run.

    >>> FirstStage("weighted", 0.3).name
    'weighted(bm25=0.3)'
    """

    kind: str
    weight: float | None = None

    @property
    def name(self) -> str:
        return f"weighted(bm25={self.weight:g})" if self.kind == "weighted" else self.kind

    @property
    def needs_bm25(self) -> bool:
        return self.kind != "dense"

    @property
    def needs_dense(self) -> bool:
        return self.kind != "bm25"

    def combine(self, dense: Run | None, bm25: Run | None) -> Run:
        if self.needs_dense and dense is None or self.needs_bm25 and bm25 is None:
            raise KitError(f"first stage {self.name} needs {'a dense and a BM25' if self.kind in ('rrf', 'weighted') else 'a ' + self.kind} run")
        if self.kind == "dense":
            return dense
        if self.kind == "bm25":
            return bm25
        if self.kind == "rrf":
            return rrf([dense, bm25])
        if self.kind == "weighted":
            return weighted_fusion(dense, bm25, float(self.weight))
        raise KitError(f"unknown first stage {self.kind!r} (dense, bm25, rrf, weighted)")


FIRST_STAGES: tuple[FirstStage, ...] = (FirstStage("dense"), FirstStage("bm25"), FirstStage("rrf"),
                                        *(FirstStage("weighted", w) for w in (0.1, 0.2, 0.3, 0.5, 0.7)))


@dataclass
class FirstStageChoice:
    """The first stage :func:`choose_first_stage` kept, every candidate's dev score, and why."""

    chosen: FirstStage
    dev_scores: dict[str, float]
    measure: str
    reason: str
    dev_split: str = "dev"

    def combine(self, dense: Run | None, bm25: Run | None) -> Run:
        return self.chosen.combine(dense, bm25)


def choose_first_stage(dense: Run, bm25: Run, qrels: Qrels, *, measure: str = "nDCG@10",
                       candidates: Sequence[FirstStage] = FIRST_STAGES, min_gain: float = 0.005,
                       dev_split: str = "dev") -> FirstStageChoice:
    """Score dense, BM25 and their fusions on the **dev** queries and keep the best.

    Whether BM25 helps is a property of the data (it helps where queries reuse the passages' rare
    words; it hurts where they paraphrase), so it is decided on dev, never on test. A combination is
    kept only if it beats plain dense retrieval by more than ``min_gain`` (dense is cheaper to serve
    and has no weight to tune). Taught in ``notebooks/04_bi_encoder.ipynb``; used by
    ``python -m kit evaluate`` and the RAG pipeline of ``06_rag.ipynb``.

    >>> dense = {"q": {"a": 0.9, "b": 0.8}}; bm25 = {"q": {"b": 3.0, "a": 1.0}}
    >>> choice = choose_first_stage(dense, bm25, {"q": {"b": 1}})
    >>> choice.chosen.name, choice.dev_scores["dense"] < choice.dev_scores["bm25"]
    ('bm25', True)
    """
    from .evaluate import evaluate

    scores = {c.name: evaluate(c.combine(dense, bm25), qrels, [measure])[measure] for c in candidates}
    by_name = {c.name: c for c in candidates}
    best = max(candidates, key=lambda c: (scores[c.name], c.kind == "dense"))
    base = scores.get("dense")
    if best.kind != "dense" and base is not None and scores[best.name] - base <= min_gain:
        reason = (f"{best.name} scores {scores[best.name]:.4f} on {dev_split}, within {min_gain} of dense "
                  f"({base:.4f}): dense is kept (simpler, no weight to tune)")
        best = by_name["dense"]
    elif best.kind == "dense":
        reason = f"dense scores best on {dev_split} ({scores['dense']:.4f} {measure}); no fusion beats it"
    else:
        gap = f", +{scores[best.name] - base:.4f} over dense" if base is not None else ""
        reason = f"{best.name} scores best on {dev_split} ({scores[best.name]:.4f} {measure}{gap})"
    return FirstStageChoice(best, scores, measure, reason, dev_split)


# --------------------------------------------------------------------------- re-ranker + retriever

def _zscores(values: np.ndarray) -> np.ndarray:
    sd = values.std()
    return (values - values.mean()) / sd if sd > 0 else np.zeros_like(values)


def mix_scores(first: Run, reranked: Run, weight: float) -> Run:
    """``weight x`` the re-ranker's score ``+ (1 - weight) x`` the first stage's, each standardized per query.

    Only passages both runs scored are mixed (the re-ranked candidates); ``weight=1`` is the re-ranker
    alone, ``0`` the first stage alone. Choosing ``weight`` on dev (:func:`choose_mix_weight`) keeps the
    two-stage system from being worse than the retriever on dev. Taught in ``notebooks/05_cross_encoder.ipynb``.

    >>> mix_scores({"q": {"a": 0.9, "b": 0.5}}, {"q": {"a": -1.0, "b": 2.0}}, 0.5)["q"]
    {'a': 0.0, 'b': 0.0}
    """
    out: Run = {}
    for q, docs in reranked.items():
        ids = [d for d in docs if d in first.get(q, {})]
        if not ids:
            out[q] = {}
            continue
        f = _zscores(np.array([first[q][d] for d in ids], float))
        r = _zscores(np.array([docs[d] for d in ids], float))
        mixed = weight * r + (1 - weight) * f
        out[q] = dict(sorted(((d, round(float(m), 12)) for d, m in zip(ids, mixed)), key=lambda x: (-x[1], x[0])))
    return out


def choose_mix_weight(first: Run, reranked: Run, qrels: Qrels, *, measure: str = "nDCG@10",
                      weights: Sequence[float] = tuple(np.round(np.linspace(0, 1, 11), 2))) -> tuple[float, dict[float, float]]:
    """The weight of :func:`mix_scores` that scores best on the given (dev) queries, and every weight's score.

    Ties go to the larger weight (more re-ranker). Never call it with test judgments.

    >>> w, grid = choose_mix_weight({"q": {"a": 0.9, "b": 0.5}}, {"q": {"a": 0.0, "b": 1.0}}, {"q": {"b": 1}})
    >>> w, grid[0.0] < grid[1.0]
    (1.0, True)
    """
    from .evaluate import evaluate

    grid = {float(w): evaluate(mix_scores(first, reranked, float(w)), qrels, [measure])[measure] for w in weights}
    best = max(grid, key=lambda w: (round(grid[w], 10), w))
    return best, grid
