"""Helpers for the end-to-end browser tests: `streamlit run app.py` on a free 127.0.0.1 port, and the page
steps shared by the test_browser*.py modules (open the app, ask a question, take a screenshot). The `chromium`,
`browser` and `extractive_server` fixtures are in tests/conftest.py. Screenshots go to artifacts/ (gitignored)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from rag import Settings
from rag.evaluation.procs import free_port, stop_process
from tests.helpers import clean_env

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INPUT = "[data-testid=stChatInputTextArea]"
MESSAGE = "[data-testid=stChatMessage]"


@dataclass
class Server:
    """A running `streamlit run app.py`: its URL, the environment it was given, and when it started and was ready."""

    url: str
    env: dict[str, str]
    started: float
    ready: float
    log: Path

    def settings(self) -> Settings:
        return Settings.from_env(self.env)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def serve_app(tmp: Path, extra: dict[str, str], *, address: str | None = "127.0.0.1") -> Iterator[Server]:
    """`streamlit run app.py` on a free port with the index in `tmp`/index and `extra` in a clean environment
    (log in `tmp`/streamlit.log); `address=None` gives no --server.address flag. Stopped on exit."""
    port = free_port()
    env = clean_env(**{"RAG_INDEX_DIR": str(tmp / "index"), **extra})
    log = tmp / "streamlit.log"
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip
    if address:
        cmd += ["--server.address", address]
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() - started > 120:
                pytest.fail(f"streamlit did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield Server(url, env, started, time.monotonic(), log)
    finally:
        stop_process(proc, timeout=15)


def open_app(browser: Browser, server: Server) -> tuple[Page, float]:
    """A new page on the app; returns it and the seconds from `streamlit run` to a usable chat input."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server.url)
    page.wait_for_selector(INPUT, timeout=180_000)
    # Usable = the empty chat's invitation is shown, which happens once the index is open (the local model may
    # still be loading: answers quote the article meanwhile; suggested questions may come later, made in the
    # background the first time).
    page.get_by_test_id("stMainBlockContainer").get_by_text("Ask anything about your documents").wait_for(
        timeout=300_000
    )
    return page, time.monotonic() - server.started


def wait_for_model(page: Page, server: Server, timeout_ms: int = 300_000) -> float:
    """Wait until the sidebar no longer says the language model is loading (the page reruns once it is loaded);
    returns the seconds from `streamlit run`."""
    from ui.model import LOADING_STATUS

    page.get_by_test_id("stSidebar").get_by_text(LOADING_STATUS).wait_for(state="detached", timeout=timeout_ms)
    return time.monotonic() - server.started


def ask(page: Page, question: str, timeout_ms: int = 180_000) -> float | None:
    """Type a question, wait for the finished answer; returns seconds until the first streamed text appeared."""
    n = page.locator(MESSAGE).count()
    page.evaluate(_WATCH_FIRST_TEXT, n + 1)
    page.fill(INPUT, question)
    page.keyboard.press("Enter")
    answer = page.locator(MESSAGE).nth(n + 1)
    # Finished: the answer footer (a caption), a refusal (alert) or an error (alert) is in the bubble.
    answer.locator("[data-testid=stCaptionContainer], [data-testid=stAlert]").first.wait_for(timeout=timeout_ms)
    first = page.evaluate("window.__firstText")
    print("first text seen:", page.evaluate("window.__firstSeen"))
    return None if first is None else float(first) / 1000


# Records when the assistant bubble first shows text (streaming), in ms after the question was sent.
_WATCH_FIRST_TEXT = """(index) => {
  window.__firstText = null; const t0 = performance.now();
  const check = () => {
    const m = document.querySelectorAll('[data-testid=stChatMessage]')[index];
    if (!m || window.__firstText !== null) return;
    // Answer text, not the spinner shown while waiting for it.
    const texts = Array.from(m.querySelectorAll('[data-testid=stMarkdownContainer]')).filter(e => !e.closest('[data-testid=stSpinner]'));
    const shown = texts.filter(e => e.innerText.trim().length > 0);
    if (shown.length) { window.__firstText = performance.now() - t0; window.__firstSeen = shown[0].innerText.slice(0, 80); }
  };
  if (window.__watch) window.__watch.disconnect();
  window.__watch = new MutationObserver(check);
  window.__watch.observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def screenshot(page: Page, name: str, center: str = "") -> Path:
    """A full-page screenshot at artifacts/`name` (a taller viewport; `center`: scroll that selector into view)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.set_viewport_size({"width": 1280, "height": 1500})
    time.sleep(0.5)
    if center:
        page.locator(center).first.evaluate("e => e.scrollIntoView({block: 'center'})")
        time.sleep(0.3)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 1000})
    return path
