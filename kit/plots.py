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


def embedding_map(coords: np.ndarray, groups: Sequence[str], *, title: str, ax=None, max_legend: int = 12,
                  legend_title: str = "group"):
    """Scatter of 2-D coordinates coloured by group (e.g. topic), the legend outside the points.

    >>> embedding_map(np.zeros((2, 2)), ["a", "b"], title="t", legend_title="topic").get_legend().get_title().get_text()
    'topic'
    """
    import seaborn as sns

    ax = _axes(ax, figsize=(8, 6))
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "group": list(groups)})
    order = sorted(set(groups))
    n = len(order)
    palette = dict(zip(order, sns.color_palette("tab10" if n <= 10 else "husl", n)))   # distinct neighbours; the same
    sns.scatterplot(frame, x="x", y="y", hue="group", hue_order=order, s=14, ax=ax, palette=palette,  # colour per group
                    legend=n <= max_legend)                                                          # on every map
    if len(set(groups)) > max_legend and ax.get_legend():
        ax.get_legend().remove()
    elif ax.get_legend():
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), title=legend_title, frameon=False, fontsize=8)
    ax.set(title=title, xlabel="component 1", ylabel="component 2")
    return ax


def learning_curves(curves: Mapping[str, Sequence[tuple[float, float]]], *, xlabel: str, ylabel: str = "nDCG@10",
                    title: str, ax=None, noise: float | None = None, legend: str = "best"):
    """Line plot of ``{label: [(x, y), ...]}`` (e.g. dev nDCG@10 against steps or training pairs).

    ``noise``: a seed spread to draw around each point (±half of it), so that wiggles within it read
    as noise; ``legend``: the value each label shows, ``"best"`` or ``"last"`` (the largest x).

    >>> learning_curves({"a": [(1, 0.5), (2, 0.6)]}, xlabel="steps", title="t", noise=0.02, legend="last").get_legend().get_texts()[0].get_text()
    'a (last 0.600)'
    """
    ax = _axes(ax)
    for label, points in curves.items():
        xs, ys = zip(*points)
        shown = max(ys) if legend == "best" else ys[int(np.argmax(xs))]
        line, = ax.plot(xs, ys, marker="o", label=f"{label} ({legend} {shown:.3f})")
        if noise:
            ax.fill_between(xs, np.array(ys) - noise / 2, np.array(ys) + noise / 2, color=line.get_color(), alpha=0.15, lw=0)
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
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=14, lw=1.3, color="0.25"))

    # bi-encoder: two towers with shared weights, compared by cosine
    ax.text(3, 6.7, "Bi-encoder", ha="center", fontsize=12, weight="bold")
    for x, text in ((1.6, query), (4.4, passage)):
        box(x, 5.6, 2.7, 1.0, text, "#dbe9f6")
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


def depth_curve(frame: pd.DataFrame, *, title: str, quality: str = "nDCG@10", cost: str = "ms per query",
                label: str = "re-ranked", ax: "Axes | None" = None) -> "Axes":
    """Quality (left axis) and cost (right axis) against re-ranking depth; one row of ``frame`` per depth.

    ``frame`` has a ``depth`` column, ``quality`` and ``cost`` columns, and optionally ``baseline``
    (the first stage alone, drawn as a dashed line) and ``low`` / ``high`` (an interval around
    ``quality``, drawn as error bars). ``label`` names the ``quality`` line. Taught in ``notebooks/05_cross_encoder.ipynb``.

    >>> f = pd.DataFrame({"depth": [10, 20], "nDCG@10": [0.7, 0.72], "ms per query": [150, 300], "baseline": 0.69})
    >>> depth_curve(f, title="t").get_xlabel()
    'candidates re-ranked per query (depth)'
    """
    ax = _axes(ax)
    if {"low", "high"} <= set(frame.columns):
        err = np.vstack([frame[quality] - frame["low"], frame["high"] - frame[quality]])
        ax.errorbar(frame["depth"], frame[quality], yerr=err, marker="o", color="tab:blue", capsize=3,
                    label=f"{label} {quality} (95% interval)")
    else:
        ax.plot(frame["depth"], frame[quality], marker="o", color="tab:blue", label=f"{label} {quality}")
    if "baseline" in frame:
        ax.axhline(float(frame["baseline"].iloc[0]), color="tab:blue", ls="--", lw=1,
                   label=f"first stage alone ({float(frame['baseline'].iloc[0]):.3f})")
    ax.set(title=title, xlabel="candidates re-ranked per query (depth)", ylabel=quality)
    right = ax.twinx()
    right.plot(frame["depth"], frame[cost], marker="s", color="tab:orange", label=cost)
    right.set_ylabel(cost)
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", bbox_to_anchor=(1.12, 1), fontsize=9)
    ax.grid(alpha=0.3)
    return ax


