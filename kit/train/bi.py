"""Bi-encoder training: losses by data shape, a dev evaluator scored with ir-measures (exact, or
over a bounded candidate pool), and :func:`train_bi_encoder` on the shared training core.

Taught in ``notebooks/01_representations.ipynb`` (a first fine-tune), ``02_losses.ipynb`` (losses)
and ``04_bi_encoder.ipynb`` (the recipe, task adaptation, convergence).

>>> from kit.train import train_bi_encoder, RetrievalEvaluator
>>> result = train_bi_encoder(load_bi_encoder(), positive_pairs(ds, "train"),
...                           evaluator=RetrievalEvaluator(ds, "dev"))       # doctest: +SKIP
>>> result.best_metric, result.seconds                                      # doctest: +SKIP
"""
from __future__ import annotations

import os
import random
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..data import Qrels, Run
from ..errors import KitError
from .core import TrainConfig, TrainResult, fit

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

    from ..data import BeirDataset

# Which loss fits which data shape (the table notebook 02 teaches).
LOSS_DATA_SHAPE: dict[str, str] = {
    "mnrl": "(anchor, positive[, negative]): positive pairs; other passages in the batch are the negatives",
    "contrastive": "(sentence1, sentence2, label): label 1 = similar, 0 = dissimilar",
    "online_contrastive": "(sentence1, sentence2, label): like contrastive, but only the hard pairs of each batch count",
    "triplet": "(anchor, positive, negative): the positive must be closer than the negative by a margin",
    "cosent": "(sentence1, sentence2, score): a graded similarity in [0, 1]; the ranking of pairs is learned",
    "cosine": "(sentence1, sentence2, score): regress cosine similarity onto the score",
}


def make_loss(name: str, model: "SentenceTransformer", **kwargs: Any):
    """The sentence-transformers bi-encoder loss called ``name`` (a key of :data:`LOSS_DATA_SHAPE`).

    >>> loss = make_loss("mnrl", model)                      # doctest: +SKIP
    """
    from sentence_transformers.sentence_transformer import losses

    table: dict[str, Callable] = {
        "mnrl": losses.MultipleNegativesRankingLoss,
        "contrastive": losses.ContrastiveLoss,
        "online_contrastive": losses.OnlineContrastiveLoss,
        "triplet": losses.TripletLoss,
        "cosent": losses.CoSENTLoss,
        "cosine": losses.CosineSimilarityLoss,
    }
    if name not in table:
        raise KitError(f"unknown loss {name!r}; choose one of: {', '.join(table)}")
    return table[name](model, **kwargs)


# --------------------------------------------------------------------------- dev evaluation

def _base_evaluator():
    from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

    return BaseEvaluator


def plan_pool(qrels: Qrels, candidates: Run | None, n_docs: int, max_texts: int | None, *,
              depths: Sequence[int] = (100, 50, 30, 20, 10, 5), min_queries: int = 20,
              seed: int = 42) -> tuple[list[str], int | None, set[str] | None]:
    """Which dev queries and how deep a candidate pool to score so one evaluation encodes at most
    ``max_texts`` texts (queries plus pool passages).

    Returns ``(query ids, depth, pool)``; ``pool=None`` means the whole corpus fits (exact scores).
    The pool is every judged passage of the kept queries plus the top ``depth`` of ``candidates``
    for each; the deepest depth that fits all queries wins, then fewer queries (seeded), never below
    ``min_queries``. Taught in ``notebooks/04_bi_encoder.ipynb``.

    >>> qrels = {f"q{i}": {f"d{i}": 1} for i in range(4)}
    >>> cands = {f"q{i}": {f"d{j}": 1.0 - j / 10 for j in range(8)} for i in range(4)}
    >>> q, depth, pool = plan_pool(qrels, cands, n_docs=1000, max_texts=12, depths=(5, 3), min_queries=2)
    >>> len(q), depth, len(pool)
    (4, 5, 5)
    """
    qids = sorted(qrels)
    if max_texts is None or n_docs + len(qids) <= max_texts or not candidates:
        return qids, None, None

    def pool_for(keep: list[str], depth: int) -> set[str]:
        pool = {d for q in keep for d in qrels[q]}
        for q in keep:
            ranked = sorted(candidates.get(q, {}).items(), key=lambda x: (-x[1], x[0]))[:depth]
            pool.update(d for d, _ in ranked)
        return pool

    for depth in depths:
        pool = pool_for(qids, depth)
        if len(pool) + len(qids) <= max_texts:
            return qids, depth, pool
    depth = depths[-1]
    order = random.Random(seed).sample(qids, len(qids))
    keep = order
    for n in range(len(order), min_queries - 1, -1):
        keep = sorted(order[:n])
        pool = pool_for(keep, depth)
        if len(pool) + n <= max_texts:
            return keep, depth, pool
    keep = sorted(order[:max(1, min(min_queries, len(order)))])
    return keep, depth, pool_for(keep, depth)


