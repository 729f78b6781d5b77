"""Augmentation when good data is scarce: from a few positive pairs to a larger, better training set.

- **hard negatives** with a false-negative guard, scored against an expert's judgments
  (:func:`guard_report`; the mining itself is :func:`kit.retrieval.hard_negatives`);
- **clusters** of the corpus (k-means): same-cluster passages as candidate hard negatives, far
  clusters as easy ones (:func:`cluster_passages`, :func:`cluster_negatives`);
- **synthetic queries**: offline, with no model (:func:`crop_queries`, :func:`keyword_queries`,
  :func:`typo_queries`), or written by a local LLM (:func:`llm_queries`), kept only if their passage
  ranks high for them (:func:`round_trip_filter`);
- **silver labels** from a re-ranker trained on the gold set (:func:`silver_pairs`);
- **weak supervision** with snorkel: labeling functions over (query, candidate) pairs, combined by
  a label model (:func:`labeling_functions`, :func:`weak_labels`);
- **slices** of the test queries, to find where errors come from (:func:`query_slices`, :func:`slice_table`).

Taught in ``notebooks/03_augmentation.ipynb``.

>>> from kit.augment import crop_queries
>>> crop_queries({"d": {"title": "Taxis", "text": "Taxis to the airport are reimbursed. Keep the receipt."}}, ["d"], seed=0)
{'d': ['Taxis to the airport are reimbursed']}
"""
from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd

from .data import Qrels, Run
from .errors import KitError

if TYPE_CHECKING:
    from .data import BeirDataset
    from .retrieval import DenseIndex


# --------------------------------------------------------------------------- hard negatives, guarded

def guard_report(run: Run, qrels: Qrels, judgments: Sequence[dict], settings: dict[str, dict], *,
                 num_negatives: int = 5) -> pd.DataFrame:
    """For each guard setting (keyword arguments of :func:`kit.retrieval.hard_negatives`), how many
    negatives it mines and how the expert judged the ones they reviewed: the false-negative rate of
    each guard. Taught in ``notebooks/03_augmentation.ipynb``.

    >>> run = {"q": {"a": 1.0, "x": 0.98, "y": 0.7}}
    >>> guard_report(run, {"q": {"a": 2}}, [{"query_id": "q", "corpus_id": "x", "judgment": "actually_relevant"}],
    ...              {"none": {"relative_margin": None}, "5%": {"relative_margin": 0.05}})["false_negative_rate"].tolist()
    [1.0, nan]
    """
    from .analysis import expert_verdicts
    from .retrieval import hard_negatives

    return pd.DataFrame({name: expert_verdicts(hard_negatives(run, qrels, num_negatives=num_negatives, **kw), judgments)
                         for name, kw in settings.items()}).T


# --------------------------------------------------------------------------- clusters

