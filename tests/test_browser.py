"""The notebooks' widgets in a real browser: JupyterLab on 127.0.0.1 with a token, notebooks 03 and 06
run in headless Chromium under KIT_FAST=1, then a person's clicks and keystrokes: a verdict in 03's
annotation UI (and that it reached the JSONL store), a question in 06's explorer (and the answers
shown). Screenshots go to build/screenshots/. Skipped, with the reason, where Chromium or Playwright
is missing (`.ci/run` installs both)."""
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = ROOT / "build" / "screenshots"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium not found (apt-get install chromium): the browser tests did not run"),
    pytest.mark.skipif(sync_playwright is None, reason="Playwright not installed (pip install playwright): the browser tests did not run"),
]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    for name in ("03_augmentation.ipynb", "06_rag.ipynb", "GLOSSARY.md"):
        shutil.copy(ROOT / "notebooks" / name, root / name)
    port, token = free_port(), secrets.token_hex(16)
    settings = root / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env = {**os.environ, "KIT_FAST": "1", "KIT_CACHE_DIR": str(root / "cache"), "HF_HUB_OFFLINE": "1",
           "KIT_RESULTS_DIR": str(root / "results"), "JUPYTER_CONFIG_DIR": str(root / "config"),
           "JUPYTER_RUNTIME_DIR": str(root / "runtime"), "TOKENIZERS_PARALLELISM": "false"}
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                             f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
                             f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
                             f"--LabApp.user_settings_dir={root / 'settings'}",
                             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                             *(["--allow-root"] if os.geteuid() == 0 else [])],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(1)
    else:
        proc.terminate()
        pytest.fail(f"JupyterLab did not start: {(root / 'lab.log').read_text()[-2000:]}")
    yield {"base": base, "token": token, "root": root}
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def run_all(page, lab, notebook: str, done_text: str, timeout_s: int = 900) -> None:
    page.goto(f"{lab['base']}/lab/tree/{notebook}?token={lab['token']}")
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    page.wait_for_timeout(3000)                                   # the kernel starts
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    page.get_by_text(done_text, exact=True).first.wait_for(timeout=timeout_s * 1000)


def test_annotation_ui_records_a_click_and_a_keystroke_in_the_store(lab, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    run_all(page, lab, "03_augmentation.ipynb", done_text="Gold set")   # the summary, the last output
    stores = sorted((lab["root"] / "cache").rglob("03-review-*.jsonl"))
    assert stores, "the notebook created its judgment store"
    before = stores[0].read_text().splitlines()
    button = page.get_by_role("button", name="hard negative (h)")
    button.scroll_into_view_if_needed()
    page.get_by_placeholder("why (optional)").fill("a different rule, typed in the browser")
    button.click()
    page.get_by_text("= hard_negative").first.wait_for(timeout=30_000)
    lines = stores[0].read_text().splitlines()
    assert len(lines) == len(before) + 1
    last = json.loads(lines[-1])
    assert last["judgment"] == "hard_negative" and last["reason"] == "a different rule, typed in the browser"
    shortcut = page.get_by_placeholder("h / r / u, then Enter")
    shortcut.fill("r")
    shortcut.press("Enter")
    page.get_by_text("= actually_relevant").first.wait_for(timeout=30_000)
    assert json.loads(stores[0].read_text().splitlines()[-1])["judgment"] == "actually_relevant"
    page.screenshot(path=str(SHOTS / "03_annotation_ui.png"), full_page=False)
    page.close()


def test_rag_explorer_answers_a_typed_question(lab, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    run_all(page, lab, "06_rag.ipynb", done_text="Context recall@3")
    box = page.get_by_placeholder("Ask the policy a question")
    box.scroll_into_view_if_needed()
    box.fill("Can I take a taxi to the airport?")
    page.get_by_role("button", name="Ask").click()
    # the prompt (inside a collapsed <details>) holds the question once the answers are rendered
    page.wait_for_function("() => [...document.querySelectorAll('.kit-explorer')].some("
                           "e => e.textContent.includes('Can I take a taxi to the airport?'))", timeout=180_000)
    explorer = page.locator(".kit-explorer").last
    text = explorer.text_content()
    assert "zero-shot" in text and "fine-tuned + re-ranker" in text and "Extractive answer" in text
    assert text.count("retrieved") >= 2 and "re-ranked" in text
    page.screenshot(path=str(SHOTS / "06_rag_explorer.png"), full_page=False)
    page.close()