def reliability_diagram(curves: Mapping[str, tuple[Sequence[float], Sequence[int]]], *, title: str, bins: int = 10,
                        ylabel: str = "share actually relevant", ax: "Axes | None" = None) -> "Axes":
    """Calibration: for each name, the share of positives among pairs binned by predicted probability.

    A calibrated model sits on the diagonal; the legend gives each one's expected calibration error
    (ECE: the mean gap between predicted probability and observed share, weighted by bin size) and how
    many bins hold pairs (a curve of two points says little). Taught in ``notebooks/05_cross_encoder.ipynb``.

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
        ax.plot(xs, ys, marker="o", label=f"{name} (ECE {ece:.3f}, {len(xs)} bins with pairs)")
    ax.set(title=title, xlabel="predicted probability", ylabel=ylabel, xlim=(0, 1), ylim=(0, 1))
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
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return ax


def interval_dots(table: pd.DataFrame, *, title: str, xlabel: str = "change in nDCG@10", ax: "Axes | None" = None,
                  reference: float = 0.0, reference_label: str | None = None) -> "Axes":
    """Differences as dots with their confidence intervals (rows: comparisons; columns ``diff``,
    ``low``, ``high``), a line at ``reference`` (0 for differences; an overall mean for absolute
    scores): an interval that crosses it is no difference at this size.

    >>> t = pd.DataFrame({"diff": [0.02, -0.01], "low": [0.01, -0.03], "high": [0.03, 0.01]}, index=["a", "b"])
    >>> interval_dots(t, title="t").get_xlabel()
    'change in nDCG@10'
    """
    ax = _axes(ax, figsize=(7, 0.6 * len(table) + 1.6))
    y = np.arange(len(table))[::-1]
    ax.errorbar(table["diff"], y, xerr=[table["diff"] - table["low"], table["high"] - table["diff"]], fmt="o",
                capsize=4, color="tab:blue")
    ax.axvline(reference, color="0.3", lw=1, ls="--", label=reference_label)
    if reference_label:
        ax.legend(loc="best", fontsize=8)
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


def in_batch_matrix(sim: np.ndarray, queries: Sequence[str], passages: Sequence[str], *, title: str,
                    wrap: int = 38, ax: "Axes | None" = None) -> "Axes":
    """What MultipleNegativesRankingLoss sees in one batch: the cosine of every query (rows) with every
    passage (columns); the diagonal holds each query's own answer, every other cell is an in-batch
    negative. The loss is a softmax over each row that should pick the diagonal. Taught in
    ``notebooks/02_losses.ipynb``.

    >>> ax = in_batch_matrix(np.eye(2), ["q1", "q2"], ["p1", "p2"], title="t")
    >>> len(ax.patches)
    2
    """
    import seaborn as sns
    from matplotlib.patches import Rectangle

    cut = lambda t: t if len(t) <= wrap else t[: wrap - 1] + "…"
    n = len(queries)
    ax = _axes(ax, figsize=(0.9 * n + 5, 0.6 * n + 2.5))
    sns.heatmap(np.asarray(sim), annot=True, fmt=".2f", cmap="viridis", xticklabels=[cut(p) for p in passages],
                yticklabels=[cut(q) for q in queries], ax=ax, cbar_kws={"label": "cosine similarity"})
    for i in range(n):
        ax.add_patch(Rectangle((i, i), 1, 1, fill=False, ec="white", lw=2.5))
    ax.set(title=title, xlabel="passages in the batch (each query's answer on the diagonal)", ylabel="queries")
    ax.tick_params(axis="x", rotation=60)
    return ax


def value_heatmap(table: pd.DataFrame, *, title: str, baseline: str | None = None, fmt: str = ".3f",
                  floor: float = 0.05, ax: "Axes | None" = None) -> "Axes":
    """A table of scores (rows: models, columns: metrics) as a heatmap that prints the **values** and
    colours each cell by its difference from the ``baseline`` row (default: the first), on one shared,
    symmetric scale of at least ``floor``: a gap of a few thousandths stays pale, as it should.
    Taught in ``notebooks/02_losses.ipynb``.

    >>> t = pd.DataFrame({"nDCG@10": [0.70, 0.69], "AP": [0.5, 0.6]}, index=["mnrl", "cosent"])
    >>> value_heatmap(t, title="t").get_ylabel()
    'model'
    """
    import seaborn as sns

    values = table.astype(float)
    ref = values.loc[baseline] if baseline is not None else values.iloc[0]
    diff = values - ref
    limit = max(floor, float(diff.abs().max().max()))
    ax = _axes(ax, figsize=(1.5 * values.shape[1] + 3, 0.55 * values.shape[0] + 1.5))
    sns.heatmap(diff, annot=values, fmt=fmt, cmap="RdBu", vmin=-limit, vmax=limit, linewidths=0.5, ax=ax,
                cbar_kws={"label": f"difference from {ref.name}"})
    ax.set(title=title, xlabel="metric", ylabel="model")
    ax.tick_params(axis="y", rotation=0)
    return ax


def joint_maps(coords: np.ndarray, groups: Sequence[str], models: Sequence[str], *, marks: Mapping[str, int] | None = None,
               title: str, axes=None):
    """Two (or more) models' passages on **one** 2-D map: ``coords`` were fitted on all their embeddings
    together (``models[i]`` says which model row ``i`` comes from), so positions compare across panels.
    ``marks`` names rows to label in each panel: ``{"query": i, ...}`` with ``i`` the row of the first
    model; the same item of the k-th model is row ``i + k * rows_per_model``. Taught in
    ``notebooks/01_representations.ipynb``.

    >>> c = np.array([[0, 0], [1, 1], [0.2, 0], [1, 0.8]])
    >>> axes = joint_maps(c, ["a", "b", "a", "b"], ["zero-shot"] * 2 + ["fine-tuned"] * 2, marks={"q": 0}, title="t")
    >>> [ax.get_title() for ax in axes]
    ['zero-shot', 'fine-tuned']
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    names = list(dict.fromkeys(models))
    per = len(coords) // len(names)
    if axes is None:
        fig, axes = plt.subplots(1, len(names), figsize=(8 * len(names), 6.5), sharex=True, sharey=True)
    axes = list(np.atleast_1d(axes))
    groups = list(groups)
    order = sorted(set(groups))
    palette = dict(zip(order, sns.color_palette("tab10" if len(order) <= 10 else "husl", len(order))))
    marked = set((marks or {}).values())
    for k, (ax, name) in enumerate(zip(axes, names)):
        rows = [i for i in range(k * per, (k + 1) * per) if i - k * per not in marked]
        frame = pd.DataFrame({"x": coords[rows, 0], "y": coords[rows, 1], "group": [groups[i] for i in rows]})
        sns.scatterplot(frame, x="x", y="y", hue="group", hue_order=order, palette=palette, s=14, ax=ax, legend=k == len(names) - 1)
        offsets = [(14, 30), (14, -34), (-110, 14), (-110, -30)]
        for m, (label, i) in enumerate((marks or {}).items()):
            x, y = coords[i + k * per]
            ax.scatter([x], [y], s=160, marker="*", color="black", zorder=5)
            ax.annotate(label, (x, y), xytext=offsets[m % len(offsets)], textcoords="offset points", fontsize=9,
                        weight="bold", arrowprops={"arrowstyle": "-", "color": "0.3", "lw": 0.8},
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "alpha": 0.9})
        ax.set(title=name, xlabel="component 1", ylabel="component 2")
    if axes[-1].get_legend():
        sns.move_legend(axes[-1], "center left", bbox_to_anchor=(1, 0.5), fontsize=8, title="topic")
    axes[0].figure.suptitle(title)
    return axes