def cluster_passages(embeddings: np.ndarray, k: int, *, seed: int = 42) -> np.ndarray:
    """k-means cluster of each passage embedding (scikit-learn, on one thread next to PyTorch).

    >>> cluster_passages(np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], float), 2).tolist() in ([0, 0, 1, 1], [1, 1, 0, 0])
    True
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    if not 2 <= k <= len(embeddings):
        raise KitError(f"cluster_passages: k must be between 2 and the number of passages ({len(embeddings)}), got {k}")
    with threadpool_limits(1):
        return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(np.asarray(embeddings))


def cluster_negatives(qrels: Qrels, doc_ids: Sequence[str], labels: Sequence[int], centroids: np.ndarray | None = None, *,
                      per_query: int = 1, far: bool = False, seed: int = 42) -> dict[str, list[str]]:
    """Negatives from clusters: for each query, unjudged passages from its answer's cluster (``far=False``,
    candidate hard negatives: same subject) or from the cluster farthest from it (``far=True``, easy
    negatives; needs ``centroids``). Seeded.

    >>> labels = [0, 0, 0, 1, 1]
    >>> cluster_negatives({"q": {"a": 2}}, ["a", "b", "c", "d", "e"], labels, per_query=2, seed=0)
    {'q': ['c', 'b']}
    """
    rng = random.Random(seed)
    cluster_of = dict(zip(doc_ids, labels))
    members: dict[int, list[str]] = {}
    for d, c in cluster_of.items():
        members.setdefault(int(c), []).append(d)
    out = {}
    for q, judged in sorted(qrels.items()):
        answer = max(judged, key=lambda d: (judged[d], d))
        if answer not in cluster_of:
            out[q] = []
            continue
        home = int(cluster_of[answer])
        if far:
            if centroids is None:
                raise KitError("cluster_negatives: far=True needs the cluster centroids")
            target = int(np.argmin(np.asarray(centroids) @ np.asarray(centroids)[home]))
        else:
            target = home
        pool = [d for d in members.get(target, []) if judged.get(d, 0) <= 0]
        out[q] = rng.sample(pool, min(per_query, len(pool)))
    return out


# --------------------------------------------------------------------------- synthetic queries

_STOP = frozenset("""a an and are as at be by can do does for from has have how i if in is it its may of on or our
should that the their there this to was were what when where which who will with you your not no""".split())


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]


def crop_queries(corpus: dict, doc_ids: Sequence[str], *, per_doc: int = 1, max_words: int = 12, seed: int = 42) -> dict[str, list[str]]:
    """Pseudo-queries cut from the passage itself (the *inverse cloze* idea): a sentence of the passage,
    at most ``max_words`` words, without its final punctuation. No model needed; the passage answers
    its own sentence by construction, and the sentence is phrased like the passage, not like an
    employee (which :func:`round_trip_filter` and the ablation of notebook 03 measure).

    >>> crop_queries({"d": {"text": "Hotels are capped at 225 dollars. Minibars are personal."}}, ["d"], seed=1)
    {'d': ['Hotels are capped at 225 dollars']}
    """
    rng = random.Random(seed)
    out = {}
    for d in doc_ids:
        sents = _sentences(corpus[d]["text"]) or [corpus[d]["text"]]
        picks = rng.sample(sents, min(per_doc, len(sents)))
        out[d] = [" ".join(s.split()[:max_words]).rstrip(".!?,;:") for s in picks]
    return out


def keyword_queries(corpus: dict, doc_ids: Sequence[str], *, words: int = 4) -> dict[str, list[str]]:
    """A keyword query per passage: its ``words`` most distinctive terms (TF-IDF over the corpus),
    the shape of the 21% of real queries that are keywords ("lounge day pass delay").

    >>> c = {"a": {"text": "lounge pass delay lounge"}, "b": {"text": "hotel cap delay"}, "c": {"text": "hotel taxi"}}
    >>> keyword_queries(c, ["a"], words=2)
    {'a': ['lounge pass']}
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    ids = list(corpus)
    vec = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
    matrix = vec.fit_transform([corpus[d].get("title", "") + " " + corpus[d]["text"] for d in ids])
    vocab = np.array(vec.get_feature_names_out())
    row = {d: i for i, d in enumerate(ids)}
    out = {}
    for d in doc_ids:
        weights = matrix[row[d]].toarray().ravel()
        top = np.argsort(-weights, kind="stable")[:words]
        out[d] = [" ".join(vocab[top][weights[top] > 0])]
    return out


def typo_queries(queries: dict[str, str], *, rate: float = 0.08, seed: int = 42) -> dict[str, str]:
    """Copies of queries with typos (adjacent letters swapped, letters dropped or doubled), seeded:
    targeted augmentation for a slice of misspelled queries.

    >>> typo_queries({"q": "reimbursement for hotel"}, rate=0.1, seed=3)
    {'q': 'reimbrusement for hotell'}
    """
    rng = random.Random(seed)
    out = {}
    for q, text in queries.items():
        chars = list(text)
        i = 0
        while i < len(chars):
            if chars[i].isalpha() and rng.random() < rate:
                op = rng.choice(("swap", "drop", "double"))
                if op == "swap" and i + 1 < len(chars) and chars[i + 1].isalpha():
                    chars[i], chars[i + 1] = chars[i + 1], chars[i]
                    i += 1
                elif op == "drop":
                    del chars[i]
                    continue
                else:
                    chars.insert(i, chars[i])
                    i += 1
            i += 1
        out[q] = "".join(chars)
    return out


