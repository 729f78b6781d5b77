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

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .data import Qrels
from .errors import KitError
from .retrieval import Run

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

def pair_similarities(model, ds, split: str = "test", *, negatives: dict[str, list[str]] | None = None,
                      seed: int = 42, batch_size: int = 64) -> pd.DataFrame:
    """Cosine similarity of judged (query, passage) pairs plus one negative per query.

    Columns: ``query_id, doc_id, grade`` (2 answers, 1 related, 0 negative) and ``cosine``.
    Negatives come from ``negatives`` (e.g. mined hard negatives) or are drawn at random (seeded).

    >>> pairs = pair_similarities(model, ds, "test")           # doctest: +SKIP
    >>> pairs.groupby("grade").cosine.mean()                   # doctest: +SKIP
    """
    import random

    from .data import doc_text
    from .retrieval import encode

    queries, qrels = ds.split(split)
    rng = random.Random(seed)
    doc_ids = list(ds.corpus)
    rows = []
    for q, docs in qrels.items():
        for d, g in docs.items():
            rows.append((q, d, int(g)))
        pool = [n for n in (negatives or {}).get(q, []) if n not in docs]
        neg = pool[0] if pool else rng.choice([d for d in doc_ids if d not in docs])
        rows.append((q, neg, 0))
    frame = pd.DataFrame(rows, columns=["query_id", "doc_id", "grade"])
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
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import adjusted_mutual_info_score, silhouette_score
    from sklearn.model_selection import cross_val_score

    y = np.asarray(topics)
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
