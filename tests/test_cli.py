import json

import pytest

from kit.cli import main


def last_json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1]), "\n".join(out)


def test_info(tiny_dir, capsys):
    assert main(["info", str(tiny_dir)]) == 0
    stats, text = last_json(capsys)
    assert stats["documents"] == 6 and stats["test_queries"] == 3
    assert "0 error(s)" in text


def test_info_bad_file_exits_2(tiny_dir, capsys):
    """Invalid data is bad input: exit status 2, like every other command (the module docstring's promise)."""
    with open(tiny_dir / "corpus.jsonl", "a") as fh:
        fh.write("{not json\n")
    assert main(["info", str(tiny_dir)]) == 2
    assert "corpus.jsonl:7: malformed JSON" in capsys.readouterr().out


def test_evaluate_bm25_json_last_line_and_out_file(tiny_dir, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["evaluate", str(tiny_dir), "--split", "test", "--bm25", "--out", str(out)]) == 0
    result, text = last_json(capsys)
    assert set(result["runs"]["bm25"]) == {"nDCG@10", "RR@10", "R@100"}
    assert "bm25" in text.splitlines()[1]  # the readable table comes first
    saved = json.loads(out.read_text())
    assert saved["runs"] == result["runs"] and set(saved["per_query"]["bm25"]) == {"q4", "q5", "q6"}


@pytest.mark.parametrize("argv,message", [
    (["evaluate", "{d}", "--split", "dev", "--bm25"], "no split 'dev'"),
    (["evaluate", "{d}/nowhere", "--bm25"], "not a folder"),
    (["evaluate", "{d}", "--model", "nobody/no-such-model"], "cannot load bi-encoder 'nobody/no-such-model'"),
    (["evaluate", "{d}", "--bm25", "--measures", "nDGC@10"], "unknown measure"),
    (["evaluate", "{d}", "--bm25", "--out", "{d}/no/such/dir/m.json"], "does not exist"),
    (["evaluate", "{d}", "--bm25", "--out", "{d}"], "is a folder"),
    (["evaluate", "{d}", "--fusion"], "--fusion fuses BM25 with the dense run: give --bm25 too"),
    (["evaluate", "{d}", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["evaluate", "{d}", "--max-seq-length", "4"], "--max-seq-length must be at least 8"),
    (["evaluate", "{d}", "--rerank-depth", "0"], "--rerank-depth must be at least 1"),
    # a bad measure is reported before any model is loaded or any passage encoded
    (["evaluate", "{d}", "--model", "nobody/no-such-model", "--measures", "nDGC@10"], "unknown measure 'nDGC@10'"),
])
def test_evaluate_bad_input_exit_2_without_output(tiny_dir, capsys, argv, message, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = [a.format(d=tiny_dir) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_failed_run_leaves_no_partial_out_file(tiny_dir, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["evaluate", str(tiny_dir), "--bm25", "--measures", "bogus", "--out", str(out)]) == 2
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_evaluate_dense_with_reranker(tiny_dir, capsys):
    assert main(["evaluate", str(tiny_dir), "--split", "test", "--bm25", "--fusion", "--max-seq-length", "64",
                 "--model", "sentence-transformers/all-MiniLM-L6-v2",
                 "--reranker", "sentence-transformers/all-MiniLM-L6-v2", "--rerank-depth", "3"]) == 0
    result, _ = last_json(capsys)
    runs = result["runs"]
    assert {"bm25", "dense:all-MiniLM-L6-v2", "rrf", "weighted(bm25=0.3)"} <= set(runs)
    # the first stage is chosen on the train queries held out (the tiny folder has no dev split), never on test
    assert "held out of train" in result["notes"]["first_stage"]
    assert any(name.startswith(f"{result['first_stage']} >> rerank:") for name in runs)
    assert runs["dense:all-MiniLM-L6-v2"]["RR@10"] > 0.8      # the zero-shot bi-encoder finds these easy answers


@pytest.mark.slow
def test_evaluate_chooses_max_seq_length_from_the_data(tiny_dir, capsys):
    assert main(["evaluate", str(tiny_dir), "--split", "test", "--dense-only"]) == 0
    result, _ = last_json(capsys)
    assert "the larger of the model's (256) and the data's need" in result["notes"]["max_seq_length"]
    assert set(result["runs"]) == {"dense:all-MiniLM-L6-v2"} and result["first_stage"] == "dense:all-MiniLM-L6-v2"


def test_evaluate_out_not_writable(tiny_dir, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if __import__("os").access(locked, __import__("os").W_OK):
            pytest.skip("running as a user who can write anywhere (root): permissions are not enforced")
        assert main(["evaluate", str(tiny_dir), "--bm25", "--out", str(locked / "m.json")]) == 2
        err = capsys.readouterr().err
        assert "not writable" in err and "Traceback" not in err
    finally:
        locked.chmod(0o700)


def test_evaluate_write_failure_is_a_clear_error(tiny_dir, tmp_path, capsys, monkeypatch):
    """Even when the file system refuses the write late (disk full, permissions), one clear line, exit 2."""
    import kit.data

    def refuse(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(kit.data, "atomic_write_text", refuse)
    out = tmp_path / "m.json"
    assert main(["evaluate", str(tiny_dir), "--bm25", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err and not out.exists()