QUESTION_SYSTEM = ("You write the questions employees ask about their company's travel and expense policy. "
                   "Answer with one question only.")
QUESTION_EXAMPLES = (("Taxis and rideshares between the airport and your hotel are reimbursed at the standard tier. "
                      "Keep the receipt.", "Can I expense an Uber from the airport to my hotel?"),)


def llm_queries(generator, corpus: dict, doc_ids: Sequence[str], *, examples: Sequence[tuple[str, str]] = QUESTION_EXAMPLES,
                system: str = QUESTION_SYSTEM, max_new_tokens: int = 32, cache: Callable | None = None) -> dict[str, list[str]]:
    """Questions written by a language model (any generator of :mod:`kit.rag`), one per passage.

    The prompt shows ``examples`` (passage, question) first: a small model follows an example far
    better than an instruction. ``cache(key, compute)`` stores each answer (e.g.
    :func:`kit.cache.cached_json` with ``many=True``), because a CPU model takes seconds per question.
    The first line of the answer is kept, without quotes or a leading "Question:"; an answer that is
    not a question of three words or more is dropped.

    >>> class Echo:
    ...     name = "echo"
    ...     def generate(self, messages, max_new_tokens=None): return 'Question: "Can I take a taxi?"\\nMore.'
    >>> llm_queries(Echo(), {"d": {"text": "Taxis are fine."}}, ["d"])
    {'d': ['Can I take a taxi?']}
    """
    shots = [{"role": "system", "content": system}]
    for passage, question in examples:
        shots += [{"role": "user", "content": f"Passage: {passage}"}, {"role": "assistant", "content": question}]
    out = {}
    for d in doc_ids:
        messages = shots + [{"role": "user", "content": f"Passage: {corpus[d]['text']}"}]
        key = {"messages": messages, "model": getattr(generator, "name", "llm"), "max_new_tokens": max_new_tokens}
        make = lambda: generator.generate(messages, max_new_tokens=max_new_tokens)
        text = cache(key, make) if cache is not None else make()
        line = next((l for l in str(text).splitlines() if l.strip()), "").strip()
        line = re.sub(r"^(question|q)\s*[:.]\s*", "", line, flags=re.I).strip().strip('"').strip("'").strip()
        out[d] = [line] if len(line.split()) >= 3 and line.endswith("?") else []
    return out


def round_trip_filter(index: "DenseIndex", queries: dict[str, list[str]], *, k: int = 3) -> tuple[dict[str, list[str]], float]:
    """Keep a synthetic query only if the passage it was made from ranks in the top ``k`` for it (the
    round-trip consistency check of synthetic-data papers). Returns ``(kept, share kept)``.

    ``queries``: doc id -> its synthetic queries; ``index``: a bi-encoder index of the corpus.
    """
    flat = {f"{d}::{i}": (d, q) for d, qs in queries.items() for i, q in enumerate(qs)}
    if not flat:
        return {}, float("nan")
    run = index.search({key: q for key, (_, q) in flat.items()}, k=k)
    kept: dict[str, list[str]] = {d: [] for d in queries}
    for key, (d, q) in flat.items():
        if d in run.get(key, {}):
            kept[d].append(q)
    return kept, sum(len(v) for v in kept.values()) / len(flat)


def synthetic_pairs(ds: "BeirDataset", queries: dict[str, list[str]]):
    """(anchor, positive) rows for the bi-encoder from synthetic queries: each with the passage it came from."""
    from datasets import Dataset

    rows = [(q, ds.doc_text(d)) for d, qs in queries.items() for q in qs]
    return Dataset.from_dict({"anchor": [a for a, _ in rows], "positive": [p for _, p in rows]})


