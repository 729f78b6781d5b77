"""The expert annotation store loses nothing when its writer is killed, reports a torn last line,
rejects malformed rows naming the line; the session's state machine (next, back, skip, resume,
replay) works without a browser."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.annotate import SHORTCUTS, AnnotationSession, AnnotationWidget, JudgmentStore
from kit.errors import DataError, KitError

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [{"query_id": f"q{i // 2}", "query": f"question {i // 2}", "corpus_id": f"d{i}", "passage": f"passage {i}",
          "model_rank": 1 + i % 2, "model_score": 0.5} for i in range(6)]


def test_a_killed_writer_loses_no_finished_judgment(tmp_path):
    path = tmp_path / "judgments.jsonl"
    writer = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
              "from kit.annotate import JudgmentStore\n"
              f"store = JudgmentStore({str(path)!r})\n"
              "i = 0\n"
              "while True:\n"
              "    store.append({'query_id': f'q{i}', 'corpus_id': 'd', 'judgment': 'unclear', 'reason': 'x' * 200})\n"
              "    print(i, flush=True)\n"
              "    i += 1\n")
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    confirmed = -1
    deadline = time.time() + 60
    while confirmed < 30 and time.time() < deadline:
        confirmed = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)                  # no chance to clean up
    proc.wait()
    rows = JudgmentStore(path).load()
    ids = {int(r["query_id"][1:]) for r in rows}
    assert set(range(confirmed + 1)) <= ids            # every judgment confirmed before the kill is there


def test_a_torn_last_line_is_reported_skipped_and_cut_before_the_next_write(tmp_path):
    path = tmp_path / "j.jsonl"
    good = json.dumps({"query_id": "q1", "corpus_id": "d1", "judgment": "hard_negative"}) + "\n"
    path.write_text(good + '{"query_id": "q2", "corpus_id": "d2", "judg')      # killed mid-line
    store = JudgmentStore(path)
    assert [r["query_id"] for r in store.load()] == ["q1"]
    assert "j.jsonl:2: a torn last line" in store.problems[0]
    store.append({"query_id": "q3", "corpus_id": "d3", "judgment": "unclear"})
    assert [r["query_id"] for r in store.load()] == ["q1", "q3"] and store.problems == []


def test_malformed_rows_are_errors_that_name_the_line(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"query_id": "q1", "corpus_id": "d1", "judgment": "hard_negative"}\nnot json\n'
                    '{"query_id": "q2", "corpus_id": "d2", "judgment": "hard_negative"}\n')
    with pytest.raises(DataError, match=r"j.jsonl:2: malformed JSON"):
        JudgmentStore(path).load()
    path.write_text('{"query_id": "q1", "corpus_id": "d1", "judgment": "maybe"}\n')
    with pytest.raises(DataError, match=r"j.jsonl:1: judgment 'maybe' is not one of"):
        JudgmentStore(path).load()
    path.write_text('{"query_id": "q1", "judgment": "unclear"}\n')
    with pytest.raises(DataError, match=r"j.jsonl:1: missing field\(s\) corpus_id"):
        JudgmentStore(path).load()
    with pytest.raises(DataError, match="judgment 'nope'"):
        JudgmentStore(tmp_path / "other.jsonl").append({"query_id": "q", "corpus_id": "d", "judgment": "nope"})


def test_the_last_judgment_of_a_pair_wins(tmp_path):
    store = JudgmentStore(tmp_path / "j.jsonl")
    store.append({"query_id": "q", "corpus_id": "d", "judgment": "hard_negative"})
    store.append({"query_id": "q", "corpus_id": "d", "judgment": "actually_relevant", "reason": "on second reading"})
    rows = store.load()
    assert len(rows) == 1 and rows[0]["judgment"] == "actually_relevant"


def test_session_next_back_skip_and_resume_after_a_restart(tmp_path):
    store = JudgmentStore(tmp_path / "j.jsonl")
    s = AnnotationSession(PAIRS, store)
    assert s.position == 0
    s.judge("h", "different rule")                       # a shortcut letter works too
    assert s.position == 1 and s.progress() == (1, 6)
    s.skip()
    s.judge("actually_relevant")
    assert s.position == 3 and s.progress() == (2, 6)
    s.back()
    assert s.current()["corpus_id"] == "d2"
    with pytest.raises(KitError, match="judgment must be one of"):
        s.judge("probably")
    restarted = AnnotationSession(PAIRS, JudgmentStore(tmp_path / "j.jsonl"))   # a new kernel, the same file
    assert restarted.position == 1 and restarted.progress() == (2, 6)           # the skipped pair comes first


def test_replay_goes_through_the_same_path(tmp_path):
    s = AnnotationSession(PAIRS, JudgmentStore(tmp_path / "j.jsonl"))
    shipped = [{"query_id": "q0", "corpus_id": "d1", "judgment": "unclear", "reason": "r"},
               {"query_id": "q9", "corpus_id": "d9", "judgment": "unclear"}]   # not in the session: ignored
    assert s.replay(shipped) == 1
    row = JudgmentStore(tmp_path / "j.jsonl").load()[0]
    assert row["judgment"] == "unclear" and row["query"] == "question 0" and row["model_rank"] == 2


def test_widget_logic_without_a_browser(tmp_path):
    w = AnnotationWidget(AnnotationSession(PAIRS, JudgmentStore(tmp_path / "j.jsonl")))
    assert "question 0" in w.pair.value and w.progress.description == "0/6"
    w.reason.value = "covers a different rule"
    w._shortcut("h")
    assert "saved: q0 / d0 = hard_negative" in w.status.value and w.progress.value == 1 and w.reason.value == ""
    w._shortcut("x")
    assert "type h, r or u" in w.status.value and set(SHORTCUTS) == {"h", "r", "u"}
    assert JudgmentStore(tmp_path / "j.jsonl").load()[0]["reason"] == "covers a different rule"
