"""Evaluation with ir-measures: aggregate and per-query scores, and paired comparisons of runs.

Queries judged in ``qrels`` but missing from a run score 0 (they count as failures, as in BEIR),
so a retriever cannot look better by returning nothing. Taught in ``notebooks/02_losses.ipynb``
and ``04_bi_encoder.ipynb``.

>>> from kit.evaluate import evaluate, compare
>>> evaluate(run, qrels)                                       # doctest: +SKIP
{'nDCG@10': 0.61, 'RR@10': 0.58, 'R@100': 0.93}
>>> compare({"zero-shot": run0, "fine-tuned": run1}, qrels)    # doctest: +SKIP
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

from .data import Qrels
from .errors import KitError
from .retrieval import Run

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .data import BeirDataset
    from .retrieval import DenseIndex

DEFAULT_MEASURES: tuple[str, ...] = ("nDCG@10", "RR@10", "R@100")


def _parse(measures: Sequence[str] | str):
    import ir_measures

    names = [measures] if isinstance(measures, str) else list(measures)
    if not names:
        raise KitError("evaluate: no measures given")
    parsed = []
    for name in names:
        try:
            parsed.append(ir_measures.parse_measure(name))
        except Exception as err:  # ir-measures raises a bare exception type per parser
            raise KitError(f"evaluate: unknown measure {name!r} ({err}); examples: nDCG@10, RR@10, R@100, P@5, AP") from None
    return names, parsed


def per_query(run: Run, qrels: Qrels, measures: Sequence[str] | str = DEFAULT_MEASURES) -> pd.DataFrame:
    """One row per judged query, one column per measure (missing queries score 0).

    >>> per_query({"q1": {"d1": 1.0}}, {"q1": {"d1": 2}}, ["nDCG@10"])
              nDCG@10
    query_id         
    q1            1.0
    """
    import ir_measures

    if not qrels:
        raise KitError("evaluate: qrels are empty")
    names, parsed = _parse(measures)
    by_measure = {str(m): n for m, n in zip(parsed, names)}
    table = pd.DataFrame(0.0, index=pd.Index(sorted(qrels), name="query_id"), columns=names)
    judged_run = {q: docs for q, docs in run.items() if q in qrels and docs}
    if judged_run:
        for metric in ir_measures.iter_calc(parsed, qrels, judged_run):
            table.loc[metric.query_id, by_measure[str(metric.measure)]] = float(metric.value)
    return table


def evaluate(run: Run, qrels: Qrels, measures: Sequence[str] | str = DEFAULT_MEASURES) -> dict[str, float]:
    """Mean of each measure over every judged query.

    >>> evaluate({"q1": {"d1": 1.0}}, {"q1": {"d1": 2}}, ["nDCG@10", "RR@10"])
    {'nDCG@10': 1.0, 'RR@10': 1.0}
    """
    table = per_query(run, qrels, measures)
    return {m: float(table[m].mean()) for m in table.columns}


def paired_test(a: Sequence[float], b: Sequence[float], test: str = "ttest") -> float:
    """Two-sided p-value of a paired test between per-query scores ``a`` and ``b``.

    ``test``: ``"ttest"`` (scipy ``ttest_rel``, the usual choice in IR) or ``"wilcoxon"``.
    Identical score lists give p = 1.

    >>> round(paired_test([0.1, 0.2, 0.3, 0.4], [0.5, 0.7, 0.6, 0.9]), 4)
    0.003
    """
    from scipy import stats

    x, y = np.asarray(a, float), np.asarray(b, float)
    if x.shape != y.shape or x.size < 2:
        raise KitError(f"paired_test: need two equal-length score lists of 2+ queries, got {x.size} and {y.size}")
    if np.allclose(x, y):
        return 1.0
    if test == "ttest":
        return float(stats.ttest_rel(x, y).pvalue)
    if test == "wilcoxon":
        return float(stats.wilcoxon(x, y).pvalue)
    raise KitError(f"paired_test: unknown test {test!r} (use 'ttest' or 'wilcoxon')")


def compare(runs: Mapping[str, Run], qrels: Qrels, measures: Sequence[str] | str = DEFAULT_MEASURES, *,
            baseline: str | None = None, test: str = "ttest", tie: float = 1e-9) -> pd.DataFrame:
    """Compare two or more runs on the same queries, in one table.

    One row per run: the mean of each measure; then, against ``baseline`` (the first run
    unless named) on the first measure: the difference, the paired test's p-value, and
    per-query wins / ties / losses.

    >>> compare({"bm25": run_a, "dense": run_b}, qrels)       # doctest: +SKIP
    """
    if len(runs) < 2:
        raise KitError("compare: give at least two runs")
    base = baseline if baseline is not None else next(iter(runs))
    if base not in runs:
        raise KitError(f"compare: baseline {base!r} is not one of the runs ({', '.join(runs)})")
    tables = {name: per_query(run, qrels, measures) for name, run in runs.items()}
    primary = tables[base].columns[0]
    rows = []
    for name, table in tables.items():
        row: dict[str, object] = {"run": name, **{m: float(table[m].mean()) for m in table.columns}}
        if name != base:
            diff = table[primary] - tables[base][primary]
            row[f"Δ {primary}"] = float(diff.mean())
            row[f"p ({test})"] = paired_test(table[primary], tables[base][primary], test)
            row["win/tie/loss"] = f"{int((diff > tie).sum())}/{int((diff.abs() <= tie).sum())}/{int((diff < -tie).sum())}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def format_table(metrics: Mapping[str, Mapping[str, float]], digits: int = 4) -> str:
    """A plain-text table of ``{run: {measure: value}}`` (for the CLI and logs)."""
    df = pd.DataFrame(metrics).T
    return df.to_string(float_format=lambda v: f"{v:.{digits}f}")


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


def classification_scores(scores: Sequence[float], labels: Sequence[int]) -> dict[str, float]:
    """Binary classification at the best cosine threshold: accuracy, F1, average precision.

    ``labels``: 1 = relevant, 0 = not. The threshold is the one that maximizes accuracy
    (reported, so it can be reused on new data).

    >>> classification_scores([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0])["accuracy"]
    1.0
    """
    from sklearn.metrics import average_precision_score, f1_score

    s, y = np.asarray(scores, float), np.asarray(labels, int)
    if s.size == 0 or len(set(y.tolist())) < 2:
        raise KitError("classification_scores: need scores for both relevant and non-relevant pairs")
    order = np.unique(s)
    cands = np.concatenate([[order[0] - 1e-6], (order[:-1] + order[1:]) / 2, [order[-1] + 1e-6]])
    acc = [float(((s > t) == y).mean()) for t in cands]
    best = int(np.argmax(acc))
    threshold = float(cands[best])
    return {"accuracy": acc[best], "f1": float(f1_score(y, s > threshold)),
            "average_precision": float(average_precision_score(y, s)), "threshold": threshold}


def similarity_spearman(scores: Sequence[float], grades: Sequence[float]) -> float:
    """Spearman rank correlation between cosine scores and graded labels (semantic similarity).

    >>> similarity_spearman([0.9, 0.5, 0.1], [2, 1, 0])
    1.0
    """
    from scipy import stats

    return float(stats.spearmanr(scores, grades).statistic)


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


def duplicate_batch_rate(rows: Sequence[Sequence[str]], batch_size: int, *, trials: int = 200,
                         seed: int = 42) -> float:
    """Share of batches that contain a repeated text when ``rows`` are shuffled and cut into batches.

    A plain random sampler does exactly this. With in-batch negatives (MultipleNegativesRankingLoss)
    a text that appears twice in a batch is a *false negative*: the loss pushes a query away from
    a passage that answers it. The no-duplicates batch sampler builds batches where this share is 0.
    Texts are compared across all columns, as that sampler does. Taught in ``notebooks/02_losses.ipynb``.

    >>> duplicate_batch_rate([("q1", "a"), ("q2", "b"), ("q3", "c"), ("q4", "d")], batch_size=2)
    0.0
    >>> duplicate_batch_rate([("q1", "a"), ("q2", "a")], batch_size=2)
    1.0
    """
    if batch_size < 2:
        raise KitError(f"duplicate_batch_rate: batch_size must be at least 2, got {batch_size}")
    if len(rows) < 2:
        raise KitError("duplicate_batch_rate: need at least two rows")
    rng = np.random.default_rng(seed)
    dirty = total = 0
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
                     cache_tag: str | None = None, k: int = 100, seed: int = 42) -> tuple[Run, pd.DataFrame]:
    """Encode the corpus once and score a bi-encoder two ways: a retrieval run and the pair cosines.

    Returns ``(run, pairs)``: ``run`` for :func:`evaluate` (retrieval), ``pairs`` as
    :func:`pair_similarities` returns them, for :func:`classification_scores` and
    :func:`similarity_spearman`. ``cache_tag`` caches the corpus embeddings (see
    :meth:`kit.retrieval.DenseIndex.build`). Taught in ``notebooks/02_losses.ipynb``.

    >>> run, pairs = score_bi_encoder(model, ds, "test")              # doctest: +SKIP
    >>> evaluate(run, ds.split("test")[1])["nDCG@10"], similarity_spearman(pairs.cosine, pairs.grade)   # doctest: +SKIP
    """
    from .retrieval import DenseIndex

    queries, _ = ds.split(split)
    index = DenseIndex.build(model, ds.corpus, cache_tag=cache_tag)
    q_emb = index.encode_queries(queries)
    run = index.search(queries, k=k, query_embeddings=q_emb)
    return run, pair_similarities_from_index(index, q_emb, ds, split, negatives=negatives, seed=seed)
