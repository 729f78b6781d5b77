"""Retrieval: exact dense search, BM25, reciprocal-rank fusion and cross-encoder re-ranking.

Every retriever returns a *run*: ``{query_id: {doc_id: score}}``, the dict form that
ir-measures reads directly (see :mod:`kit.evaluate`). Taught in ``notebooks/01_representations.ipynb``
(dense), ``05`` (re-ranking) and ``06`` (RAG).

>>> from kit.retrieval import DenseIndex
>>> index = DenseIndex.build(model, ds.corpus)               # doctest: +SKIP
>>> run = index.search(queries, k=100)                       # doctest: +SKIP
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from .data import Corpus, Queries, doc_text
from .errors import KitError

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder, SentenceTransformer

Run = dict[str, dict[str, float]]  # query id -> doc id -> score (higher is better)


def _progress(show: bool | None, n: int) -> bool:
    return bool(show) if show is not None else n >= 2000


def encode(model: "SentenceTransformer", texts: Sequence[str], *, batch_size: int = 64,
           show_progress_bar: bool | None = None, prompt_name: str | None = None) -> np.ndarray:
    """Encode ``texts`` into L2-normalized float32 vectors (so dot product = cosine similarity).

    >>> emb = encode(model, ["Taxis are fine.", "Minibar is personal."])   # doctest: +SKIP
    >>> emb.shape, float((emb[0] ** 2).sum())                               # doctest: +SKIP
    ((2, 384), 1.0)
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
              show_progress_bar: bool | None = None, cache_tag: str | None = None) -> "DenseIndex":
        """Encode every passage (``"title. text"``) of ``corpus``.

        With ``cache_tag`` (a name for the model's weights) the embeddings are cached on disk
        (:func:`kit.cache.cached_encode`), so notebooks do not re-encode the same corpus.
        """
        ids = list(corpus)
        if not ids:
            raise KitError("DenseIndex.build: the corpus is empty")
        texts = [doc_text(corpus[d]) for d in ids]
        if cache_tag is not None:
            from .cache import cached_encode

            return cls(model, ids, cached_encode(model, texts, cache_tag, batch_size=batch_size))
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
        # A query with no known terms must still get a (zero-score) result list, not an error.
        vocab = self.retriever.vocab_dict
        tokens = [[t for t in q if t in vocab] or [next(iter(vocab))] for q in tokens]
        idx, scores = self.retriever.retrieve(tokens, k=k, show_progress=False)
        return _to_run(list(queries), self.doc_ids, scores, idx)


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

