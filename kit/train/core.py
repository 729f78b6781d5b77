"""The training core both encoders share: one Trainer loop with the settings, the step-0 and
periodic dev evaluations, the best checkpoint kept in memory, step timing, a time estimate, quiet
output for notebooks, and DDP (``torchrun``).

:func:`fit` is called by :func:`kit.train.bi.train_bi_encoder` (a ``SentenceTransformerTrainer``)
and :func:`kit.train.cross.train_cross_encoder` (a ``CrossEncoderTrainer``); nothing else in the
kit builds a Trainer. Taught in ``notebooks/04_bi_encoder.ipynb`` and ``05_cross_encoder.ipynb``.

>>> from kit.train.core import TrainConfig, planned_steps
>>> planned_steps(702, TrainConfig(batch_size=32))
22
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Callable

from ..errors import KitError

if TYPE_CHECKING:
    from datasets import Dataset


@dataclass
class TrainConfig:
    """A training run's settings (both encoders); the defaults suit a 2-core CPU and short passages.

    ``max_seq_length=None`` keeps the model's own length; the recipes (:mod:`kit.recipes`) set it
    from the data (:func:`kit.models.choose_max_seq_length`).
    """

    loss: str = "mnrl"                # bi-encoder: positive pairs (+ mined negatives): MultipleNegativesRankingLoss
    epochs: float = 1.0               # small data: one pass already moves the model a lot
    max_steps: int = -1               # > 0 caps the run (FAST mode, learning curves)
    batch_size: int = 32              # in-batch negatives: bigger is better, 32 fits CPU memory and time
    learning_rate: float = 5e-5       # a little above the usual 2e-5: few steps to learn in
    warmup_ratio: float = 0.1         # ramp the learning rate up over the first 10% of steps
    max_seq_length: int | None = None  # tokens read per text; None = the model's (the recipes choose it from the data)
    no_duplicates: bool = True        # no repeated text in a batch: a duplicate would be a false negative
    eval_steps: int | None = None     # evaluate on dev every N steps (default: 3 times per run, plus step 0)
    load_best: bool = True            # keep the checkpoint with the best dev score, not the last one
    seed: int = 42
    logging_steps: int = 5
    progress: bool = True             # progress bar and logs; False (or KIT_QUIET=1) silences them
    loss_kwargs: dict[str, Any] = field(default_factory=dict)

    def with_overrides(self, **overrides: Any) -> "TrainConfig":
        """A copy with some fields changed (unknown names are an error, not ignored)."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise KitError(f"{type(self).__name__}: unknown setting(s) {', '.join(unknown)} "
                           f"(known: {', '.join(sorted(names))})")
        return replace(self, **overrides)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What a training run produced and what it cost."""

    model: Any
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
    eval_seconds: float = 0.0                # time spent in dev evaluations during training (step 0 included)

    @property
    def examples_per_second(self) -> float:
        """Training examples per second of wall time (``seconds``: dev evaluations included)."""
        return self.examples / self.seconds if self.seconds else float("nan")

    @property
    def train_examples_per_second(self) -> float:
        """Training examples per second spent in training steps (dev evaluations excluded)."""
        return self.examples / self.step_seconds if self.step_seconds else float("nan")

    @property
    def eval_share(self) -> float:
        """Dev evaluation time as a share of training-step time (the bounded evaluation keeps it near 0.25 or less)."""
        return self.eval_seconds / self.step_seconds if self.step_seconds else float("nan")


def count_parameters(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts.

    >>> import torch
    >>> count_parameters(torch.nn.Linear(3, 2))
    (8, 8)
    """
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def world_size() -> int:
    """Number of training processes: ``WORLD_SIZE`` set by ``torchrun`` (1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """True on rank 0 (and without ``torchrun``): the process that logs, saves and prints."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def planned_steps(n_examples: int, config: TrainConfig | None = None, **overrides: Any) -> int:
    """Optimizer steps a run will take (``max_steps`` if set, else epochs over all processes).

    >>> planned_steps(702, batch_size=32), planned_steps(702, max_steps=5)
    (22, 5)
    """
    cfg = (config or TrainConfig()).with_overrides(**overrides)
    if cfg.max_steps > 0:
        return cfg.max_steps
    per_epoch = max(1, math.ceil(n_examples / (cfg.batch_size * world_size())))
    return math.ceil(cfg.epochs * per_epoch)


