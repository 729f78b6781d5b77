"""Fine-tuning on the sentence-transformers Trainers: one core, a bi-encoder and a cross-encoder on top.

- :mod:`kit.train.core`   the shared loop (settings, step-0 and dev evaluations, best checkpoint,
  timing, time estimate, quiet output, DDP): :func:`~kit.train.core.fit`
- :mod:`kit.train.bi`     bi-encoder losses by data shape, :class:`RetrievalEvaluator`, :func:`train_bi_encoder`
- :mod:`kit.train.cross`  re-ranker losses, datasets, :class:`RerankEvaluator`, :func:`train_cross_encoder`
- :mod:`kit.train.adapt`  task adaptation: :func:`freeze`, :func:`add_adapter`, :func:`reinitialize`

The end-to-end recipes that also mine negatives and choose settings on dev (what ``python -m kit
train-bi`` and ``train-ce`` run) are in :mod:`kit.recipes`. Taught in ``notebooks/02``, ``04`` and ``05``.

>>> from kit.train import TrainConfig
>>> TrainConfig().batch_size
32
"""
from .adapt import add_adapter, count_parameters, freeze, reinitialize, transformer_layers
from .bi import LOSS_DATA_SHAPE, RetrievalEvaluator, make_loss, plan_pool, train_bi_encoder
from .core import EtaCallback, TrainConfig, TrainResult, fit, format_seconds, planned_steps, world_size
from .cross import (PAIR_TOKENS_PER_PASS, RERANKER_LOSSES, RerankerConfig, RerankEvaluator, make_reranker_loss,
                    mini_batch_pairs_for, reranker_dataset, train_cross_encoder)

__all__ = [
    "LOSS_DATA_SHAPE", "PAIR_TOKENS_PER_PASS", "RERANKER_LOSSES", "EtaCallback", "RerankEvaluator", "RerankerConfig", "RetrievalEvaluator",
    "TrainConfig", "TrainResult", "add_adapter", "count_parameters", "fit", "format_seconds", "freeze",
    "make_loss", "make_reranker_loss", "mini_batch_pairs_for", "planned_steps", "plan_pool", "reinitialize", "reranker_dataset",
    "train_bi_encoder", "train_cross_encoder", "transformer_layers", "world_size",
]
