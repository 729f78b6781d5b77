"""The figures the notebooks draw. Each returns the matplotlib Axes; titles state a finding,
axes are labelled, and the run's numbers go in the legend. Plots only draw: what they show is
computed by :mod:`kit.analysis` and :mod:`kit.evaluate`.

>>> from kit.plots import similarity_heatmap
>>> ax = similarity_heatmap(sim, labels, title="Paraphrases sit close together")   # doctest: +SKIP
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _axes(ax=None, figsize=(7, 5)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def similarity_heatmap(sim: np.ndarray, labels: Sequence[str], *, title: str = "Cosine similarity", ax=None,
                       wrap: int = 40):
    """Annotated heatmap of a square similarity matrix."""
    import seaborn as sns

    short = [t if len(t) <= wrap else t[: wrap - 1] + "…" for t in labels]
    ax = _axes(ax, figsize=(1.1 * len(labels) + 3, 0.7 * len(labels) + 2))
    sns.heatmap(np.asarray(sim), annot=True, fmt=".2f", cmap="viridis", vmin=0, vmax=1, xticklabels=short,
                yticklabels=short, ax=ax, cbar_kws={"label": "cosine similarity"})
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=60)
    return ax


def embedding_map(coords: np.ndarray, groups: Sequence[str], *, title: str, ax=None, max_legend: int = 12):
    """Scatter of 2-D coordinates coloured by group (e.g. topic)."""
    import seaborn as sns

    ax = _axes(ax, figsize=(8, 6))
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "group": list(groups)})
    sns.scatterplot(frame, x="x", y="y", hue="group", s=14, ax=ax, palette="tab20",
                    legend=len(set(groups)) <= max_legend)
    if len(set(groups)) > max_legend and ax.get_legend():
        ax.get_legend().remove()
    ax.set(title=title, xlabel="component 1", ylabel="component 2")
    return ax


def cosine_distributions(frame: pd.DataFrame, *, by: str = "pair", hue: str | None = "model", title: str, ax=None):
    """Histogram (KDE) of cosine similarities, one curve per pair kind (and model)."""
    import seaborn as sns

    ax = _axes(ax)
    sns.kdeplot(frame, x="cosine", hue=by if hue is None else (frame[by] + " / " + frame[hue]).rename(f"{by} / {hue}"),
                common_norm=False,
                fill=True, alpha=0.25, ax=ax)
    ax.set(title=title, xlabel="cosine(query, passage)", ylabel="density")
    return ax


def metric_bars(table: pd.DataFrame, metrics: Sequence[str] = ("nDCG@10", "RR@10"), *, title: str, ax=None):
    """Grouped bars: one group per row of ``table`` (a run or model), one bar per metric."""
    ax = _axes(ax)
    table[list(metrics)].plot.bar(ax=ax, rot=20)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.3f", fontsize=8)
    ax.set(title=title, ylabel="score (test split)", xlabel="")
    ax.set_ylim(0, 1)
    return ax


def learning_curves(curves: Mapping[str, Sequence[tuple[float, float]]], *, xlabel: str, ylabel: str = "nDCG@10",
                    title: str, ax=None):
    """Line plot of ``{label: [(x, y), ...]}`` (e.g. dev nDCG@10 against steps or training pairs)."""
    ax = _axes(ax)
    for label, points in curves.items():
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o", label=f"{label} (best {max(ys):.3f})")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def encoder_diagram(ax: "Axes | None" = None, *,
                    query: str = "What is considered a business\nexpense on a business trip?",
                    passage: str = "Transportation can be considered\na valid business expense ...",
                    dim: int = 384) -> "Axes":
    """Bi-encoder and cross-encoder side by side, drawn with boxes and arrows (no data, no model).

    Left: query and passage are encoded *separately* into two vectors compared by cosine similarity
    (passage vectors can be computed once, ahead of time). Right: the pair is read *together* by one
    transformer that outputs a single relevance score (nothing can be precomputed). Taught in
    ``notebooks/01_representations.ipynb`` as a preview of notebooks 04-06.

    >>> ax = encoder_diagram()
    >>> ax.get_title()
    'Bi-encoder (retrieval) vs cross-encoder (re-ranking)'
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    ax = _axes(ax, figsize=(12, 5.5))
    ax.set_xlim(0, 12)
    ax.set_ylim(-0.9, 7)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, text: str, color: str) -> None:
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.08", fc=color,
                                    ec="0.25", lw=1.2))
        ax.text(x, y, text, ha="center", va="center", fontsize=9)

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=14, lw=1.3, color="0.25"))

    # bi-encoder: two towers with shared weights, compared by cosine
    ax.text(3, 6.7, "Bi-encoder", ha="center", fontsize=12, weight="bold")
    for x, text in ((1.6, query), (4.4, passage)):
        box(x, 5.6, 2.5, 0.9, text, "#dbe9f6")
        box(x, 3.9, 2.2, 0.7, "transformer\n(same weights)", "#f6e3c6")
        box(x, 2.4, 2.2, 0.6, f"vector ({dim} numbers)", "#d9f0d3")
        arrow(x, 5.1, x, 4.3)
        arrow(x, 3.5, x, 2.75)
    box(3, 0.8, 2.6, 0.7, "cosine similarity", "#e8d9f0")
    arrow(1.6, 2.05, 2.6, 1.2)
    arrow(4.4, 2.05, 3.4, 1.2)
    ax.text(3, -0.85, "passage vectors are computed once, ahead of time:\nfast search over the whole corpus",
            ha="center", va="bottom", fontsize=8, style="italic")

    # cross-encoder: one transformer reads the pair
    ax.text(9, 6.7, "Cross-encoder", ha="center", fontsize=12, weight="bold")
    box(9, 5.6, 5.2, 0.9, "[CLS] query [SEP] passage [SEP]\n(read together, word by word attention across both)",
        "#dbe9f6")
    box(9, 3.9, 2.6, 0.7, "transformer", "#f6e3c6")
    box(9, 2.4, 2.6, 0.6, "classification head", "#d9f0d3")
    box(9, 0.8, 2.6, 0.7, "relevance score", "#e8d9f0")
    arrow(9, 5.1, 9, 4.3)
    arrow(9, 3.5, 9, 2.75)
    arrow(9, 2.05, 9, 1.2)
    ax.text(9, -0.85, "one forward pass per (query, passage) pair:\naccurate but slow, so it re-ranks a short list",
            ha="center", va="bottom", fontsize=8, style="italic")
    ax.plot([6, 6], [-0.8, 6.9], color="0.7", lw=1, ls="--")
    ax.set_title("Bi-encoder (retrieval) vs cross-encoder (re-ranking)")
    return ax


