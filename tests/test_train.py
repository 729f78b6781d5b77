"""Training utilities: freezing really freezes, the adapter starts as the identity, the trainer keeps
the best checkpoint. Uses the shipped model on a few tiny batches (seconds on a 2-core CPU)."""
import copy

import numpy as np
import pytest
import torch

from kit.data import holdout_split, load_beir, positive_pairs
from kit.errors import KitError
from kit.models import save_model
from kit.train import (LOSS_DATA_SHAPE, RetrievalEvaluator, add_adapter, count_parameters, freeze, make_loss,
                       planned_steps, train_bi_encoder, transformer_layers)

pytestmark = pytest.mark.slow


@pytest.fixture
def fresh_model(model):
    return copy.deepcopy(model)


def test_freeze_counts_frozen_layers(fresh_model):
    """freeze(model, 4) freezes the bottom 4 of 6 layers (what --freeze-layers 4 means): the top 2 train."""
    _, layers = transformer_layers(fresh_model)
    assert len(layers) == 6
    total = count_parameters(fresh_model)[1]
    freeze(fresh_model, 4)
    trainable, _ = count_parameters(fresh_model)
    per_layer = sum(p.numel() for p in layers[0].parameters())
    assert trainable == 2 * per_layer and total == 22_713_216
    assert all(not p.requires_grad for layer in layers[:4] for p in layer.parameters())
    assert all(p.requires_grad for layer in layers[4:] for p in layer.parameters())
    freeze(fresh_model)                                    # None: the whole transformer
    assert count_parameters(fresh_model)[0] == 0
    with pytest.raises(KitError, match="between 0 and 6"):
        freeze(fresh_model, 7)


