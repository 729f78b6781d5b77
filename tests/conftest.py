"""Shared fixtures: a tiny BEIR folder written by the tests, and the shipped model (loaded once)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CORPUS = {
    "taxi": ("Taxis", "Taxis and rideshares to the airport are reimbursed at the standard tier."),
    "hotel": ("Hotel cap", "The nightly hotel cap is 225 dollars in standard cities."),
    "minibar": ("Minibar", "Minibar charges and movies in the room are personal expenses."),
    "mileage": ("Mileage", "Driving your own car for business is paid per mile."),
    "meals": ("Per diem", "Meals on a trip are covered by a daily allowance."),
    "visa": ("Visas", "Visa fees for a business trip are paid by the company."),
}
QUERIES = {
    "q1": "can I get a cab to the airport?",
    "q2": "how much can a hotel room cost per night",
    "q3": "is the minibar covered",
    "q4": "what do I get for using my car",
    "q5": "food allowance when travelling",
    "q6": "who pays the visa",
}
QRELS = {
    "train": {"q1": {"taxi": 2}, "q2": {"hotel": 2, "minibar": 1}, "q3": {"minibar": 2}},
    "test": {"q4": {"mileage": 2, "taxi": 1}, "q5": {"meals": 2}, "q6": {"visa": 2}},
}


def write_beir(root: Path, corpus=CORPUS, queries=QUERIES, qrels=QRELS) -> Path:
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    with open(root / "corpus.jsonl", "w") as fh:
        for i, (title, text) in corpus.items():
            fh.write(json.dumps({"_id": i, "title": title, "text": text}) + "\n")
    with open(root / "queries.jsonl", "w") as fh:
        for i, text in queries.items():
            fh.write(json.dumps({"_id": i, "text": text}) + "\n")
    for split, rows in qrels.items():
        with open(root / "qrels" / f"{split}.tsv", "w") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            for q, docs in rows.items():
                for d, g in docs.items():
                    fh.write(f"{q}\t{d}\t{g}\n")
    return root


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "tiny")


@pytest.fixture(scope="session")
def model():
    from kit.models import load_bi_encoder

    return load_bi_encoder()
