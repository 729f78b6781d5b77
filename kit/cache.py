"""Artifacts shared across notebooks: fine-tuned models and embeddings, kept under ``.cache/``.

A later notebook reuses what an earlier one trained (notebook 01's fine-tuned model is the
"fine-tuned" model of 02 and 04) instead of training it again. Everything is written to a
temporary folder first and renamed when complete, so an interrupted run never leaves a
half-written model behind. FAST and full runs use separate folders (see :mod:`kit.config`).
Delete ``.cache/`` (or call :func:`clear`) to recompute everything.

>>> from kit.cache import cached_model
>>> model = cached_model("ft-minilm", train_fn)        # doctest: +SKIP   (trains once, then loads)
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from .config import CACHE_DIR

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def cache_dir(*parts: str) -> Path:
    """A folder under the cache root (created if needed)."""
    path = CACHE_DIR.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_model(name: str, train_fn: Callable[[], "SentenceTransformer"], *, refresh: bool = False,
                 loader: Callable[[str], "SentenceTransformer"] | None = None) -> "SentenceTransformer":
    """Load model ``name`` from the cache, or call ``train_fn()`` once and cache what it returns.

    >>> model = cached_model("ft-minilm", lambda: train_bi_encoder(...).model)   # doctest: +SKIP
    """
    from .models import load_bi_encoder
    from .train import save_model

    target = cache_dir("models") / name
    if target.is_dir() and not refresh:  # save_model renames a complete folder into place: present = complete
        return (loader or load_bi_encoder)(str(target))
    model = train_fn()
    # Embeddings cached under this model's name would now be stale: drop the embeddings cache.
    shutil.rmtree(CACHE_DIR / "embeddings", ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    save_model(model, target)
    return model


def cached_json(name: str, compute: Callable[[], object], *, refresh: bool = False) -> object:
    """Cache a JSON-serializable result (e.g. a learning curve) under ``name``."""
    from .data import atomic_write_text

    path = cache_dir("results") / f"{name}.json"
    if path.exists() and not refresh:
        return json.loads(path.read_text())
    value = compute()
    atomic_write_text(path, json.dumps(value))
    return value


def _key(tag: str, texts: Sequence[str], extra: str) -> str:
    h = hashlib.sha1(f"{tag}\x00{extra}".encode())
    for t in texts:
        h.update(t.encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]


def cached_encode(model: "SentenceTransformer", texts: Sequence[str], tag: str, *, batch_size: int = 64) -> np.ndarray:
    """:func:`kit.retrieval.encode`, cached on disk by (``tag``, texts, max_seq_length).

    ``tag`` must identify the model's weights (e.g. ``"all-MiniLM-L6-v2"`` or a cached model's name).
    """
    from .retrieval import encode

    path = cache_dir("embeddings") / f"{_key(tag, texts, str(model.max_seq_length))}.npy"
    if path.exists():
        return np.load(path)
    emb = encode(model, texts, batch_size=batch_size)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    os.replace(tmp, path)
    return emb


def clear() -> None:
    """Delete every cached artifact of the current mode (FAST or full)."""
    shutil.rmtree(CACHE_DIR, ignore_errors=True)
