"""The end-to-end recipes: from a BEIR folder to a fine-tuned bi-encoder or re-ranker, every
setting that depends on the data chosen from the data (on dev, never on test).

:func:`train_bi_recipe` is notebook 04's recipe and ``python -m kit train-bi``; :func:`train_ce_recipe`
is notebook 05's and ``python -m kit train-ce``. The command line only parses arguments and prints;
the notebooks call the same functions. Each step logs what it chose and why:

- the dev split (the folder's, or a seeded 10% of the train queries held out: :func:`kit.data.dev_split`);
- ``max_seq_length`` from the token lengths of the passages (:func:`kit.models.choose_max_seq_length`);
- hard negatives mined from the base model's (bi) or the retriever's (cross) candidates, with the
  false-negative guard (:func:`kit.retrieval.hard_negatives`);
- a dev evaluation whose cost is bounded to a share of the training time (:func:`kit.train.bi.plan_pool`);
- for the re-ranker: the first stage (dense, BM25 or a fusion) and the weight that mixes the
  re-ranker's score with the retriever's, both chosen on dev.

>>> from kit.recipes import BiRecipe, train_bi_recipe
>>> result = train_bi_recipe(load_beir("MY_BEIR_FOLDER"), BiRecipe())     # doctest: +SKIP
>>> result.summary["dev"]                                                # doctest: +SKIP
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .data import answer_grade, dev_split, positive_pairs, rerank_pairs, triplets
from .errors import KitError
from .models import (DEFAULT_MODEL, LengthChoice, choose_max_seq_length, cross_encoder_from, load_bi_encoder,
                     load_cross_encoder)
from .retrieval import (BM25Index, DenseIndex, FirstStageChoice, choose_first_stage, choose_mix_weight, hard_negatives,
                        rerank, top_run)
from .train import (EtaCallback, RerankerConfig, RerankEvaluator, RetrievalEvaluator, TrainConfig, TrainResult,
                    count_parameters, format_seconds, freeze, mini_batch_pairs_for, planned_steps, reranker_dataset, train_bi_encoder,
                    train_cross_encoder, transformer_layers)
from .train.core import default_eval_steps, evaluation_steps, is_main_process

if TYPE_CHECKING:
    from .data import BeirDataset, Run

Log = Callable[[str], None]


def stderr_log(msg: str) -> None:
    """The recipes' default log: one line to stderr (the CLI's stdout carries the JSON result)."""
    print(msg, file=sys.stderr, flush=True)


def quiet(msg: str) -> None:
    """A log that says nothing (for loops of runs in notebooks)."""


@dataclass
class RecipeResult:
    """What a recipe produced: the model, its training run, what was chosen, and a JSON-able summary."""

    model: Any
    train: TrainResult
    summary: dict
    length: LengthChoice | None = None
    first_stage: FirstStageChoice | None = None
    mix_weight: float | None = None
    negatives: dict[str, list[str]] = field(default_factory=dict)
    dev_reranked: dict | None = None   # the re-ranker's scores of the dev candidates (train_ce_recipe), to reuse


def _measure_encode(model, texts: list[str], batch_size: int) -> float:
    """Seconds per text to encode ``texts`` (a sample) with ``model`` at its current length (after a warm-up)."""
    sample = texts[: max(8, min(len(texts), batch_size))]
    model.encode(sample[:4], batch_size=4, show_progress_bar=False)
    t = time.perf_counter()
    model.encode(sample, batch_size=len(sample), show_progress_bar=False)
    return (time.perf_counter() - t) / len(sample)


def _choose_length(model, texts, given: int | None, coverage: float, log: Log, what: str) -> LengthChoice | None:
    if given is not None:
        limit = choose_max_seq_length(model, texts[:1]).model_limit if texts else given
        if given > limit:
            raise KitError(f"--max-seq-length {given} is above what the model supports ({limit})")
        model.max_seq_length = given
        log(f"max_seq_length {given} (given)")
        return None
    choice = choose_max_seq_length(model, texts, coverage=coverage)
    model.max_seq_length = choice.max_seq_length
    log(f"{what}: {choice.describe()}; chosen from the data (--max-seq-length to override)")
    return choice


# --------------------------------------------------------------------------- bi-encoder

@dataclass
class BiRecipe:
    """Settings of the bi-encoder recipe (``python -m kit train-bi`` takes the same, as flags)."""

    base: str = DEFAULT_MODEL          # the model to start from (ships offline)
    split: str = "train"
    dev_split: str | None = None       # None: the folder's dev split, else 10% of the train queries held out
    hard_negatives: int = 1            # mined per pair from the base model's candidates (0: in-batch negatives only)
    epochs: float = 1.0
    max_steps: int | None = None       # caps the run (FAST mode, learning curves)
    batch_size: int = 32
    learning_rate: float = 5e-5
    max_seq_length: int | None = None  # None: chosen from the passages' token lengths
    coverage: float = 0.95             # share of passages kept whole by the chosen length
    freeze_layers: int | None = None   # task adaptation: freeze the embeddings and the bottom N layers
    eval_share: float = 0.25           # dev evaluations may cost this share of the training steps' time
    eval_steps: int | None = None      # None: 3 dev evaluations (plus step 0)
    seed: int = 42

    def validate(self) -> None:
        import math

        if not (isinstance(self.epochs, (int, float)) and math.isfinite(self.epochs) and self.epochs > 0):
            raise KitError(f"--epochs must be a number above 0, got {self.epochs}")
        if self.batch_size < 1:
            raise KitError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.max_seq_length is not None and self.max_seq_length < 8:
            raise KitError(f"--max-seq-length must be at least 8, got {self.max_seq_length}")
        if self.hard_negatives < 0:
            raise KitError(f"--hard-negatives must be 0 or more, got {self.hard_negatives}")
        if self.freeze_layers is not None and self.freeze_layers < 0:
            raise KitError(f"--freeze-layers must be 0 or more, got {self.freeze_layers}")
        if self.seed < 0:
            raise KitError(f"--seed must be 0 or more, got {self.seed}")
        if self.max_steps is not None and self.max_steps < 1:
            raise KitError(f"--max-steps must be at least 1, got {self.max_steps}")
        if not (isinstance(self.learning_rate, float) and 0 < self.learning_rate < 1):
            raise KitError(f"--learning-rate must be a number between 0 and 1 (e.g. 5e-5), got {self.learning_rate}")
        if not 0 < self.coverage <= 1:
            raise KitError(f"--coverage must be in (0, 1], got {self.coverage}")
        if not 0 < self.eval_share <= 10:
            raise KitError(f"--eval-share must be above 0, got {self.eval_share}")


def _apply_freeze(model, layers: int | None, base: str) -> None:
    if not layers:
        return
    n = len(transformer_layers(model)[1])
    if layers > n:
        raise KitError(f"--freeze-layers {layers}: {base} has {n} transformer layers")
    if layers == n:
        raise KitError(f"--freeze-layers {n} would freeze every layer and train nothing; give fewer than {n}")
    freeze(model, layers)


def train_bi_recipe(ds: "BeirDataset", recipe: BiRecipe | None = None, *, log: Log = stderr_log, model=None,
                    callbacks: list | None = None, progress: bool = True) -> RecipeResult:
    """Fine-tune a bi-encoder on ``ds`` with notebook 04's recipe; returns the model and what it cost.

    MultipleNegativesRankingLoss on (query, answer) pairs plus ``hard_negatives`` mined hard negatives,
    no duplicates in a batch, a bounded dev evaluation, the best dev checkpoint kept. ``model``
    replaces loading ``recipe.base`` (e.g. one with an adapter). Save with :func:`kit.models.save_model`.

    >>> result = train_bi_recipe(load_expense_policy(), BiRecipe(max_steps=6))     # doctest: +SKIP
    >>> result.summary["best_step"], result.summary["dev"]["nDCG@10"]              # doctest: +SKIP
    """
    recipe = recipe or BiRecipe()
    recipe.validate()
    t_start = time.perf_counter()
    ds, dev_name, heldout = dev_split(ds, recipe.split, recipe.dev_split, seed=recipe.seed, log=log)
    queries, qrels = ds.split(recipe.split)
    min_grade = answer_grade(qrels)
    model = model if model is not None else load_bi_encoder(recipe.base)
    length = _choose_length(model, ds.doc_texts(), recipe.max_seq_length, recipe.coverage, log, "passages")
    _apply_freeze(model, recipe.freeze_layers, recipe.base)
    trainable, total = count_parameters(model)
    dev_queries, dev_qrels = ds.split(dev_name)

    # One encoding of the corpus with the base model serves mining and the dev pool.
    t = time.perf_counter()
    if recipe.hard_negatives:
        log(f"encoding the {len(ds.corpus)} passages with the base model (hard negatives and the dev pool) ...")
        index = DenseIndex.build(model, ds.corpus)
        negatives = hard_negatives(index.search(queries, k=50), qrels, num_negatives=recipe.hard_negatives)
        candidates = index.search(dev_queries, k=100)
        log(f"mined {recipe.hard_negatives} hard negative(s) per {recipe.split} query in "
            f"{format_seconds(time.perf_counter() - t)}")
        data = triplets(ds, recipe.split, negatives=negatives, num_negatives=recipe.hard_negatives,
                        min_grade=min_grade, seed=recipe.seed)
    else:
        negatives = {}
        candidates = BM25Index.build(ds.corpus).search(dev_queries, k=100)
        data = positive_pairs(ds, recipe.split, min_grade=min_grade, seed=recipe.seed)
    if len(data) == 0:
        raise KitError(f"{ds.name}: split {recipe.split!r} has no (query, passage) pair judged {min_grade} or more")

    cfg = TrainConfig(epochs=recipe.epochs, max_steps=recipe.max_steps or -1, batch_size=recipe.batch_size,
                      learning_rate=recipe.learning_rate, max_seq_length=model.max_seq_length, seed=recipe.seed,
                      progress=progress)
    steps = planned_steps(len(data), cfg)
    eval_steps = recipe.eval_steps or default_eval_steps(steps)
    n_evals = len(evaluation_steps(steps, eval_steps))
    # Bound the dev evaluation: a training step costs about 3 forward passes over its texts.
    per_passage = _measure_encode(model, ds.doc_texts()[:64], 32)
    texts_per_row = len(data.column_names)
    train_s = 3 * steps * recipe.batch_size * texts_per_row * per_passage * 0.75   # queries are shorter than passages
    max_texts = max(50, int(recipe.eval_share * train_s / n_evals / per_passage))
    evaluator = RetrievalEvaluator(ds, dev_name, candidates=candidates, max_texts=max_texts, seed=recipe.seed)
    eval_s = n_evals * (len(evaluator.corpus) + len(evaluator.queries)) * per_passage
    log(f"training {recipe.base} on {len(data)} {'/'.join(data.column_names)} rows of {ds.name}/{recipe.split}: "
        f"{steps} steps of {recipe.batch_size}, {trainable:,} of {total:,} parameters trainable")
    log(f"dev evaluation ({n_evals} times, step 0 included): {evaluator.describe()}; budget "
        f"{recipe.eval_share:.0%} of the training time")
    log(f"estimate before training: about {format_seconds(train_s + eval_s)} ({format_seconds(train_s)} training + "
        f"{format_seconds(eval_s)} dev evaluation); refined after the first steps")
    eta = EtaCallback(log, evaluator=evaluator, eval_steps=eval_steps)
    result = train_bi_encoder(model, data, config=cfg, evaluator=evaluator, eval_steps=eval_steps,
                              callbacks=[eta, *(callbacks or [])])
    best = next((h for h in result.history if h["step"] == result.best_step), result.history[-1])
    start = result.history[0]
    measures = list(evaluator.measures)
    if result.best_step is not None and hasattr(result.model, "model_card_data"):
        result.model.model_card_data.set_best_model_step(result.best_step)
        result.model.model_card_data.model_name = f"{recipe.base.split('/')[-1]} fine-tuned on {ds.name} ({recipe.split})"
    summary = {
        "base": recipe.base, "dataset": ds.name, "split": recipe.split, "dev_split": dev_name,
        "dev_heldout_from_train": heldout, "dev_queries": len(evaluator.queries), "dev_pool": len(evaluator.corpus),
        "rows": len(data), "columns": data.column_names, "hard_negatives": recipe.hard_negatives,
        "batch_size": recipe.batch_size, "world_size": result.examples // max(1, result.steps * recipe.batch_size),
        "max_seq_length": model.max_seq_length,
        "truncated_share": round(length.truncated, 4) if length else None,
        "learning_rate": recipe.learning_rate, "seed": recipe.seed, "freeze_layers": recipe.freeze_layers,
        "trainable_params": trainable, "total_params": total, "steps": result.steps, "best_step": result.best_step,
        "seconds": round(result.seconds, 2), "step_seconds": round(result.step_seconds or 0.0, 2),
        "eval_seconds": round(result.eval_seconds, 2), "eval_share": round(result.eval_share, 3),
        "pairs_per_second": round(result.train_examples_per_second, 3),
        "dev": {m: round(best[m], 4) for m in measures}, "dev_step0": {m: round(start[m], 4) for m in measures},
        "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()} for h in result.history],
        "total_seconds": round(time.perf_counter() - t_start, 2),
    }
    log(f"best dev {measures[0]} {best[measures[0]]:.4f} at step {result.best_step} (step 0: {start[measures[0]]:.4f}); "
        f"{result.steps} steps in {format_seconds(result.seconds)} (dev evaluations {format_seconds(result.eval_seconds)}, "
        f"{result.eval_share:.0%} of the training steps' {format_seconds(result.step_seconds or 0)})")
    return RecipeResult(result.model, result, summary, length=length, negatives=negatives)


# --------------------------------------------------------------------------- cross-encoder

@dataclass
class CrossRecipe:
    """Settings of the re-ranker recipe (``python -m kit train-ce`` takes the same, as flags)."""

    base: str | None = None            # the weights the re-ranker starts from; None: the retriever's own
    retriever: str = DEFAULT_MODEL     # the bi-encoder whose candidates it learns to re-rank (and mixes with)
    head: str = "cosine"               # cosine (query vs passage token means), gated, mean or cls (see load_cross_encoder)
    split: str = "train"
    dev_split: str | None = None
    hard_negatives: int = 2            # per query, from the first stage's ranks range_min..range_max
    random_negatives: int = 0          # per query, unjudged passages drawn at random (easy negatives)
    range_min: int = 0
    range_max: int = 30
    relative_margin: float | None = 0.05   # false-negative guard: skip candidates within 5% of the answer's score
    related: bool = True               # related passages (grade 1) below the answer: learn "answers" over "on topic"
    max_related: int | None = None     # at most this many related passages per query (None: all), highest-ranked first
    loss: str = "mnrl"                 # mnrl | lambda | bce (see kit.train.RERANKER_LOSSES)
    in_batch_negatives: int = 1        # mnrl: other queries' passages added to each query's list
    # 2 hard + 1 in-batch: the same dev mix as 3 + 2 on the bundled data, for about 30% less time per step.
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 16
    learning_rate: float = 5e-5
    head_learning_rate: float | None = 1e-3
    max_seq_length: int | None = None  # None: chosen from the (query, passage) token lengths
    coverage: float = 0.95
    depth: int = 20                    # candidates re-ranked per query (dev evaluation, mixing weight)
    first_stage: str = "auto"          # auto: dense, BM25 or a fusion, chosen on dev
    eval_share: float = 0.25
    eval_steps: int | None = None
    seed: int = 42

    def validate(self) -> None:
        BiRecipe(epochs=self.epochs, batch_size=self.batch_size, max_seq_length=self.max_seq_length,
                 max_steps=self.max_steps, learning_rate=self.learning_rate, seed=self.seed, coverage=self.coverage,
                 eval_share=self.eval_share).validate()
        if self.hard_negatives < 0 or self.random_negatives < 0:
            raise KitError("--hard-negatives and --random-negatives must be 0 or more")
        if self.hard_negatives + self.random_negatives == 0:
            raise KitError("a re-ranker needs negatives: give --hard-negatives or --random-negatives above 0")
        if self.loss not in ("mnrl", "lambda", "bce"):
            raise KitError(f"--loss must be one of mnrl, lambda, bce, got {self.loss!r}")
        if self.depth < 1:
            raise KitError(f"--depth must be at least 1, got {self.depth}")
        if self.max_related is not None and self.max_related < 0:
            raise KitError(f"--max-related must be 0 or more, got {self.max_related}")
        if not 0 <= self.range_min < self.range_max:
            raise KitError(f"need 0 <= --range-min < --range-max, got {self.range_min}, {self.range_max}")


def first_stage_runs(ds: "BeirDataset", retriever, splits: dict[str, int], *, first_stage: str = "auto",
                     dev: str = "dev", log: Log = quiet, index: DenseIndex | None = None) -> tuple[dict[str, "Run"], FirstStageChoice]:
    """The first stage's runs for ``splits`` (``{split: depth}``), the stage chosen on ``dev``.

    Dense (``retriever``) and BM25 are both run; ``first_stage="auto"`` keeps the combination
    that scores best on ``dev`` (:func:`kit.retrieval.choose_first_stage`), any other value
    (``dense``, ``bm25``, ``rrf``) forces it. Used by the re-ranker recipe and ``06_rag.ipynb``.

    >>> runs, choice = first_stage_runs(ds, retriever, {"dev": 100, "test": 100})   # doctest: +SKIP
    """
    from .retrieval import FIRST_STAGES, FirstStage

    index = index if index is not None else DenseIndex.build(retriever, ds.corpus)
    bm25 = BM25Index.build(ds.corpus)
    need = dict(splits)
    need.setdefault(dev, 100)
    dense_runs = {s: index.search(ds.split(s)[0], k=max(k, 100)) for s, k in need.items()}
    bm25_runs = {s: bm25.search(ds.split(s)[0], k=max(k, 100)) for s, k in need.items()}
    if first_stage == "auto":
        choice = choose_first_stage(dense_runs[dev], bm25_runs[dev], ds.split(dev)[1], dev_split=dev)
    else:
        stage = next((c for c in FIRST_STAGES if c.name == first_stage), None) or FirstStage(first_stage)
        choice = FirstStageChoice(stage, {}, "nDCG@10", f"{stage.name} (given)", dev)
    log(f"first stage: {choice.chosen.name}: {choice.reason}")
    runs = {s: top_run(choice.combine(dense_runs[s], bm25_runs[s]), k) for s, k in splits.items()}
    return runs, choice


def train_ce_recipe(ds: "BeirDataset", recipe: CrossRecipe | None = None, *, log: Log = stderr_log,
                    retriever=None, callbacks: list | None = None, progress: bool = True,
                    index: DenseIndex | None = None) -> RecipeResult:
    """Fine-tune a re-ranker on ``ds`` with notebook 05's recipe; returns the model and what it cost.

    The retriever (``recipe.retriever``, or a loaded ``retriever``) ranks the corpus for every train
    and dev query; hard negatives come from its candidates (guarded against false negatives); the
    re-ranker, from ``recipe.base`` with a fresh head, learns with a listwise loss by default; the
    best dev checkpoint is kept; finally the weight that mixes its score with the retriever's is
    chosen on dev (``summary["mix_weight"]``; :func:`kit.retrieval.mix_scores`). ``index``: the
    retriever's index of ``ds.corpus`` when one is at hand (not encoded again).

    >>> result = train_ce_recipe(load_expense_policy(), CrossRecipe(retriever="models/my-retriever"))   # doctest: +SKIP
    """
    recipe = recipe or CrossRecipe()
    recipe.validate()
    t_start = time.perf_counter()
    ds, dev_name, heldout = dev_split(ds, recipe.split, recipe.dev_split, seed=recipe.seed, log=log)
    queries, qrels = ds.split(recipe.split)
    retriever = retriever if retriever is not None else load_bi_encoder(recipe.retriever)
    if recipe.max_seq_length is None and retriever.max_seq_length < 64:
        retriever.max_seq_length = 128
    log(f"ranking the {len(ds.corpus)} passages for {len(queries)} {recipe.split} and "
        f"{len(ds.split(dev_name)[0])} {dev_name} queries with the retriever ...")
    runs, stage = first_stage_runs(ds, retriever, {recipe.split: recipe.range_max, dev_name: recipe.depth},
                                   first_stage=recipe.first_stage, dev=dev_name, log=log, index=index)
    rows = rerank_pairs(ds, recipe.split, runs[recipe.split], hard_negatives=recipe.hard_negatives,
                        random_negatives=recipe.random_negatives, range_min=recipe.range_min,
                        range_max=recipe.range_max, relative_margin=recipe.relative_margin,
                        related=recipe.related, max_related=recipe.max_related, graded=recipe.loss == "lambda",
                        seed=recipe.seed)
    if not rows:
        raise KitError(f"{ds.name}: split {recipe.split!r} has no query with a passage judged relevant")
    model = cross_encoder_from(retriever, recipe.head) if recipe.base is None else \
        load_cross_encoder(recipe.base, head=recipe.head)
    pairs = [(r["query"], r["passage"]) for r in rows]
    length = _choose_length(model, pairs, recipe.max_seq_length, recipe.coverage, log, "(query, passage) pairs")
    data = reranker_dataset(rows, recipe.loss, seed=recipe.seed)
    cfg = RerankerConfig(loss=recipe.loss, epochs=recipe.epochs, max_steps=recipe.max_steps or -1,
                         batch_size=recipe.batch_size, learning_rate=recipe.learning_rate,
                         head_learning_rate=recipe.head_learning_rate, in_batch_negatives=recipe.in_batch_negatives,
                         max_seq_length=model.max_seq_length, seed=recipe.seed, progress=progress)
    pairs_per_row = {"bce": 1, "lambda": len(rows) / max(1, len(data))}.get(
        recipe.loss, 1 + len(data.column_names) - 2 + recipe.in_batch_negatives)
    cfg.mini_batch_pairs = mini_batch_pairs_for(cfg, data.column_names, model.max_seq_length)
    if cfg.mini_batch_pairs:
        log(f"{recipe.batch_size * pairs_per_row} pairs per step at {model.max_seq_length} tokens: computing the loss "
            f"{cfg.mini_batch_pairs} pairs at a time (gradient caching; same loss, bounded memory, slower steps)")
    steps = planned_steps(len(data), cfg)
    eval_steps = recipe.eval_steps or default_eval_steps(steps)
    n_evals = len(evaluation_steps(steps, eval_steps))
    per_pair = _measure_pairs(model, pairs[:32])
    train_s = 3 * steps * recipe.batch_size * pairs_per_row * per_pair
    max_pairs = max(recipe.depth * 10, int(recipe.eval_share * train_s / n_evals / per_pair))
    evaluator = RerankEvaluator(ds, dev_name, candidates=runs[dev_name], depth=recipe.depth, max_pairs=max_pairs,
                                seed=recipe.seed)
    n_pos = sum(r["kind"] == "positive" for r in rows)
    log(f"training a re-ranker from {recipe.base or 'the retriever'}'s weights ({recipe.head} head) on {len(rows)} pairs "
        f"({n_pos} positive; {recipe.hard_negatives} hard + {recipe.random_negatives} random negatives per query), "
        f"loss {recipe.loss}: {steps} steps of {recipe.batch_size}")
    log(f"dev evaluation ({n_evals} times, step 0 included): {evaluator.describe()}")
    log(f"estimate before training: about {format_seconds(train_s + n_evals * evaluator.pairs * per_pair)}; "
        "refined after the first steps")
    eta = EtaCallback(log, evaluator=evaluator, eval_steps=eval_steps)
    result = train_cross_encoder(model, data, config=cfg, evaluator=evaluator, eval_steps=eval_steps,
                                 callbacks=[eta, *(callbacks or [])])
    # The mixing weight, on dev: the re-ranker's scores of every dev query's candidates.
    dev_queries, dev_qrels = ds.split(dev_name)
    dev_first = runs[dev_name]
    reranked = rerank(result.model, ds.corpus, dev_queries, dev_first, depth=recipe.depth, show_progress_bar=False)
    weight, grid = choose_mix_weight(dev_first, top_run(reranked, recipe.depth), dev_qrels)
    best = next((h for h in result.history if h["step"] == result.best_step), result.history[-1])
    start = result.history[0]
    measures = list(evaluator.measures)
    if hasattr(result.model, "model_card_data"):
        result.model.model_card_data.model_name = f"re-ranker fine-tuned on {ds.name}"
    summary = {
        "base": recipe.base, "retriever": recipe.retriever, "head": recipe.head, "dataset": ds.name,
        "split": recipe.split, "dev_split": dev_name, "dev_heldout_from_train": heldout,
        "first_stage": stage.chosen.name, "first_stage_reason": stage.reason,
        "rows": len(rows), "positives": n_pos, "loss": recipe.loss, "hard_negatives": recipe.hard_negatives,
        "random_negatives": recipe.random_negatives, "max_related": recipe.max_related, "batch_size": recipe.batch_size,
        "max_seq_length": model.max_seq_length, "truncated_share": round(length.truncated, 4) if length else None,
        "learning_rate": recipe.learning_rate, "mini_batch_pairs": cfg.mini_batch_pairs, "seed": recipe.seed,
        "steps": result.steps,
        "best_step": result.best_step, "seconds": round(result.seconds, 2),
        "step_seconds": round(result.step_seconds or 0.0, 2), "eval_seconds": round(result.eval_seconds, 2),
        "eval_share": round(result.eval_share, 3), "dev_queries": len(evaluator.queries), "depth": recipe.depth,
        "dev": {m: round(best[m], 4) for m in measures}, "dev_step0": {m: round(start[m], 4) for m in measures},
        "mix_weight": weight, "dev_mix": round(grid[weight], 4), "dev_first_stage": round(grid[0.0], 4),
        "dev_reranker_alone": round(grid[1.0], 4),
        "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()} for h in result.history],
        "total_seconds": round(time.perf_counter() - t_start, 2),
    }
    log(f"best dev {measures[0]} {best[measures[0]]:.4f} at step {result.best_step} (step 0: {start[measures[0]]:.4f}; "
        f"first stage alone {grid[0.0]:.4f}); mixing weight chosen on dev: {weight} ({grid[weight]:.4f}); "
        f"{result.steps} steps in {format_seconds(result.seconds)}")
    return RecipeResult(result.model, result, summary, length=length, first_stage=stage, mix_weight=weight,
                        dev_reranked=top_run(reranked, recipe.depth))


def _measure_pairs(model, pairs: list[tuple[str, str]]) -> float:
    """Seconds per (query, passage) pair for the cross-encoder at its current length (after a warm-up)."""
    model.predict(pairs[:4], batch_size=4, show_progress_bar=False)
    t = time.perf_counter()
    model.predict(pairs, batch_size=len(pairs), show_progress_bar=False)
    return (time.perf_counter() - t) / max(1, len(pairs))


__all__ = ["BiRecipe", "CrossRecipe", "RecipeResult", "first_stage_runs", "quiet", "stderr_log", "train_bi_recipe",
           "train_ce_recipe"]
