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

from .data import Qrels, Run
from .errors import KitError

DEFAULT_MEASURES: tuple[str, ...] = ("nDCG@10", "RR@10", "R@100")


def check_measures(measures: Sequence[str] | str) -> list[str]:
    """Validate ir-measures names before any work is done; returns them as a list.

    >>> check_measures(["nDCG@10", "RR@10"])
    ['nDCG@10', 'RR@10']
    >>> check_measures(["nDGC@10"])
    Traceback (most recent call last):
    ...
    kit.errors.KitError: evaluate: unknown measure 'nDGC@10' ...
    """
    return _parse(measures)[0]


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


def classification_on_dev(dev_scores: Sequence[float], dev_labels: Sequence[int], test_scores: Sequence[float],
                          test_labels: Sequence[int]) -> dict[str, float]:
    """Binary classification with the threshold chosen on dev, applied unchanged to test.

    :func:`classification_scores` picks the best threshold *on the data it scores*, which flatters
    the model; a deployed classifier gets a threshold fixed beforehand. Returns test ``accuracy``,
    ``f1``, ``average_precision`` (threshold-free) and the dev ``threshold``. Taught in
    ``notebooks/05_cross_encoder.ipynb``.

    >>> r = classification_on_dev([0.9, 0.2, 0.7, 0.4], [1, 0, 1, 0], [0.8, 0.5, 0.3], [1, 1, 0])
    >>> r["threshold"], r["accuracy"]
    (0.55, 0.6666666666666666)
    """
    from sklearn.metrics import average_precision_score, f1_score

    threshold = classification_scores(dev_scores, dev_labels)["threshold"]
    s, y = np.asarray(test_scores, float), np.asarray(test_labels, int)
    if s.size == 0 or len(set(y.tolist())) < 2:
        raise KitError("classification_on_dev: the test scores need both relevant and non-relevant pairs")
    pred = s > threshold
    return {"accuracy": float((pred == y).mean()), "f1": float(f1_score(y, pred)),
            "average_precision": float(average_precision_score(y, s)), "threshold": round(threshold, 6)}


