"""Scoring heads for cross-encoders, as sentence-transformers modules (they save and load with the model).

:class:`SegmentCosine` scores a (query, passage) pair read together by one transformer as the
cosine between the mean of the query's token vectors and the mean of the passage's. Built from a
bi-encoder's weights, it starts far above chance (query and answer vectors close), where a fresh
linear head starts at chance, but below the retriever: read as one sequence, the texts' vectors
change. :class:`GatedPairTransformer` keeps each text's own reading and gates the attention between
them, so with this head on top it starts at the bi-encoder's own cosine. Taught in
``notebooks/05_cross_encoder.ipynb``; :func:`kit.models.load_cross_encoder` builds them
(``head="cosine"``, ``head="gated"``).

>>> import torch
>>> head = SegmentCosine(scale=1.0)
>>> features = {"token_embeddings": torch.tensor([[[1., 0.], [1., 0.], [0., 1.]]]),
...             "attention_mask": torch.tensor([[1, 1, 1]]), "token_type_ids": torch.tensor([[0, 0, 1]])}
>>> round(float(head(features)["scores"]), 4)
0.0
"""
from __future__ import annotations

import torch
from sentence_transformers.base.modules import Module, Transformer

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


class GatedPairTransformer(Transformer):
    """A transformer that reads a (query, passage) pair like a bi-encoder, plus gated cross-attention.

    The pair arrives tokenized as usual (``[CLS] query [SEP] passage [SEP]``); each text is given its
    own ``[CLS]`` and positions counting from 0, exactly as a bi-encoder encodes it alone, and
    attention between the two texts gets an additive bias ``gate`` (learned; a very negative gate
    blocks it, 0 is a plain cross-encoder). With :class:`SegmentCosine` on top and a very negative
    gate, the re-ranker's score *is* the bi-encoder's cosine; at the default gate of -2 each token
    already glances at the other text. Built by :func:`kit.models.cross_encoder_from`
    (``head="gated"``); taught in ``notebooks/05_cross_encoder.ipynb``.

    >>> reranker = cross_encoder_from(retriever, "gated")      # doctest: +SKIP
    >>> reranker[0].cross_attention_gate                        # doctest: +SKIP
    -2.0
    """

    config_keys = [*Transformer.config_keys, "cross_attention_gate"]

    def __init__(self, model_name_or_path: str, *, cross_attention_gate: float = -2.0, **kwargs):
        super().__init__(model_name_or_path, **kwargs)
        self.gate = torch.nn.Parameter(torch.tensor(float(cross_attention_gate)))

    @property
    def cross_attention_gate(self) -> float:        # what save_config writes (the learned value)
        return round(float(self.gate.detach()), 6)

    @classmethod
    def from_transformer(cls, transformer: Transformer, gate: float = -2.0) -> "GatedPairTransformer":
        """The same module (weights shared, not copied) read as a gated pair encoder."""
        transformer.__class__ = cls
        transformer.gate = torch.nn.Parameter(torch.tensor(float(gate), device=transformer.auto_model.device))
        return transformer

    def forward(self, features: dict, **kwargs) -> dict:
        ids, mask = features["input_ids"], features["attention_mask"]
        types = features.get("token_type_ids")
        if types is None:
            raise KitError("GatedPairTransformer needs token_type_ids: a BERT-style tokenizer that marks the pair's segments")
        length = ids.shape[1]
        at = torch.arange(length + 1, device=ids.device).unsqueeze(0)
        n_query = ((types == 0) & (mask == 1)).sum(1, keepdim=True)          # [CLS] query [SEP]
        n_all = mask.sum(1, keepdim=True)
        source = torch.where(at < n_query, at, at - 1).clamp(0, length - 1)
        new_ids = torch.where(at == n_query, self.tokenizer.cls_token_id, ids.gather(1, source))
        valid = at <= n_all                                                 # one token longer: the passage's [CLS]
        new_ids = torch.where(valid, new_ids, self.tokenizer.pad_token_id or 0)
        second = ((at >= n_query) & valid).long()
        positions = torch.where(at < n_query, at, at - n_query) * valid
        same = second.unsqueeze(2) == second.unsqueeze(1)
        bias = torch.where(same, torch.zeros((), device=ids.device), self.gate.to(ids.device))
        neg = torch.finfo(self.auto_model.dtype).min / 2                   # padding: never attended
        bias = torch.where(valid.unsqueeze(1), bias, torch.full((), neg, device=ids.device))
        out = self.auto_model(input_ids=new_ids, attention_mask=bias.unsqueeze(1).to(self.auto_model.dtype),
                              token_type_ids=torch.zeros_like(new_ids), position_ids=positions, return_dict=True)
        features["token_embeddings"] = out.last_hidden_state
        features["attention_mask"] = valid.long()
        features["token_type_ids"] = second
        return features