def rank_heatmap(ranks: pd.DataFrame, *, title: str, ax: "Axes | None" = None) -> "Axes":
    """Annotated heatmap of ranks (rows: models, columns: metrics; 1 = best), so that a model whose
    colour changes along its row is one the metrics disagree about. Taught in ``notebooks/02_losses.ipynb``.

    >>> ranks = pd.DataFrame({"nDCG@10": [1, 2], "accuracy": [2, 1]}, index=["mnrl", "cosent"])
    >>> rank_heatmap(ranks, title="Ranks").get_ylabel()
    'model'
    """
    import seaborn as sns

    ax = _axes(ax, figsize=(1.4 * ranks.shape[1] + 3, 0.5 * ranks.shape[0] + 1.5))
    sns.heatmap(ranks.astype(int), annot=True, fmt="d", cmap="viridis_r", vmin=1, vmax=max(int(ranks.values.max()), 2),
                cbar_kws={"label": "rank (1 = best)"}, linewidths=0.5, ax=ax)
    ax.set(title=title, xlabel="metric", ylabel="model")
    ax.tick_params(axis="y", rotation=0)
    return ax


def depth_curve(frame: pd.DataFrame, *, title: str, quality: str = "nDCG@10", cost: str = "ms per query",
                ax: "Axes | None" = None) -> "Axes":
    """Quality (left axis) and cost (right axis) against re-ranking depth; one row of ``frame`` per depth.

    ``frame`` has a ``depth`` column, ``quality`` and ``cost`` columns, and optionally ``baseline``
    (the first stage alone, drawn as a dashed line). Taught in ``notebooks/05_cross_encoder.ipynb``.

    >>> f = pd.DataFrame({"depth": [10, 20], "nDCG@10": [0.7, 0.72], "ms per query": [150, 300], "baseline": 0.69})
    >>> depth_curve(f, title="t").get_xlabel()
    'candidates re-ranked per query (depth)'
    """
    ax = _axes(ax)
    ax.plot(frame["depth"], frame[quality], marker="o", color="tab:blue", label=f"re-ranked {quality}")
    if "baseline" in frame:
        ax.axhline(float(frame["baseline"].iloc[0]), color="tab:blue", ls="--", lw=1,
                   label=f"first stage alone ({float(frame['baseline'].iloc[0]):.3f})")
    ax.set(title=title, xlabel="candidates re-ranked per query (depth)", ylabel=quality)
    right = ax.twinx()
    right.plot(frame["depth"], frame[cost], marker="s", color="tab:orange", label=cost)
    right.set_ylabel(cost)
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right")
    ax.grid(alpha=0.3)
    return ax


