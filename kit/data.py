"""BEIR-format datasets: load, validate, save, and turn into training views.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/<split>.tsv`` (header ``query-id corpus-id score``;
graded scores, higher is more relevant). Taught in ``notebooks/01_representations.ipynb``.

>>> from kit.data import load_beir
>>> ds = load_beir("data/expense_policy")          # doctest: +SKIP
>>> queries, qrels = ds.split("test")              # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Sequence

from .errors import DataError, KitError

Corpus = dict[str, dict[str, str]]   # doc id -> {"title": ..., "text": ...}
Queries = dict[str, str]             # query id -> text
Qrels = dict[str, dict[str, int]]    # query id -> doc id -> grade
Run = dict[str, dict[str, float]]    # query id -> doc id -> score (higher is better): what retrievers return

QRELS_HEADER = ("query-id", "corpus-id", "score")
MAX_REPORTED = 20


@dataclass
class ValidationReport:
    """Problems found while reading a BEIR folder (``errors`` stop loading; ``warnings`` do not)."""

    path: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        lines = [f"validation of {self.path}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"]
        for kind, items in (("error", self.errors), ("warning", self.warnings)):
            lines += [f"  {kind}: {m}" for m in items[:MAX_REPORTED]]
            if len(items) > MAX_REPORTED:
                lines.append(f"  ... and {len(items) - MAX_REPORTED} more {kind}s")
        return "\n".join(lines)


@dataclass
class BeirDataset:
    """A corpus, its queries and graded relevance judgments (qrels) per split.

    >>> ds = BeirDataset(corpus={"d1": {"title": "", "text": "Taxis are fine."}},
    ...                  queries={"q1": "can I take a cab?"}, qrels={"test": {"q1": {"d1": 2}}})
    >>> ds.split("test")[0]
    {'q1': 'can I take a cab?'}
    """

    corpus: Corpus
    queries: Queries
    qrels: dict[str, Qrels]
    name: str = "dataset"
    path: Path | None = None
    query_meta: dict[str, dict] = field(default_factory=dict)  # extra fields of queries.jsonl (e.g. style)

    @property
    def splits(self) -> list[str]:
        return sorted(self.qrels)

    def split(self, name: str) -> tuple[Queries, Qrels]:
        """The queries that have judgments in split ``name``, and those judgments."""
        if name not in self.qrels:
            raise DataError(f"{self.name}: no split {name!r}; available: {', '.join(self.splits) or 'none'}")
        qrels = self.qrels[name]
        return {qid: self.queries[qid] for qid in qrels}, qrels

    def doc_text(self, doc_id: str) -> str:
        """Title and text joined the way they are encoded (``"title. text"``, or text alone)."""
        return doc_text(self.corpus[doc_id])

    def doc_texts(self, doc_ids: Iterable[str] | None = None) -> list[str]:
        ids = list(self.corpus) if doc_ids is None else list(doc_ids)
        return [doc_text(self.corpus[d]) for d in ids]

    def fingerprint(self) -> str:
        """A short hash of the content (corpus, queries, judgments): changes when any of them changes.

        The kit's cache keys trained models by it, so editing the data retrains instead of reusing.

        >>> a = BeirDataset({"d": {"title": "", "text": "x"}}, {"q": "y"}, {"test": {"q": {"d": 1}}})
        >>> b = BeirDataset({"d": {"title": "", "text": "x!"}}, {"q": "y"}, {"test": {"q": {"d": 1}}})
        >>> a.fingerprint() == b.fingerprint(), len(a.fingerprint())
        (False, 16)
        """
        h = hashlib.sha256()
        for part in (self.corpus, self.queries, self.qrels):
            h.update(json.dumps(part, sort_keys=True, ensure_ascii=False).encode())
            h.update(b"\x00")
        return h.hexdigest()[:16]

    def stats(self) -> dict[str, object]:
        """Counts and lengths (in words) for the corpus, the queries and each split."""
        doc_len = [len(self.doc_text(d).split()) for d in self.corpus]
        q_len = [len(t.split()) for t in self.queries.values()]
        out: dict[str, object] = {
            "documents": len(self.corpus),
            "queries": len(self.queries),
            "doc_words_mean": round(sum(doc_len) / max(len(doc_len), 1), 1),
            "doc_words_min": min(doc_len, default=0),
            "doc_words_max": max(doc_len, default=0),
            "query_words_mean": round(sum(q_len) / max(len(q_len), 1), 1),
        }
        for name, qrels in sorted(self.qrels.items()):
            grades = Counter(g for docs in qrels.values() for g in docs.values())
            out[f"{name}_queries"] = len(qrels)
            out[f"{name}_judgments"] = sum(grades.values())
            out[f"{name}_grades"] = dict(sorted(grades.items()))
        return out


def doc_text(doc: dict[str, str]) -> str:
    """``"title. text"`` (or the text alone when there is no title).

    >>> doc_text({"title": "Taxis", "text": "Standard tiers only."})
    'Taxis. Standard tiers only.'
    """
    title, text = (doc.get("title") or "").strip(), (doc.get("text") or "").strip()
    if not title:
        return text
    return f"{title}{'' if title[-1] in '.?!:' else '.'} {text}"


# --------------------------------------------------------------------------- reading

def _read_jsonl(path: Path, required: tuple[str, ...], report: ValidationReport) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                report.errors.append(f"{where}: malformed JSON ({err.msg} at column {err.colno})")
                continue
            if not isinstance(obj, dict):
                report.errors.append(f"{where}: expected a JSON object, got {type(obj).__name__}")
                continue
            missing = [k for k in required if k not in obj]
            if missing:
                report.errors.append(f"{where}: missing field(s) {', '.join(missing)}")
                continue
            if not isinstance(obj["_id"], (str, int)) or str(obj["_id"]).strip() == "":
                report.errors.append(f"{where}: empty or invalid _id {obj['_id']!r}")
                continue
            yield lineno, obj


def read_jsonl_rows(path: str | os.PathLike, required: Sequence[str] = ()) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line of a JSONL file, strictly: the first malformed
    line or missing field raises :class:`DataError` naming the file and line (the shipped side files:
    the expert's judgments, the hand-checked faithfulness examples).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"; _ = f.write_text('{"a": 1}\\n\\n{"a": 2}\\n')
    >>> [(n, row["a"]) for n, row in read_jsonl_rows(f, ["a"])]
    [(1, 1), (3, 2)]
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    with open(p, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{p.name}:{lineno}: malformed JSON ({err.msg} at column {err.colno})") from None
            missing = [k for k in required if not isinstance(row, dict) or k not in row]
            if missing:
                raise DataError(f"{p.name}:{lineno}: missing field(s) {', '.join(missing)}")
            yield lineno, row


def _read_records(path: Path, required: tuple[str, ...], report: ValidationReport) -> dict[str, dict]:
    records: dict[str, dict] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in _read_jsonl(path, required, report):
        _id = str(obj["_id"])
        if _id in records:
            report.errors.append(f"{path.name}:{lineno}: duplicate _id {_id!r} (first on line {first_line[_id]})")
            continue
        if not str(obj.get("text") or "").strip() and not str(obj.get("title") or "").strip():
            report.warnings.append(f"{path.name}:{lineno}: _id {_id!r} has empty text")
        records[_id] = obj
        first_line[_id] = lineno
    return records


def _read_qrels(path: Path, queries: Queries, corpus: Corpus, report: ValidationReport) -> Qrels:
    qrels: Qrels = {}
    where0 = f"qrels/{path.name}"
    with open(path, encoding="utf-8") as fh:
        rows = [(n, line.rstrip("\n\r")) for n, line in enumerate(fh, 1) if line.strip()]
    if rows and tuple(c.strip() for c in rows[0][1].split("\t")) == QRELS_HEADER:
        rows = rows[1:]
    elif rows and not rows[0][1].split("\t")[-1].strip().lstrip("-").isdigit():
        report.errors.append(f"{where0}:{rows[0][0]}: header must be 'query-id<TAB>corpus-id<TAB>score'")
        rows = rows[1:]
    for lineno, line in rows:
        where = f"{where0}:{lineno}"
        cols = line.split("\t")
        if len(cols) == 4:   # TREC style: qid 0 docid score
            cols = [cols[0], cols[2], cols[3]]
        if len(cols) != 3:
            report.errors.append(f"{where}: expected 3 tab-separated columns, got {len(cols)}")
            continue
        qid, did, score = (c.strip() for c in cols)
        try:
            grade = int(score)
        except ValueError:
            report.errors.append(f"{where}: score {score!r} is not an integer")
            continue
        if qid not in queries:
            report.errors.append(f"{where}: query-id {qid!r} is not in queries.jsonl")
            continue
        if did not in corpus:
            report.errors.append(f"{where}: corpus-id {did!r} is not in corpus.jsonl")
            continue
        if did in qrels.get(qid, {}):
            report.errors.append(f"{where}: duplicate judgment for ({qid!r}, {did!r})")
            continue
        qrels.setdefault(qid, {})[did] = grade
    if not qrels:
        report.errors.append(f"{where0}: empty split (no judgments)")
    elif not any(g > 0 for docs in qrels.values() for g in docs.values()):
        report.errors.append(f"{where0}: no judgment has a score above 0")
    return qrels


def validate_beir(path: str | os.PathLike, splits: Iterable[str] | None = None) -> tuple[BeirDataset | None, ValidationReport]:
    """Read a BEIR folder and report every problem found (file and line for each).

    Returns the dataset (``None`` if there were errors) and the report.

    >>> ds, report = validate_beir("data/expense_policy")   # doctest: +SKIP
    >>> print(report)                                        # doctest: +SKIP
    """
    root = Path(path)
    report = ValidationReport(root)
    if not root.is_dir():
        report.errors.append(f"{root}: not a folder (expected corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
        return None, report
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (root / name).is_file():
            report.errors.append(f"{root / name}: file not found")
    qrels_dir = root / "qrels"
    available = sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if not available:
        report.errors.append(f"{qrels_dir}: no qrels/<split>.tsv files")
    wanted = list(splits) if splits is not None else available
    for s in wanted:
        if s not in available:
            report.errors.append(f"{qrels_dir / (s + '.tsv')}: split {s!r} not found (available: {', '.join(available) or 'none'})")
    if report.errors:
        return None, report

    raw_corpus = _read_records(root / "corpus.jsonl", ("_id", "text"), report)
    # Extra corpus fields (e.g. topic) are kept beside title and text; extra query fields go to query_meta.
    corpus = {i: {**{k: v for k, v in o.items() if k != "_id"}, "title": str(o.get("title") or ""),
                  "text": str(o.get("text") or "")} for i, o in raw_corpus.items()}
    raw_queries = _read_records(root / "queries.jsonl", ("_id", "text"), report)
    queries = {i: str(o["text"]) for i, o in raw_queries.items()}
    query_meta = {i: {k: v for k, v in o.items() if k not in ("_id", "text")} for i, o in raw_queries.items()}
    query_meta = {i: m for i, m in query_meta.items() if m}
    if not corpus:
        report.errors.append("corpus.jsonl: no documents")
    if not queries:
        report.errors.append("queries.jsonl: no queries")
    qrels = {s: _read_qrels(qrels_dir / f"{s}.tsv", queries, corpus, report) for s in wanted if s in available}
    judged = {q for split in qrels.values() for q in split}
    unjudged = len(queries) - len(judged & set(queries))
    if unjudged:
        report.warnings.append(f"queries.jsonl: {unjudged} queries have no judgments in the loaded splits")
    if report.errors:
        return None, report
    return BeirDataset(corpus, queries, qrels, name=root.name, path=root, query_meta=query_meta), report


def load_beir(path: str | os.PathLike, splits: Iterable[str] | None = None) -> BeirDataset:
    """Load a BEIR folder, raising :class:`DataError` (naming file and line) if anything is wrong.

    >>> ds = load_beir("data/expense_policy", splits=["test"])   # doctest: +SKIP
    >>> len(ds.corpus) > 0                                        # doctest: +SKIP
    True
    """
    ds, report = validate_beir(path, splits)
    if ds is None:
        raise DataError(str(report))
    return ds


def load_expense_policy(splits: Iterable[str] | None = None) -> BeirDataset:
    """The bundled travel-and-expense policy dataset (``data/expense_policy``).

    >>> ds = load_expense_policy()          # doctest: +SKIP
    >>> ds.splits                           # doctest: +SKIP
    ['dev', 'test', 'train']
    """
    from .config import EXPENSE_POLICY

    return load_beir(EXPENSE_POLICY, splits)


# --------------------------------------------------------------------------- writing

def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(fh)`` on a uniquely named temporary file next to ``path``, then rename it into place.

    Readers see the old file or the new one, never half of one; two writers never share a temporary
    name. A failure removes the temporary file and leaves ``path`` as it was.

    >>> import numpy as np, tempfile
    >>> target = Path(tempfile.mkdtemp()) / "v.npy"
    >>> _ = atomic_write(target, lambda fh: np.save(fh, np.arange(3)))
    >>> np.load(target).tolist()
    [0, 1, 2]
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename: never half-written.

    >>> import tempfile
    >>> p = atomic_write_text(Path(tempfile.mkdtemp()) / "a" / "note.txt", "hello")
    >>> p.read_text()
    'hello'
    """
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def save_beir(ds: BeirDataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` as a BEIR folder (each file written atomically).

    >>> save_beir(ds, "/tmp/my_copy")      # doctest: +SKIP
    """
    root = Path(path)
    corpus = "".join(json.dumps({"_id": i, "title": d.get("title", ""), "text": d["text"],
                                 **{k: v for k, v in d.items() if k not in ("title", "text")}}, ensure_ascii=False) + "\n"
                     for i, d in ds.corpus.items())
    queries = "".join(json.dumps({"_id": i, "text": t, **ds.query_meta.get(i, {})}, ensure_ascii=False) + "\n"
                      for i, t in ds.queries.items())
    atomic_write_text(root / "corpus.jsonl", corpus)
    atomic_write_text(root / "queries.jsonl", queries)
    for split, qrels in ds.qrels.items():
        rows = ["\t".join(QRELS_HEADER)] + [f"{q}\t{d}\t{g}" for q, docs in qrels.items() for d, g in docs.items()]
        atomic_write_text(root / "qrels" / f"{split}.tsv", "\n".join(rows) + "\n")
    return root


# --------------------------------------------------------------------------- training views

def _positives(qrels: Qrels, min_grade: int) -> list[tuple[str, str]]:
    return [(q, d) for q, docs in qrels.items() for d, g in sorted(docs.items(), key=lambda x: -x[1]) if g >= min_grade]


def positive_pairs(ds: BeirDataset, split: str = "train", min_grade: int = 2, limit: int | None = None, seed: int = 42):
    """(anchor, positive) pairs: a query and a passage judged at least ``min_grade``.

    The shape MultipleNegativesRankingLoss expects (other passages in the batch act as negatives).

    >>> train = positive_pairs(load_expense_policy(), "train")   # doctest: +SKIP
    >>> train.column_names                                          # doctest: +SKIP
    ['anchor', 'positive']
    """
    from datasets import Dataset

    queries, qrels = ds.split(split)
    pairs = _positives(qrels, min_grade)
    pairs = _subsample(pairs, limit, seed)
    return Dataset.from_dict({
        "anchor": [queries[q] for q, _ in pairs],
        "positive": [ds.doc_text(d) for _, d in pairs],
    })


def triplets(ds: BeirDataset, split: str = "train", negatives: dict[str, list[str]] | None = None,
             min_grade: int = 2, limit: int | None = None, seed: int = 42, num_negatives: int = 1):
    """(anchor, positive, negative) triplets for TripletLoss or MultipleNegativesRankingLoss.

    ``negatives`` maps a query id to candidate negative doc ids (e.g. mined hard negatives,
    see :func:`kit.augment.mine_negatives`); without it, one random unjudged passage is drawn
    per pair (seeded). Judged passages (any grade above 0) are never used as negatives.
    ``num_negatives > 1`` gives n-tuples ``(anchor, positive, negative_1, ..., negative_n)``
    (MultipleNegativesRankingLoss reads every negative column); a query with too few candidates
    is topped up with random unjudged passages.

    >>> tri = triplets(load_expense_policy(), "train")           # doctest: +SKIP
    >>> tri.column_names                                           # doctest: +SKIP
    ['anchor', 'positive', 'negative']
    """
    from datasets import Dataset

    if num_negatives < 1:
        raise DataError(f"triplets: num_negatives must be at least 1, got {num_negatives}")
    queries, qrels = ds.split(split)
    rng = random.Random(seed)
    doc_ids = list(ds.corpus)
    neg_cols = ["negative"] if num_negatives == 1 else [f"negative_{k + 1}" for k in range(num_negatives)]
    rows: dict[str, list[str]] = {"anchor": [], "positive": [], **{c: [] for c in neg_cols}}
    for q, d in _subsample(_positives(qrels, min_grade), limit, seed):
        judged = {x for x, g in qrels[q].items() if g > 0}
        pool = [n for n in dict.fromkeys((negatives or {}).get(q, [])) if n not in judged]
        i = len(rows["anchor"])  # rotate through the pool, so a query's pairs see different negatives
        chosen = [pool[(i + k) % len(pool)] for k in range(min(num_negatives, len(pool)))]
        while len(chosen) < num_negatives:
            chosen.append(_random_doc(doc_ids, judged | set(chosen), rng))
        rows["anchor"].append(queries[q])
        rows["positive"].append(ds.doc_text(d))
        for col, neg in zip(neg_cols, chosen):
            rows[col].append(ds.doc_text(neg))
    return Dataset.from_dict(rows)


def labeled_pairs(ds: BeirDataset, split: str = "train", negatives_per_positive: int = 1,
                  negatives: dict[str, list[str]] | None = None, graded: bool = False,
                  limit: int | None = None, seed: int = 42):
    """(sentence1, sentence2, label) rows: judged pairs plus sampled negatives.

    ``graded=False``: label 1 for a passage judged 2 (or the top grade), 0 for a negative,
    the shape of ContrastiveLoss / OnlineContrastiveLoss. ``graded=True``: label = grade /
    max grade in [0, 1] (1 = answers, 0.5 = related, 0 = negative), the shape of CoSENTLoss /
    CosineSimilarityLoss.

    >>> lp = labeled_pairs(load_expense_policy(), "train", graded=True)   # doctest: +SKIP
    >>> lp.column_names                                                     # doctest: +SKIP
    ['sentence1', 'sentence2', 'label']
    """
    from datasets import Dataset

    queries, qrels = ds.split(split)
    top = max((g for docs in qrels.values() for g in docs.values()), default=1) or 1
    rng = random.Random(seed)
    doc_ids = list(ds.corpus)
    rows: dict[str, list] = {"sentence1": [], "sentence2": [], "label": []}
    qids = _subsample(list(qrels), limit, seed)
    for q in qids:
        judged = {d: g for d, g in qrels[q].items() if g > 0}
        for d, g in sorted(judged.items(), key=lambda x: -x[1]):
            if not graded and g < top:
                continue
            rows["sentence1"].append(queries[q])
            rows["sentence2"].append(ds.doc_text(d))
            rows["label"].append(g / top if graded else 1)
        pool = [n for n in (negatives or {}).get(q, []) if n not in judged]
        for k in range(negatives_per_positive):
            neg = pool[k % len(pool)] if pool else _random_doc(doc_ids, set(judged), rng)
            rows["sentence1"].append(queries[q])
            rows["sentence2"].append(ds.doc_text(neg))
            rows["label"].append(0.0 if graded else 0)
    return Dataset.from_dict(rows)


def _random_doc(doc_ids: list[str], exclude: set[str], rng: random.Random) -> str:
    if len(exclude) >= len(doc_ids):
        raise DataError(f"cannot draw a negative: all {len(doc_ids)} passages of the corpus are judged relevant "
                        "or already used as negatives for this query (ask for fewer negatives)")
    while True:
        d = rng.choice(doc_ids)
        if d not in exclude:
            return d


def _subsample(items: list, limit: int | None, seed: int) -> list:
    if limit is None or limit >= len(items):
        return list(items)
    return random.Random(seed).sample(items, limit)


def sample(ds: BeirDataset, queries_per_split: int | None, *, extra_docs: int = 100, seed: int = 42,
           keep: Iterable[str] = ()) -> BeirDataset:
    """A smaller copy for quick runs: ``queries_per_split`` queries of each split, every passage they
    judge, plus ``extra_docs`` other passages as distractors. ``None`` returns ``ds`` unchanged.
    Query ids in ``keep`` (e.g. the running example) stay in their split in any case.

    Notebooks call ``sample(ds, pick(full=None, fast=30))``, so FAST mode shrinks the data in one line.

    >>> small = sample(load_expense_policy(), 30)          # doctest: +SKIP
    """
    if queries_per_split is None:
        return ds
    rng = random.Random(seed)
    always = set(keep)
    qrels: dict[str, Qrels] = {}
    for split, judged in ds.qrels.items():
        chosen = sorted(judged) if len(judged) <= queries_per_split else sorted(rng.sample(sorted(judged), queries_per_split))
        chosen = sorted(set(chosen) | (always & set(judged)))
        qrels[split] = {q: dict(judged[q]) for q in chosen}
    needed = {d for judged in qrels.values() for docs in judged.values() for d in docs}
    others = [d for d in ds.corpus if d not in needed]
    needed |= set(rng.sample(others, min(extra_docs, len(others))))
    corpus = {d: doc for d, doc in ds.corpus.items() if d in needed}
    kept_q = {q for judged in qrels.values() for q in judged}
    return BeirDataset(corpus=corpus, queries={q: t for q, t in ds.queries.items() if q in kept_q}, qrels=qrels,
                       name=f"{ds.name}-sample", path=ds.path,
                       query_meta={q: m for q, m in ds.query_meta.items() if q in kept_q})


# --------------------------------------------------------------------------- dev splits

def holdout_split(ds: BeirDataset, split: str = "train", *, fraction: float = 0.1, max_queries: int = 200,
                  seed: int = 42, name: str = "dev") -> BeirDataset:
    """A copy of ``ds`` where a seeded ``fraction`` of ``split``'s queries (at least 1, at most
    ``max_queries``) moves to a new split ``name``: a dev split for datasets that have none.

    The held-out queries are no longer in ``split``, so they are never trained on. What
    ``python -m kit train-bi`` does for a folder without a dev split (notebook 04).

    >>> ds = BeirDataset({"d": {"title": "", "text": "x"}}, {"a": "1", "b": "2"}, {"train": {"a": {"d": 1}, "b": {"d": 1}}})
    >>> held = holdout_split(ds, "train", seed=0)
    >>> held.splits, len(held.qrels["dev"]), len(held.qrels["train"])
    (['dev', 'train'], 1, 1)
    """
    judged = ds.qrels.get(split)
    if judged is None:
        raise KitError(f"{ds.name}: no split {split!r} to hold queries out of")
    if name in ds.qrels:
        raise KitError(f"{ds.name}: split {name!r} already exists")
    qids = sorted(judged)
    if len(qids) < 2:
        raise KitError(f"{ds.name}: split {split!r} has {len(qids)} query; need at least 2 to hold one out as {name}")
    n = min(max(1, round(fraction * len(qids))), max_queries, len(qids) - 1)
    held = set(random.Random(seed).sample(qids, n))
    qrels = {s: dict(q) for s, q in ds.qrels.items()}
    qrels[split] = {q: judged[q] for q in qids if q not in held}
    qrels[name] = {q: judged[q] for q in qids if q in held}
    return dataclasses.replace(ds, qrels=qrels)


HELDOUT_DEV = "heldout-dev"


def dev_split(ds: BeirDataset, train: str = "train", dev: str | None = None, *, seed: int = 42,
              fraction: float = 0.1, log: Callable[[str], None] = lambda msg: None) -> tuple[BeirDataset, str, bool]:
    """Choose the split that picks checkpoints and settings: ``(dataset, dev split name, held out?)``.

    ``dev`` if given (never ``test``, never the training split); else the folder's ``dev`` split;
    else a seeded ``fraction`` of the ``train`` queries held out as ``"heldout-dev"`` (they are then
    not trained on), said through ``log``. Every kit recipe and ``python -m kit`` command chooses its
    dev split this way, so nothing is ever tuned on test. Taught in ``notebooks/04_bi_encoder.ipynb``.

    >>> ds = BeirDataset({"d": {"title": "", "text": "x"}}, {"a": "1", "b": "2"}, {"train": {"a": {"d": 1}, "b": {"d": 1}}})
    >>> dev_split(ds, "train")[1:]
    ('heldout-dev', True)
    """
    if train not in ds.splits:
        raise KitError(f"{ds.name}: split {train!r} not found (available: {', '.join(ds.splits)})")
    if dev is not None:
        if dev == train:
            raise KitError(f"--dev-split {dev!r} is the training split; the dev split must hold other queries")
        if dev == "test":
            raise KitError("--dev-split test: the test split is never used while training or choosing settings "
                           "(it would leak into the choice); give a dev split, or none to hold out train queries")
        if dev not in ds.splits:
            raise KitError(f"{ds.name}: dev split {dev!r} not found (available: {', '.join(ds.splits)})")
        return ds, dev, False
    if "dev" in ds.splits and train != "dev":
        return ds, "dev", False
    held = holdout_split(ds, train, fraction=fraction, seed=seed, name=HELDOUT_DEV)
    log(f"note: {ds.name} has no dev split: holding out {len(held.qrels[HELDOUT_DEV])} of {len(ds.qrels[train])} "
        f"{train} queries ({fraction:.0%}, seed {seed}) as the dev split; they are not trained on")
    return held, HELDOUT_DEV, True


def answer_grade(qrels: Qrels) -> int:
    """The grade that means "answers the query": 2 for graded judgments (0/1/2), 1 for binary ones.

    >>> answer_grade({"q": {"a": 2, "b": 1}}), answer_grade({"q": {"a": 1}})
    (2, 1)
    """
    top = max((g for docs in qrels.values() for g in docs.values()), default=1)
    return 2 if top >= 2 else 1


# --------------------------------------------------------------------------- re-ranker training pairs

def rerank_pairs(ds: BeirDataset, split: str, candidates: Run, *, hard_negatives: int = 2,
                 random_negatives: int = 1, range_min: int = 0, range_max: int = 30,
                 relative_margin: float | None = 0.05, min_grade: int | None = None,
                 related: bool = True, max_related: int | None = None, graded: bool = False, seed: int = 42):
    """(query, passage, label) rows to train a cross-encoder: gold positives, hard and random negatives.

    - positives: every passage judged ``min_grade`` or more (default: the answer grade) with label 1;
    - related passages (judged above 0 but below ``min_grade``), with ``related=True``: label
      grade / top grade (0.5 for grade 1 of 2), never 0: they are relevant, only less than the
      answer. A listwise loss that lists them below the answer teaches the re-ranker to put the
      passage that *answers* above one that is only on topic (the running example's general definition);
      ``max_related`` keeps at most that many per query, those the retriever ranks highest first;
    - hard negatives: the retriever's ``candidates`` for the query, ranked ``range_min``..``range_max``,
      never a passage judged relevant, and not scoring within ``relative_margin`` of the best positive's
      score (the false-negative guard of ``sentence_transformers.util.mine_hard_negatives``; a passage
      judged *not* relevant, grade 0, e.g. by :func:`with_judgments`, needs no guard), ``hard_negatives``
      per query, best first;
    - random negatives: ``random_negatives`` unjudged passages per query, drawn with ``seed``;

    label 0 for both kinds. Columns: ``query, passage, label, kind`` (``positive``/``hard``/``random``)
    and ``query_id, doc_id`` (kinds: ``positive``, ``related``, ``hard``, ``random``). Taught in
    ``notebooks/05_cross_encoder.ipynb``.

    >>> ds = BeirDataset({d: {"title": "", "text": d} for d in "abcde"}, {"q": "?"}, {"train": {"q": {"a": 2, "b": 1}}})
    >>> rows = rerank_pairs(ds, "train", {"q": {"b": .9, "c": .8, "a": .7, "d": .1}}, hard_negatives=1,
    ...                     random_negatives=1, relative_margin=None, seed=0)
    >>> [(r["doc_id"], r["label"], r["kind"]) for r in rows]
    [('a', 1.0, 'positive'), ('b', 0.5, 'related'), ('c', 0.0, 'hard'), ('d', 0.0, 'random')]
    """
    queries, qrels = ds.split(split)
    grade = answer_grade(qrels) if min_grade is None else min_grade
    top = max((g for docs in qrels.values() for g in docs.values()), default=1) or 1
    rng = random.Random(seed)
    doc_ids = sorted(ds.corpus)
    rows: list[dict] = []
    for q in sorted(qrels):
        judged = {d for d, g in qrels[q].items() if g > 0}
        confirmed = {d for d, g in qrels[q].items() if g <= 0}   # judged not relevant: no guard needed
        positives = sorted((d for d, g in qrels[q].items() if g >= grade), key=lambda d: (-qrels[q][d], d))
        if not positives:
            continue
        ranked = sorted(candidates.get(q, {}).items(), key=lambda x: (-x[1], x[0]))
        pos_scores = [s for d, s in ranked if d in positives]
        ceiling = pos_scores[0] * (1 - relative_margin) if pos_scores and relative_margin is not None else None
        hard = [d for d, s in ranked[range_min:range_max]
                if d not in judged and (ceiling is None or s <= ceiling or d in confirmed)][:hard_negatives]
        used = judged | set(hard)
        rand = []
        for _ in range(random_negatives):
            if len(used) >= len(doc_ids):
                break
            d = _random_doc(doc_ids, used, rng)
            rand.append(d)
            used.add(d)
        for d in positives:
            rows.append({"query_id": q, "doc_id": d, "label": (qrels[q][d] / top) if graded else 1.0, "kind": "positive"})
        if related:
            near = sorted(judged - set(positives), key=lambda d: (-qrels[q][d], d))
            if max_related is not None:   # keep the ones the retriever ranks highest (the hardest to order)
                place = {d: i for i, (d, _) in enumerate(ranked)}
                keep = set(sorted(near, key=lambda d: (-qrels[q][d], place.get(d, len(place)), d))[:max_related])
                near = [d for d in near if d in keep]
            rows += [{"query_id": q, "doc_id": d, "label": qrels[q][d] / top, "kind": "related"} for d in near]
        rows += [{"query_id": q, "doc_id": d, "label": 0.0, "kind": "hard"} for d in hard]
        rows += [{"query_id": q, "doc_id": d, "label": 0.0, "kind": "random"} for d in rand]
    for r in rows:
        r["query"], r["passage"] = queries[r["query_id"]], ds.doc_text(r["doc_id"])
    return rows


# --------------------------------------------------------------------------- a corpus of long documents

def long_documents(ds: BeirDataset, n_docs: int = 5000, *, per_doc: int = 3, seed: int = 42,
                   splits: dict[str, str] | None = None, max_queries: dict[str, int] | None = None,
                   protect: str | None = "test") -> BeirDataset:
    """A BEIR dataset of long documents built from ``ds``'s passages, to try what passage length changes.

    The first ``len(ds.corpus)`` documents each start with a different passage (its *primary*)
    followed by ``per_doc - 1`` passages of other topics drawn at random (seeded); a document is
    judged for a query with its primary passage's grade. The remaining documents, up to ``n_docs``,
    are distractors of ``per_doc`` random passages, judged for nothing (as in real collections, some
    relevant text then goes unjudged). Passages judged relevant for a query of the ``protect`` split
    are never used as filler or in distractors, so that split's judgments stay complete: its answers
    appear in exactly one document. ``splits`` renames or drops splits (``{"train": "train",
    "test": "test"}`` keeps two and no dev split); ``max_queries`` caps each. With the bundled
    passages (87 words on average) and ``per_doc=3`` the documents are 200-300 words, the shape of
    BEIR's scientific-abstract sets. Used by ``benchmarks/`` and ``notebooks/04_bi_encoder.ipynb``.

    >>> ds = BeirDataset({f"p{i}": {"title": "", "text": f"w{i}", "topic": str(i % 2)} for i in range(4)},
    ...                  {"q": "?"}, {"test": {"q": {"p1": 2}}})
    >>> long = long_documents(ds, 8, per_doc=2, seed=0)
    >>> len(long.corpus), long.qrels["test"], long.corpus["doc-0001"]["text"]
    (8, {'q': {'doc-0001': 2}}, 'w1 w2')
    """
    rng = random.Random(seed)
    ids = sorted(ds.corpus)
    kept = {d for docs in ds.qrels.get(protect, {}).values() for d, g in docs.items() if g > 0} if protect else set()
    fillers = [d for d in ids if d not in kept] or ids
    if n_docs < len(ids):
        raise DataError(f"long_documents: n_docs ({n_docs}) must be at least the number of passages ({len(ids)})")
    topic = {d: str(ds.corpus[d].get("topic", "")) for d in ids}
    corpus: Corpus = {}
    doc_of: dict[str, str] = {}
    for i in range(n_docs):
        doc_id = f"doc-{i:04d}"
        if i < len(ids):
            first = ids[i]
            others = [d for d in fillers if topic[d] != topic[first] and d != first] or [d for d in ids if d != first]
            parts = [first, *rng.sample(others, min(per_doc - 1, len(others)))]
            doc_of[first] = doc_id
        else:
            parts = rng.sample(fillers, min(per_doc, len(fillers)))
        corpus[doc_id] = {"title": ds.corpus[parts[0]].get("title", ""),
                          "text": " ".join(ds.corpus[p]["text"] for p in parts)}
    rename = splits or {s: s for s in ds.qrels}
    qrels: dict[str, Qrels] = {}
    for old, new in rename.items():
        judged = ds.qrels.get(old, {})
        keep = sorted(judged)
        cap = (max_queries or {}).get(new)
        if cap is not None and cap < len(keep):
            keep = sorted(random.Random(seed).sample(keep, cap))
        qrels[new] = {q: {doc_of[p]: g for p, g in judged[q].items()} for q in keep}
    kept = {q for split in qrels.values() for q in split}
    return BeirDataset(corpus, {q: t for q, t in ds.queries.items() if q in kept}, qrels,
                       name=f"{ds.name}-long{n_docs}", query_meta={q: m for q, m in ds.query_meta.items() if q in kept})


# --------------------------------------------------------------------------- expert judgments

JUDGMENTS = ("hard_negative", "actually_relevant", "unclear")
JUDGMENT_FIELDS = ("query_id", "corpus_id", "judgment")


def load_judgments(path: str | os.PathLike | None = None) -> list[dict]:
    """Expert (SME) judgments of mined candidates: one JSON object per line with ``query_id``,
    ``corpus_id``, ``judgment`` (``hard_negative``, ``actually_relevant`` or ``unclear``) and
    optionally ``query``, ``model_rank``, ``model_score``, ``reason``. Default: the bundled
    ``data/expense_policy/sme_judgments.jsonl``. Errors name the file and line. When a pair is
    judged twice, the last judgment wins. Taught in ``notebooks/05_cross_encoder.ipynb`` and ``03``.

    >>> rows = load_judgments()                    # doctest: +SKIP
    >>> rows[0]["judgment"]                        # doctest: +SKIP
    'actually_relevant'
    """
    from .config import EXPENSE_POLICY

    p = Path(path) if path is not None else EXPENSE_POLICY / "sme_judgments.jsonl"
    return _last_per_pair(p, JUDGMENT_FIELDS, lambda row: None if row["judgment"] in JUDGMENTS else
                          f"judgment {row['judgment']!r} is not one of {', '.join(JUDGMENTS)}")


def _last_per_pair(p: Path, fields: Sequence[str], problem: Callable[[dict], str | None]) -> list[dict]:
    """The rows of a judgments file, the last one per (query, passage) pair; ``problem(row)`` names a bad row."""
    last: dict[tuple[str, str], dict] = {}
    for lineno, row in read_jsonl_rows(p, fields):
        message = problem(row)
        if message:
            raise DataError(f"{p.name}:{lineno}: {message}")
        key = (str(row["query_id"]), str(row["corpus_id"]))
        last.pop(key, None)
        last[key] = row
    return list(last.values())


POOLED_FIELDS = ("query_id", "corpus_id", "grade")


def load_pooled_judgments(path: str | os.PathLike | None = None) -> list[dict]:
    """Pooled judgments: grades for (query, passage) pairs the dataset's writers never judged.

    One JSON object per line with ``query_id``, ``corpus_id``, ``grade`` (0 not relevant, 1 related,
    2 answers) and optionally ``split``, ``reason`` and ``round``. The bundled file
    (``data/expense_policy/pooled_judgments.jsonl``, the default) grades the unjudged passages that the
    compared systems ranked in their top 5 for the dev and test queries (round 1) and the candidates
    notebook 05's recipe mines from for the train queries (round 2), judged blind to which system
    found them (the datasheet says how). Merge them with :func:`with_judgments`. Errors name the file
    and line; a pair graded twice keeps its last grade. Taught in ``notebooks/05_cross_encoder.ipynb``.

    >>> rows = load_pooled_judgments()                     # doctest: +SKIP
    >>> sorted(rows[0])                                    # doctest: +SKIP
    ['corpus_id', 'grade', 'query_id', 'reason', 'split']
    """
    from .config import EXPENSE_POLICY

    p = Path(path) if path is not None else EXPENSE_POLICY / "pooled_judgments.jsonl"
    return _last_per_pair(p, POOLED_FIELDS, lambda row: None if row["grade"] in (0, 1, 2) and
                          not isinstance(row["grade"], bool) else f"grade {row['grade']!r} is not 0, 1 or 2")


def with_judgments(ds: BeirDataset, rows: Sequence[dict], *, name: str = "pooled") -> BeirDataset:
    """``ds`` with more judgments: each row grades a (query, passage) pair of one of ``ds``'s splits.

    A row fills a pair the split's qrels do not judge (grade 0 included: "judged, not relevant", which
    :func:`kit.analysis.unjudged_tops` then no longer counts as unknown); where the writers judged the
    pair, their grade stands. Rows whose query or passage ``ds`` does not hold are skipped (``ds`` may
    be a :func:`sample`), but when no row applies the file is for another dataset: an error. The
    result is a new dataset named ``"<name of ds>+<name>"`` (so its fingerprint, and the cache, differ).
    Taught in ``notebooks/05_cross_encoder.ipynb``.

    >>> ds = BeirDataset({"a": {"title": "", "text": "x"}, "b": {"title": "", "text": "y"}}, {"q": "?"},
    ...                  {"test": {"q": {"a": 2}}})
    >>> with_judgments(ds, [{"query_id": "q", "corpus_id": "b", "grade": 2},
    ...                     {"query_id": "q", "corpus_id": "a", "grade": 0}]).qrels
    {'test': {'q': {'a': 2, 'b': 2}}}
    """
    split_of = {q: s for s, qrels in ds.qrels.items() for q in qrels}
    qrels = {s: {q: dict(docs) for q, docs in judged.items()} for s, judged in ds.qrels.items()}
    used = 0
    for row in rows:
        q, d = str(row["query_id"]), str(row["corpus_id"])
        if q in split_of and d in ds.corpus:
            qrels[split_of[q]][q].setdefault(d, int(row["grade"]))
            used += 1
    if rows and not used:
        raise DataError(f"with_judgments: none of the {len(rows)} rows grades a query and passage of {ds.name} "
                        "(judgments for another dataset?)")
    return BeirDataset(ds.corpus, ds.queries, qrels, name=f"{ds.name}+{name}", path=ds.path, query_meta=ds.query_meta)
