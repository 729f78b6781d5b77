"""kit.rag: the prompt (ids, order, token budget), the generators (extractive; the shipped local LLM;
an OpenAI-compatible server started here on 127.0.0.1, error paths included), the pipeline's stage
bookkeeping, the faithfulness check, the context metrics and the explorer's logic (no browser)."""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from kit.errors import KitError
from kit.evaluate import context_metrics
from kit.rag import (ExtractiveGenerator, OpenAICompatibleGenerator, RagExplorer, RagPipeline, build_prompt,
                     faithfulness, load_faithfulness_examples, prompt_passages, token_f1)

from fakes import BagOfLetters

words = lambda text: len(text.split())


def test_prompt_numbers_passages_in_order_with_ids_and_respects_the_budget():
    passages = [("ride-00", "Taxis are reimbursed."), ("gen-01", "Business expenses are defined."),
                ("meal-04", "Per diem " + "word " * 50)]
    messages, used = build_prompt("Can I take a taxi?", passages, budget_tokens=30, count_tokens=words, system="Answer.")
    assert used == ["ride-00", "gen-01"]                        # the long third passage does not fit
    assert prompt_passages(messages) == {1: "Taxis are reimbursed.", 2: "Business expenses are defined."}
    assert "(ride-00)" in messages[1]["content"] and messages[1]["content"].index("[1]") < messages[1]["content"].index("[2]")
    assert sum(words(m["content"]) for m in messages) <= 30


def test_prompt_cuts_a_first_passage_that_alone_is_too_long():
    messages, used = build_prompt("q", [("a", "w " * 500)], budget_tokens=60, count_tokens=words, system="Answer.")
    assert used == ["a"] and sum(words(m["content"]) for m in messages) <= 60
    with pytest.raises(KitError, match="leaves no room for a passage"):
        build_prompt("q", [("a", "w")], budget_tokens=3, count_tokens=words, system="Answer.")


def test_extractive_answer_is_copied_and_cited():
    messages, _ = build_prompt("Is a taxi to the airport covered?",
                               [("a", "Hotel rooms are capped. Minibars are personal."),
                                ("b", "A taxi to the airport is covered. Keep the receipt.")], budget_tokens=500,
                               count_tokens=words)
    answer = ExtractiveGenerator(max_sentences=1).generate(messages)
    assert answer.splitlines()[0].startswith("Extractive answer")
    assert answer.splitlines()[1] == "A taxi to the airport is covered. [2]"
    assert faithfulness(answer, ["Hotel rooms are capped. Minibars are personal.",
                                 "A taxi to the airport is covered. Keep the receipt."])[0] == 1.0


def test_a_two_sentence_extractive_answer_is_fully_supported_by_its_own_context():
    # each citation follows its sentence's full stop: it must not be read as the start of the next sentence
    passages = ["What counts. Expenses are defined broadly.", "Transportation is a valid expense. Fines are not."]
    messages, _ = build_prompt("Is transportation a valid expense, what counts?",
                               [("a", passages[0]), ("b", passages[1])], budget_tokens=500, count_tokens=words)
    answer = ExtractiveGenerator(max_sentences=2).generate(messages)
    assert answer.count("[") == 2
    share, verdicts = faithfulness(answer, passages)
    assert share == 1.0, verdicts
    assert [s.endswith(("[1].", "[2].")) for s, _ in verdicts] == [True, True]


def test_faithfulness_catches_negation_and_numbers():
    passage = ["Fines are not reimbursed. Mileage is paid at 67 cents a mile."]
    assert faithfulness("Fines are reimbursed [1].", passage)[0] == 0.0
    assert faithfulness("Mileage is paid at 67 cents a mile [1].", passage)[0] == 1.0
    assert faithfulness("Mileage is paid at 62 cents a mile [1].", passage)[0] == 0.0
    assert faithfulness("Fines are not reimbursed [1].", passage)[0] == 1.0


def test_faithfulness_agrees_with_the_hand_checked_examples():
    rows = load_faithfulness_examples()
    agree = [faithfulness(r["sentence"], [r["passage"]])[1][0][1] == r["supported"] for r in rows]
    assert len(rows) >= 12 and sum(agree) / len(agree) >= 0.7, f"{sum(agree)} of {len(agree)}"


def test_token_f1():
    assert token_f1("Taxis are reimbursed [1].", "Taxis are reimbursed.") == 1.0
    assert token_f1("Minibars.", "Taxis are reimbursed.") == 0.0