def reliability_diagram(curves: Mapping[str, tuple[Sequence[float], Sequence[int]]], *, title: str, bins: int = 10,
                        ax: "Axes | None" = None) -> "Axes":
    """Calibration: for each name, the share of positives among pairs binned by predicted probability.

    A calibrated model sits on the diagonal; the legend gives each one's expected calibration error
    (ECE: the mean gap, weighted by bin size). Taught in ``notebooks/05_cross_encoder.ipynb``.

    >>> ax = reliability_diagram({"m": ([0.1, 0.9, 0.8], [0, 1, 1])}, title="t")
    >>> ax.get_xlabel()
    'predicted probability'
    """
    ax = _axes(ax, figsize=(6, 6))
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="perfectly calibrated")
    edges = np.linspace(0, 1, bins + 1)
    for name, (p, y) in curves.items():
        p, y = np.asarray(p, float), np.asarray(y, float)
        which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
        xs, ys, ece = [], [], 0.0
        for b in range(bins):
            sel = which == b
            if sel.any():
                xs.append(p[sel].mean())
                ys.append(y[sel].mean())
                ece += sel.mean() * abs(p[sel].mean() - y[sel].mean())
        ax.plot(xs, ys, marker="o", label=f"{name} (ECE {ece:.3f})")
    ax.set(title=title, xlabel="predicted probability", ylabel="share actually relevant", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    return ax


def margin_histograms(margins: Mapping[str, Sequence[float]], *, title: str, bins: int = 30,
                      ax: "Axes | None" = None) -> "Axes":
    """One histogram per model of per-query margins (answer minus hard negative), a line at 0.

    Right of the line, the answer wins for that query. The legend gives each model's share of
    queries above 0 and its median margin. Taught in ``notebooks/04_bi_encoder.ipynb``.

    >>> ax = margin_histograms({"a": [0.1, -0.2, 0.3], "b": [0.2, 0.1, 0.0]}, title="t")
    >>> [t.get_text() for t in ax.get_legend().get_texts()][:1]
    ['a: 67% above 0, median +0.100']
    """
    ax = _axes(ax, figsize=(8, 4.5))
    values = {k: np.asarray(v, float) for k, v in margins.items()}
    lo = min(v.min() for v in values.values())
    hi = max(v.max() for v in values.values())
    edges = np.linspace(lo, hi, bins + 1)
    for name, v in values.items():
        ax.hist(v, bins=edges, histtype="step", lw=2,
                label=f"{name}: {(v > 0).mean():.0%} above 0, median {np.median(v):+.3f}")
    ax.axvline(0, color="0.2", lw=1)
    ax.set(title=title, xlabel="cos(query, answer) - cos(query, hard negative), per query", ylabel="queries")
    ax.legend()
    return ax


def interval_dots(table: pd.DataFrame, *, title: str, xlabel: str = "change in nDCG@10", ax: "Axes | None" = None) -> "Axes":
    """Differences as dots with their confidence intervals (rows: comparisons; columns ``diff``,
    ``low``, ``high``), a line at 0: an interval that crosses it is no difference at this size.

    >>> t = pd.DataFrame({"diff": [0.02, -0.01], "low": [0.01, -0.03], "high": [0.03, 0.01]}, index=["a", "b"])
    >>> interval_dots(t, title="t").get_xlabel()
    'change in nDCG@10'
    """
    ax = _axes(ax, figsize=(7, 0.6 * len(table) + 1.6))
    y = np.arange(len(table))[::-1]
    ax.errorbar(table["diff"], y, xerr=[table["diff"] - table["low"], table["high"] - table["diff"]], fmt="o",
                capsize=4, color="tab:blue")
    ax.axvline(0, color="0.3", lw=1, ls="--")
    ax.set_yticks(y, list(table.index))
    ax.set(title=title, xlabel=xlabel)
    ax.grid(axis="x", alpha=0.3)
    return ax


def rag_diagram(ax: "Axes | None" = None) -> "Axes":
    """The RAG pipeline as boxes and arrows: where the bi-encoder, the cross-encoder and the LLM fit.

    Offline (top row): the bi-encoder encodes every passage once into the index. Online (bottom
    row): the question is encoded and searched (top k), the cross-encoder re-ranks the k candidates,
    the best n that fit the token budget go into the prompt, and the LLM writes an answer that cites
    them. Taught in ``notebooks/06_rag.ipynb``.

    >>> rag_diagram().get_title()
    'Where each model fits in a RAG pipeline'
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    ax = _axes(ax, figsize=(13, 4.6))
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 4.6)
    ax.axis("off")

    def box(x, y, text, color, w=2.0, h=0.95):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.06", fc=color, ec="0.25", lw=1.1))
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)

    def arrow(x0, y0, x1, y1, label=None):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=13, lw=1.2, color="0.3"))
        if label:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.17, label, ha="center", fontsize=7.5, style="italic")

    model, data, step = "#f6e3c6", "#dbe9f6", "#e8f3e0"
    ax.text(0.2, 4.25, "offline, once", fontsize=9, weight="bold")
    box(1.3, 3.5, "corpus\n(policy passages)", data)
    box(4.2, 3.5, "bi-encoder\n(encode passages)", model)
    box(7.1, 3.5, "vector index", data)
    arrow(2.3, 3.5, 3.2, 3.5)
    arrow(5.2, 3.5, 6.1, 3.5)
    ax.text(0.2, 2.05, "per question", fontsize=9, weight="bold")
    row = [(0.85, "question", data, 1.3), (2.75, "bi-encoder\n(encode question)", model, 1.8),
           (4.75, "retrieve\ntop k", step, 1.3), (6.75, "cross-encoder\n(re-rank k)", model, 1.8),
           (9.0, "prompt: top n\nwithin a token budget", step, 2.0), (11.55, "LLM\n(answer, citing [n])", model, 1.9)]
    for x, text, color, w in row:
        box(x, 1.2, text, color, w=w)
    labels = [None, None, "k", None, "n"]
    for (x0, _, _, w0), (x1, _, _, w1), label in zip(row, row[1:], labels):
        arrow(x0 + w0 / 2 + 0.04, 1.2, x1 - w1 / 2 - 0.04, 1.2, label)
    arrow(7.1, 3.0, 4.9, 1.7)
    ax.set_title("Where each model fits in a RAG pipeline")
    return ax
