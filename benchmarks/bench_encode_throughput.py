"""Encoding throughput: ``kit.retrieval.encode`` against ``SentenceTransformer.encode`` called directly,
side by side (interleaved), in texts and tokens per second, next to an estimate of this CPU's
arithmetic limit for the model.

The limit: a transformer encoder spends about 2 x (parameters) floating-point operations per token
in its matrix products (plus attention, which grows with the length); this machine's float32 matrix
throughput is measured with a large ``torch.matmul``. ``achieved / limit`` says how close encoding
gets to what the arithmetic allows (memory traffic, padding and small matrices keep it below).
Target (issue 14): kit within 5% of the direct call (ratio >= 0.95).

    .venv/bin/python benchmarks/bench_encode_throughput.py [--repeats 3] [--texts 256] [--max-seq-length 160]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kit.data import load_expense_policy  # noqa: E402
from kit.models import load_bi_encoder, token_lengths  # noqa: E402
from kit.retrieval import encode  # noqa: E402


def matmul_flops(n: int = 2048, repeats: int = 3) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--max-seq-length", type=int, default=160)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()

    texts = load_expense_policy().doc_texts()[: args.texts]
    model = load_bi_encoder(max_seq_length=args.max_seq_length)
    tokens = sum(min(n, args.max_seq_length) for n in token_lengths(model, texts))
    encode(model, texts[:16])                                             # warm-up
    times = {"direct": [], "kit": []}
    for _ in range(args.repeats):
        t = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False)
        times["direct"].append(time.perf_counter() - t)
        t = time.perf_counter()
        encode(model, texts, batch_size=args.batch_size)
        times["kit"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    params = sum(p.numel() for p in model.parameters()) - model[0].auto_model.embeddings.word_embeddings.weight.numel()
    flops = matmul_flops()
    limit_tokens = flops / (2 * params)
    result = {"texts": len(texts), "tokens": tokens, "max_seq_length": args.max_seq_length,
              "kit_texts_per_s": round(len(texts) / med["kit"], 1), "direct_texts_per_s": round(len(texts) / med["direct"], 1),
              "kit_tokens_per_s": round(tokens / med["kit"]), "ratio_kit_over_direct": round(med["direct"] / med["kit"], 3),
              "matmul_gflops": round(flops / 1e9, 1), "non_embedding_params": params,
              "arithmetic_limit_tokens_per_s": round(limit_tokens), "achieved_share_of_limit": round(tokens / med["kit"] / limit_tokens, 3)}
    print(f"kit {result['kit_texts_per_s']} texts/s ({result['kit_tokens_per_s']} tokens/s), direct "
          f"{result['direct_texts_per_s']} texts/s: ratio {result['ratio_kit_over_direct']} (target >= 0.95); the arithmetic "
          f"limit at {result['matmul_gflops']} GFLOP/s is about {result['arithmetic_limit_tokens_per_s']} tokens/s "
          f"({result['achieved_share_of_limit']:.0%} reached)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
