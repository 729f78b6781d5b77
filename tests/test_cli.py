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


def test_info_bad_file_exits_nonzero(tiny_dir, capsys):
    with open(tiny_dir / "corpus.jsonl", "a") as fh:
        fh.write("{not json\n")
    assert main(["info", str(tiny_dir)]) == 1
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
    (["evaluate", "{d}", "--split", "dev", "--bm25"], "split 'dev' not found"),
    (["evaluate", "{d}/nowhere", "--bm25"], "not a folder"),
    (["evaluate", "{d}", "--model", "nobody/no-such-model"], "cannot load bi-encoder 'nobody/no-such-model'"),
    (["evaluate", "{d}", "--bm25", "--measures", "nDGC@10"], "unknown measure"),
    (["evaluate", "{d}", "--bm25", "--out", "{d}/no/such/dir/m.json"], "does not exist"),
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
    assert {"bm25", "dense:all-MiniLM-L6-v2", "rrf(bm25+dense)"} <= set(runs)
    assert any(name.startswith("dense:all-MiniLM-L6-v2 >> rerank:") for name in runs)
    # the zero-shot bi-encoder finds these easy test answers
    assert runs["dense:all-MiniLM-L6-v2"]["RR@10"] > 0.8