def bootstrap_ci(a: Sequence[float], b: Sequence[float] | None = None, *, samples: int = 2000, level: float = 0.95,
                 seed: int = 42) -> tuple[float, float, float]:
    """Mean (of ``a - b``, or of ``a``) and its paired bootstrap confidence interval over queries.

    Resamples queries with replacement ``samples`` times; the interval holds the middle ``level``
    of the resampled means. An interval that contains 0 means the difference is not shown at this
    size: say "no difference", not which side won. Taught in ``notebooks/02_losses.ipynb``.

    >>> mean, low, high = bootstrap_ci([0.5, 0.7, 0.9, 0.6], [0.4, 0.5, 0.8, 0.6])
    >>> round(mean, 3), low <= mean <= high
    (0.1, True)
    """
    x = np.asarray(a, float)
    if b is not None:
        y = np.asarray(b, float)
        if x.shape != y.shape:
            raise KitError(f"bootstrap_ci: {x.size} and {y.size} scores: give the same queries for both")
        x = x - y
    if x.size == 0:
        raise KitError("bootstrap_ci: no scores")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1)
    tail = (1 - level) / 2
    return float(x.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def format_p(p: float) -> str:
    """A p-value for prose and tables: scientific notation, never a bare 0.

    >>> format_p(3.4e-7), format_p(0.0273), format_p(0.0)
    ('3.4e-07', '0.027', '< 1e-16')
    """
    if p <= 0 or p < 1e-16:
        return "< 1e-16"
    return f"{p:.2g}" if p < 0.01 else f"{p:.3f}".rstrip("0").rstrip(".") if p < 1 else "1"


def verdict(diff: float, low: float, high: float, *, what: str = "nDCG@10", unit: str = "") -> str:
    """One computed line that says what a difference and its interval support.

    >>> verdict(0.012, -0.004, 0.03)
    'no difference shown in nDCG@10 at this budget (+0.012, 95% interval -0.004 to +0.030 contains 0)'
    >>> verdict(0.05, 0.02, 0.08)
    'better: +0.050 nDCG@10 (95% interval +0.020 to +0.080)'
    """
    if low <= 0 <= high:
        return f"no difference shown in {what} at this budget ({diff:+.3f}{unit}, 95% interval {low:+.3f} to {high:+.3f} contains 0)"
    side = "better" if diff > 0 else "worse"
    return f"{side}: {diff:+.3f}{unit} {what} (95% interval {low:+.3f} to {high:+.3f})"


def context_metrics(run: Run, qrels: Qrels, ns: Sequence[int] = (1, 3, 5), *, answer_grade: int = 2) -> pd.DataFrame:
    """Per query, what a RAG prompt holding the run's first ``n`` passages would contain.

    Columns: ``recall@n`` (1 if a passage judged ``answer_grade`` is among the first n: the prompt
    holds an answer), ``precision@n`` (share of the n judged relevant at any grade) and ``RR``
    (1 / rank of the first relevant passage, 0 if none in the run). Missing queries score 0.
    Taught in ``notebooks/06_rag.ipynb``.

    >>> context_metrics({"q": {"x": 0.9, "a": 0.8, "b": 0.1}}, {"q": {"a": 2, "b": 1}}, ns=(1, 3)).iloc[0].to_dict()
    {'recall@1': 0.0, 'precision@1': 0.0, 'recall@3': 1.0, 'precision@3': 0.6666666666666666, 'RR': 0.5}
    """
    rows = {}
    for q, judged in qrels.items():
        ranked = [d for d, _ in sorted(run.get(q, {}).items(), key=lambda x: (-x[1], x[0]))]
        row: dict[str, float] = {}
        for n in ns:
            top = ranked[:n]
            row[f"recall@{n}"] = float(any(judged.get(d, 0) >= answer_grade for d in top))
            row[f"precision@{n}"] = sum(judged.get(d, 0) > 0 for d in top) / n
        first = next((i for i, d in enumerate(ranked, 1) if judged.get(d, 0) > 0), None)
        row["RR"] = 1.0 / first if first else 0.0
        rows[q] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "query_id"
    return frame


def bootstrap_grouped(frame_a: pd.DataFrame, frame_b: pd.DataFrame, score, *, group: str = "query_id",
                      samples: int = 500, level: float = 0.95, seed: int = 42) -> tuple[float, float, float]:
    """``score(frame_a) - score(frame_b)`` and its paired bootstrap interval, resampling whole groups
    (queries) with replacement, the same groups for both frames.

    For metrics computed over all rows at once (average precision, Spearman, accuracy at a threshold)
    where :func:`bootstrap_ci`'s per-query means do not apply. Both frames need a ``group`` column with
    the same groups. Taught in ``notebooks/02_losses.ipynb``.

    >>> a = pd.DataFrame({"query_id": ["q1", "q1", "q2", "q2"], "x": [1.0, 0.0, 1.0, 1.0]})
    >>> b = a.assign(x=[0.0, 0.0, 1.0, 0.0])
    >>> diff, low, high = bootstrap_grouped(a, b, lambda f: f.x.mean(), samples=200)
    >>> round(diff, 2), low <= diff <= high
    (0.5, True)
    """
    keys = sorted(set(frame_a[group]))
    if keys != sorted(set(frame_b[group])):
        raise KitError("bootstrap_grouped: the two frames must hold the same groups (the same queries)")
    rows_a = {k: np.flatnonzero(frame_a[group].to_numpy() == k) for k in keys}
    rows_b = {k: np.flatnonzero(frame_b[group].to_numpy() == k) for k in keys}
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(samples):
        pick = rng.integers(0, len(keys), size=len(keys))
        ia = np.concatenate([rows_a[keys[i]] for i in pick])
        ib = np.concatenate([rows_b[keys[i]] for i in pick])
        diffs.append(score(frame_a.iloc[ia]) - score(frame_b.iloc[ib]))
    tail = (1 - level) / 2
    return float(score(frame_a) - score(frame_b)), float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1 - tail))
