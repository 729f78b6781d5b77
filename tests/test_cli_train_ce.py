"""``python -m kit train-ce``: the happy path on the tiny dataset (then ``evaluate --reranker`` on the
result), and one clear error (exit 2, nothing written) per bad input."""
import json
from pathlib import Path

import pytest

from conftest import CORPUS, QRELS, QUERIES, write_beir
from kit.cli import main

FAST = ["--max-steps", "2", "--batch-size", "2", "--max-seq-length", "48", "--depth", "3"]


@pytest.fixture
def dev_dir(tmp_path: Path) -> Path:
    qrels = {"train": QRELS["train"], "dev": {"q4": {"mileage": 2, "taxi": 1}, "q5": {"meals": 2}},
             "test": {"q6": {"visa": 2}}}
    return write_beir(tmp_path / "tiny_dev", CORPUS, QUERIES, qrels)


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("head", ["cosine", "gated"])
def test_train_ce_happy_path_then_evaluate(dev_dir, tmp_path, capsys, head):
    out = tmp_path / "reranker"
    assert main(["train-ce", str(dev_dir), "--out", str(out), "--hard-negatives", "1", "--random-negatives", "1",
                 "--head", head, *FAST]) == 0
    captured = capsys.readouterr()
    result = last_json(captured.out)
    assert result["steps"] == 2 and result["dev_split"] == "dev" and result["loss"] == "mnrl"
    assert result["head"] == head and 0.0 <= result["mix_weight"] <= 1.0
    assert set(result["dev"]) == {"nDCG@10", "RR@10"}
    assert result["first_stage"] in ("dense", "bm25", "rrf") or result["first_stage"].startswith("weighted(")
    assert "first stage:" in captured.err and "dev evaluation (" in captured.err
    settings = json.loads((out / "kit_model.json").read_text())
    assert settings["mix_weight"] == result["mix_weight"]          # saved with the model, for evaluate
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]

    assert main(["evaluate", str(dev_dir), "--split", "test", "--reranker", str(out), "--rerank-depth", "3",
                 "--max-seq-length", "48"]) == 0
    metrics = last_json(capsys.readouterr().out)
    assert any(" >> rerank:reranker@3" in name for name in metrics["runs"])
    assert any(name.endswith(f"+ mix({result['mix_weight']})") for name in metrics["runs"])


@pytest.mark.parametrize("extra,message", [
    (["--split", "nope"], "split 'nope' not found"),
    (["--dev-split", "test"], "the test split is never used while training"),
    (["--hard-negatives", "0", "--random-negatives", "0"], "a re-ranker needs negatives"),
    (["--hard-negatives", "-1"], "must be 0 or more"),
    (["--epochs", "0"], "--epochs must be a number above 0"),
    (["--depth", "0"], "--depth must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--retriever", "nobody/no-such-model"], "cannot load bi-encoder 'nobody/no-such-model'"),
    (["--max-related", "-1"], "--max-related must be 0 or more"),
])
def test_train_ce_bad_input_exit_2_nothing_written(dev_dir, tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "reranker"
    assert main(["train-ce", str(dev_dir), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("lines,message", [
    (['{"query_id": "elsewhere", "corpus_id": "mileage", "grade": 2}'], "judgments for another dataset"),
    (['{"query_id": "q1", "corpus_id": "taxi", "grade": 1}', '{"query_id": "q1", "corpus_id": "visa", "grade": 5}'],
     "extra.jsonl:2: grade 5 is not 0, 1 or 2"),
])
def test_train_ce_bad_judgments_file_exit_2_nothing_written(dev_dir, tmp_path, capsys, lines, message):
    extra = tmp_path / "extra.jsonl"
    extra.write_text("\n".join(lines) + "\n")
    out = tmp_path / "reranker"
    assert main(["train-ce", str(dev_dir), "--out", str(out), "--judgments", str(extra), *FAST]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_train_ce_refuses_a_non_empty_out(dev_dir, tmp_path, capsys):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert main(["train-ce", str(dev_dir), "--out", str(full)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


def test_unknown_loss_is_rejected_by_the_parser(dev_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train-ce", str(dev_dir), "--out", str(tmp_path / "m"), "--loss", "hinge"])
    assert exc.value.code == 2 and "invalid choice: 'hinge'" in capsys.readouterr().err