class RetrievalEvaluator(_base_evaluator()):
    """Dev-split retrieval scored with ir-measures (graded nDCG@10, like every number in the kit).

    Used by the Trainer to pick the best checkpoint (``primary_metric``: ``<name>_nDCG@10``).
    Three sizes: the whole corpus (exact); ``max_docs`` (judged passages plus random distractors);
    or a **bounded candidate pool**: ``candidates`` (a first-stage run computed once, e.g. BM25 or
    the base model) and ``max_texts`` (what one evaluation may encode), see :func:`plan_pool`.
    Pool and distractor scores come out higher than over the whole corpus; they compare
    checkpoints with each other, not with test numbers.

    >>> evaluator = RetrievalEvaluator(ds, "dev")             # doctest: +SKIP
    >>> evaluator(model)                                      # doctest: +SKIP
    {'dev_nDCG@10': 0.64, 'dev_RR@10': 0.61, 'dev_R@100': 0.97}
    """

    def __init__(self, ds: "BeirDataset", split: str = "dev", *, name: str | None = None,
                 measures: tuple[str, ...] = ("nDCG@10", "RR@10", "R@100"), batch_size: int = 64,
                 max_queries: int | None = None, max_docs: int | None = None, seed: int = 42,
                 candidates: Run | None = None, max_texts: int | None = None, min_queries: int = 20):
        super().__init__()
        queries, qrels = ds.split(split)
        if max_queries is not None and max_queries < len(queries):
            keep = sorted(random.Random(seed).sample(sorted(queries), max_queries))
            queries, qrels = {q: queries[q] for q in keep}, {q: qrels[q] for q in keep}
        corpus = ds.corpus
        self.pool_depth: int | None = None
        if candidates is not None and max_texts is not None:
            keep, depth, pool = plan_pool(qrels, candidates, len(corpus), max_texts, min_queries=min_queries, seed=seed)
            queries, qrels = {q: queries[q] for q in keep}, {q: qrels[q] for q in keep}
            if pool is not None:
                corpus = {d: doc for d, doc in corpus.items() if d in pool}
                self.pool_depth = depth
        elif max_docs is not None and max_docs < len(corpus):
            judged = {d for docs in qrels.values() for d in docs}
            others = sorted(d for d in corpus if d not in judged)
            extra = random.Random(seed).sample(others, max(0, min(len(others), max_docs - len(judged))))
            keep_docs = judged | set(extra)
            corpus = {d: doc for d, doc in corpus.items() if d in keep_docs}
        self.corpus, self.queries, self.qrels = corpus, queries, qrels
        self.total_docs, self.total_queries = len(ds.corpus), len(ds.split(split)[0])
        self.name = name if name is not None else split
        self.measures, self.batch_size = measures, batch_size
        self.primary_metric = measures[0]
        self.history: list[dict[str, float]] = []
        self.seconds: list[float] = []   # wall time of each call (the time estimate uses it)

    def describe(self) -> str:
        """One line for the log: how much of the dev split one evaluation scores."""
        where = (f"the whole corpus ({len(self.corpus)} passages)" if len(self.corpus) == self.total_docs else
                 f"a pool of {len(self.corpus)} of {self.total_docs} passages"
                 + (f" (their judged passages + the first stage's top {self.pool_depth} each)" if self.pool_depth else ""))
        return f"{len(self.queries)} of {self.total_queries} {self.name} queries over {where}"

    def __call__(self, model, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> dict[str, float]:
        from ..evaluate import evaluate
        from ..retrieval import DenseIndex

        t0 = time.perf_counter()
        was_training = model.training
        run = DenseIndex.build(model, self.corpus, batch_size=self.batch_size, show_progress_bar=False) \
            .search(self.queries, k=100)
        model.train(was_training)
        metrics = evaluate(run, self.qrels, self.measures)
        self.seconds.append(time.perf_counter() - t0)
        self.history.append({"step": steps, "epoch": epoch, **metrics})
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics


# --------------------------------------------------------------------------- training

def train_bi_encoder(model: "SentenceTransformer", train_dataset: "Dataset", *, config: TrainConfig | None = None,
                     evaluator=None, output_dir: str | os.PathLike | None = None, loss=None,
                     callbacks: list | None = None, **overrides: Any) -> TrainResult:
    """Fine-tune a bi-encoder with the sentence-transformers Trainer and return a :class:`TrainResult`.

    ``config`` (or keyword ``overrides`` of its fields) sets the run; ``evaluator`` (e.g.
    :class:`RetrievalEvaluator` on the dev split) is run before training, every ``eval_steps``
    and at the end, and with ``load_best`` the best checkpoint is kept. Save the model with
    :func:`kit.models.save_model`. Runs unchanged under ``torchrun --nproc_per_node=N`` (see
    :func:`kit.train.core.fit`).

    >>> result = train_bi_encoder(model, positive_pairs(ds), evaluator=RetrievalEvaluator(ds, "dev"),
    ...                           max_steps=20)              # doctest: +SKIP
    """
    cfg = (config or TrainConfig()).with_overrides(**overrides)
    if cfg.max_seq_length:
        model.max_seq_length = cfg.max_seq_length
    loss_fn = loss if loss is not None else make_loss(cfg.loss, model, **cfg.loss_kwargs)
    return fit("bi", model, train_dataset, loss_fn, cfg, evaluator=evaluator, output_dir=output_dir,
               callbacks=callbacks)
