"""Diagnostics the notebooks use to look inside a model and a run: pair similarities, topic structure,
2-D maps, where a retriever fails, duplicates in batches, where metrics disagree.

These compute (they encode, fit, count); :mod:`kit.evaluate` only scores, :mod:`kit.plots` only draws.
Taught in ``notebooks/01_representations.ipynb``, ``02_losses.ipynb`` and ``04_bi_encoder.ipynb``.

>>> from kit.analysis import top_unjudged
>>> top_unjudged({"q1": {"a": 0.9, "b": 0.8}}, {"q1": {"b": 2}})
{'q1': ['a']}
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from .data import Qrels, Run
from .errors import KitError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .data import BeirDataset
    from .retrieval import DenseIndex


# --------------------------------------------------------------------------- the same model, other tasks
# Notebook 02 scores one model three ways (retrieval, binary classification, similarity) and
# notebook 01 measures the latent space itself (topics: probe, clustering, silhouette).

def _pair_rows(ds, qrels: Qrels, negatives: dict[str, list[str]] | None, seed: int) -> pd.DataFrame:
    """Judged (query, passage, grade) rows plus one negative per query (given, else a seeded random draw)."""
    import random

    rng = random.Random(seed)
    doc_ids = list(ds.corpus)
    rows = []
    for q, docs in qrels.items():
        for d, g in docs.items():
            rows.append((q, d, int(g)))
        pool = [n for n in (negatives or {}).get(q, []) if n not in docs]
        neg = pool[0] if pool else rng.choice([d for d in doc_ids if d not in docs])
        rows.append((q, neg, 0))
    return pd.DataFrame(rows, columns=["query_id", "doc_id", "grade"])


def pair_similarities(model, ds, split: str = "test", *, negatives: dict[str, list[str]] | None = None,
                      seed: int = 42, batch_size: int = 64) -> pd.DataFrame:
    """Cosine similarity of judged (query, passage) pairs plus one negative per query.

    Columns: ``query_id, doc_id, grade`` (2 answers, 1 related, 0 negative) and ``cosine``.
    Negatives come from ``negatives`` (e.g. mined hard negatives) or are drawn at random (seeded).

    >>> pairs = pair_similarities(model, ds, "test")           # doctest: +SKIP
    >>> pairs.groupby("grade").cosine.mean()                   # doctest: +SKIP
    """
    from .data import doc_text
    from .retrieval import encode

    queries, qrels = ds.split(split)
    frame = _pair_rows(ds, qrels, negatives, seed)
    q_ids, d_ids = sorted(set(frame.query_id)), sorted(set(frame.doc_id))
    q_emb = dict(zip(q_ids, encode(model, [queries[q] for q in q_ids], batch_size=batch_size)))
    d_emb = dict(zip(d_ids, encode(model, [doc_text(ds.corpus[d]) for d in d_ids], batch_size=batch_size)))
    frame["cosine"] = [float(q_emb[q] @ d_emb[d]) for q, d in zip(frame.query_id, frame.doc_id)]
    return frame


def topic_structure(embeddings: np.ndarray, topics: Sequence[str], *, seed: int = 42) -> dict[str, float]:
    """How well the latent space separates topics, three ways.

    - ``silhouette``: cosine silhouette of the topic labels (-1..1, higher = tighter, better separated).
    - ``probe_accuracy``: a linear probe (logistic regression, 5-fold cross-validation) predicting topic.
    - ``cluster_ami``: adjusted mutual information between k-means clusters (k = number of topics) and topics.

    >>> topic_structure(emb, [ds.corpus[d]["topic"] for d in ds.corpus])    # doctest: +SKIP
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # scikit-learn next to PyTorch on a small CPU: one thread is much faster
        return _topic_structure(np.asarray(embeddings), np.asarray(topics), seed)


def _topic_structure(embeddings: np.ndarray, y: np.ndarray, seed: int) -> dict[str, float]:
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import adjusted_mutual_info_score, silhouette_score
    from sklearn.model_selection import cross_val_score

    k = len(set(y.tolist()))
    if k < 2:
        raise KitError("topic_structure: need at least two topics")
    probe = LogisticRegression(max_iter=2000, C=10.0)
    folds = min(5, int(min(np.unique(y, return_counts=True)[1])))
    clusters = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(embeddings)
    return {
        "silhouette": float(silhouette_score(embeddings, y, metric="cosine")),
        "probe_accuracy": float(cross_val_score(probe, embeddings, y, cv=max(2, folds)).mean()),
        "cluster_ami": float(adjusted_mutual_info_score(y, clusters)),
    }


