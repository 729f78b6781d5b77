"""Scoring heads for cross-encoders, as sentence-transformers modules (they save and load with the model).

:class:`SegmentCosine` scores a (query, passage) pair read together by one transformer as the
cosine between the mean of the query's token vectors and the mean of the passage's. Built from a
bi-encoder's weights, it starts where the retriever already is (query and answer vectors close)
instead of at chance, as a fresh linear head does. Taught in ``notebooks/05_cross_encoder.ipynb``;
:func:`kit.models.load_cross_encoder` builds it (``head="cosine"``).

>>> import torch
>>> head = SegmentCosine(scale=1.0)
>>> features = {"token_embeddings": torch.tensor([[[1., 0.], [1., 0.], [0., 1.]]]),
...             "attention_mask": torch.tensor([[1, 1, 1]]), "token_type_ids": torch.tensor([[0, 0, 1]])}
>>> round(float(head(features)["scores"]), 4)
0.0
"""
from __future__ import annotations

import torch
from sentence_transformers.base.modules import Module

from .errors import KitError

_HUB_KWARGS = ("subfolder", "token", "cache_folder", "revision", "local_files_only")


class SegmentCosine(Module):
    """``scale x cos(mean(query token vectors), mean(passage token vectors))`` over a joint encoding.

    The segments are told apart by BERT's token type ids (0 for the query, 1 for the passage);
    padding is left out by the attention mask. ``scale`` is learned (stored as its logarithm).
    """

    config_keys = ["scale"]

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = float(scale)
        self.log_scale = torch.nn.Parameter(torch.tensor(float(scale)).log())

    def forward(self, features: dict, **kwargs) -> dict:
        h = features["token_embeddings"]
        mask = features["attention_mask"].unsqueeze(-1).to(h.dtype)
        second = features.get("token_type_ids")
        if second is None:
            raise KitError("SegmentCosine needs token_type_ids: a BERT-style tokenizer that marks the pair's segments")
        second = second.unsqueeze(-1).to(h.dtype)
        q = (h * mask * (1 - second)).sum(1) / (mask * (1 - second)).sum(1).clamp(min=1)
        p = (h * mask * second).sum(1) / (mask * second).sum(1).clamp(min=1)
        features["scores"] = (torch.nn.functional.cosine_similarity(q, p, dim=-1) * self.log_scale.exp()).unsqueeze(1)
        return features

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.scale = float(self.log_scale.detach().exp())
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, **kwargs) -> "SegmentCosine":
        hub = {k: v for k, v in kwargs.items() if k in _HUB_KWARGS}
        module = cls(**cls.load_config(model_name_or_path, **hub))
        return cls.load_torch_weights(model_name_or_path, model=module, **hub)
