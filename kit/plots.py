"""The figures the notebooks draw. Each returns the matplotlib Axes; titles state a finding,
axes are labelled, and the run's numbers go in the legend.

>>> from kit.plots import similarity_heatmap
>>> ax = similarity_heatmap(sim, labels, title="Paraphrases sit close together")   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd


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


def project_2d(embeddings: np.ndarray, method: str = "pca", seed: int = 42) -> np.ndarray:
    """2-D coordinates of embeddings with PCA or t-SNE (scikit-learn)."""
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(embeddings)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30, max(5, len(embeddings) // 20))
        return TSNE(n_components=2, metric="cosine", init="pca", perplexity=perplexity,
                    random_state=seed).fit_transform(embeddings)
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")


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
    sns.kdeplot(frame, x="cosine", hue=by if hue is None else frame[by] + " / " + frame[hue], common_norm=False,
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
