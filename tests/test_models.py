import os
import subprocess
import sys

import numpy as np
import torch
import pytest

from kit.errors import ModelLoadError
from kit.models import DEFAULT_MODEL, is_bi_encoder_folder, load_bi_encoder, resolve_model, shipped_model_path

QUICKSTART = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
EXPECTED = [[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]]


def test_resolution():
    assert resolve_model(DEFAULT_MODEL) == str(shipped_model_path())
    assert resolve_model(None) == str(shipped_model_path())
    assert resolve_model("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5"
    assert is_bi_encoder_folder(shipped_model_path())


@pytest.mark.slow
def test_shipped_weights_are_the_official_model(model):
    """The sentence-transformers quickstart similarities, to 4 decimals."""
    emb = model.encode(QUICKSTART)
    sim = model.similarity(emb, emb).numpy()
    np.testing.assert_allclose(sim, EXPECTED, atol=5e-5)


@pytest.mark.slow
def test_loads_offline_in_a_fresh_process():
    code = ("from kit.models import load_bi_encoder; m = load_bi_encoder(); "
            "print(m.encode(['hello']).shape)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "(1, 384)" in out.stdout


def test_unknown_model_gives_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:
        load_bi_encoder("nobody/no-such-model")
    msg = str(info.value)
    assert "'nobody/no-such-model'" in msg and "HF_HUB_OFFLINE=1" in msg and DEFAULT_MODEL in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no hub stack trace chained


def test_bad_local_path(tmp_path):
    with pytest.raises(ModelLoadError, match="looks like a local path"):
        load_bi_encoder(str(tmp_path / "missing"))


@pytest.mark.slow
def test_cross_encoder_from_bi_encoder_keeps_its_weights_and_gets_the_asked_head():
    from kit.models import load_cross_encoder

    bi = load_bi_encoder()
    words = lambda model: model[0].auto_model.embeddings.word_embeddings.weight
    pairs = [("can I take a taxi?", "Taxis are reimbursed."), ("a", "b")]

    cosine = load_cross_encoder(max_length=64)  # default head: a scaled cosine, starts where the retriever is
    assert [type(m).__name__ for m in cosine] == ["Transformer", "SegmentCosine"]
    assert torch.equal(words(cosine), words(bi))
    scores = cosine.predict(pairs)
    assert scores.shape == (2,) and np.all(np.abs(scores) <= 1.0 + 1e-6)  # scale 1: a plain cosine, no sigmoid

    fresh = load_cross_encoder(max_length=64, head="mean")  # a new linear layer on the mean token vector
    assert [type(m).__name__ for m in fresh] == ["Transformer", "Pooling", "Dense"]
    assert torch.equal(words(fresh), words(bi))
    assert fresh.predict(pairs).shape == (2,)


def test_gated_pair_encoder_starts_as_the_bi_encoder_and_saves_its_learned_gate(tmp_path):
    from kit.heads import GatedPairTransformer
    from kit.models import cross_encoder_from, load_cross_encoder, save_model

    bi = load_bi_encoder()
    pairs = [("can I take a taxi to the airport?", "Taxis to the airport are reimbursed on a business trip."),
             ("hotel cap", "Meals abroad follow the local per diem.")]
    cosines = [float(torch.nn.functional.cosine_similarity(*torch.tensor(bi.encode(list(p))), dim=0)) for p in pairs]
    gated = cross_encoder_from(bi, "gated")
    assert [type(m).__name__ for m in gated] == ["GatedPairTransformer", "SegmentCosine"]
    assert type(bi[0]).__name__ == "Transformer"                     # the retriever itself is left as it was
    with torch.no_grad():
        gated[0].gate.fill_(-1e4)                                     # no attention across the two texts
    np.testing.assert_allclose(gated.predict(pairs), cosines, atol=1e-4)   # exactly the bi-encoder's cosine
    with torch.no_grad():
        gated[0].gate.fill_(-2.0)                                     # the default: a glance across
    glance = gated.predict(pairs)
    assert np.abs(glance - cosines).max() > 1e-3
    with torch.no_grad():
        gated[0].gate.fill_(-1.25)                                    # as if learned
    learned = gated.predict(pairs)
    save_model(gated, tmp_path / "ce")
    back = load_cross_encoder(tmp_path / "ce")
    assert isinstance(back[0], GatedPairTransformer) and back[0].cross_attention_gate == -1.25
    np.testing.assert_allclose(back.predict(pairs), learned, atol=1e-5)


def test_the_gate_learns_at_the_head_rate():
    from kit.models import cross_encoder_from
    from kit.train.cross import RerankerConfig, _optimizer

    opt = _optimizer(cross_encoder_from(load_bi_encoder(), "gated"), RerankerConfig(learning_rate=1e-5, head_learning_rate=1e-3))
    fast = opt.param_groups[1]
    assert fast["lr"] == 1e-3 and len(fast["params"]) == 2 and all(p.dim() == 0 for p in fast["params"])  # gate, scale
