"""The expert (SME) annotation workflow: a crash-safe store of judgments, a session that walks the
pairs to judge, and an ipywidgets UI on top.

- :class:`JudgmentStore` appends each judgment at once (write, flush, fsync) to a JSONL file in the
  schema of the shipped ``sme_judgments.jsonl``; a torn last line left by a crash is reported and
  skipped (and cut off before the next write); a malformed line anywhere else is an error naming
  the line; when a pair is judged twice, the last judgment wins.
- :class:`AnnotationSession` holds the pairs and the position (next, back, skip), resumes where a
  restarted kernel stopped, and can replay existing judgments through the same path (what
  ``make run`` and the tests do: there is no person at the keyboard).
- :class:`AnnotationWidget`: one pair at a time, both texts, the model's score, three verdict
  buttons plus a reason, keyboard shortcuts (type h, r or u, then Enter), a progress bar.

Taught in ``notebooks/03_augmentation.ipynb``.

>>> import tempfile, pathlib
>>> store = JudgmentStore(pathlib.Path(tempfile.mkdtemp()) / "judgments.jsonl")
>>> _ = store.append({"query_id": "q1", "corpus_id": "d1", "judgment": "hard_negative", "reason": "other rule"})
>>> [r["judgment"] for r in store.load()]
['hard_negative']
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

from .data import JUDGMENT_FIELDS, JUDGMENTS
from .errors import DataError, KitError

SHORTCUTS = {"h": "hard_negative", "r": "actually_relevant", "u": "unclear"}


class JudgmentStore:
    """Append-only JSONL judgments, safe against a process killed between (or during) writes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.problems: list[str] = []

    def _validate(self, row: dict, where: str) -> dict:
        if not isinstance(row, dict):
            raise DataError(f"{where}: a judgment must be a JSON object")
        missing = [k for k in JUDGMENT_FIELDS if k not in row]
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
        if row["judgment"] not in JUDGMENTS:
            raise DataError(f"{where}: judgment {row['judgment']!r} is not one of {', '.join(JUDGMENTS)}")
        return row

    def load(self) -> list[dict]:
        """Every judgment, the last one of each (query, passage) pair winning. A torn last line (a
        write the process did not finish) is skipped and described in :attr:`problems`."""
        self.problems = []
        if not self.path.is_file():
            return []
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        torn_tail = not raw.endswith(b"\n") and raw != b""
        last: dict[tuple[str, str], dict] = {}
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            is_tail = torn_tail and n == len(lines)
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                if is_tail:
                    self.problems.append(f"{self.path.name}:{n}: a torn last line ({len(line)} bytes, the process "
                                         "stopped while writing it) was skipped; the judgments before it are intact")
                    continue
                raise DataError(f"{self.path.name}:{n}: malformed JSON ({getattr(err, 'msg', err)})") from None
            row = self._validate(row, f"{self.path.name}:{n}")
            key = (str(row["query_id"]), str(row["corpus_id"]))
            last.pop(key, None)
            last[key] = row
        return list(last.values())

    def _cut_torn_tail(self) -> None:
        if not self.path.is_file():
            return
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            keep = raw.rfind(b"\n") + 1
            with open(self.path, "r+b") as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
            self.problems.append(f"{self.path.name}: cut a torn last line of {len(raw) - keep} bytes before writing")

    def append(self, row: dict) -> dict:
        """Validate and append one judgment, durably (flush and fsync) before returning."""
        row = self._validate(dict(row), "judgment")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._cut_torn_tail()
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        return row

    def judged(self) -> dict[tuple[str, str], dict]:
        return {(str(r["query_id"]), str(r["corpus_id"])): r for r in self.load()}