def default_eval_steps(steps: int, evaluations: int = 3) -> int:
    """Evaluate ``evaluations`` times in a run of ``steps`` (the last at the end), plus step 0.

    >>> default_eval_steps(22), default_eval_steps(2)
    (8, 1)
    """
    return max(1, math.ceil(steps / evaluations))


def evaluation_steps(steps: int, eval_steps: int) -> list[int]:
    """The steps at which the dev split is scored: 0, every ``eval_steps``, and the last.

    >>> evaluation_steps(22, 8)
    [0, 8, 16, 22]
    """
    return [0, *sorted({s for s in range(1, steps + 1) if s % eval_steps == 0} | {steps})]


def format_seconds(seconds: float) -> str:
    """``75.2`` -> ``'1m15s'``; under a minute, ``'42.0s'``.

    >>> format_seconds(75.2), format_seconds(4.25)
    ('1m15s', '4.2s')
    """
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


# --------------------------------------------------------------------------- callbacks

def _trainer_callback():
    from transformers import TrainerCallback

    return TrainerCallback


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


class EtaCallback(_trainer_callback()):
    """Prints the measured seconds per step and the time left, once, after the first few steps.

    The first ``skip`` steps (data loading, warm-up) are not measured; the estimate is
    ``steps left x mean seconds per measured step + dev evaluations left x seconds per evaluation``
    (the evaluation time is read from ``evaluator.seconds``). Only the main process prints.
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
            evals_left = sum(1 for s in evaluation_steps(state.max_steps, self.eval_steps) if s > state.global_step)
        eta = left * per_step + evals_left * eval_s
        if state.is_world_process_zero:
            extra = f" + {evals_left} dev evaluation(s) x {eval_s:.1f}s" if evals_left else ""
            self.log(f"measured {per_step:.2f}s per step (steps {self.skip + 1}-{self.skip + len(measured)}); "
                     f"about {format_seconds(eta)} left: {left} steps{extra}")


def _dist_ready() -> bool:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return False
    return dist.is_available() and dist.is_initialized()


def _broadcast(value):
    """Rank 0's ``value`` on every rank (DDP); the value itself without DDP."""
    if world_size() > 1 and _dist_ready():
        from torch.distributed import broadcast_object_list

        box = [value]
        broadcast_object_list(box, src=0)
        return box[0]
    return value


# --------------------------------------------------------------------------- the loop