def project_2d(embeddings: np.ndarray, method: str = "pca", seed: int = 42) -> np.ndarray:
    """2-D coordinates of embeddings with PCA or t-SNE (scikit-learn, on one thread: next to PyTorch's
    thread pool on a small CPU, scikit-learn's own pool can make t-SNE 20-100x slower).

    Fit it on the rows of *every* model you want to compare at once (stack them), so their maps share
    one set of axes. Taught in ``notebooks/01_representations.ipynb``.

    >>> project_2d(np.eye(4, dtype="float32"), "pca").shape
    (4, 2)
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _project_2d(np.asarray(embeddings), method, seed)


def _project_2d(embeddings: np.ndarray, method: str, seed: int) -> np.ndarray:
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(embeddings)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, len(embeddings) // 20), len(embeddings) - 1))
        return TSNE(n_components=2, metric="cosine", init="pca", perplexity=perplexity,
                    random_state=seed).fit_transform(embeddings)
    raise KitError(f"project_2d: method must be 'pca' or 'tsne', got {method!r}")


# --------------------------------------------------------------------------- looking inside a run
# Helpers of notebooks 01 and 02: find where a retriever fails, reuse one set of embeddings for
# retrieval and pair scores, and see where metrics disagree about which model is best.

def top_unjudged(run: Run, qrels: Qrels, n: int = 1) -> dict[str, list[str]]:
    """The ``n`` highest-scored passages of each judged query that are not judged relevant (grade <= 0).

    These are the retriever's own confusables: hard negatives for :func:`pair_similarities` or
    :func:`kit.data.triplets`. Taught in ``notebooks/01_representations.ipynb``.

    >>> top_unjudged({"q1": {"a": 0.9, "b": 0.8, "c": 0.1}}, {"q1": {"b": 2}}, n=2)
    {'q1': ['a', 'c']}
    """
    if n < 1:
        raise KitError(f"top_unjudged: n must be at least 1, got {n}")
    out: dict[str, list[str]] = {}
    for q, judged in qrels.items():
        ranked = sorted(run.get(q, {}).items(), key=lambda x: (-x[1], x[0]))
        out[q] = [d for d, _ in ranked if judged.get(d, 0) <= 0][:n]
    return out


def ranking_failures(run: Run, qrels: Qrels, *, prefer: Sequence[str] = ()) -> pd.DataFrame:
    """Queries whose best-graded passage (the answer) is not ranked first, with both scores.

    One row per failing query (index ``query_id``): ``top_doc``, ``top_grade`` (0 = not judged),
    ``top_score``, ``answer_doc`` (the best-ranked passage with the query's top grade),
    ``answer_score``, ``answer_rank`` (1-based; 0 when the run does not contain it) and
    ``margin`` = top_score - answer_score. Queries named in ``prefer`` (e.g. the running example)
    come first when they fail, the rest by decreasing margin. Taught in ``notebooks/01_representations.ipynb``.

    >>> f = ranking_failures({"q1": {"x": 0.9, "a": 0.7}, "q2": {"b": 0.5}}, {"q1": {"a": 2}, "q2": {"b": 2}})
    >>> f[["top_doc", "answer_doc", "answer_rank"]].to_dict("index")
    {'q1': {'top_doc': 'x', 'answer_doc': 'a', 'answer_rank': 2}}
    """
    columns = ["top_doc", "top_grade", "top_score", "answer_doc", "answer_score", "answer_rank", "margin"]
    rows = {}
    for q, judged in qrels.items():
        best = max(judged.values(), default=0)
        if best <= 0:
            continue
        ranked = sorted(run.get(q, {}).items(), key=lambda x: (-x[1], x[0]))
        if not ranked or judged.get(ranked[0][0], 0) == best:
            continue
        top_doc, top_score = ranked[0]
        hits = [(r, d, s) for r, (d, s) in enumerate(ranked, 1) if judged.get(d, 0) == best]
        rank, doc, score = hits[0] if hits else (0, max(judged, key=judged.get), float("nan"))
        rows[q] = (top_doc, int(judged.get(top_doc, 0)), float(top_score), doc, float(score), rank,
                   float(top_score - score))
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    frame.index.name = "query_id"
    frame["answer_rank"] = frame["answer_rank"].astype(int)
    first = [q for q in prefer if q in frame.index]
    rest = frame.drop(index=first).sort_values("margin", ascending=False, kind="stable")
    return pd.concat([frame.loc[first], rest])


def unjudged_tops(runs: dict[str, Run], qrels: Qrels) -> tuple[dict[str, int], pd.DataFrame]:
    """Where the judgments cannot tell: queries whose top passage in each run is not judged at all.

    An unjudged passage scores as wrong, but judgments are rarely complete: it may answer the query
    as well as the judged one. When two models (a retriever and its re-ranker) put the *same* unjudged
    passage first, the metric cannot credit the re-ranker for agreeing with the retriever, nor tell
    whether moving it down would be an improvement. Returns the counts (``queries``, ``top unjudged: NAME`` for each
    run, ``same unjudged top in all``) and one row per query of the last kind (index ``query_id``:
    ``top_doc``, ``answer_doc``, the judged answer ranked best in the first run). Taught in
    ``notebooks/05_cross_encoder.ipynb``.

    >>> counts, shared = unjudged_tops({"a": {"q1": {"x": .9, "d": .5}, "q2": {"d": .9}},
    ...                                 "b": {"q1": {"x": .8, "d": .7}, "q2": {"y": .9, "d": .1}}},
    ...                                {"q1": {"d": 2}, "q2": {"d": 2}})
    >>> counts, shared.top_doc.to_dict()
    ({'queries': 2, 'top unjudged: a': 1, 'top unjudged: b': 2, 'same unjudged top in all': 1}, {'q1': 'x'})
    """
    if not runs:
        raise KitError("unjudged_tops: give at least one run")
    tops: dict[str, dict[str, str]] = {}
    for name, run in runs.items():
        tops[name] = {}
        for q, judged in qrels.items():
            ranked = sorted(run.get(q, {}).items(), key=lambda x: (-x[1], x[0]))
            if ranked and ranked[0][0] not in judged:
                tops[name][q] = ranked[0][0]
    first = next(iter(runs))
    shared = [q for q, d in tops[first].items() if all(tops[n].get(q) == d for n in runs)]
    failures = ranking_failures(runs[first], {q: qrels[q] for q in shared})
    counts = {"queries": len(qrels), **{f"top unjudged: {n}": len(t) for n, t in tops.items()},
              "same unjudged top in all": len(shared)}
    frame = failures[["top_doc", "answer_doc"]].loc[sorted(shared)] if shared else \
        pd.DataFrame(columns=["top_doc", "answer_doc"])
    frame.index.name = "query_id"
    return counts, frame


def pool_unjudged(runs: dict[str, Run], qrels: Qrels, depth: int = 5) -> dict[str, list[str]]:
    """The pool to judge: for each judged query, the passages that any of ``runs`` ranks in its top
    ``depth`` and that ``qrels`` does not judge (sorted ids, no run named).

    This is how test collections are completed (pooling): grade the union of the compared systems'
    top results, blind to which system found each, so no system is favoured by the judgments it is
    scored against. Taught in ``notebooks/05_cross_encoder.ipynb``.

    >>> pool_unjudged({"a": {"q": {"x": .9, "d": .8, "z": .1}}, "b": {"q": {"y": .9, "x": .5}}}, {"q": {"d": 2}}, depth=2)
    {'q': ['x', 'y']}
    """
    if depth < 1:
        raise KitError(f"pool_unjudged: depth must be at least 1, got {depth}")
    pool: dict[str, set[str]] = {}
    for run in runs.values():
        for q, judged in qrels.items():
            ranked = sorted(run.get(q, {}).items(), key=lambda x: (-x[1], x[0]))[:depth]
            pool.setdefault(q, set()).update(d for d, _ in ranked if d not in judged)
    return {q: sorted(docs) for q, docs in sorted(pool.items()) if docs}


def pair_similarities_from_index(index: "DenseIndex", query_embeddings: np.ndarray, ds: "BeirDataset",
                                 split: str = "test", *, negatives: dict[str, list[str]] | None = None,
                                 seed: int = 42) -> pd.DataFrame:
    """:func:`pair_similarities` without encoding anything again: the same rows (same seed, same
    negatives), scored with the corpus embeddings already in ``index`` and ``query_embeddings``
    (one row per query of ``ds.split(split)``, in that order, as ``index.encode_queries`` returns them).

    Encoding the corpus is the slow part on a CPU; a notebook that has built the index for
    retrieval gets pair scores for free. Taught in ``notebooks/01_representations.ipynb`` and ``02``.

    >>> q_emb = index.encode_queries(queries)                                # doctest: +SKIP
    >>> pairs = pair_similarities_from_index(index, q_emb, ds, "test")      # doctest: +SKIP
    """
    queries, qrels = ds.split(split)
    if len(query_embeddings) != len(queries):
        raise KitError(f"pair_similarities_from_index: {len(query_embeddings)} query embeddings for "
                       f"{len(queries)} {split} queries")
    frame = _pair_rows(ds, qrels, negatives, seed)   # the same rows, in the same order, as pair_similarities
    q_row = {q: i for i, q in enumerate(queries)}
    d_row = {d: i for i, d in enumerate(index.doc_ids)}
    missing = sorted(set(frame.doc_id) - set(d_row))
    if missing:
        raise KitError(f"pair_similarities_from_index: {len(missing)} passage(s) not in the index, e.g. {missing[0]!r}")
    q_emb = np.asarray(query_embeddings, np.float32)[[q_row[q] for q in frame.query_id]]
    d_emb = index.embeddings[[d_row[d] for d in frame.doc_id]]
    frame["cosine"] = (q_emb * d_emb).sum(axis=1).astype(float)
    return frame


def pair_summary(pairs: pd.DataFrame) -> dict[str, float]:
    """Mean cosine of answers (grade 2), related passages (1) and negatives (0), and how often they separate.

    ``gap`` = answer - negative mean; ``answer_beats_negative`` = share of queries whose
    best-scored answer is closer to the query than its negative. ``pairs`` as returned by
    :func:`pair_similarities` (or :func:`pair_similarities_from_index`). Taught in ``notebooks/01_representations.ipynb``.

    >>> pairs = pd.DataFrame({"query_id": ["q1", "q1", "q2", "q2"], "grade": [2, 0, 2, 0],
    ...                       "cosine": [0.8, 0.5, 0.3, 0.4]})
    >>> pair_summary(pairs)
    {'answer': 0.55, 'related': nan, 'negative': 0.45, 'gap': 0.1, 'answer_beats_negative': 0.5}
    """
    means = pairs.groupby("grade").cosine.mean()
    answer, related, negative = (float(round(means.get(g, float("nan")), 6)) for g in (2, 1, 0))
    best = pairs[pairs.grade == 2].groupby("query_id").cosine.max()
    neg = pairs[pairs.grade == 0].groupby("query_id").cosine.max()
    both = best.index.intersection(neg.index)
    wins = float((best[both] > neg[both]).mean()) if len(both) else float("nan")
    return {"answer": answer, "related": related, "negative": negative,
            "gap": float(round(answer - negative, 6)), "answer_beats_negative": wins}


def duplicate_batch_rate(rows: Sequence[Sequence[str]], batch_size: int, *, trials: int = 200, seed: int = 42,
                         sampler: str = "random") -> float:
    """Share of batches that contain a repeated text when ``rows`` are cut into batches.

    ``sampler="random"``: shuffled and cut, as a plain random sampler does. With in-batch negatives
    (MultipleNegativesRankingLoss) a text that appears twice in a batch is a *false negative*: the
    loss pushes a query away from a passage that answers it. ``sampler="no_duplicates"``: the batches
    sentence-transformers' ``NoDuplicatesBatchSampler`` builds (``trials`` epochs of it). Texts are
    compared across all columns, as that sampler does. Taught in ``notebooks/02_losses.ipynb``.

    >>> duplicate_batch_rate([("q1", "a"), ("q2", "b"), ("q3", "c"), ("q4", "d")], batch_size=2)
    0.0
    >>> duplicate_batch_rate([("q1", "a"), ("q2", "a")], batch_size=2)
    1.0
    """
    if batch_size < 2:
        raise KitError(f"duplicate_batch_rate: batch_size must be at least 2, got {batch_size}")
    if len(rows) < 2:
        raise KitError("duplicate_batch_rate: need at least two rows")
    if sampler not in ("random", "no_duplicates"):
        raise KitError(f"duplicate_batch_rate: sampler must be 'random' or 'no_duplicates', got {sampler!r}")
    dirty = total = 0
    if sampler == "no_duplicates":
        from datasets import Dataset
        from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

        width = len(rows[0])
        data = Dataset.from_dict({f"c{i}": [r[i] for r in rows] for i in range(width)})
        for trial in range(min(trials, 20)):
            for batch in NoDuplicatesBatchSampler(data, batch_size=batch_size, drop_last=False, seed=seed + trial):
                texts = [t for i in batch for t in rows[i]]
                dirty += len(set(texts)) < len(texts)
                total += 1
        return dirty / total
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        order = rng.permutation(len(rows))
        for start in range(0, len(order), batch_size):
            texts = [t for i in order[start:start + batch_size] for t in rows[i]]
            dirty += len(set(texts)) < len(texts)
            total += 1
    return dirty / total


def rank_disagreements(table: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Pairs of models (rows of ``table``) that two metrics (columns) put in opposite order.

    One row per (model_a, model_b, metric_a, metric_b) where model_a scores higher than model_b on
    ``metric_a`` but lower on ``metric_b`` (ties are not disagreements). An empty table means every
    metric ranks the models the same way. Taught in ``notebooks/02_losses.ipynb``.

    >>> t = pd.DataFrame({"nDCG@10": [0.7, 0.6], "accuracy": [0.8, 0.9]}, index=["mnrl", "cosent"])
    >>> rank_disagreements(t).to_dict("records")
    [{'model_a': 'mnrl', 'model_b': 'cosent', 'metric_a': 'nDCG@10', 'metric_b': 'accuracy', 'a_minus_b_on_metric_a': 0.1, 'b_minus_a_on_metric_b': 0.1}]
    """
    from itertools import combinations

    cols = list(metrics) if metrics is not None else list(table.columns)
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise KitError(f"rank_disagreements: no column {missing[0]!r} in the table ({', '.join(map(str, table.columns))})")
    out = []
    for a, b in combinations(table.index, 2):
        for m1, m2 in combinations(cols, 2):
            d1 = float(table.at[a, m1] - table.at[b, m1])
            d2 = float(table.at[a, m2] - table.at[b, m2])
            if d1 * d2 < 0:
                (a_, b_) = (a, b) if d1 > 0 else (b, a)
                out.append({"model_a": a_, "model_b": b_, "metric_a": m1, "metric_b": m2,
                            "a_minus_b_on_metric_a": round(abs(d1), 6), "b_minus_a_on_metric_b": round(abs(d2), 6)})
    return pd.DataFrame(out, columns=["model_a", "model_b", "metric_a", "metric_b", "a_minus_b_on_metric_a",
                                      "b_minus_a_on_metric_b"])


def score_bi_encoder(model: "SentenceTransformer", ds: "BeirDataset", split: str = "test", *, negatives: dict[str, list[str]] | None = None,
                     index: "DenseIndex | None" = None, k: int = 100, seed: int = 42) -> tuple[Run, pd.DataFrame]:
    """Encode the corpus once and score a bi-encoder two ways: a retrieval run and the pair cosines.

    Returns ``(run, pairs)``: ``run`` for :func:`evaluate` (retrieval), ``pairs`` as
    :func:`pair_similarities` returns them, for :func:`classification_scores` and
    :func:`similarity_spearman`. ``index``: the model's corpus index if you already have one
    (e.g. from :func:`kit.cache.cached_index`), so the corpus is not encoded again. Taught in ``notebooks/02_losses.ipynb``.

    >>> run, pairs = score_bi_encoder(model, ds, "test")              # doctest: +SKIP
    >>> evaluate(run, ds.split("test")[1])["nDCG@10"], similarity_spearman(pairs.cosine, pairs.grade)   # doctest: +SKIP
    """
    from .retrieval import DenseIndex

    queries, _ = ds.split(split)
    index = index if index is not None else DenseIndex.build(model, ds.corpus)
    q_emb = index.encode_queries(queries)
    run = index.search(queries, k=k, query_embeddings=q_emb)
    return run, pair_similarities_from_index(index, q_emb, ds, split, negatives=negatives, seed=seed)


def expert_verdicts(negatives: dict[str, Sequence[str]], judgments: Sequence[dict]) -> dict[str, int]:
    """How an expert judged the mined "negatives" they reviewed: the false-negative problem in numbers.

    ``negatives``: query id -> mined negative doc ids (e.g. :func:`kit.retrieval.hard_negatives`);
    ``judgments``: rows of :func:`kit.data.load_judgments`. Returns counts: ``mined`` (pairs),
    ``reviewed`` (of those, judged by the expert), one count per judgment, ``false_negative_rate``
    (actually relevant / reviewed; "unclear" verdicts count in the denominator, so it is a lower bound)
    and its 95% Wilson interval (``fn_rate_low``, ``fn_rate_high``): on a hundred reviewed pairs a rate
    is known to about ±7 points. Taught in ``notebooks/05_cross_encoder.ipynb`` and ``03_augmentation``.

    >>> expert_verdicts({"q": ["a", "b", "c"]}, [{"query_id": "q", "corpus_id": "a", "judgment": "actually_relevant"},
    ...                                           {"query_id": "q", "corpus_id": "b", "judgment": "hard_negative"}])
    {'mined': 3, 'reviewed': 2, 'hard_negative': 1, 'actually_relevant': 1, 'unclear': 0, 'false_negative_rate': 0.5, 'fn_rate_low': 0.0945, 'fn_rate_high': 0.9055}
    """
    from scipy.stats import binomtest

    verdict = {(str(r["query_id"]), str(r["corpus_id"])): r["judgment"] for r in judgments}
    pairs = [(q, d) for q, docs in negatives.items() for d in docs]
    seen = [verdict[p] for p in pairs if p in verdict]
    out: dict[str, float] = {"mined": len(pairs), "reviewed": len(seen)}
    for kind in ("hard_negative", "actually_relevant", "unclear"):
        out[kind] = sum(v == kind for v in seen)
    out["false_negative_rate"] = round(out["actually_relevant"] / len(seen), 4) if seen else float("nan")
    if seen:
        ci = binomtest(int(out["actually_relevant"]), len(seen)).proportion_ci(method="wilson")
        out["fn_rate_low"], out["fn_rate_high"] = round(float(ci.low), 4), round(float(ci.high), 4)
    else:
        out["fn_rate_low"] = out["fn_rate_high"] = float("nan")
    return out


# --------------------------------------------------------------------------- re-ranking, query by query

def rank_table(run: Run, query_id: str, ds: "BeirDataset", qrels: Qrels, *, n: int = 5, score: str = "score",
               chars: int = 90) -> pd.DataFrame:
    """The top ``n`` of one query's run as a table: rank, grade (2 answers, 1 related, 0 not judged),
    doc id, title, the start of the text, and the score. The talk's *Before* / *After re-ranking*
    tables are two of these. Taught in ``notebooks/05_cross_encoder.ipynb``.

    >>> from kit.data import BeirDataset
    >>> ds = BeirDataset({"a": {"title": "A", "text": "alpha"}, "b": {"title": "B", "text": "beta"}}, {"q": "?"}, {})
    >>> rank_table({"q": {"a": 0.2, "b": 0.9}}, "q", ds, {"q": {"a": 2}})[["doc", "grade"]].to_dict("list")
    {'doc': ['b', 'a'], 'grade': [0, 2]}
    """
    ranked = sorted(run.get(query_id, {}).items(), key=lambda x: (-x[1], x[0]))[:n]
    judged = qrels.get(query_id, {})
    rows = []
    for rank, (d, s) in enumerate(ranked, 1):
        text = ds.corpus[d]["text"]
        rows.append({"rank": rank, "grade": int(judged.get(d, 0)), "doc": d, "title": ds.corpus[d].get("title", ""),
                     "text": text if len(text) <= chars else text[: chars - 1] + "…", score: round(float(s), 4)})
    return pd.DataFrame(rows).set_index("rank")


def rank_of(run: Run, query_id: str, doc_id: str) -> int:
    """1-based rank of ``doc_id`` in one query's run (0 if it is not there).

    >>> rank_of({"q": {"a": 0.2, "b": 0.9}}, "q", "a"), rank_of({"q": {}}, "q", "a")
    (2, 0)
    """
    ranked = sorted(run.get(query_id, {}).items(), key=lambda x: (-x[1], x[0]))
    return next((i for i, (d, _) in enumerate(ranked, 1) if d == doc_id), 0)


def biggest_changes(before: pd.Series, after: pd.Series, *, helped: int = 2, hurt: int = 1,
                    exclude: Sequence[str] = ()) -> pd.DataFrame:
    """The queries whose per-query score rose the most (``helped``) and fell the most (``hurt``), found
    by code, with before, after and the change. Ties are broken by query id, so the choice is stable.

    >>> b = pd.Series({"q1": 0.5, "q2": 0.9, "q3": 0.2}); a = pd.Series({"q1": 1.0, "q2": 0.4, "q3": 0.3})
    >>> biggest_changes(b, a, helped=1, hurt=1).index.tolist()
    ['q1', 'q2']
    """
    delta = (after - before).drop(index=[q for q in exclude if q in before.index])
    order = sorted(delta.index, key=lambda q: (-delta[q], q))
    up = [q for q in order if delta[q] > 0][:helped]
    down = [q for q in reversed(order) if delta[q] < 0][:hurt]
    picked = up + down
    return pd.DataFrame({"before": before[picked], "after": after[picked], "change": delta[picked],
                         "kind": ["helped"] * len(up) + ["hurt"] * len(down)})


def query_margins(pairs: pd.DataFrame) -> pd.Series:
    """Per query: cosine of its best-scored answer (grade 2) minus cosine of its hard negative (grade 0).

    Above 0, the answer ranks above the negative for that query. ``pairs`` as returned by
    :func:`pair_similarities` (with ``negatives=``). Taught in ``notebooks/04_bi_encoder.ipynb``.

    >>> pairs = pd.DataFrame({"query_id": ["q1", "q1", "q2", "q2"], "grade": [2, 0, 2, 0],
    ...                       "cosine": [0.8, 0.5, 0.3, 0.4]})
    >>> query_margins(pairs).round(2).to_dict()
    {'q1': 0.3, 'q2': -0.1}
    """
    answer = pairs[pairs.grade == 2].groupby("query_id").cosine.max()
    negative = pairs[pairs.grade == 0].groupby("query_id").cosine.max()
    both = answer.index.intersection(negative.index)
    return (answer[both] - negative[both]).rename("margin")


# --------------------------------------------------------------------------- settings that depend on the data

def length_tradeoff(model, ds: "BeirDataset", split: str, lengths: Sequence[int], *, encoder=None,
                    timing_sample: int = 128, runs: dict | None = None) -> pd.DataFrame:
    """Quality and cost of reading passages at each ``max_seq_length``: one row per length with the
    share of passages it truncates, ``split`` nDCG@10 of dense retrieval, and the seconds to encode
    ``timing_sample`` passages (measured, not cached). ``encoder(model, texts)`` may supply cached
    embeddings for the quality column (e.g. :func:`kit.cache.cached_encode`). The model's own length
    is restored afterwards. ``runs``: a dict to receive each length's run (for per-query tests).
    Taught in ``notebooks/04_bi_encoder.ipynb``.

    >>> length_tradeoff(load_bi_encoder(), ds, "test", [64, 128])      # doctest: +SKIP
    """
    import time

    from .evaluate import evaluate
    from .models import token_lengths
    from .retrieval import DenseIndex, encode

    queries, qrels = ds.split(split)
    texts = ds.doc_texts()
    tokens = np.asarray(token_lengths(model, texts))
    sample = texts[:timing_sample]
    original = model.max_seq_length
    rows = []
    try:
        for n in lengths:
            model.max_seq_length = int(n)
            encode(model, sample[:8])                       # warm-up at this length
            t = time.perf_counter()
            encode(model, sample)
            seconds = time.perf_counter() - t
            build = (lambda t_: encoder(model, t_)) if encoder is not None else None
            run = DenseIndex.build(model, ds.corpus, encoder=build).search(queries, k=100)
            if runs is not None:
                runs[int(n)] = run
            rows.append({"max_seq_length": int(n), "passages truncated": float((tokens > n).mean()),
                         "nDCG@10": evaluate(run, qrels, ["nDCG@10"])["nDCG@10"],
                         f"seconds per {len(sample)} passages": seconds})
    finally:
        model.max_seq_length = original
    return pd.DataFrame(rows).set_index("max_seq_length")


def first_stage_report(dense: dict[str, Run], bm25: dict[str, Run], qrels: dict[str, Qrels], *, dev: str = "dev",
                       test: str = "test") -> tuple[pd.DataFrame, "object"]:
    """Dense, BM25 and every fusion scored on ``dev`` and ``test``, with the one chosen on dev marked.

    ``dense`` / ``bm25``: runs per split; ``qrels``: judgments per split. Returns the table and the
    :class:`kit.retrieval.FirstStageChoice` (its ``reason`` says why). The choice never sees test.
    Taught in ``notebooks/04_bi_encoder.ipynb``.

    >>> dense = {"dev": {"q": {"a": 0.9, "b": 0.8}}, "test": {"t": {"a": 0.9, "b": 0.8}}}
    >>> bm25 = {"dev": {"q": {"b": 3.0, "a": 1.0}}, "test": {"t": {"b": 3.0, "a": 1.0}}}
    >>> table, choice = first_stage_report(dense, bm25, {"dev": {"q": {"b": 1}}, "test": {"t": {"a": 1}}})
    >>> choice.chosen.name, bool(table.loc["bm25", "chosen on dev"]), round(float(table.loc["bm25", "test nDCG@10"]), 4)
    ('bm25', True, 0.6309)
    """
    from .evaluate import evaluate
    from .retrieval import FIRST_STAGES, choose_first_stage

    choice = choose_first_stage(dense[dev], bm25[dev], qrels[dev], dev_split=dev)
    rows = {}
    for stage in FIRST_STAGES:
        rows[stage.name] = {f"{dev} nDCG@10": choice.dev_scores[stage.name],
                            f"{test} nDCG@10": evaluate(stage.combine(dense[test], bm25[test]), qrels[test],
                                                        ["nDCG@10"])["nDCG@10"],
                            "chosen on dev": stage == choice.chosen}
    return pd.DataFrame(rows).T.astype({f"{dev} nDCG@10": float, f"{test} nDCG@10": float, "chosen on dev": bool}), choice


# --------------------------------------------------------------------------- data checks

_YES = ("is reimbursable", "are reimbursable", "is reimbursed", "are reimbursed", "is covered", "are covered",
        "can be claimed", "may be claimed", "is allowed", "are allowed", "qualifies", "the company pays")
_NO = ("not reimbursable", "not reimbursed", "never reimbursed", "not covered", "not allowed", "are personal",
       "is personal", "do not qualify", "does not qualify", "not claimable", "cannot be claimed")


def verdict_polarity(text: str) -> int:
    """+1 when a passage says mostly "reimbursed / covered / allowed", -1 when mostly "not", 0 when
    balanced or silent (a crude reading, for flagging pairs a person then reads).

    >>> verdict_polarity("Day passes are not reimbursed."), verdict_polarity("A day pass is reimbursable.")
    (-1, 1)
    """
    low = text.lower()
    no = sum(low.count(p) for p in _NO)
    yes = sum(low.count(p) for p in _YES) - sum(low.count(p) for p in _NO if p.startswith("not ") and p[4:] in _YES)
    return (yes > no) - (no > yes)


def contradiction_candidates(ds: "BeirDataset", embeddings: np.ndarray, *, doc_ids: Sequence[str] | None = None,
                             threshold: float = 0.6, top: int = 20) -> pd.DataFrame:
    """Pairs of passages on the same subject (cosine >= ``threshold``) that give opposite verdicts
    (:func:`verdict_polarity`): candidates for a contradiction, for a person to read.

    ``embeddings``: one normalized row per passage of ``doc_ids`` (default: ``ds.corpus`` order).
    Returns the ``top`` pairs by similarity with both titles. A real handbook has a few; training on
    both sides of one teaches the model two answers to the same question. Taught in
    ``notebooks/01_representations.ipynb`` and used to check the bundled dataset (its datasheet).

    >>> from kit.data import BeirDataset
    >>> ds = BeirDataset({"a": {"title": "A", "text": "A lounge pass is reimbursable."},
    ...                   "b": {"title": "B", "text": "Lounge passes are not reimbursed."},
    ...                   "c": {"title": "C", "text": "Taxis are reimbursed."}}, {}, {})
    >>> emb = np.array([[1.0, 0.0], [0.96, 0.28], [0.0, 1.0]])
    >>> contradiction_candidates(ds, emb, threshold=0.9)[["doc_a", "doc_b"]].values.tolist()
    [['a', 'b']]
    """
    ids = list(doc_ids) if doc_ids is not None else list(ds.corpus)
    emb = np.asarray(embeddings, np.float32)
    if len(ids) != len(emb):
        raise KitError(f"contradiction_candidates: {len(ids)} passages but {len(emb)} embeddings")
    polarity = np.array([verdict_polarity(ds.doc_text(d)) for d in ids])
    sims = emb @ emb.T
    rows = []
    for i in range(len(ids)):
        if polarity[i] == 0:
            continue
        for j in np.nonzero((sims[i] >= threshold) & (polarity == -polarity[i]))[0]:
            if j > i:
                rows.append({"doc_a": ids[i], "doc_b": ids[j], "cosine": float(sims[i, j]),
                             "title_a": ds.corpus[ids[i]].get("title", ""), "title_b": ds.corpus[ids[j]].get("title", ""),
                             "says_a": "yes" if polarity[i] > 0 else "no", "says_b": "yes" if polarity[j] > 0 else "no"})
    frame = pd.DataFrame(rows, columns=["doc_a", "doc_b", "cosine", "title_a", "title_b", "says_a", "says_b"])
    return frame.sort_values("cosine", ascending=False, kind="stable").head(top).reset_index(drop=True)
