"""Training throughput: kit's trainers against the sentence-transformers Trainers called directly.

``--kind bi`` (default): :func:`kit.train.train_bi_encoder` vs ``SentenceTransformerTrainer``;
``--kind cross``: :func:`kit.train.train_cross_encoder` vs ``CrossEncoderTrainer`` (the re-ranker of
notebook 05: the cosine head on MiniLM, the listwise loss, rows from :func:`kit.data.rerank_pairs`).

Both sides train a fresh copy of the same model on the same (query, answer) pairs with
MultipleNegativesRankingLoss, the no-duplicates batch sampler, the same batch size, sequence
length, learning rate, seed and number of steps, and no evaluator. Each timing covers the whole
call (building the Trainer included), which is what a user waits for. The runs are interleaved
(direct, kit, direct, kit, ...) after one warm-up run, so machine noise hits both sides alike.
Target: at most 5% apart (ratio of pairs per second, kit / direct, between 0.95 and 1.05).

Two clocks are reported: wall time (what you wait for) and this process's CPU time (user + system,
all threads). On a shared machine other processes steal cores and the wall-clock ratio swings from
run to run; the CPU-time ratio is what the code itself costs, and is the steadier of the two.

    .venv/bin/python benchmarks/bench_train_throughput.py [--repeats 3] [--steps 6] [--batch-size 16]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from kit.data import load_expense_policy, positive_pairs  # noqa: E402
from kit.models import load_bi_encoder  # noqa: E402
from kit.train import train_bi_encoder  # noqa: E402


def direct(model, data, *, steps: int, batch_size: int, max_seq_length: int, seed: int) -> None:
    """The same training written against sentence-transformers only."""
    import logging

    import torch
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import (BatchSamplers,
                                                                           SentenceTransformerTrainingArguments)

    model.max_seq_length = max_seq_length
    with tempfile.TemporaryDirectory() as tmp:
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp, max_steps=steps, per_device_train_batch_size=batch_size, learning_rate=5e-5,
            warmup_steps=0.1, batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", logging_steps=5,
            seed=seed, data_seed=seed, report_to="none", disable_tqdm=True, use_cpu=not torch.cuda.is_available())
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                             loss=MultipleNegativesRankingLoss(model))
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        logging.getLogger("transformers.trainer").setLevel(logging.WARNING)
        trainer.train()
        assert trainer.state.global_step == steps


def with_kit(model, data, *, steps: int, batch_size: int, max_seq_length: int, seed: int) -> None:
    result = train_bi_encoder(model, data, max_steps=steps, batch_size=batch_size, max_seq_length=max_seq_length,
                              learning_rate=5e-5, seed=seed, progress=False)
    assert result.steps == steps


def direct_cross(model, data, *, steps: int, batch_size: int, max_seq_length: int, seed: int) -> None:
    """The re-ranker's training written against sentence-transformers only (same loss, same optimizer groups)."""
    import torch
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments, losses

    model.max_seq_length = max_seq_length
    head = [p for n, p in model.named_parameters() if not n.startswith("0.")]
    body = [p for n, p in model.named_parameters() if n.startswith("0.")]
    optimizer = torch.optim.AdamW([{"params": body, "lr": 5e-5}, {"params": head, "lr": 1e-3}], lr=5e-5)
    with tempfile.TemporaryDirectory() as tmp:
        args = CrossEncoderTrainingArguments(output_dir=tmp, max_steps=steps, per_device_train_batch_size=batch_size,
                                             learning_rate=5e-5, warmup_steps=0.1, save_strategy="no", logging_steps=5,
                                             seed=seed, data_seed=seed, report_to="none", disable_tqdm=True,
                                             use_cpu=not torch.cuda.is_available())
        loss = losses.MultipleNegativesRankingLoss(model, num_negatives=2, scale=20.0, activation_fn=torch.nn.Identity())
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=data, loss=loss, optimizers=(optimizer, None))
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        trainer.train()
        assert trainer.state.global_step == steps


def with_kit_cross(model, data, *, steps: int, batch_size: int, max_seq_length: int, seed: int) -> None:
    from kit.train import train_cross_encoder

    result = train_cross_encoder(model, data, max_steps=steps, batch_size=batch_size, max_seq_length=max_seq_length,
                                 seed=seed, progress=False, warmup_ratio=0.1)
    assert result.steps == steps


def timed(fn, *args, **kwargs) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-seq-length", type=int, default=64)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--kind", choices=["bi", "cross"], default="bi")
    args = ap.parse_args()

    ds = load_expense_policy(splits=["train"])
    if args.kind == "bi":
        data, base, sides = positive_pairs(ds, "train"), load_bi_encoder(), (("direct", direct), ("kit", with_kit))
    else:
        from kit.data import rerank_pairs
        from kit.models import cross_encoder_from
        from kit.retrieval import DenseIndex
        from kit.train import reranker_dataset

        bi = load_bi_encoder(max_seq_length=args.max_seq_length)
        run = DenseIndex.build(bi, ds.corpus).search(ds.split("train")[0], k=30)
        data = reranker_dataset(rerank_pairs(ds, "train", run, hard_negatives=3, random_negatives=0), "mnrl")
        base, sides = cross_encoder_from(bi), (("direct", direct_cross), ("kit", with_kit_cross))
    settings = dict(steps=args.steps, batch_size=args.batch_size, max_seq_length=args.max_seq_length, seed=args.seed)
    sides[0][1](copy.deepcopy(base), data, **{**settings, "steps": 2})   # warm-up: lazy imports, first allocations

    wall: dict[str, list[float]] = {"direct": [], "kit": []}
    cpu: dict[str, list[float]] = {"direct": [], "kit": []}
    for _ in range(args.repeats):
        for name, fn in sides:
            w, c = timed(fn, copy.deepcopy(base), data, **settings)
            wall[name].append(w)
            cpu[name].append(c)

    pairs = args.steps * args.batch_size
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    result = {"kind": args.kind, "steps": args.steps, "batch_size": args.batch_size, "max_seq_length": args.max_seq_length,
              "repeats": args.repeats, "pairs_per_run": pairs,
              "direct_pairs_per_s": round(pairs / med["direct"], 3), "kit_pairs_per_s": round(pairs / med["kit"], 3),
              "ratio_kit_over_direct": round(med["direct"] / med["kit"], 3),
              "direct_pairs_per_cpu_s": round(pairs / med_cpu["direct"], 3),
              "kit_pairs_per_cpu_s": round(pairs / med_cpu["kit"], 3),
              "cpu_ratio_kit_over_direct": round(med_cpu["direct"] / med_cpu["kit"], 3),
              "direct_wall_s": [round(t, 2) for t in wall["direct"]], "kit_wall_s": [round(t, 2) for t in wall["kit"]],
              "direct_cpu_s": [round(t, 2) for t in cpu["direct"]], "kit_cpu_s": [round(t, 2) for t in cpu["kit"]]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
