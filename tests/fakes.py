"""Stand-ins the unit tests share (no model download, no training: instant and deterministic)."""
from __future__ import annotations

import numpy as np


class BagOfLetters:
    """An 'encoder' that maps a text to its normalized letter counts: enough to test retrieval plumbing."""

    max_seq_length = 64

    def encode(self, texts, **kwargs):
        out = np.zeros((len(texts), 26), "float32")
        for r, t in enumerate(texts):
            for ch in t.lower():
                if "a" <= ch <= "z":
                    out[r, ord(ch) - 97] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
