"""Augmentation when good data is scarce. So far: hard-negative mining (sentence-transformers'
``mine_hard_negatives``), returning doc ids so the negatives plug into :mod:`kit.data` views.

Taught in ``notebooks/04_bi_encoder.ipynb`` (the recipe) and ``03_augmentation.ipynb`` (planned).

>>> from kit.augment import mine_negatives
>>> negatives = mine_negatives(model, ds, "train", num_negatives=3)     # doctest: +SKIP
>>> negatives["q0001"]                                                  # doctest: +SKIP
['meal-04', 'meal-11', 'except-08']
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import KitError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .data import BeirDataset


def mine_negatives(model: "SentenceTransformer", ds: "BeirDataset", split: str = "train", *,
                   num_negatives: int = 3, range_min: int = 0, range_max: int = 50,
                   relative_margin: float | None = 0.05, batch_size: int = 64,
                   use_faiss: bool = False) -> dict[str, list[str]]:
    """Hard negatives per query: passages the model ranks high that are **not judged** relevant.

    Wraps :func:`sentence_transformers.util.mine_hard_negatives`. ``relative_margin=0.05`` skips
    candidates scoring within 5% of the positive (likely unjudged relevant passages: false
    negatives). Passages judged relevant at any grade are always excluded.

    >>> negs = mine_negatives(load_bi_encoder(), ds, "train", num_negatives=2)   # doctest: +SKIP
    """
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    queries, qrels = ds.split(split)
    corpus_ids = list(ds.corpus)
    texts = ds.doc_texts(corpus_ids)
    by_text = dict(zip(texts, corpus_ids))
    if len(by_text) != len(texts):
        raise KitError("mine_negatives: two passages have identical text; give them distinct text")
    pairs = [(q, max(docs, key=docs.get)) for q, docs in qrels.items()]
    data = Dataset.from_dict({"anchor": [queries[q] for q, _ in pairs],
                              "positive": [ds.doc_text(d) for _, d in pairs]})
    extra = max(3, num_negatives)  # over-ask: judged passages are filtered out below
    mined = mine_hard_negatives(data, model, corpus=texts, range_min=range_min, range_max=range_max,
                                relative_margin=relative_margin, num_negatives=num_negatives + extra,
                                sampling_strategy="top", output_format="n-tuple", batch_size=batch_size,
                                use_faiss=use_faiss, verbose=False)
    neg_cols = [c for c in mined.column_names if c.startswith("negative")]
    by_anchor: dict[str, list[str]] = {}
    for row in mined:
        by_anchor[row["anchor"]] = [by_text[row[c]] for c in neg_cols if row[c] is not None]
    out: dict[str, list[str]] = {}
    for q, _ in pairs:
        judged = {d for d, g in qrels[q].items() if g > 0}
        out[q] = [d for d in by_anchor.get(queries[q], []) if d not in judged][:num_negatives]
    return out
