"""Cross-encoder (re-ranker) training on the shared core: losses by data shape, datasets built
from (query, passage, label) rows, a re-ranking dev evaluator scored with ir-measures, and
:func:`train_cross_encoder`. Taught in ``notebooks/05_cross_encoder.ipynb``.

>>> from kit.train.cross import RerankEvaluator, reranker_dataset, train_cross_encoder
>>> rows = rerank_pairs(ds, "train", candidates)                              # doctest: +SKIP
>>> result = train_cross_encoder(load_cross_encoder(), reranker_dataset(rows, "bce"),
...                              evaluator=RerankEvaluator(ds, "dev", candidates=dev_run))   # doctest: +SKIP
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ..data import Run
from ..errors import KitError
from .core import TrainConfig, TrainResult, fit

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import CrossEncoder

    from ..data import BeirDataset

# Which cross-encoder loss fits which data shape (notebook 05).
RERANKER_LOSSES: dict[str, str] = {
    "bce": "(query, passage, label): pointwise; each pair is classified relevant (1) or not (0) on its own",
    "mnrl": "(query, positive, negative_1..n): listwise over the query's candidates plus in-batch passages",
    "lambda": "(query, [passages], [labels]): listwise; swaps that change nDCG the most weigh the most",
}


@dataclass
class RerankerConfig(TrainConfig):
    """A re-ranker's training settings: :class:`~kit.train.core.TrainConfig` with a cross-encoder's defaults."""

    loss: str = "mnrl"                 # listwise over each query's candidates (see RERANKER_LOSSES)
    batch_size: int = 16               # queries (mnrl, lambda) or pairs (bce) per step
    learning_rate: float = 5e-5
    no_duplicates: bool = False        # rows repeat a query by design (several candidates per query)
    head_learning_rate: float | None = 1e-3   # a fresh scoring head learns faster than the pre-trained encoder
    in_batch_negatives: int = 2        # mnrl: passages of other queries in the batch added as negatives
    mini_batch_pairs: int | None = None   # mnrl: pairs per forward pass (gradient caching); None: chosen, 0: all at once


PAIR_TOKENS_PER_PASS = 96 * 192   # (query, passage) tokens one forward pass of a re-ranker step may hold (about 8 GB on CPU)


def mini_batch_pairs_for(cfg: RerankerConfig, columns: Sequence[str], max_seq_length: int) -> int | None:
    """How many (query, passage) pairs one forward pass of a ``mnrl`` step should hold, or ``None`` for all.

    A step scores ``batch_size x (1 positive + n negative columns + in-batch negatives)`` pairs; when
    those pairs times ``max_seq_length`` exceed :data:`PAIR_TOKENS_PER_PASS` (long texts), the loss is
    computed a slice at a time with gradient caching (the same loss, bounded memory, slower steps).
    ``cfg.mini_batch_pairs`` set by hand wins (0: never slice). :func:`train_cross_encoder` asks this.

    >>> cols = ["query", "positive", "negative_1", "negative_2"]
    >>> mini_batch_pairs_for(RerankerConfig(in_batch_negatives=1), cols, 176), mini_batch_pairs_for(RerankerConfig(in_batch_negatives=1, batch_size=32), cols, 400)
    (None, 46)
    """
    if cfg.loss != "mnrl" or cfg.mini_batch_pairs == 0:
        return None
    if cfg.mini_batch_pairs:
        return cfg.mini_batch_pairs
    negatives = sum(c.startswith("negative") for c in columns)
    pairs = cfg.batch_size * (1 + negatives + cfg.in_batch_negatives)
    return max(1, PAIR_TOKENS_PER_PASS // max_seq_length) if pairs * max_seq_length > PAIR_TOKENS_PER_PASS else None


def reranker_dataset(rows: Sequence[dict], loss: str = "mnrl", *, seed: int = 42) -> "Dataset":
    """The training rows of :func:`kit.data.rerank_pairs` in the shape ``loss`` reads.

    - ``bce``: ``query, passage, label`` (shuffled, seeded);
    - ``mnrl``: ``query, positive, negative_1 .. negative_n`` (one row per positive; the query's
      negatives, hard first, in every row);
    - ``lambda``: ``query, docs, labels`` (one row per query, the list of its candidates).

    >>> rows = [{"query": "q", "passage": "a", "label": 1.0, "query_id": "1", "doc_id": "a", "kind": "positive"},
    ...         {"query": "q", "passage": "b", "label": 0.0, "query_id": "1", "doc_id": "b", "kind": "hard"}]
    >>> reranker_dataset(rows, "mnrl").column_names, reranker_dataset(rows, "lambda")[0]["labels"]
    (['query', 'positive', 'negative_1'], [1.0, 0.0])
    """
    from datasets import Dataset

    if loss not in RERANKER_LOSSES:
        raise KitError(f"unknown re-ranker loss {loss!r}; choose one of: {', '.join(RERANKER_LOSSES)}")
    if not rows:
        raise KitError("reranker_dataset: no training rows")
    if loss == "bce":
        order = list(range(len(rows)))
        random.Random(seed).shuffle(order)
        return Dataset.from_dict({"query": [rows[i]["query"] for i in order],
                                  "passage": [rows[i]["passage"] for i in order],
                                  "label": [float(rows[i]["label"]) for i in order]})
    by_query: dict[str, list[dict]] = {}
    for r in rows:
        by_query.setdefault(r["query_id"], []).append(r)
    if loss == "lambda":
        groups = [g for g in by_query.values() if len(g) > 1]
        return Dataset.from_dict({"query": [g[0]["query"] for g in groups],
                                  "docs": [[r["passage"] for r in g] for g in groups],
                                  "labels": [[float(r["label"]) for r in g] for g in groups]})
    width = max(sum(r["kind"] != "positive" for r in g) for g in by_query.values())
    if width == 0:
        raise KitError("reranker_dataset: mnrl needs at least one negative per query")
    data: dict[str, list[str]] = {"query": [], "positive": [], **{f"negative_{k + 1}": [] for k in range(width)}}
    for g in by_query.values():
        negs = [r["passage"] for r in g if r["kind"] != "positive"]   # related ones first: they are the hardest
        if len(negs) < width:  # every row needs the same columns: repeat the query's own negatives
            negs = (negs * width)[:width] if negs else None
        if negs is None:
            continue
        for r in (r for r in g if r["kind"] == "positive"):
            data["query"].append(r["query"])
            data["positive"].append(r["passage"])
            for k, n in enumerate(negs):
                data[f"negative_{k + 1}"].append(n)
    return Dataset.from_dict(data)


def make_reranker_loss(name: str, model: "CrossEncoder", *, pos_weight: float | None = None,
                       in_batch_negatives: int = 2, mini_batch_size: int | None = None):
    """The sentence-transformers cross-encoder loss ``name`` (a key of :data:`RERANKER_LOSSES`).

    ``bce`` takes ``pos_weight`` (set it to the negatives-per-positive ratio, so positives are not
    drowned out); ``mnrl`` adds ``in_batch_negatives`` passages of other queries to each query's list,
    and with ``mini_batch_size`` becomes its cached variant (the same loss, computed ``mini_batch_size``
    pairs at a time with gradient caching, so memory no longer grows with the step's pairs).

    >>> loss = make_reranker_loss("bce", reranker, pos_weight=3.0)       # doctest: +SKIP
    """
    import torch
    from sentence_transformers.cross_encoder import losses

    cosine_head = any(type(m).__name__ == "SegmentCosine" for m in model)
    if name == "mnrl":
        # a cosine head's scores are cosines: a temperature of 1/20, as for bi-encoders
        kwargs = dict(scale=20.0, activation_fn=torch.nn.Identity()) if cosine_head else {}
        if mini_batch_size:
            return losses.CachedMultipleNegativesRankingLoss(model, num_negatives=in_batch_negatives,
                                                             mini_batch_size=mini_batch_size, **kwargs)
        return losses.MultipleNegativesRankingLoss(model, num_negatives=in_batch_negatives, **kwargs)
    if name == "bce":
        return losses.BinaryCrossEntropyLoss(model, pos_weight=None if pos_weight is None else torch.tensor(float(pos_weight)))
    if name == "lambda":
        return losses.LambdaLoss(model)
    raise KitError(f"unknown re-ranker loss {name!r}; choose one of: {', '.join(RERANKER_LOSSES)}")


def _base_evaluator():
    from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

    return BaseEvaluator


class RerankEvaluator(_base_evaluator()):
    """Dev-split re-ranking: the cross-encoder re-scores each dev query's top ``depth`` candidates
    (a first-stage run computed once); the result is scored with ir-measures.

    Its cost is ``queries x depth`` pairs per call; ``max_pairs`` keeps a seeded share of the queries
    so one evaluation scores at most that many pairs (never fewer than ``min_queries`` queries).

    >>> evaluator = RerankEvaluator(ds, "dev", candidates=dev_run, depth=20)      # doctest: +SKIP
    >>> evaluator(reranker)                                                     # doctest: +SKIP
    {'dev_nDCG@10': 0.71, 'dev_RR@10': 0.69}
    """

    def __init__(self, ds: "BeirDataset", split: str = "dev", *, candidates: Run, depth: int = 20,
                 name: str | None = None, measures: tuple[str, ...] = ("nDCG@10", "RR@10"), batch_size: int = 32,
                 max_pairs: int | None = None, min_queries: int = 30, seed: int = 42):
        super().__init__()
        from ..retrieval import top_run

        queries, qrels = ds.split(split)
        qids = sorted(q for q in qrels if candidates.get(q))
        if not qids:
            raise KitError(f"RerankEvaluator: no {split} query has candidates")
        if max_pairs is not None and len(qids) * depth > max_pairs:
            n = max(min(min_queries, len(qids)), max_pairs // depth)
            qids = sorted(random.Random(seed).sample(qids, min(n, len(qids))))
        self.total_queries = len(qrels)
        self.queries = {q: queries[q] for q in qids}
        self.qrels = {q: qrels[q] for q in qids}
        self.candidates = top_run({q: candidates[q] for q in qids}, depth)
        self.corpus, self.depth = ds.corpus, depth
        self.name = name if name is not None else split
        self.measures, self.batch_size = measures, batch_size
        self.primary_metric = measures[0]
        self.history: list[dict[str, float]] = []
        self.seconds: list[float] = []

    @property
    def pairs(self) -> int:
        return sum(len(d) for d in self.candidates.values())

    def describe(self) -> str:
        return (f"{len(self.queries)} of {self.total_queries} {self.name} queries, top {self.depth} candidates "
                f"each ({self.pairs} pairs)")

    def __call__(self, model, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> dict[str, float]:
        from ..evaluate import evaluate
        from ..retrieval import rerank

        t0 = time.perf_counter()
        was_training = model.training
        run = rerank(model, self.corpus, self.queries, self.candidates, depth=self.depth,
                     batch_size=self.batch_size, show_progress_bar=False)
        model.train(was_training)
        metrics = evaluate(run, self.qrels, self.measures)
        self.seconds.append(time.perf_counter() - t0)
        self.history.append({"step": steps, "epoch": epoch, **metrics})
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics


def _optimizer(model, cfg: RerankerConfig):
    """AdamW with a larger learning rate for the freshly initialized scoring head (if set)."""
    import torch

    if not cfg.head_learning_rate:
        return None
    head, body = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        fresh = ("classifier" in name or ".pooler." in name) if not name.split(".")[0].isdigit() \
            else not name.startswith("0.") or name == "0.gate"     # the gated pair encoder's gate is new too
        (head if fresh else body).append(p)
    if not head:
        return None
    return torch.optim.AdamW([{"params": body, "lr": cfg.learning_rate},
                              {"params": head, "lr": cfg.head_learning_rate}], lr=cfg.learning_rate)


def train_cross_encoder(model: "CrossEncoder", train_dataset: "Dataset", *, config: RerankerConfig | None = None,
                        evaluator=None, output_dir: str | os.PathLike | None = None, loss=None,
                        callbacks: list | None = None, **overrides: Any) -> TrainResult:
    """Fine-tune a cross-encoder with the sentence-transformers ``CrossEncoderTrainer``.

    The same core as :func:`kit.train.bi.train_bi_encoder` (step-0 evaluation, best checkpoint,
    timing, DDP). ``train_dataset`` must have the shape of ``config.loss`` (see
    :func:`reranker_dataset`); for ``bce`` without an explicit ``pos_weight`` in ``loss_kwargs``,
    it is set to the data's negatives-per-positive ratio. For ``mnrl`` on long texts the step's
    pairs are scored a slice at a time (:func:`mini_batch_pairs_for`, unless ``mini_batch_pairs`` says otherwise).

    >>> result = train_cross_encoder(load_cross_encoder(), data, evaluator=dev_eval)   # doctest: +SKIP
    """
    cfg = (config or RerankerConfig()).with_overrides(**overrides)
    if not isinstance(cfg, RerankerConfig):
        raise KitError("train_cross_encoder: config must be a RerankerConfig")
    if cfg.max_seq_length:
        model.max_seq_length = cfg.max_seq_length
    if loss is None and cfg.loss == "mnrl":
        cfg.mini_batch_pairs = mini_batch_pairs_for(cfg, train_dataset.column_names, model.max_seq_length)
    if loss is None:
        kwargs = dict(cfg.loss_kwargs)
        if cfg.loss == "bce" and "pos_weight" not in kwargs and "label" in train_dataset.column_names:
            labels = train_dataset["label"]
            pos = sum(1 for v in labels if v > 0.5)
            kwargs["pos_weight"] = (len(labels) - pos) / pos if pos else None
        if cfg.loss == "mnrl":
            kwargs.setdefault("in_batch_negatives", cfg.in_batch_negatives)
            kwargs.setdefault("mini_batch_size", cfg.mini_batch_pairs)
        loss = make_reranker_loss(cfg.loss, model, **kwargs)
    optimizer = _optimizer(model, cfg)
    return fit("cross", model, train_dataset, loss, cfg, evaluator=evaluator, output_dir=output_dir,
               callbacks=callbacks, optimizer=optimizer)