# --------------------------------------------------------------------------- silver labels

def silver_pairs(reranker, ds: "BeirDataset", queries: dict[str, str], candidates: Run, *, depth: int = 10,
                 positive_above: float, negative_below: float, exclude: Qrels | None = None) -> pd.DataFrame:
    """Label unlabeled (query, candidate) pairs with a re-ranker trained on the gold set (the AugSBERT
    idea), keeping only the confident ones: score above ``positive_above`` -> 1, below
    ``negative_below`` -> 0, the uncertain middle dropped. Pairs already judged in ``exclude`` are
    skipped. Columns: ``query_id, doc_id, score, label``. Taught in ``notebooks/03_augmentation.ipynb``.
    """
    from .retrieval import rerank, top_run

    if negative_below > positive_above:
        raise KitError("silver_pairs: negative_below must not exceed positive_above")
    scored = top_run(rerank(reranker, ds.corpus, queries, top_run(candidates, depth), depth=depth,
                            show_progress_bar=False), depth)
    rows = []
    for q, docs in scored.items():
        for d, s in docs.items():
            if exclude and d in exclude.get(q, {}):
                continue
            label = 1 if s > positive_above else 0 if s < negative_below else None
            if label is not None:
                rows.append({"query_id": q, "doc_id": d, "score": float(s), "label": label})
    return pd.DataFrame(rows, columns=["query_id", "doc_id", "score", "label"])


# --------------------------------------------------------------------------- weak supervision

ABSTAIN, NEGATIVE, POSITIVE = -1, 0, 1


def pair_features(ds: "BeirDataset", pairs: pd.DataFrame, queries: dict[str, str], *, retriever_run: Run | None = None,
                  reranker_run: Run | None = None) -> pd.DataFrame:
    """What the labeling functions read for each (query, candidate) pair: the texts, word overlap,
    the topics, the retriever's and the re-ranker's score and rank for the pair, the passage length."""
    def ranks(run):
        out = {}
        for q, docs in (run or {}).items():
            for r, (d, s) in enumerate(sorted(docs.items(), key=lambda x: -x[1]), 1):
                out[(q, d)] = (r, s)
        return out

    rr, cr = ranks(retriever_run), ranks(reranker_run)
    rows = []
    for q, d in zip(pairs.query_id, pairs.doc_id):
        qw = {w for w in re.findall(r"[a-z]+", queries[q].lower()) if w not in _STOP}
        pw = {w for w in re.findall(r"[a-z]+", ds.doc_text(d).lower()) if w not in _STOP}
        meta = ds.query_meta.get(q, {})
        rows.append({"query_id": q, "doc_id": d, "overlap": len(qw & pw) / max(1, len(qw)),
                     "same_topic": meta.get("topic") == ds.corpus[d].get("topic") if meta.get("topic") else None,
                     "retriever_rank": rr.get((q, d), (None, None))[0], "retriever_score": rr.get((q, d), (None, None))[1],
                     "reranker_rank": cr.get((q, d), (None, None))[0], "reranker_score": cr.get((q, d), (None, None))[1],
                     "words": len(ds.doc_text(d).split())})
    return pd.DataFrame(rows)


