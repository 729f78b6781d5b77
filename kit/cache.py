"""Artifacts keyed by what made them: trained models, embeddings and results, kept under ``.cache/``.

A key is a fingerprint of everything that determines the artifact: for a trained model, the
recipe's settings, the dataset's content (:meth:`kit.data.BeirDataset.fingerprint`), the base
model and the kit's version; for embeddings, the encoding model's weights
(:func:`kit.models.model_fingerprint`), its input length and the texts; for re-ranker scores, the
re-ranker's weights and each (query, passage) pair's texts (a pair is scored once, whichever call
needs it first). Change any of them and
the artifact is made again (and the log says why) instead of a stale one being reused.
Everything is written to a uniquely named temporary file or folder and renamed when complete, so an
interrupted run never leaves half an artifact. FAST and full runs use separate folders (see
:mod:`kit.config`); ``KIT_CACHE_DIR`` moves the whole cache. Nothing below this module imports it.

>>> from kit.cache import fingerprint
>>> fingerprint({"lr": 5e-5, "steps": 22}) == fingerprint({"steps": 22, "lr": 5e-5})
True
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from . import __version__
from .config import cache_root
from .data import Corpus, atomic_write, atomic_write_text
from .errors import KitError

if TYPE_CHECKING:
    from .retrieval import DenseIndex


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fingerprint(*parts: Any) -> str:
    """A 16-hex-digit hash of JSON-able ``parts`` (dict order does not matter; the kit version is included).

    >>> len(fingerprint("a", {"b": 1}))
    16
    """
    blob = json.dumps([__version__, *parts], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_dir(*parts: str, root: Path | None = None) -> Path:
    """A folder under the cache root (created if needed)."""
    path = (root or cache_root()).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- models

@dataclass
class CachedModel:
    """A model from :func:`cached_model`: the model, what its training reported, and whether it was trained now."""

    model: Any
    meta: dict = field(default_factory=dict)
    trained: bool = False
    path: Path | None = None
    key: str = ""


def cached_model(name: str, key: dict, train: Callable[[], tuple[Any, dict]], *,
                 loader: Callable[[str], Any], refresh: bool = False, root: Path | None = None,
                 log: Callable[[str], None] = _log) -> CachedModel:
    """Load model ``name`` trained with ``key``, or call ``train()`` once and keep what it returns.

    ``key`` describes everything that determines the weights (recipe settings, dataset
    fingerprint, base model); it is hashed with the kit version into the folder name
    ``models/<name>/<hash>``. ``train()`` returns ``(model, meta)``; ``meta`` (JSON-able: history,
    seconds, chosen settings) is stored beside the weights and returned on every later load. When
    ``name`` exists under another key, the log says the recipe or data changed, the model is
    retrained, and the old weights and their cached embeddings are removed.

    >>> cm = cached_model("retriever", {"recipe": ..., "data": ds.fingerprint()}, train, loader=load_bi_encoder)  # doctest: +SKIP
    """
    from .models import model_fingerprint, save_model

    digest = fingerprint(name, key)
    home = cache_dir("models", name, root=root)
    target = home / digest
    meta_path = target / "kit_cache.json"
    if target.is_dir() and meta_path.is_file() and not refresh:
        stored = json.loads(meta_path.read_text())
        return CachedModel(loader(str(target)), stored.get("meta", {}), False, target, digest)
    stale = [p for p in home.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != digest]
    if stale:
        log(f"cache: {name}: the recipe, the data or the base model changed ({stale[0].name} -> {digest}); retraining")
    elif refresh and target.is_dir():
        log(f"cache: {name}: refresh asked; retraining")
    else:
        log(f"cache: {name}: not trained yet with these settings; training (once: later runs load it)")
    model, meta = train()
    weights = model_fingerprint(model)
    shutil.rmtree(target, ignore_errors=True)
    save_model(model, target)
    atomic_write_text(meta_path, json.dumps({"name": name, "key": key, "weights": weights, "meta": meta},
                                            indent=1, default=str))
    for old in stale:
        _drop_model(old, root=root)
    return CachedModel(model, meta, True, target, digest)


def _drop_model(folder: Path, *, root: Path | None = None) -> None:
    """Remove a cached model and the embeddings and re-ranker scores computed with its weights (invalidation per model)."""
    try:
        weights = json.loads((folder / "kit_cache.json").read_text()).get("weights")
    except (OSError, ValueError):
        weights = None
    shutil.rmtree(folder, ignore_errors=True)
    if weights:
        shutil.rmtree((root or cache_root()) / "embeddings" / weights, ignore_errors=True)
        _pair_store(weights, root).unlink(missing_ok=True)


# --------------------------------------------------------------------------- embeddings

def _texts_key(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]


def cached_encode(model, texts: Sequence[str], *, batch_size: int = 64, root: Path | None = None,
                  show_progress_bar: bool | None = None) -> np.ndarray:
    """:func:`kit.retrieval.encode`, cached on disk by the model's weights, its input length and the texts.

    The key is computed from the weights themselves (:func:`kit.models.model_fingerprint`), so a
    fine-tuned or retrained model can never be served another model's vectors, whatever it is
    called. Each model's embeddings live in their own folder, removed when that model is retrained.

    >>> emb = cached_encode(model, ds.doc_texts())     # (encodes once, then loads)  # doctest: +SKIP
    """
    from .models import model_fingerprint
    from .retrieval import encode

    if len(texts) == 0:
        raise KitError("cached_encode: no texts to encode (empty input)")
    folder = cache_dir("embeddings", model_fingerprint(model), root=root)
    path = folder / f"{_texts_key(texts)}.npy"
    if path.is_file():
        emb = np.load(path)
        if emb.shape[0] == len(texts):
            return emb
    emb = encode(model, texts, batch_size=batch_size, show_progress_bar=show_progress_bar)
    atomic_write(path, lambda fh: np.save(fh, emb))
    return emb


def cached_index(model, corpus: Corpus, *, batch_size: int = 64, root: Path | None = None) -> "DenseIndex":
    """A :class:`kit.retrieval.DenseIndex` whose corpus embeddings come from :func:`cached_encode`.

    >>> index = cached_index(model, ds.corpus)          # (instant the second time)  # doctest: +SKIP
    """
    from .retrieval import DenseIndex

    return DenseIndex.build(model, corpus, encoder=lambda texts: cached_encode(model, texts, batch_size=batch_size,
                                                                                root=root))


# --------------------------------------------------------------------------- results

def cached_json(name: str, key: Any, compute: Callable[[], Any], *, refresh: bool = False, many: bool = False,
                root: Path | None = None, log: Callable[[str], None] = _log) -> Any:
    """Cache a JSON-serializable result (e.g. a learning curve) under ``name`` and a fingerprint of ``key``.

    By default ``name`` holds one result: a new ``key`` replaces the old one (and the log says the
    inputs changed). ``many=True`` keeps one result per key (e.g. one LLM answer per prompt).

    >>> curve = cached_json("curve", {"sizes": [32, 64], "data": ds.fingerprint()}, compute)   # doctest: +SKIP
    """
    folder = cache_dir("results", name, root=root)
    path = folder / f"{fingerprint(name, key)}.json"
    if path.is_file() and not refresh:
        return json.loads(path.read_text())
    stale = [] if many else [p for p in folder.glob("*.json") if p != path]
    if stale:
        log(f"cache: {name}: its inputs changed; computing it again")
    value = compute()
    atomic_write_text(path, json.dumps(value, default=float))
    for old in stale:
        old.unlink(missing_ok=True)
    return value


def clear(root: Path | None = None) -> None:
    """Delete every cached artifact of the current mode (FAST or full)."""
    shutil.rmtree(root or cache_root(), ignore_errors=True)


__all__ = ["CachedModel", "cache_dir", "cached_encode", "cached_index", "cached_json", "cached_model", "cached_rerank",
           "clear", "fingerprint", "remember_rerank"]


def _pair_key(query: str, passage: str) -> str:
    return hashlib.blake2b(json.dumps([query, passage], ensure_ascii=False).encode(), digest_size=8).hexdigest()


def _pair_store(weights: str, root: Path | None) -> Path:
    """The score store of the re-ranker whose weights have this :func:`kit.models.model_fingerprint`."""
    return cache_dir("reranked", root=root) / f"{fingerprint(weights)}.json"


def _merge_pair_scores(path: Path, new: dict[str, float]) -> dict[str, float]:
    """Add ``new`` to the store at ``path`` (read again just before writing, so concurrent writers
    lose at most each other's latest additions, never the file), atomically."""
    stored = _read_pair_scores(path)
    stored.update(new)
    atomic_write_text(path, json.dumps(stored))
    return stored


def _read_pair_scores(path: Path) -> dict[str, float]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def remember_rerank(reranker, corpus: Corpus, queries: dict, reranked: dict, depth: int, *,
                    root: Path | None = None) -> int:
    """Store scores the re-ranker already computed (each query's top ``depth`` of ``reranked``, as
    :func:`kit.retrieval.rerank` returns it) so :func:`cached_rerank` never computes them again.

    The recipe's own dev re-ranking (``RecipeResult.dev_reranked``) is stored this way by
    :func:`kit.series.recipe_reranker`. Returns how many pairs were stored.

    >>> remember_rerank(reranker, ds.corpus, dev_queries, result.dev_reranked, depth=20)   # doctest: +SKIP
    """
    from .data import doc_text
    from .models import model_fingerprint
    from .retrieval import top_run

    new = {_pair_key(queries[q], doc_text(corpus[d])): float(s)
           for q, docs in top_run(reranked, depth).items() for d, s in docs.items()}
    if new:
        _merge_pair_scores(_pair_store(model_fingerprint(reranker), root), new)
    return len(new)


def cached_rerank(reranker, corpus: Corpus, queries: dict, run: dict, depth: int, *, batch_size: int = 32,
                  root: Path | None = None) -> dict:
    """:func:`kit.retrieval.rerank` of each query's top ``depth``, each (query, passage) pair scored once.

    Scores are kept per pair of texts, under the re-ranker's weights and input length
    (:func:`kit.models.model_fingerprint`): any later call that needs a pair already scored (another
    depth, another first stage's candidates, another notebook, a re-run) reads it instead of
    re-scoring it; only the missing pairs go through the model. Returns the re-ranked top ``depth``
    per query (no tail), best first. Taught in ``notebooks/05_cross_encoder.ipynb``; notebooks 03
    and 06 use it too.

    >>> reranked = cached_rerank(reranker, ds.corpus, queries, run, depth=20)   # doctest: +SKIP
    """
    from .data import doc_text
    from .models import model_fingerprint
    from .retrieval import rerank, top_run

    first = top_run(run, depth)
    missing_q = [q for q in first if q not in queries]
    if missing_q:
        raise KitError(f"cached_rerank: query id {missing_q[0]!r} is in the run but not in queries")
    keys = {q: {d: _pair_key(queries[q], doc_text(corpus[d])) for d in docs} for q, docs in first.items()}
    path = _pair_store(model_fingerprint(reranker), root)
    stored = _read_pair_scores(path)
    todo = {q: {d: first[q][d] for d, k in ks.items() if k not in stored} for q, ks in keys.items()}
    todo = {q: docs for q, docs in todo.items() if docs}
    if todo:
        scored = rerank(reranker, corpus, queries, todo, depth=depth, batch_size=batch_size, show_progress_bar=False)
        stored = _merge_pair_scores(path, {keys[q][d]: s for q, docs in scored.items() for d, s in docs.items()})
    return {q: dict(sorted(((d, stored[k]) for d, k in ks.items()), key=lambda x: (-x[1], x[0])))
            for q, ks in keys.items()}
