"""What the notebooks share: the running example, defined once, and the fine-tuned models that
several notebooks use, trained through the kit's cache (so each is trained once per setting).

- :data:`EXAMPLE`: the running example, *"What is considered a business expense on a business
  trip?"* (test query ``q0001``), its answer ``ride-00`` and the general definition ``gen-01``.
- :func:`shared_fine_tuned_model`: notebook 01's short first fine-tune (also used by 02).
- :func:`recipe_retriever`: notebook 04's recipe, the full epoch (the retriever of 05 and 06).
- :func:`recipe_reranker`: notebook 05's re-ranker (used by 03 and 06).

Each of these trains on its first call (minutes on a CPU) and is then loaded from ``.cache/``.
Sizes go through :func:`kit.config.pick`, so ``KIT_FAST=1`` shrinks them in one place.

>>> from kit.series import EXAMPLE
>>> EXAMPLE.query_id, EXAMPLE.answer, EXAMPLE.general
('q0001', 'ride-00', 'gen-01')
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from .cache import CachedModel, cached_model, remember_rerank
from .config import pick
from .data import positive_pairs
from .models import DEFAULT_MODEL, load_bi_encoder, load_cross_encoder, model_identity
from .recipes import BiRecipe, CrossRecipe, quiet, train_bi_recipe, train_ce_recipe
from .train import train_bi_encoder

if TYPE_CHECKING:
    from .data import BeirDataset


@dataclass(frozen=True)
class RunningExample:
    """The series' running example: a test query, the passage that answers it, and the one that only matches it."""

    query_id: str
    query: str
    answer: str      # ride-00, grade 2: "Transportation can be considered a valid business expense ..."
    general: str     # gen-01, grade 1: "Business expenses are defined as ...": shares the words, answers nothing

    @property
    def why(self) -> str:
        """Why the general definition is graded 1 and the transportation passage 2 (the datasheet's reasoning)."""
        return ("The employee asks what counts as a business expense *on a trip*. ride-00 names the costs of "
                "getting there and around (airfare, rail, taxis, rideshare, mileage) and says they are valid "
                "business expenses: it answers (grade 2). gen-01 defines business expenses in general (ordinary, "
                "necessary, for the company's benefit) without saying what is covered on a trip: it is related "
                "(grade 1), and it shares the question's words, which is why a model that matches words ranks it first.")


EXAMPLE = RunningExample("q0001", "What is considered a business expense on a business trip?", "ride-00", "gen-01")


# --------------------------------------------------------------------------- a notebook's first cell

PACKAGES = ("torch", "transformers", "sentence-transformers", "ir-measures", "kit")


