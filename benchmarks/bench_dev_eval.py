"""Defaults that fit the data, on a corpus of long documents: the sequence length chosen from the
passages, the first stage chosen on dev, and the cost of the dev evaluation during training.

Builds a BEIR folder of 5,000 documents of 200-300 words from the bundled passages
(``kit.data.long_documents``: train and test splits only, no dev split, like BEIR's scientific
sets), then runs ``python -m kit train-bi`` with its defaults and ``python -m kit evaluate`` on the
model it saved, and prints what they chose and cost: the chosen ``max_seq_length`` and the share of
documents it truncates, the dev evaluation's share of the training steps' time (issue 9's target:
at most 0.25), and test nDCG@10 of dense, BM25, the fusions and the first stage chosen on dev.
About 20 minutes on a 2-core CPU.

    .venv/bin/python benchmarks/bench_dev_eval.py [--docs 5000] [--work /tmp/kit-long]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kit.data import load_expense_policy, long_documents, save_beir  # noqa: E402


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--work", default="/tmp/kit-long")
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    data = work / "data"
    ds = long_documents(load_expense_policy(), args.docs, splits={"train": "train", "test": "test"})
    save_beir(ds, data)
    stats = ds.stats()
    print(f"{data}: {stats['documents']} documents of {stats['doc_words_mean']} words on average "
          f"({stats['doc_words_min']}-{stats['doc_words_max']}), {stats['train_queries']} train and "
          f"{stats['test_queries']} test queries", flush=True)
    t = time.perf_counter()
    train = subprocess.run([sys.executable, "-m", "kit", "train-bi", str(data), "--out", str(work / "model")],
                           cwd=ROOT, capture_output=True, text=True)
    if train.returncode:
        sys.exit(train.stderr[-3000:])
    summary = last_json(train.stdout)
    train_wall = time.perf_counter() - t
    ev = subprocess.run([sys.executable, "-m", "kit", "evaluate", str(data), "--split", "test", "--model",
                         str(work / "model")], cwd=ROOT, capture_output=True, text=True)
    if ev.returncode:
        sys.exit(ev.stderr[-3000:])
    metrics = last_json(ev.stdout)
    result = {
        "documents": stats["documents"], "doc_words_mean": stats["doc_words_mean"],
        "max_seq_length": summary["max_seq_length"], "truncated_share": summary["truncated_share"],
        "dev_split": summary["dev_split"], "dev_queries_scored": summary["dev_queries"], "dev_pool": summary["dev_pool"],
        "steps": summary["steps"], "step_seconds": summary["step_seconds"], "eval_seconds": summary["eval_seconds"],
        "eval_share": summary["eval_share"], "train_bi_total_seconds": round(train_wall, 1),
        "test_nDCG@10": {name: round(m["nDCG@10"], 4) for name, m in metrics["runs"].items()},
        "first_stage_chosen_on_dev": metrics["first_stage"], "why": metrics["notes"].get("first_stage"),
        "evaluate_max_seq_length": metrics["notes"].get("max_seq_length"),
    }
    print(f"max_seq_length {result['max_seq_length']} ({result['truncated_share']:.1%} truncated); dev evaluation "
          f"{result['eval_seconds']:.0f}s = {result['eval_share']:.0%} of {result['step_seconds']:.0f}s of training steps "
          f"(target <= 25%); first stage chosen on dev: {result['first_stage_chosen_on_dev']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
