"""Task adaptation: train only part of a model. Freezing the bottom layers, a small adapter on a
frozen encoder, and a random re-initialization (the baseline that shows what pre-training buys).

One meaning of "freeze N" everywhere: ``freeze(model, 4)`` and ``python -m kit train-bi
--freeze-layers 4`` both freeze the embeddings and the **bottom 4** transformer layers; the layers
above them train. Taught in ``notebooks/04_bi_encoder.ipynb``.

>>> from kit.train.adapt import freeze
>>> freeze(model, 4)                      # (the top 2 of MiniLM's 6 layers train)  # doctest: +SKIP
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import KitError
from .core import count_parameters

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def _auto_model(model):
    first = model[0]
    auto = getattr(first, "auto_model", None) or getattr(first, "model", None)
    if auto is None:  # pragma: no cover - a model without a transformer module
        raise KitError(f"cannot find the transformer of {type(model).__name__}")
    return getattr(auto, "base_model", auto)


def transformer_layers(model) -> tuple[Any, list[Any]]:
    """``(embeddings, [layer_1, ..., layer_n])`` of the model's transformer (BERT-like, and common others).

    Works for bi-encoders and cross-encoders (their first module is the transformer).

    >>> _, layers = transformer_layers(load_bi_encoder())    # doctest: +SKIP
    >>> len(layers)                                          # doctest: +SKIP
    6
    """
    auto = _auto_model(model)
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


def freeze(model, layers: int | None = None):
    """Freeze the embeddings and the bottom ``layers`` transformer layers (``None``: the whole transformer).

    The layers above train, and so does every module after the transformer (an adapter, a
    re-ranker's head); the transformer's own pooler layer is frozen. Modifies ``model`` in place and returns it. ``freeze(model, 4)``
    on MiniLM's 6 layers trains the top 2; ``freeze(model)`` trains only modules added after the
    transformer (:func:`add_adapter`).

    >>> freeze(model, 4); count_parameters(model)             # (3548928, 22713216)  # doctest: +SKIP
    """
    embeddings, blocks = transformer_layers(model)
    n = len(blocks) if layers is None else layers
    if not 0 <= n <= len(blocks):
        raise KitError(f"freeze: layers must be between 0 and {len(blocks)} (the model has {len(blocks)} "
                       f"transformer layers), got {layers}")
    for p in _auto_model(model).parameters():   # the whole transformer first (its unused pooler included) ...
        p.requires_grad = False
    for block in blocks[n:]:                    # ... then the layers above the frozen ones train again
        for p in block.parameters():
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
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.dense import Dense

    dim = (model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
           else model.get_sentence_embedding_dimension())
    adapter = Dense(dim, dim, bias=True, activation_function=torch.nn.Identity(),
                    init_weight=torch.eye(dim), init_bias=torch.zeros(dim))
    names = [type(m).__name__ for m in model]
    position = names.index("Normalize") if "Normalize" in names else len(names)
    modules = list(model)
    modules.insert(position, adapter)
    new = SentenceTransformer(modules=modules, device=str(model.device))
    new.model_card_data = model.model_card_data
    if freeze_encoder:
        freeze(new)
    return new


def reinitialize(model, seed: int = 42):
    """Replace every transformer weight with a fresh random initialization (same architecture).

    The baseline for "pre-trained weights converge faster" (notebook 04).
    """
    import torch

    torch.manual_seed(seed)
    auto = _auto_model(model)
    if hasattr(auto, "_init_weights"):
        auto.apply(auto._init_weights)
    else:  # pragma: no cover - non-HF transformer
        for m in auto.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return model


__all__ = ["add_adapter", "count_parameters", "freeze", "reinitialize", "transformer_layers"]