def setup(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """A notebook's first cell: quiet output (no progress bars, no library deprecation warnings in the
    outputs) and the versions it runs with, plus the mode (full, or FAST under ``KIT_FAST=1``).

    When a number differs from a colleague's, the versions are the first thing to compare.

    >>> setup()["mode"] in ("full", "FAST (KIT_FAST=1)")
    True
    """
    import importlib.metadata as md
    import logging
    import os
    import platform
    import warnings

    from .config import FAST

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TQDM_DISABLE"] = "1"          # every tqdm bar (trainers, model cards, encoders) in this kernel
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=".*requires_grad.*")
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - a dependency of kit
        pass
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:  # pragma: no cover
        pass
    for name in ("sentence_transformers", "transformers", "bm25s"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _quiet_tqdm()
    versions = {"python": platform.python_version(), **{p: md.version(p) for p in packages}}
    return {**versions, "mode": "FAST (KIT_FAST=1)" if FAST else "full"}


def _quiet_tqdm() -> None:
    """tqdm reads TQDM_DISABLE once, when it is imported, and its notebook bars ignore it: replace the
    bar class in tqdm itself and in the libraries that already imported it with one always disabled."""
    import sys

    import tqdm
    import tqdm.auto
    import tqdm.autonotebook
    import tqdm.std

    class QuietTqdm(tqdm.std.tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    def quiet_trange(*args, **kwargs):
        return QuietTqdm(range(*args), **kwargs)

    for module in (tqdm, tqdm.auto, tqdm.autonotebook):
        module.tqdm, module.trange = QuietTqdm, quiet_trange
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("sentence_transformers", "transformers", "datasets", "huggingface_hub")):
            continue
        if isinstance(getattr(module, "tqdm", None), type) and issubclass(module.tqdm, tqdm.std.tqdm):
            module.tqdm = QuietTqdm
        if callable(getattr(module, "trange", None)) and getattr(module.trange, "__module__", "").startswith("tqdm"):
            module.trange = quiet_trange


# --------------------------------------------------------------------------- shared models

SHARED_MODEL = "minilm-expense-mnrl"


def shared_settings(ds: "BeirDataset") -> dict:
    """The settings of :func:`shared_fine_tuned_model`: MNRL, a few steps, the length chosen from the passages.

    >>> sorted(shared_settings(load_expense_policy()))            # doctest: +SKIP
    ['batch_size', 'loss', 'max_seq_length', 'steps']
    """
    from .models import choose_max_seq_length

    length = pick(full=None, fast=64) or choose_max_seq_length(load_bi_encoder(), ds.doc_texts()).max_seq_length
    return {"loss": "mnrl", "steps": pick(full=12, fast=2), "batch_size": pick(full=32, fast=8), "max_seq_length": length}


def shared_fine_tuned_model(ds: "BeirDataset", *, refresh: bool = False):
    """Notebook 01's first fine-tune, shared with 02: trained once, then loaded from the cache.

    all-MiniLM-L6-v2 + MultipleNegativesRankingLoss on the train split's (query, answer) pairs, a
    few steps (:func:`shared_settings`), at the sequence length chosen from the passages. Retrained
    when the data or these settings change.

    >>> model = shared_fine_tuned_model(load_expense_policy())    # doctest: +SKIP
    """
    settings = shared_settings(ds)

    def train():
        result = train_bi_encoder(load_bi_encoder(), positive_pairs(ds, "train"), max_steps=settings["steps"],
                                  batch_size=settings["batch_size"], max_seq_length=settings["max_seq_length"],
                                  progress=False)
        return result.model, {"steps": result.steps, "seconds": round(result.seconds, 1)}

    key = {"settings": settings, "data": ds.fingerprint(), "base": model_identity(DEFAULT_MODEL)}
    return cached_model(SHARED_MODEL, key, train, loader=load_bi_encoder, refresh=refresh).model


def series_bi_recipe(**overrides) -> BiRecipe:
    """Notebook 04's recipe: the command line's defaults (one epoch), smaller in FAST mode.

    >>> series_bi_recipe().epochs
    1.0
    """
    fast = {} if pick(full=True, fast=False) else {"max_steps": 2, "batch_size": 8, "max_seq_length": 64}
    return BiRecipe(**{**fast, **overrides})


def series_ce_recipe(**overrides) -> CrossRecipe:
    """Notebook 05's re-ranker recipe: the command line's defaults, smaller in FAST mode."""
    fast = {} if pick(full=True, fast=False) else {"max_steps": 2, "batch_size": 4, "max_seq_length": 96, "depth": 5}
    return CrossRecipe(**{**fast, **overrides})


def recipe_retriever(ds: "BeirDataset", recipe: BiRecipe | None = None, *, name: str = "bi-recipe",
                     refresh: bool = False) -> CachedModel:
    """The bi-encoder of notebook 04's recipe (``python -m kit train-bi``'s defaults), trained once.

    Returns a :class:`kit.cache.CachedModel`: ``.model`` and ``.meta`` (the recipe's summary: dev
    history, seconds, chosen length). A changed recipe or dataset retrains it.

    >>> retriever = recipe_retriever(load_expense_policy()).model     # doctest: +SKIP
    """
    recipe = recipe or series_bi_recipe()

    def train():
        result = train_bi_recipe(ds, recipe, log=quiet, progress=False)
        return result.model, result.summary

    key = {"recipe": asdict(recipe), "data": ds.fingerprint(), "base": model_identity(recipe.base)}
    return cached_model(name, key, train, loader=load_bi_encoder, refresh=refresh)


def recipe_reranker(ds: "BeirDataset", retriever: CachedModel, recipe: CrossRecipe | None = None, *,
                    name: str = "ce-recipe", refresh: bool = False, index=None) -> CachedModel:
    """The re-ranker of notebook 05's recipe, trained once on ``retriever``'s candidates.

    ``.meta`` holds the recipe's summary, including the dev-chosen ``mix_weight`` and first stage.
    ``index``: the retriever's index of the corpus, if built already (``kit.cache.cached_index``).

    >>> reranker = recipe_reranker(ds, recipe_retriever(ds)).model      # doctest: +SKIP
    """
    recipe = recipe or series_ce_recipe()

    def train():
        result = train_ce_recipe(ds, recipe, retriever=retriever.model, log=quiet, progress=False, index=index)
        # its dev re-ranking, kept for the notebook's later uses of the same pairs (cached_rerank)
        remember_rerank(result.model, ds.corpus, ds.queries, result.dev_reranked, recipe.depth)
        return result.model, result.summary

    key = {"recipe": asdict(recipe), "data": ds.fingerprint(),
           "base": model_identity(recipe.base) if recipe.base else "the retriever", "retriever": retriever.key}
    return cached_model(name, key, train, loader=load_cross_encoder, refresh=refresh)


# --------------------------------------------------------------------------- short runs, trained and scored once

def train_and_score(ds: "BeirDataset", data, config, *, name: str, split: str = "test",
                    measures: tuple[str, ...] = ("nDCG@10", "RR@10")) -> dict:
    """Fine-tune all-MiniLM-L6-v2 on ``data`` with ``config``, score it on ``split`` (retrieval per query,
    and the cosines of the judged pairs plus one seeded random negative each), and cache the scores.

    Returns ``{"per_query": DataFrame, "pairs": DataFrame, "seconds": float, "steps": int}``. The
    cache key is the config, the dataset, the training rows and the split, so a re-run of a notebook
    that compares many short runs (notebook 02) trains nothing twice.

    >>> out = train_and_score(ds, positive_pairs(ds, "train"), TrainConfig(max_steps=6), name="mnrl")   # doctest: +SKIP
    >>> out["per_query"]["nDCG@10"].mean()                                                          # doctest: +SKIP
    """
    import hashlib

    import pandas as pd

    from .analysis import score_bi_encoder
    from .cache import cached_json
    from .evaluate import per_query

    rows = hashlib.sha256(json.dumps(data.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
    key = {"config": asdict(config), "data": ds.fingerprint(), "rows": rows, "split": split, "measures": measures,
           "base": model_identity(DEFAULT_MODEL)}

    def compute():
        result = train_bi_encoder(load_bi_encoder(), data, config=config)
        run, pairs = score_bi_encoder(result.model, ds, split)
        table = per_query(run, ds.split(split)[1], measures)
        return {"per_query": table.reset_index().to_dict("list"), "pairs": pairs.to_dict("list"),
                "seconds": result.seconds, "steps": result.steps}

    out = cached_json(f"train-and-score-{name}", key, compute, many=True)
    return {"per_query": pd.DataFrame(out["per_query"]).set_index("query_id"), "pairs": pd.DataFrame(out["pairs"]),
            "seconds": out["seconds"], "steps": out["steps"]}


class Clock:
    """The time each section of a notebook takes: ``clock.section("2. Losses")`` where a section
    starts, ``clock.table()`` at the end (seconds per section, computed, not typed).

    >>> clock = Clock(); _ = clock.section("1. Data"); _ = clock.section("2. Losses")
    >>> list(clock.table().index)
    ['1. Data', '2. Losses']
    """

    def __init__(self):
        import time

        self._now = time.perf_counter
        self.marks: list[tuple[str, float]] = []

    def section(self, name: str) -> str:
        self.marks.append((name, self._now()))
        return name

    def table(self):
        import pandas as pd

        ends = [t for _, t in self.marks[1:]] + [self._now()]
        return pd.DataFrame({"seconds": [round(end - start, 1) for (_, start), end in zip(self.marks, ends)]},
                            index=pd.Index([name for name, _ in self.marks], name="section"))