class AnnotationSession:
    """The pairs to judge and where the annotator is. ``pairs``: dicts with ``query_id``, ``query``,
    ``corpus_id``, ``passage`` and optionally ``model_rank``, ``model_score``.

    >>> import tempfile, pathlib
    >>> pairs = [{"query_id": "q", "query": "taxi?", "corpus_id": c, "passage": c} for c in "abc"]
    >>> s = AnnotationSession(pairs, JudgmentStore(pathlib.Path(tempfile.mkdtemp()) / "j.jsonl"))
    >>> _ = s.judge("hard_negative"); _ = s.skip()
    >>> s.current()["corpus_id"], s.progress()
    ('c', (1, 3))
    """

    def __init__(self, pairs: Sequence[dict], store: JudgmentStore):
        if not pairs:
            raise KitError("AnnotationSession: no pairs to judge")
        for i, p in enumerate(pairs):
            missing = [k for k in ("query_id", "query", "corpus_id", "passage") if k not in p]
            if missing:
                raise KitError(f"AnnotationSession: pair {i} lacks {', '.join(missing)}")
        self.pairs, self.store = list(pairs), store
        self.position = 0
        self.resume()

    def key(self, i: int | None = None) -> tuple[str, str]:
        p = self.pairs[self.position if i is None else i]
        return str(p["query_id"]), str(p["corpus_id"])

    def current(self) -> dict:
        return self.pairs[self.position]

    def done(self) -> bool:
        judged = self.store.judged()
        return all(self.key(i) in judged for i in range(len(self.pairs)))

    def progress(self) -> tuple[int, int]:
        judged = self.store.judged()
        return sum(self.key(i) in judged for i in range(len(self.pairs))), len(self.pairs)

    def resume(self) -> int:
        """Go to the first pair without a judgment (after a restart, where the annotator stopped)."""
        judged = self.store.judged()
        self.position = next((i for i in range(len(self.pairs)) if self.key(i) not in judged), len(self.pairs) - 1)
        return self.position

    def next(self) -> int:
        self.position = min(self.position + 1, len(self.pairs) - 1)
        return self.position

    def back(self) -> int:
        self.position = max(self.position - 1, 0)
        return self.position

    def skip(self) -> int:
        """Leave the current pair unjudged and move on (it stays in the queue for later)."""
        return self.next()

    def judge(self, judgment: str, reason: str = "") -> dict:
        """Record a verdict for the current pair (appended to the store at once), then move on."""
        if judgment in SHORTCUTS:
            judgment = SHORTCUTS[judgment]
        if judgment not in JUDGMENTS:
            raise KitError(f"judgment must be one of {', '.join(JUDGMENTS)} (or h, r, u), got {judgment!r}")
        p = self.current()
        row = self.store.append({"query_id": p["query_id"], "query": p["query"], "corpus_id": p["corpus_id"],
                                 "model_rank": p.get("model_rank"), "model_score": p.get("model_score"),
                                 "judgment": judgment, "reason": reason.strip()})
        if self.position < len(self.pairs) - 1:
            self.next()
        return row

    def replay(self, rows: Iterable[dict]) -> int:
        """Judge the session's pairs from existing judgments (the shipped file), through :meth:`judge`.
        Returns how many pairs were judged."""
        index = {self.key(i): i for i in range(len(self.pairs))}
        n = 0
        for r in rows:
            i = index.get((str(r["query_id"]), str(r["corpus_id"])))
            if i is None:
                continue
            self.position = i
            self.judge(r["judgment"], r.get("reason", ""))
            n += 1
        self.resume()
        return n


class AnnotationWidget:
    """The session in JupyterLab: the pair, the verdict buttons, a reason, keyboard shortcuts, progress.

    The logic lives in :class:`AnnotationSession` (tested without a browser); this class only wires
    ipywidgets to it. Keyboard: click the shortcut box (or Tab to it), type ``h`` (hard negative),
    ``r`` (actually relevant) or ``u`` (unclear) and press Enter; the reason box is read with it.
    """

    def __init__(self, session: AnnotationSession):
        import ipywidgets as w

        self.session = session
        self.pair = w.HTML()
        self.reason = w.Text(placeholder="why (optional)", description="Reason", layout=w.Layout(width="60%"))
        self.keys = w.Text(placeholder="h / r / u, then Enter", description="Shortcut", layout=w.Layout(width="30%"))
        self.progress = w.IntProgress(min=0, max=len(session.pairs), description="Judged")
        self.status = w.HTML()
        buttons = []
        for label, judgment, style in (("hard negative (h)", "hard_negative", "danger"),
                                       ("actually relevant (r)", "actually_relevant", "success"),
                                       ("unclear (u)", "unclear", "warning")):
            b = w.Button(description=label, button_style=style, layout=w.Layout(width="190px"))
            b.on_click(lambda _, j=judgment: self._judge(j))
            buttons.append(b)
        back, skip = w.Button(description="back"), w.Button(description="skip")
        back.on_click(lambda _: self._move(session.back))
        skip.on_click(lambda _: self._move(session.skip))
        self.keys.on_submit(lambda box: self._shortcut(box.value))
        self.view = w.VBox([self.progress, self.pair, w.HBox(buttons), w.HBox([self.reason, self.keys]),
                            w.HBox([back, skip]), self.status])
        self.render()

    def _shortcut(self, value: str) -> None:
        key = value.strip().lower()[:1]
        self.keys.value = ""
        if key in SHORTCUTS:
            self._judge(SHORTCUTS[key])
        else:
            self.status.value = "<span class='kit-annotate-error'>type h, r or u</span>"

    def _judge(self, judgment: str) -> None:
        row = self.session.judge(judgment, self.reason.value)
        self.reason.value = ""
        self.status.value = (f"<span class='kit-annotate-saved'>saved: {row['query_id']} / {row['corpus_id']} = "
                             f"{row['judgment']}</span>")
        self.render()

    def _move(self, step) -> None:
        step()
        self.render()

    def render(self) -> None:
        import html

        p = self.session.current()
        done, total = self.session.progress()
        self.progress.value = done
        self.progress.description = f"{done}/{total}"
        score = p.get("model_score")
        rank = p.get("model_rank")
        self.pair.value = (
            f"<div class='kit-annotate-pair'><p><b>Question</b> ({html.escape(str(p['query_id']))}): "
            f"{html.escape(p['query'])}</p><p><b>Candidate</b> ({html.escape(str(p['corpus_id']))}"
            + (f", model rank {rank}" if rank is not None else "")
            + (f", score {score:.3f}" if isinstance(score, (int, float)) else "")
            + f"): {html.escape(p['passage'])}</p>"
            + f"<p><i>Is this candidate a hard negative (it does not answer), or actually relevant?</i></p></div>")

    def show(self):
        return self.view