def test_frozen_parameters_do_not_change(fresh_model, tiny_dir):
    ds = load_beir(tiny_dir)
    freeze(fresh_model, 5)                                 # only the top layer trains
    before = {n: p.detach().clone() for n, p in fresh_model.named_parameters()}
    train_bi_encoder(fresh_model, positive_pairs(ds, "train"), max_steps=2, batch_size=3, learning_rate=1e-3,
                     max_seq_length=32, no_duplicates=False)
    changed = {n for n, p in fresh_model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed, "the top layer should have moved"
    assert all(".layer.5." in n for n in changed), sorted(changed)[:5]


def test_adapter_starts_as_identity_and_only_it_trains(fresh_model, tiny_dir):
    texts = ["can I take a taxi?", "hotel cap in New York"]
    before = fresh_model.encode(texts)
    adapted = add_adapter(fresh_model)
    np.testing.assert_allclose(adapted.encode(texts), before, atol=1e-5)
    assert count_parameters(adapted)[0] == 384 * 384 + 384
    ds = load_beir(tiny_dir)
    train_bi_encoder(adapted, positive_pairs(ds, "train"), max_steps=2, batch_size=3, learning_rate=1e-2,
                     max_seq_length=32, no_duplicates=False)
    assert not np.allclose(adapted.encode(texts), before, atol=1e-4)


def test_best_checkpoint_is_kept(fresh_model, tiny_dir):
    """A learning rate that wrecks the model: the trainer must return the step-0 weights' score."""
    ds = load_beir(tiny_dir)
    evaluator = RetrievalEvaluator(ds, "test")
    start = evaluator(fresh_model)["test_nDCG@10"]
    result = train_bi_encoder(fresh_model, positive_pairs(ds, "train"), evaluator=evaluator, max_steps=4,
                              eval_steps=2, batch_size=3, learning_rate=0.5, max_seq_length=32, no_duplicates=False)
    scores = [h["nDCG@10"] for h in result.history]
    assert result.best_metric == max(scores)
    final = RetrievalEvaluator(ds, "test")(result.model)["test_nDCG@10"]
    assert final == pytest.approx(result.best_metric, abs=1e-6)
    assert final >= start - 1e-6
    assert result.step_seconds and result.step_seconds <= result.seconds


def test_losses_by_shape(fresh_model):
    assert set(LOSS_DATA_SHAPE) == {"mnrl", "contrastive", "online_contrastive", "triplet", "cosent", "cosine"}
    assert type(make_loss("cosent", fresh_model)).__name__ == "CoSENTLoss"
    with pytest.raises(KitError, match="unknown loss 'nope'"):
        make_loss("nope", fresh_model)


def test_holdout_split_moves_seeded_queries(tiny_dir):
    ds = load_beir(tiny_dir)
    held = holdout_split(ds, "train", fraction=0.1, seed=1)
    assert held.splits == ["dev", "test", "train"] and ds.splits == ["test", "train"]   # the original is untouched
    assert len(held.qrels["dev"]) == 1 and len(held.qrels["train"]) == 2
    assert set(held.qrels["dev"]) | set(held.qrels["train"]) == set(ds.qrels["train"])
    assert holdout_split(ds, "train", seed=1).qrels["dev"] == held.qrels["dev"]        # seeded
    with pytest.raises(KitError, match="already exists"):
        holdout_split(held, "train")


def test_evaluator_max_docs_keeps_judged_passages(tiny_dir):
    ds = load_beir(tiny_dir)
    ev = RetrievalEvaluator(ds, "test", max_docs=4)
    judged = {d for docs in ds.qrels["test"].values() for d in docs}
    assert judged <= set(ev.corpus) and len(ev.corpus) == 4
    assert len(RetrievalEvaluator(ds, "test").corpus) == 6


def test_planned_steps_follow_world_size(monkeypatch, tiny_dir):
    assert planned_steps(702, batch_size=32) == 22 and planned_steps(702, max_steps=3) == 3
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert planned_steps(702, batch_size=32) == 11     # each process takes its share of the epoch
    ds = load_beir(tiny_dir)
    with pytest.raises(KitError, match="cannot fill one batch of 2 on each of 2 processes"):
        train_bi_encoder(None, positive_pairs(ds, "train"), batch_size=2)


def test_save_model_is_atomic_and_refuses_non_empty(fresh_model, tmp_path):
    target = save_model(fresh_model, tmp_path / "m")
    assert (target / "README.md").is_file() and (target / "model.safetensors").is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    with pytest.raises(KitError, match="exists and is not empty"):
        save_model(fresh_model, target)


def test_long_texts_get_the_cached_listwise_loss_with_the_same_gradients(fresh_model):
    """mini_batch_size swaps MNRL for its gradient-caching variant; with dropout off, one step of each
    from the same weights lands on the same weights (memory bounded, the loss unchanged)."""
    from datasets import Dataset

    from kit.models import cross_encoder_from
    from kit.train import RerankerConfig, make_reranker_loss, train_cross_encoder

    ce = cross_encoder_from(fresh_model, "cosine")
    cached = make_reranker_loss("mnrl", ce, in_batch_negatives=1, mini_batch_size=3)
    plain = make_reranker_loss("mnrl", ce, in_batch_negatives=1)
    assert type(cached).__name__ == "CachedMultipleNegativesRankingLoss" and cached.mini_batch_size == 3
    assert type(plain).__name__ == "MultipleNegativesRankingLoss"
    assert cached.scale == plain.scale == 20.0              # the cosine head's temperature, in both
    data = Dataset.from_dict({"query": ["taxi to the airport?", "hotel cap in New York", "lost receipt"],
                              "positive": ["Taxis are reimbursed.", "The New York cap is $325.", "Use the declaration."],
                              "negative_1": ["Meals are per diem.", "Mileage is $0.67.", "Gifts up to $75."]})
    weights = {}
    for name, mini in (("plain", None), ("cached", 2)):
        model = copy.deepcopy(ce)
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        train_cross_encoder(model, data, config=RerankerConfig(max_steps=1, batch_size=3, learning_rate=1e-3,
                                                               max_seq_length=32, in_batch_negatives=1,
                                                               mini_batch_pairs=mini, progress=False, load_best=False,
                                                               warmup_ratio=0.0))
        weights[name] = torch.cat([p.detach().flatten() for p in model.parameters()])
    moved = (weights["plain"] - torch.cat([p.detach().flatten() for p in ce.parameters()])).abs().max()
    assert moved > 1e-5                                     # the step did something
    # Adam's first step is about lr x sign(gradient): where a gradient is ~0, float noise between the two
    # ways of computing it can flip the sign, so a few weights (a few in 10^5 here) differ; a different
    # loss would move most of them differently.
    differ = ((weights["plain"] - weights["cached"]).abs() > 1e-5).float().mean()
    assert differ < 1e-3, float(differ)


def test_the_core_slices_a_long_listwise_step_unless_told_not_to(fresh_model, monkeypatch):
    """train_cross_encoder itself decides gradient caching from the data's columns and the length (not
    only the recipe): over the pair-token budget it slices; mini_batch_pairs=0 keeps one pass; bce never."""
    from datasets import Dataset

    import kit.train.cross as cross
    from kit.models import cross_encoder_from

    cols = ["query", "positive", "negative_1", "negative_2"]
    cfg = cross.RerankerConfig(batch_size=16, in_batch_negatives=1)          # 16 x 4 pairs per step
    assert cross.mini_batch_pairs_for(cfg, cols, 128) is None                  # 64 x 128 <= 96 x 192
    assert cross.mini_batch_pairs_for(cfg, cols, 512) == 96 * 192 // 512      # 64 x 512 > 96 x 192
    assert cross.mini_batch_pairs_for(cfg.with_overrides(mini_batch_pairs=0), cols, 512) is None
    assert cross.mini_batch_pairs_for(cfg.with_overrides(mini_batch_pairs=7), cols, 128) == 7
    assert cross.mini_batch_pairs_for(cfg.with_overrides(loss="bce"), cols, 512) is None

    seen = []
    real = cross.make_reranker_loss
    monkeypatch.setattr(cross, "make_reranker_loss", lambda *a, **kw: seen.append(kw.get("mini_batch_size")) or real(*a, **kw))
    monkeypatch.setattr(cross, "PAIR_TOKENS_PER_PASS", 3 * 3 * 32 - 1)       # a token fewer than a step holds
    data = Dataset.from_dict({"query": ["taxi?", "hotel cap", "receipt"], "positive": ["Taxis.", "Cap $325.", "Declare."],
                              "negative_1": ["Meals.", "Mileage.", "Gifts."]})
    ce = cross_encoder_from(fresh_model, "cosine")
    for mini in (None, 0):
        cross.train_cross_encoder(ce, data, config=cross.RerankerConfig(max_steps=1, batch_size=3, in_batch_negatives=1,
                                                                       max_seq_length=32, mini_batch_pairs=mini,
                                                                       progress=False, load_best=False))
    assert seen == [(3 * 3 * 32 - 1) // 32, None]