def labeling_functions(*, overlap_high: float = 0.5, overlap_low: float = 0.1, reranker_high: float | None = None,
                       reranker_low: float | None = None):
    """Labeling functions (snorkel) voting *actually relevant* (1), *hard negative* (0) or abstaining,
    over the columns of :func:`pair_features`: word overlap, topic match, the retriever's rank, the
    re-ranker's score, passage length. Each is a heuristic an expert could state; none is right alone.
    """
    from snorkel.labeling import labeling_function

    @labeling_function()
    def lf_overlap_high(x):
        return POSITIVE if x.overlap >= overlap_high else ABSTAIN

    @labeling_function()
    def lf_overlap_low(x):
        return NEGATIVE if x.overlap <= overlap_low else ABSTAIN

    @labeling_function()
    def lf_other_topic(x):
        return NEGATIVE if x.same_topic is False else ABSTAIN

    @labeling_function()
    def lf_retriever_top1(x):
        return POSITIVE if x.retriever_rank == 1 else ABSTAIN

    @labeling_function()
    def lf_retriever_deep(x):
        return NEGATIVE if x.retriever_rank is not None and x.retriever_rank > 3 else ABSTAIN

    @labeling_function()
    def lf_short_passage(x):
        return NEGATIVE if x.words < 50 else ABSTAIN

    lfs = [lf_overlap_high, lf_overlap_low, lf_other_topic, lf_retriever_top1, lf_retriever_deep, lf_short_passage]
    if reranker_high is not None:
        @labeling_function()
        def lf_reranker_high(x):
            return POSITIVE if x.reranker_score is not None and x.reranker_score >= reranker_high else ABSTAIN
        lfs.append(lf_reranker_high)
    if reranker_low is not None:
        @labeling_function()
        def lf_reranker_low(x):
            return NEGATIVE if x.reranker_score is not None and x.reranker_score <= reranker_low else ABSTAIN
        lfs.append(lf_reranker_low)
    return lfs


def weak_labels(features: pd.DataFrame, lfs, *, seed: int = 42, epochs: int = 300):
    """Apply the labeling functions, summarize them (snorkel's ``LFAnalysis``: polarity, coverage,
    overlaps, conflicts) and combine them with snorkel's ``LabelModel``. Returns
    ``(probability of label 1 per pair, the LF summary table, the label matrix)``.
    """
    import logging
    import warnings

    from snorkel.labeling import LFAnalysis, PandasLFApplier
    from snorkel.labeling.model import LabelModel

    logging.getLogger("snorkel").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        L = PandasLFApplier(lfs).apply(features, progress_bar=False)
        summary = LFAnalysis(L, lfs).lf_summary()
        model = LabelModel(cardinality=2, verbose=False)
        model.fit(L, n_epochs=epochs, seed=seed, log_freq=epochs + 1, progress_bar=False)
        probs = model.predict_proba(L)[:, 1]
    return probs, summary, L


# --------------------------------------------------------------------------- slices

def query_slices(ds: "BeirDataset", query_ids: Sequence[str], *, extra: dict[str, Callable[[str], str]] | None = None) -> pd.DataFrame:
    """Each query's slice under several views: ``topic`` (of its answer), ``style`` (natural, keyword,
    typo, abbrev), ``length`` (words: short / medium / long), plus any ``extra`` view, a function
    from query id to a label.

    >>> from kit.data import BeirDataset
    >>> ds = BeirDataset({}, {"q": "can I take a cab"}, {}, query_meta={"q": {"style": "natural", "topic": "taxis"}})
    >>> query_slices(ds, ["q"]).loc["q"].to_dict()
    {'topic': 'taxis', 'style': 'natural', 'length': 'medium (5-9 words)'}
    """
    def length(q):
        n = len(ds.queries[q].split())
        return "short (1-4 words)" if n <= 4 else "medium (5-9 words)" if n <= 9 else "long (10+ words)"

    views = {"topic": lambda q: ds.query_meta.get(q, {}).get("topic", "?"),
             "style": lambda q: ds.query_meta.get(q, {}).get("style", "?"), "length": length, **(extra or {})}
    return pd.DataFrame({name: [fn(q) for q in query_ids] for name, fn in views.items()},
                        index=pd.Index(list(query_ids), name="query_id"))


