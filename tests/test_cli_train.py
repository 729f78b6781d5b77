"""``python -m kit train-bi``: the happy path on the tiny dataset (then ``evaluate --model`` on the result),
the held-out dev split, one clear error (exit 2, nothing written) per bad input, and a two-process DDP run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CORPUS, QRELS, QUERIES, write_beir
from kit.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
FAST_ARGS = ["--max-steps", "2", "--batch-size", "2", "--max-seq-length", "32"]


@pytest.fixture
def dev_dir(tmp_path: Path) -> Path:
    """The tiny dataset with a dev split (q4, q5) and a smaller test split (q6)."""
    qrels = {"train": QRELS["train"], "dev": {"q4": {"mileage": 2, "taxi": 1}, "q5": {"meals": 2}},
             "test": {"q6": {"visa": 2}}}
    return write_beir(tmp_path / "tiny_dev", CORPUS, QUERIES, qrels)


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


@pytest.mark.slow
def test_train_bi_happy_path_then_evaluate(dev_dir, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["train-bi", str(dev_dir), "--out", str(out), *FAST_ARGS]) == 0
    captured = capsys.readouterr()
    result = last_json(captured.out)
    assert result["steps"] == 2 and result["dev_split"] == "dev" and result["dev_heldout_from_train"] is False
    assert result["columns"] == ["anchor", "positive", "negative"]      # one mined hard negative by default
    assert set(result["dev"]) == {"nDCG@10", "RR@10", "R@100"} and result["best_step"] in (0, 1, 2)
    assert result["pairs_per_second"] > 0 and result["seconds"] > 0
    assert "estimate before training" in captured.err and "no dev split" not in captured.err
    assert "max_seq_length 32 (given)" in captured.err and result["max_seq_length"] == 32
    assert "dev evaluation (3 times, step 0 included)" in captured.err   # steps 0, 1 and 2
    assert (out / "model.safetensors").is_file() and (out / "modules.json").is_file()
    card = (out / "README.md").read_text()
    assert "fine-tuned on tiny_dev" in card and "nDCG@10" in card
    assert leftovers(tmp_path) == []

    assert main(["evaluate", str(dev_dir), "--split", "test", "--model", str(out)]) == 0
    metrics = last_json(capsys.readouterr().out)
    assert metrics["runs"][f"dense:{out.name}"]["R@100"] == 1.0


@pytest.mark.slow
def test_no_dev_split_holds_out_train_queries(tiny_dir, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["train-bi", str(tiny_dir), "--out", str(out), "--hard-negatives", "0", "--max-steps", "2",
                 "--batch-size", "2"]) == 0
    captured = capsys.readouterr()
    result = last_json(captured.out)
    assert "no dev split: holding out 1 of 3 train queries" in captured.err
    # no --max-seq-length: chosen from the passages (all short here, so the floor of 32 tokens), and said
    assert "passages: max_seq_length 32: keeps 100% of 6 texts whole" in captured.err
    assert result["max_seq_length"] == 32 and result["truncated_share"] == 0.0
    assert result["dev_split"] == "heldout-dev" and result["dev_heldout_from_train"] is True
    assert result["dev_queries"] == 1 and result["rows"] == 2    # the held-out query is not trained on
    assert result["columns"] == ["anchor", "positive"]
    assert (out / "model.safetensors").is_file()


@pytest.mark.parametrize("extra,message", [
    (["--split", "nope"], "split 'nope' not found"),
    (["--dev-split", "nope"], "dev split 'nope' not found"),
    (["--dev-split", "test"], "the test split is never used while training"),
    (["--dev-split", "train"], "is the training split"),
    (["--epochs", "0"], "--epochs must be a number above 0"),
    (["--epochs", "nan"], "--epochs must be a number above 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--max-seq-length", "4"], "--max-seq-length must be at least 8"),
    (["--hard-negatives", "-1"], "--hard-negatives must be 0 or more"),
    (["--freeze-layers", "-2"], "--freeze-layers must be 0 or more"),
    (["--seed", "-1"], "--seed must be 0 or more"),
    (["--max-steps", "0"], "--max-steps must be at least 1"),
    (["--learning-rate", "0"], "--learning-rate must be a number between 0 and 1"),
    (["--learning-rate", "3"], "--learning-rate must be a number between 0 and 1"),
    (["--base", "nobody/no-such-model"], "cannot load bi-encoder 'nobody/no-such-model'"),
])
def test_bad_input_exit_2_nothing_written(dev_dir, tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "model"
    assert main(["train-bi", str(dev_dir), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert not out.exists() and leftovers(tmp_path) == []


def test_missing_folder_and_bad_out(dev_dir, tmp_path, capsys):
    assert main(["train-bi", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m")]) == 2
    assert "not a folder" in capsys.readouterr().err

    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert main(["train-bi", str(dev_dir), "--out", str(full)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in full.iterdir()] == ["keep.txt"]

    assert main(["train-bi", str(dev_dir), "--out", str(tmp_path / "no" / "such" / "m")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists() and not (tmp_path / "m").exists()


def test_non_numbers_are_rejected_by_the_parser(dev_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train-bi", str(dev_dir), "--out", str(tmp_path / "m"), "--batch-size", "many"])
    assert exc.value.code == 2 and "invalid int value: 'many'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("layers,message", [("7", "has 6 transformer layers"), ("6", "would freeze every layer")])
def test_freeze_layers_out_of_range(dev_dir, tmp_path, capsys, layers, message):
    assert main(["train-bi", str(dev_dir), "--out", str(tmp_path / "m"), "--freeze-layers", layers]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_freeze_layers_trains_only_the_top(dev_dir, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train-bi", str(dev_dir), "--out", str(out), "--freeze-layers", "4", "--hard-negatives", "0",
                 *FAST_ARGS]) == 0
    result = last_json(capsys.readouterr().out)
    # bottom 4 of 6 layers and the embeddings frozen: only the top 2 layers train
    assert result["freeze_layers"] == 4 and result["trainable_params"] < result["total_params"] / 5


def test_cli_defaults_are_the_recipe():
    from kit.recipes import BiRecipe, CrossRecipe

    for command, recipe in (("train-bi", BiRecipe()), ("train-ce", CrossRecipe())):
        args = build_parser().parse_args([command, "d", "--out", "o"])
        assert (args.epochs, args.batch_size, args.max_seq_length, args.learning_rate, args.seed, args.base,
                args.hard_negatives, args.split) == \
            (recipe.epochs, recipe.batch_size, recipe.max_seq_length, recipe.learning_rate, recipe.seed, recipe.base,
             recipe.hard_negatives, recipe.split)
    args = build_parser().parse_args(["train-bi", "d", "--out", "o"])
    assert args.freeze_layers is None and args.max_seq_length is None   # None: chosen from the data


@pytest.mark.slow
def test_ddp_two_processes(dev_dir, tmp_path):
    """torchrun with 2 CPU processes (gloo): trains, evaluates on rank 0, only rank 0 saves and prints."""
    out = tmp_path / "model"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "KIT_QUIET": "1",
           "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "kit", "train-bi", str(dev_dir), "--out", str(out), "--max-steps", "2", "--batch-size", "1",
           "--max-seq-length", "32", "--hard-negatives", "0"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{\"model\"")]
    assert len(lines) == 1, proc.stdout[-2000:]          # only rank 0 prints the result
    result = json.loads(lines[0])
    assert result["world_size"] == 2 and result["steps"] == 2
    assert [h for h in ("nDCG@10", "RR@10", "R@100") if h not in result["dev"]] == []
    assert (out / "model.safetensors").is_file() and leftovers(tmp_path) == []
