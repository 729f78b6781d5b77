"""Fine-tuning recipes on top of the sentence-transformers Trainer: losses by data shape,
a dev-split evaluator scored with ir-measures, best-checkpoint selection, freezing and adapters.

Taught in ``notebooks/01_representations.ipynb`` (a first fine-tune), ``02_losses.ipynb`` (losses)
and ``04_bi_encoder.ipynb`` (the full recipe, task adaptation, convergence).

>>> from kit.data import load_expense_policy, positive_pairs
>>> from kit.models import load_bi_encoder
>>> from kit.train import train_bi_encoder, RetrievalEvaluator
>>> ds = load_expense_policy()                                              # doctest: +SKIP
>>> result = train_bi_encoder(load_bi_encoder(), positive_pairs(ds, "train"),
...                           evaluator=RetrievalEvaluator(ds, "dev"))       # doctest: +SKIP
>>> result.best_metric, result.seconds                                      # doctest: +SKIP
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import KitError

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

    from .data import BeirDataset

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
    """The sentence-transformers loss called ``name`` (a key of :data:`LOSS_DATA_SHAPE`).

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


# --------------------------------------------------------------------------- evaluator

def _base_evaluator():
    from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

    return BaseEvaluator


class RetrievalEvaluator(_base_evaluator()):
    """Dev-split retrieval scored with ir-measures (graded nDCG@10, like every number in the kit).

    Used by the Trainer to pick the best checkpoint (``primary_metric``: ``<name>_nDCG@10``).

    >>> evaluator = RetrievalEvaluator(ds, "dev")             # doctest: +SKIP
    >>> evaluator(model)                                      # doctest: +SKIP
    {'dev_nDCG@10': 0.64, 'dev_RR@10': 0.61, 'dev_R@100': 0.97}
    """

    def __init__(self, ds: "BeirDataset", split: str = "dev", *, name: str | None = None,
                 measures: tuple[str, ...] = ("nDCG@10", "RR@10", "R@100"), batch_size: int = 64,
                 max_queries: int | None = None, max_docs: int | None = None, seed: int = 42):
        super().__init__()
        import random

        queries, qrels = ds.split(split)
        if max_queries is not None and max_queries < len(queries):
            keep = sorted(random.Random(seed).sample(sorted(queries), max_queries))
            queries, qrels = {q: queries[q] for q in keep}, {q: qrels[q] for q in keep}
        corpus = ds.corpus
        if max_docs is not None and max_docs < len(corpus):
            # A cheaper evaluation: every passage judged for these queries plus random distractors.
            # Scores come out higher than over the whole corpus; compare them with each other only.
            judged = {d for docs in qrels.values() for d in docs}
            others = sorted(d for d in corpus if d not in judged)
            extra = random.Random(seed).sample(others, max(0, min(len(others), max_docs - len(judged))))
            keep_docs = judged | set(extra)
            corpus = {d: doc for d, doc in corpus.items() if d in keep_docs}
        self.corpus, self.queries, self.qrels = corpus, queries, qrels
        self.name = name if name is not None else split
        self.measures, self.batch_size = measures, batch_size
        self.primary_metric = measures[0]
        self.history: list[dict[str, float]] = []
        self.seconds: list[float] = []   # wall time of each call (the CLI's time estimate uses it)

    def __call__(self, model, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> dict[str, float]:
        from .evaluate import evaluate
        from .retrieval import DenseIndex

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


# --------------------------------------------------------------------------- freezing and adapters

def transformer_layers(model: "SentenceTransformer") -> tuple[Any, list[Any]]:
    """``(embeddings, [layer_1, ..., layer_n])`` of the model's transformer (BERT-like, and common others)."""
    auto = model[0].auto_model
    embeddings = getattr(auto, "embeddings", None) or getattr(auto, "embed_tokens", None)
    for path in ("encoder.layer", "layers", "transformer.layer", "encoder.layers"):
        obj = auto
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return embeddings, list(obj)
    raise KitError(f"cannot find the transformer layers of {type(auto).__name__} to freeze")


def count_parameters(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts.

    >>> import torch
    >>> count_parameters(torch.nn.Linear(3, 2))
    (8, 8)
    """
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def freeze(model: "SentenceTransformer", train_top_layers: int) -> "SentenceTransformer":
    """Task adaptation: freeze the embeddings and all but the top ``train_top_layers`` layers.

    ``train_top_layers=0`` freezes the whole transformer (only modules after it, such as an
    adapter, still learn). Modifies ``model`` in place and returns it.

    >>> freeze(model, 2); count_parameters(model)             # doctest: +SKIP
    """
    embeddings, layers = transformer_layers(model)
    if not 0 <= train_top_layers <= len(layers):
        raise KitError(f"train_top_layers must be between 0 and {len(layers)}, got {train_top_layers}")
    for p in model[0].parameters():
        p.requires_grad = False
    for layer in layers[len(layers) - train_top_layers:]:
        for p in layer.parameters():
            p.requires_grad = True
    return model


def add_adapter(model: "SentenceTransformer", *, freeze_encoder: bool = True) -> "SentenceTransformer":
    """Append a small trainable linear adapter after pooling, initialized to the identity.

    At step 0 the model's embeddings are unchanged; training moves only the adapter (plus any
    unfrozen layers). The adapter is a ``Dense`` module, so it saves and loads with the model.

    >>> model = add_adapter(load_bi_encoder()); count_parameters(model)[0]   # doctest: +SKIP
    147840
    """
    import torch
    from sentence_transformers.base.modules.dense import Dense

    dim = (model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
           else model.get_sentence_embedding_dimension())
    adapter = Dense(dim, dim, bias=True, activation_function=torch.nn.Identity(),
                    init_weight=torch.eye(dim), init_bias=torch.zeros(dim))
    names = [type(m).__name__ for m in model]
    position = names.index("Normalize") if "Normalize" in names else len(names)
    modules = list(model)
    modules.insert(position, adapter)
    from sentence_transformers import SentenceTransformer

    new = SentenceTransformer(modules=modules, device=str(model.device))
    new.model_card_data = model.model_card_data
    if freeze_encoder:
        freeze(new, 0)
    return new


def reinitialize(model: "SentenceTransformer", seed: int = 42) -> "SentenceTransformer":
    """Replace every transformer weight with a fresh random initialization (same architecture).

    The baseline for "pre-trained weights converge faster" (notebook 04).
    """
    import torch

    torch.manual_seed(seed)
    auto = model[0].auto_model
    if hasattr(auto, "_init_weights"):
        auto.apply(auto._init_weights)
    else:  # pragma: no cover - non-HF transformer
        for m in auto.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return model


# --------------------------------------------------------------------------- training

def _trainer_callback():
    from transformers import TrainerCallback

    return TrainerCallback


def _dist_ready() -> bool:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return False
    return dist.is_available() and dist.is_initialized()


class _KeepBest(_trainer_callback()):
    """Keep a CPU copy of the weights with the best dev score (the starting weights included).

    Under DDP the Trainer runs the evaluator on rank 0 and broadcasts its metrics, so every rank
    sees the same scores, keeps the same copy and restores the same weights.
    """

    def __init__(self, key: str, start_score: float, model):
        self.key, self.best = key, start_score
        self.state = self._copy(model)

    @staticmethod
    def _copy(model) -> dict:
        return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        score = (metrics or {}).get(self.key)
        if score is not None and model is not None and score > self.best:
            self.best, self.state = score, self._copy(model)

    def restore(self, model) -> None:
        model.load_state_dict(self.state)


class _StepTimer(_trainer_callback()):
    """Wall time of each optimizer step, dev evaluations excluded (for throughput and time estimates)."""

    def __init__(self):
        self.times: list[float] = []
        self._t = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._t is not None:
            self.times.append(time.perf_counter() - self._t)
            self._t = None


def format_seconds(seconds: float) -> str:
    """``75.2`` -> ``'1m15s'``; under a minute, ``'42.0s'``.

    >>> format_seconds(75.2), format_seconds(4.25)
    ('1m15s', '4.2s')
    """
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


class EtaCallback(_trainer_callback()):
    """Prints the measured seconds per step and the time left, once, after the first few steps.

    The first ``skip`` steps (data loading, warm-up) are not measured; the estimate is
    ``steps left x mean seconds per measured step + dev evaluations left x seconds per evaluation``
    (the evaluation time is read from ``evaluator.seconds``, filled by :class:`RetrievalEvaluator`).
    Only the main process prints. Used by ``python -m kit train-bi`` (notebook 04's recipe).
    """

    def __init__(self, log: Callable[[str], None], *, evaluator=None, eval_steps: int | None = None,
                 skip: int = 1, measure: int = 2):
        self.log, self.evaluator, self.eval_steps = log, evaluator, eval_steps
        self.skip, self.measure = skip, measure
        self.timer = _StepTimer()
        self.done = False

    def on_step_begin(self, args, state, control, **kwargs):
        self.timer.on_step_begin(args, state, control)

    def on_step_end(self, args, state, control, **kwargs):
        self.timer.on_step_end(args, state, control)
        measured = self.timer.times[self.skip:]
        left = state.max_steps - state.global_step
        if self.done or left <= 0 or len(measured) < min(self.measure, max(1, state.max_steps - self.skip - 1)):
            return
        self.done = True
        per_step = sum(measured) / len(measured)
        eval_s = (self.evaluator.seconds[-1] if getattr(self.evaluator, "seconds", None) else 0.0)
        evals_left = 0
        if self.evaluator is not None and self.eval_steps:
            evals_left = sum(1 for s in range(state.global_step + 1, state.max_steps + 1)
                             if s % self.eval_steps == 0 or s == state.max_steps)
        eta = left * per_step + evals_left * eval_s
        if state.is_world_process_zero:
            extra = f" + {evals_left} dev evaluation(s) x {eval_s:.1f}s" if evals_left else ""
            self.log(f"measured {per_step:.2f}s per step (steps {self.skip + 1}-{self.skip + len(measured)}); "
                     f"about {format_seconds(eta)} left: {left} steps{extra}")


@dataclass
class TrainConfig:
    """The bi-encoder recipe's settings; the defaults suit a 2-core CPU and short passages."""

    loss: str = "mnrl"                # positive pairs (+ mined negatives): MultipleNegativesRankingLoss
    epochs: float = 1.0               # small data: one pass already moves the model a lot
    max_steps: int = -1               # > 0 caps the run (FAST mode, learning curves)
    batch_size: int = 32              # in-batch negatives: bigger is better, 32 fits CPU memory and time
    learning_rate: float = 5e-5       # a little above the usual 2e-5: few steps to learn in
    warmup_ratio: float = 0.1         # ramp the learning rate up over the first 10% of steps
    max_seq_length: int | None = 128  # passages here are under 160 words; 128 tokens covers most
    no_duplicates: bool = True        # no repeated text in a batch: a duplicate would be a false negative
    eval_steps: int | None = None     # evaluate on dev every N steps (default: about 4 times per run)
    load_best: bool = True            # keep the checkpoint with the best dev score, not the last one
    seed: int = 42
    logging_steps: int = 5
    progress: bool = True             # progress bar and logs; False silences a loop of short runs
    loss_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainResult:
    """What a training run produced and what it cost."""

    model: "SentenceTransformer"
    seconds: float
    steps: int
    examples: int
    trainable_params: int
    total_params: int
    history: list[dict[str, float]]          # dev metrics at each evaluation (step 0 included)
    losses: list[dict[str, float]]           # training loss log
    best_step: int | None = None
    best_metric: float | None = None
    output_dir: str | None = None
    step_seconds: float | None = None        # time spent in training steps (dev evaluations excluded)

    @property
    def examples_per_second(self) -> float:
        """Training examples per second of wall time (``seconds``: dev evaluations included)."""
        return self.examples / self.seconds if self.seconds else float("nan")

    @property
    def train_examples_per_second(self) -> float:
        """Training examples per second spent in training steps (dev evaluations excluded)."""
        return self.examples / self.step_seconds if self.step_seconds else float("nan")


def _steps_per_epoch(n: int, batch_size: int, world: int) -> int:
    return max(1, math.ceil(n / (batch_size * world)))


def world_size() -> int:
    """Number of training processes: ``WORLD_SIZE`` set by ``torchrun`` (1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def planned_steps(n_examples: int, config: TrainConfig | None = None, **overrides: Any) -> int:
    """Optimizer steps a run will take (``max_steps`` if set, else epochs over all processes).

    Taught in ``notebooks/04_bi_encoder.ipynb`` (the command line prints it before training).

    >>> planned_steps(702, batch_size=32), planned_steps(702, max_steps=5)
    (22, 5)
    """
    cfg = TrainConfig(**{**asdict(config or TrainConfig()), **overrides})
    if cfg.max_steps > 0:
        return cfg.max_steps
    return math.ceil(cfg.epochs * _steps_per_epoch(n_examples, cfg.batch_size, world_size()))


def train_bi_encoder(model: "SentenceTransformer", train_dataset: "Dataset", *, config: TrainConfig | None = None,
                     evaluator=None, output_dir: str | os.PathLike | None = None, loss=None,
                     callbacks: list | None = None, **overrides: Any) -> TrainResult:
    """Fine-tune a bi-encoder with the sentence-transformers Trainer and return a :class:`TrainResult`.

    ``config`` (or keyword ``overrides`` of its fields) sets the recipe; ``evaluator`` (e.g.
    :class:`RetrievalEvaluator` on the dev split) is run before training, every ``eval_steps``
    and at the end, and with ``load_best`` the best checkpoint is kept. ``output_dir`` holds the
    checkpoints (a temporary folder if not given); save the final model with :func:`save_model`.

    Runs unchanged under ``torchrun --nproc_per_node=N`` (DDP; gloo on CPU): each process trains on
    its share of every epoch, the evaluator runs on rank 0 (encoding shared across ranks) and its
    scores reach every rank, so all ranks return the same weights and history.

    >>> result = train_bi_encoder(model, positive_pairs(ds), evaluator=RetrievalEvaluator(ds, "dev"),
    ...                           max_steps=20)              # doctest: +SKIP
    """
    import torch
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (BatchSamplers,
                                                                           SentenceTransformerTrainingArguments)

    cfg = TrainConfig(**{**asdict(config or TrainConfig()), **overrides})
    if len(train_dataset) == 0:
        raise KitError("train_bi_encoder: the training dataset is empty")
    if cfg.batch_size < 1:
        raise KitError(f"batch_size must be at least 1, got {cfg.batch_size}")
    world = world_size()
    if world > 1 and len(train_dataset) < cfg.batch_size * world:
        # DDP drops the last incomplete batch: with fewer rows than this, no process gets a batch.
        raise KitError(f"train_bi_encoder: {len(train_dataset)} training rows cannot fill one batch of "
                       f"{cfg.batch_size} on each of {world} processes; lower the batch size")
    if cfg.max_seq_length:
        model.max_seq_length = cfg.max_seq_length
    if count_parameters(model)[0] == 0:
        raise KitError("train_bi_encoder: every parameter is frozen, nothing would train "
                       "(freeze(model, 0) needs an adapter: add_adapter)")
    steps = planned_steps(len(train_dataset), cfg)
    eval_steps = cfg.eval_steps or max(1, steps // 4)
    tmp = None
    if output_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="kit-train-")
        output_dir = tmp.name
    use_eval = evaluator is not None
    keep_best = None
    first_entry = len(getattr(evaluator, "history", [])) if use_eval else 0  # an evaluator may be reused
    if use_eval:  # step 0 counts: a run that only gets worse returns the starting weights
        start = evaluator(model, epoch=0, steps=0)
        if cfg.load_best:
            keep_best = _KeepBest(f"eval_{evaluator.primary_metric}", start[evaluator.primary_metric], model)
    for cb in callbacks or []:
        if isinstance(cb, EtaCallback) and cb.eval_steps is None and use_eval:
            cb.eval_steps = eval_steps
    timer = next((cb.timer for cb in callbacks or [] if isinstance(cb, EtaCallback)), None)
    extra = []
    if timer is None:  # time the steps anyway: TrainResult.step_seconds
        timer = _StepTimer()
        extra.append(timer)
    quiet = not cfg.progress or os.environ.get("KIT_QUIET", "0") == "1"
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,   # a float < 1 is a ratio of the total steps (transformers 5)
        batch_sampler=BatchSamplers.NO_DUPLICATES if cfg.no_duplicates else BatchSamplers.BATCH_SAMPLER,
        eval_strategy="steps" if use_eval else "no",
        eval_steps=eval_steps if use_eval else None,
        save_strategy="no",  # the best weights are kept in memory by _KeepBest (step 0 included)
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        disable_tqdm=quiet,
        dataloader_drop_last=world > 1,   # DDP: an uneven last batch could hang the processes
        ddp_backend="gloo" if world > 1 and not torch.cuda.is_available() else None,
        use_cpu=not torch.cuda.is_available(),
    )
    loss_fn = loss if loss is not None else make_loss(cfg.loss, model, **cfg.loss_kwargs)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_dataset, loss=loss_fn,
                                         evaluator=evaluator,
                                         callbacks=[*(callbacks or []), *extra, *([keep_best] if keep_best else [])])
    if quiet:  # without a progress bar the Trainer prints every log line instead; silence it too
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        if hasattr(model, "model_card_data"):  # its progress bar too (the card then has no widget examples)
            model.model_card_data.generate_widget_examples = False
    for name in ("transformers.trainer", "sentence_transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    done = trainer.state.global_step
    if tmp is not None:
        tmp.cleanup()
    if done == 0:
        raise KitError(f"train_bi_encoder: no training step ran ({len(train_dataset)} rows, batch size "
                       f"{cfg.batch_size}, {world} process(es)); lower the batch size or add data")
    if keep_best is not None:
        keep_best.restore(model)
    trainable, total = count_parameters(model)
    history = list(getattr(evaluator, "history", []))[first_entry:] if use_eval else []
    if use_eval and world > 1 and _dist_ready():
        # Only rank 0 ran the evaluator during training; give every rank its history.
        from torch.distributed import broadcast_object_list

        box = [history]
        broadcast_object_list(box, src=0)
        history = box[0]
    best_step = best_metric = None
    if use_eval and history:
        key = evaluator.measures[0] if hasattr(evaluator, "measures") else None
        if key:
            best = max(history, key=lambda h: h[key])
            best_step, best_metric = int(best["step"]), float(best[key])
    losses = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    return TrainResult(model=trainer.model, seconds=seconds, steps=done,
                       examples=done * cfg.batch_size * world, trainable_params=trainable, total_params=total,
                       history=history, losses=losses, best_step=best_step, best_metric=best_metric,
                       output_dir=None if tmp is not None else str(output_dir),
                       step_seconds=sum(timer.times) if timer.times else None)


def save_model(model: "SentenceTransformer", path: str | os.PathLike, *, overwrite_empty: bool = True) -> Path:
    """Save ``model`` (weights, tokenizer, model card ``README.md``) to ``path``, atomically.

    Written to a temporary folder next to ``path`` and renamed when complete, so an interrupted
    save never leaves a half-written model. ``path`` must not exist, or be an empty folder; missing
    parent folders are created. Taught in ``notebooks/04_bi_encoder.ipynb``.

    >>> save_model(result.model, "models/my-retriever")       # doctest: +SKIP
    """
    import shutil

    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir()) or not overwrite_empty):
        raise KitError(f"{target} exists and is not empty; choose a new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        model.save(str(tmp))
        umask = os.umask(0)
        os.umask(umask)
        for item in [tmp, *tmp.rglob("*")]:  # mkdtemp and some writers create owner-only files
            item.chmod((0o777 if item.is_dir() else 0o666) & ~umask)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def holdout_split(ds: "BeirDataset", split: str = "train", *, fraction: float = 0.1, max_queries: int = 200,
                  seed: int = 42, name: str = "dev") -> "BeirDataset":
    """A copy of ``ds`` where a seeded ``fraction`` of ``split``'s queries (at least 1, at most
    ``max_queries``) moves to a new split ``name``: a dev split for datasets that have none.

    The held-out queries are no longer in ``split``, so they are never trained on. What
    ``python -m kit train-bi`` does for a folder without a dev split (notebook 04).

    >>> small = holdout_split(load_beir("my_data"), "train")   # doctest: +SKIP
    >>> small.splits                                           # doctest: +SKIP
    ['dev', 'test', 'train']
    """
    import dataclasses
    import random

    from .data import BeirDataset

    judged = ds.qrels.get(split)
    if judged is None:
        raise KitError(f"{ds.name}: no split {split!r} to hold queries out of")
    if name in ds.qrels:
        raise KitError(f"{ds.name}: split {name!r} already exists")
    qids = sorted(judged)
    if len(qids) < 2:
        raise KitError(f"{ds.name}: split {split!r} has {len(qids)} query; need at least 2 to hold one out as {name}")
    n = min(max(1, round(fraction * len(qids))), max_queries, len(qids) - 1)
    held = set(random.Random(seed).sample(qids, n))
    qrels = {s: dict(q) for s, q in ds.qrels.items()}
    qrels[split] = {q: judged[q] for q in qids if q not in held}
    qrels[name] = {q: judged[q] for q in qids if q in held}
    return dataclasses.replace(ds, qrels=qrels) if isinstance(ds, BeirDataset) else ds


# --------------------------------------------------------------------------- the series' shared fine-tune

SHARED_MODEL = "minilm-expense-mnrl"


def shared_fine_tuned_model(ds: "BeirDataset", *, refresh: bool = False) -> "SentenceTransformer":
    """The fine-tuned bi-encoder notebooks 01, 02 and 04 share: trained once, then loaded from the cache.

    all-MiniLM-L6-v2 + MultipleNegativesRankingLoss on the train split's (query, answer) pairs,
    the :class:`TrainConfig` defaults, ``pick(full=12, fast=2)`` steps of 32 (8 in FAST mode) pairs.

    >>> model = shared_fine_tuned_model(load_expense_policy())    # doctest: +SKIP
    """
    from .cache import cached_model
    from .config import pick
    from .data import positive_pairs
    from .models import load_bi_encoder

    def train():
        result = train_bi_encoder(load_bi_encoder(), positive_pairs(ds, "train"),
                                  max_steps=pick(full=12, fast=2), batch_size=pick(full=32, fast=8),
                                  max_seq_length=pick(full=128, fast=64))
        return result.model

    return cached_model(SHARED_MODEL, train, refresh=refresh)