def fit(kind: str, model, train_dataset: "Dataset", loss, config: TrainConfig, *, evaluator=None,
        output_dir: str | os.PathLike | None = None, callbacks: list | None = None, optimizer=None) -> TrainResult:
    """Run the sentence-transformers Trainer of ``kind`` (``"bi"`` or ``"cross"``) on ``model``.

    ``evaluator`` (a kit evaluator with ``measures``, ``history`` and ``seconds``) is run before
    training, every ``config.eval_steps`` and at the end; with ``config.load_best`` the best
    checkpoint, step 0 included, is restored. ``output_dir`` holds the Trainer's files (a temporary
    folder if not given; nothing is saved there: save the model with :func:`kit.models.save_model`).
    ``optimizer`` replaces the Trainer's AdamW (the learning-rate schedule is still the Trainer's).
    Under ``torchrun`` each process trains on its share of every epoch; rank 0 evaluates and every
    rank receives its scores, so all ranks return the same weights and history.
    """
    import torch

    if kind not in ("bi", "cross"):
        raise KitError(f"fit: kind must be 'bi' or 'cross', got {kind!r}")
    cfg = config
    if len(train_dataset) == 0:
        raise KitError("training: the training dataset is empty")
    if cfg.batch_size < 1:
        raise KitError(f"batch_size must be at least 1, got {cfg.batch_size}")
    world = world_size()
    if world > 1 and len(train_dataset) < cfg.batch_size * world:
        # DDP drops the last incomplete batch: with fewer rows than this, no process gets a batch.
        raise KitError(f"training: {len(train_dataset)} training rows cannot fill one batch of "
                       f"{cfg.batch_size} on each of {world} processes; lower the batch size")
    if count_parameters(model)[0] == 0:
        raise KitError("training: every parameter is frozen, nothing would train "
                       "(a fully frozen encoder needs an adapter: add_adapter)")
    steps = planned_steps(len(train_dataset), cfg)
    eval_steps = cfg.eval_steps or default_eval_steps(steps)
    tmp = None
    if output_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="kit-train-")
        output_dir = tmp.name
    use_eval = evaluator is not None
    keep_best = None
    first_entry = len(getattr(evaluator, "history", [])) if use_eval else 0   # an evaluator may be reused
    first_second = len(getattr(evaluator, "seconds", [])) if use_eval else 0
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
    common = dict(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,   # a float < 1 is a ratio of the total steps (transformers 5)
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
    from sentence_transformers.base.sampler import BatchSamplers

    common["batch_sampler"] = BatchSamplers.NO_DUPLICATES if cfg.no_duplicates else BatchSamplers.BATCH_SAMPLER
    if kind == "bi":
        from sentence_transformers import SentenceTransformerTrainer as Trainer
        from sentence_transformers.sentence_transformer.training_args import \
            SentenceTransformerTrainingArguments as Args
    else:
        from sentence_transformers.cross_encoder import CrossEncoderTrainer as Trainer
        from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments as Args
    if quiet and hasattr(model, "model_card_data"):  # the card's widget examples have a progress bar of their own
        model.model_card_data.generate_widget_examples = False
    trainer = Trainer(model=model, args=Args(**common), train_dataset=train_dataset, loss=loss, evaluator=evaluator,
                      callbacks=[*(callbacks or []), *extra, *([keep_best] if keep_best else [])],
                      optimizers=(optimizer, None))
    if quiet:  # without a progress bar the Trainer prints every log line instead; silence it too
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    for name in ("transformers.trainer", "sentence_transformers"):   # at least WARNING (never louder than set)
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    done = trainer.state.global_step
    if tmp is not None:
        tmp.cleanup()
    if done == 0:
        raise KitError(f"training: no training step ran ({len(train_dataset)} rows, batch size "
                       f"{cfg.batch_size}, {world} process(es)); lower the batch size or add data")
    if keep_best is not None:
        keep_best.restore(model)
    trainable, total = count_parameters(model)
    history = list(getattr(evaluator, "history", []))[first_entry:] if use_eval else []
    eval_seconds = float(sum(getattr(evaluator, "seconds", [])[first_second:])) if use_eval else 0.0
    history, eval_seconds = _broadcast((history, eval_seconds))   # only rank 0 ran the evaluator
    best_step = best_metric = None
    if use_eval and history:
        key = evaluator.measures[0]
        best = max(history, key=lambda h: h[key])
        best_step, best_metric = int(best["step"]), float(best[key])
    losses = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    return TrainResult(model=trainer.model, seconds=seconds, steps=done,
                       examples=done * cfg.batch_size * world, trainable_params=trainable, total_params=total,
                       history=history, losses=losses, best_step=best_step, best_metric=best_metric,
                       output_dir=None if tmp is not None else str(output_dir),
                       step_seconds=sum(timer.times) if timer.times else None, eval_seconds=eval_seconds)