def slice_table(scores: pd.Series, slices: pd.DataFrame, *, min_queries: int = 5, seed: int = 42) -> pd.DataFrame:
    """Mean per-query score of every slice (view, value) with at least ``min_queries`` queries, its 95%
    bootstrap interval, and its gap to the overall mean; worst first.

    >>> s = pd.Series({"a": 1.0, "b": 0.0, "c": 1.0, "d": 0.5})
    >>> sl = pd.DataFrame({"style": ["x", "y", "x", "y"]}, index=["a", "b", "c", "d"])
    >>> slice_table(s, sl, min_queries=2)[["view", "slice", "queries", "mean"]].values.tolist()
    [['style', 'y', 2, 0.25], ['style', 'x', 2, 1.0]]
    """
    from .evaluate import bootstrap_ci

    overall = float(scores.mean())
    rows = []
    for view in slices.columns:
        for value, members in slices.groupby(view).groups.items():
            vals = scores.reindex(members).dropna()
            if len(vals) < min_queries:
                continue
            mean, low, high = bootstrap_ci(vals.to_numpy(), seed=seed)
            rows.append({"view": view, "slice": value, "queries": len(vals), "mean": mean, "low": low, "high": high,
                         "gap to overall": mean - overall})
    frame = pd.DataFrame(rows, columns=["view", "slice", "queries", "mean", "low", "high", "gap to overall"])
    return frame.sort_values(["mean", "view"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- the starting point

def small_gold(ds: "BeirDataset", n_queries: int, *, include: Sequence[str] = (), split: str = "train",
               seed: int = 42) -> tuple["BeirDataset", dict[str, str]]:
    """The scarce-data situation: keep the judgments of ``n_queries`` train queries (``include`` first,
    e.g. those an expert reviewed, the rest drawn with ``seed``) and hide the others' judgments.

    Returns ``(dataset whose train split is the gold slice, the other train queries as unlabeled
    text)``: a query log without labels, which silver labelling can use. Dev and test are untouched.

    >>> from kit.data import BeirDataset
    >>> ds = BeirDataset({"d": {"title": "", "text": "x"}}, {q: q for q in "abc"}, {"train": {q: {"d": 2} for q in "abc"}})
    >>> gold, unlabeled = small_gold(ds, 2, include=["c"], seed=0)
    >>> sorted(gold.qrels["train"]), sorted(unlabeled)
    (['b', 'c'], ['a'])
    """
    import dataclasses

    judged = ds.qrels.get(split)
    if judged is None:
        raise KitError(f"small_gold: no split {split!r}")
    first = [q for q in dict.fromkeys(include) if q in judged][:n_queries]
    rest = sorted(set(judged) - set(first))
    keep = set(first) | set(random.Random(seed).sample(rest, max(0, min(len(rest), n_queries - len(first)))))
    qrels = {s: dict(q) for s, q in ds.qrels.items()}
    qrels[split] = {q: judged[q] for q in sorted(keep)}
    unlabeled = {q: ds.queries[q] for q in sorted(set(judged) - keep)}
    return dataclasses.replace(ds, qrels=qrels, name=f"{ds.name}-gold{len(keep)}"), unlabeled


def confident_thresholds(scores: Sequence[float], relevant: Sequence[int], *, precision: float = 0.8,
                         negative_error: float = 0.05) -> tuple[float, float]:
    """Thresholds for silver labels, chosen on judged (dev) pairs: ``positive_above``, the lowest score
    above which at least ``precision`` of the pairs are relevant, and ``negative_below``, the highest
    score below which at most ``negative_error`` of them are. Apply them to *other* pairs.

    >>> confident_thresholds([0.9, 0.8, 0.7, 0.2, 0.1], [1, 1, 0, 0, 0], precision=0.9, negative_error=0.0)
    (0.8, 0.7)
    """
    s, y = np.asarray(scores, float), np.asarray(relevant, int)
    if s.size == 0:
        raise KitError("confident_thresholds: no scored pairs")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    prec = np.cumsum(y) / np.arange(1, len(y) + 1)
    ok = np.flatnonzero(prec >= precision)
    positive_above = float(s[ok.max()]) if ok.size else float(s[0])
    rev_rate = np.cumsum(y[::-1]) / np.arange(1, len(y) + 1)
    ok_neg = np.flatnonzero(rev_rate <= negative_error)
    negative_below = float(s[::-1][ok_neg.max()]) if ok_neg.size else float(s[-1])
    return positive_above, min(negative_below, positive_above)