def test_context_metrics_exact():
    frame = context_metrics({"q1": {"a": 0.9, "x": 0.8}, "q2": {"y": 0.9}}, {"q1": {"a": 2}, "q2": {"b": 2}}, ns=(1, 2))
    assert frame.loc["q1"].to_dict() == {"recall@1": 1.0, "precision@1": 1.0, "recall@2": 1.0, "precision@2": 0.5, "RR": 1.0}
    assert frame.loc["q2", "recall@2"] == 0.0 and frame.loc["q2", "RR"] == 0.0


# --------------------------------------------------------------------------- the pipeline, with stand-ins


class CountsX:
    """A 're-ranker' that prefers passages with many x's."""

    def predict(self, pairs, **kwargs):
        return np.array([p.count("x") for _, p in pairs], float)


CORPUS = {"a": {"title": "A", "text": "aaaa taxi."}, "b": {"title": "B", "text": "bbbb xxxx."},
          "c": {"title": "C", "text": "aaab taxi x."}}


def test_pipeline_records_every_stage():
    rag = RagPipeline(BagOfLetters(), CORPUS, reranker=CountsX(), k=3, n_context=2, budget_tokens=200,
                      generator=ExtractiveGenerator(max_sentences=1))
    r = rag.answer("aaaa taxi?")
    assert [d for d, _ in r.retrieved][0] == "a"                 # retrieval by letters
    assert [d for d, _ in r.reranked][0] == "b"                  # re-ranked by x's
    assert r.context == ["b", "c"] and set(r.ms) == {"retrieve", "rerank", "prompt", "generate"}
    assert all(v >= 0 for v in r.ms.values()) and "[1] (b)" in r.prompt
    run, ms = rag.contexts({"q": "aaaa taxi?"})
    assert list(run["q"])[0] == "b" and set(ms) == {"retrieve", "rerank"}


def test_explorer_logic_without_a_browser():
    rags = {"letters": RagPipeline(BagOfLetters(), CORPUS, k=3), "x": RagPipeline(BagOfLetters(), CORPUS, reranker=CountsX(), k=3)}
    explorer = RagExplorer(rags, corpus=CORPUS)
    html = explorer.on_submit("aaaa taxi?")
    assert html.count("<h4>") == 2 and "kit-reranked" in html and "Extractive answer" in html
    assert "kit-error" in explorer.on_submit("   ") and "type a question" in explorer.on_submit("")
    assert set(explorer.last) == {"letters", "x"}


# --------------------------------------------------------------------------- an OpenAI-compatible server on 127.0.0.1

class ChatHandler(BaseHTTPRequestHandler):
    mode = "ok"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.mode == "slow":
            time.sleep(2)
        if self.mode == "error":
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b'{"error": "model is loading"}')
            return
        if self.mode == "garbage":
            payload = b"<html>not json</html>"
        else:
            question = body["messages"][-1]["content"]
            payload = json.dumps({"choices": [{"message": {"role": "assistant",
                                                            "content": f"echo: {question[:20]} [{body['model']}]"}}],
                                  "auth": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):   # the client of the timeout test hangs up first: expected
        pass


@pytest.fixture
def server():
    httpd = QuietServer(("127.0.0.1", 0), ChatHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    ChatHandler.mode = "ok"


def url(httpd):
    return f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def test_openai_compatible_answers(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    llm = OpenAICompatibleGenerator(url(server), model="tiny")
    assert llm.generate([{"role": "user", "content": "What is covered?"}]) == "echo: What is covered? [tiny]"


def test_openai_compatible_error_paths(server):
    llm = OpenAICompatibleGenerator(url(server), model="m", timeout=0.5)
    ChatHandler.mode = "error"
    with pytest.raises(KitError, match="HTTP 503.*model is loading"):
        llm.generate([{"role": "user", "content": "q"}])
    ChatHandler.mode = "garbage"
    with pytest.raises(KitError, match="not a chat completion"):
        llm.generate([{"role": "user", "content": "q"}])
    ChatHandler.mode = "slow"
    with pytest.raises(KitError, match="timeout"):
        llm.generate([{"role": "user", "content": "q"}])


def test_openai_compatible_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]          # closed when the block ends: nothing listens there
    llm = OpenAICompatibleGenerator(f"http://127.0.0.1:{port}/v1", timeout=2)
    with pytest.raises(KitError, match="cannot reach the server"):
        llm.generate([{"role": "user", "content": "q"}])


def test_openai_compatible_needs_a_base_url(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(KitError, match="give base_url"):
        OpenAICompatibleGenerator()


@pytest.mark.slow
def test_local_llm_on_the_shipped_gguf_is_deterministic():
    from kit.rag import LocalLLMGenerator

    llm = LocalLLMGenerator(max_new_tokens=8)
    messages = [{"role": "user", "content": "Name one thing a business trip can include."}]
    first, second = llm.generate(messages), llm.generate(messages)
    assert first and first == second
    assert llm.count_tokens("Taxis are reimbursed.") > 2
