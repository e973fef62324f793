"""End to end in a real browser: `streamlit run app.py` on a free 127.0.0.1 port, driven by Debian's Chromium
through Playwright. Screenshots and measured times go to artifacts/ (gitignored)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

import rag
from tests.browser import ARTIFACTS, INPUT, MESSAGE, ROOT, Server, ask, open_app, screenshot, serve_app, wait_for_model
from ui.model import LOADING_NOTE

pytestmark = pytest.mark.browser

QUESTION = "Why didn't Turkey align with the West?"
QUICK_QUESTION = "Where do Turkey and Russia compete?"
EVIL = """The Black Sea grain deal was signed in Istanbul in July 2022 under Turkish auspices. <script>window.__pwned = 1</script>

# Not a heading **not bold** ![tracker](http://127.0.0.1:9/pixel.png) [click](javascript:window.__pwned=3) $x^2$ :red[red]

<img src=x onerror="window.__pwned = 2"> </div></div></div><div style="position:fixed;inset:0;background:red">covered</div>

<style>body { display: none !important; }</style> Ankara kept the Bosphorus straits open to grain ships all year.
"""


def _record(name: str, values: dict[str, object]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "browser-timings.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = values
    path.write_text(json.dumps(data, indent=2))
    print(name, values)


def _check_answer_and_article(page: Page, server: Server, question: str) -> rag.Answer:
    """The marker, the cards quoting the exact passages, and the focused highlight in the article view."""
    expected = rag.query(question, settings=server.settings())
    assert expected.citations, "the app should answer the mission's question with citations"
    bubble = page.locator(MESSAGE).nth(1)
    assert "[1]" in bubble.locator(".rag-answer").inner_text()
    assert "smart_toy" in bubble.inner_text()  # the assistant avatar's icon ligature: content is matched below
    for cite in expected.citations:
        card = bubble.locator(f".st-key-card-1-{cite.number}")
        quote = " ".join(card.locator(".rag-quote").inner_text().split())
        assert quote == " ".join(cite.text.split())
        assert "paragraph" in card.inner_text()
    bubble.get_by_role("button", name="Show in article").first.click()
    focus = page.locator("mark.rag-focus").first
    focus.wait_for(timeout=30_000)
    page.wait_for_function("document.querySelector('mark.rag-focus').getBoundingClientRect().top < innerHeight")
    # one mark per paragraph: a quote that runs over a paragraph break is highlighted in two pieces
    shown = " ".join(page.locator("mark.rag-focus").all_inner_texts())
    assert " ".join(shown.split()) == " ".join(expected.citations[0].text.split())
    assert page.locator("sup.rag-label").count() == len(expected.citations)
    return expected


def test_mission_question_streams_cites_and_highlights(browser: Browser, extractive_server: Server) -> None:
    page, usable = open_app(browser, extractive_server)
    first = ask(page, QUESTION)
    answer = _check_answer_and_article(page, extractive_server, QUESTION)
    shot = screenshot(page, "chat-article-extractive.png", center="mark.rag-focus")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as Markdown").click()
    markdown = Path(download.value.path()).read_text(encoding="utf-8")
    assert QUESTION in markdown and "[^1]" in markdown
    assert " ".join(answer.citations[0].text.split()) in markdown  # footnotes quote the passages
    page.get_by_role("tab", name="Chat").click()
    page.locator(".st-key-card-1-1").wait_for()
    chat_shot = screenshot(page, "chat-extractive.png")
    page.reload()  # a reload is a new session: the conversation comes back through the id in the URL
    page.locator(".st-key-card-1-1 .rag-quote").wait_for(timeout=60_000)
    assert page.locator(MESSAGE).count() == 2
    _record("extractive", {"usable_page_s": round(usable, 2), "first_text_s": first, "citations": len(answer.citations),
                           "screenshots": [str(shot), str(chat_shot)]})  # fmt: skip
    page.close()


@pytest.fixture(scope="module")
def evil_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("browser-evil")
    doc = tmp / "evil.txt"
    doc.write_text(EVIL, encoding="utf-8")
    with serve_app(tmp, {"RAG_PROVIDER": "extractive", "RAG_CORPUS_PATH": str(doc)}) as server:
        yield server


def test_document_markup_is_shown_as_text(browser: Browser, evil_server: Server) -> None:
    page, _ = open_app(browser, evil_server)
    ask(page, "Where was the Black Sea grain deal signed?")
    page.get_by_role("tab", name="Article").click()
    article = page.locator(".rag-article")
    article.wait_for(timeout=30_000)
    shown = article.inner_text()
    for literal in ("<script>window.__pwned = 1</script>", "# Not a heading **not bold**", "![tracker](http://127.0.0.1:9/pixel.png)",
                    '<img src=x onerror="window.__pwned = 2">', "</div></div></div>", "<style>body", "$x^2$ :red[red]"):  # fmt: skip
        assert literal in shown
    time.sleep(1)  # give any injected handler (onerror, script) its chance to run
    assert page.evaluate("window.__pwned === undefined")
    assert article.locator("script, img, a, style, div div, h1").count() == 0
    # No layout break: the input and the article are still on screen, no injected style or overlay exists.
    assert page.locator(INPUT).is_visible() and article.is_visible()
    assert not page.evaluate(
        "Array.from(document.querySelectorAll('style')).some(s => s.textContent.includes('display: none !important'))"
    )
    assert page.get_by_text("covered", exact=True).count() == 0
    screenshot(page, "article-markup-as-text.png")
    page.get_by_role("tab", name="Chat").click()
    for quote in page.locator(".rag-quote").all():
        assert quote.locator("script, img, a, style").count() == 0
    page.close()


@pytest.mark.llm
def test_local_model_answers_the_mission_question(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The default set-up (no key: the local model) end to end; records the first-token times."""
    with serve_app(tmp_path_factory.mktemp("browser-local"), {}) as server:
        page, usable = open_app(browser, server)
        loaded = wait_for_model(page, server)  # before it, answers quote (test_usable_before_the_local_model_loads)
        first = ask(page, QUESTION, timeout_ms=420_000)
        bubble = page.locator(MESSAGE).nth(1)
        # The footer can appear a moment before a rerun redraws the bubble: wait for the answer or an alert.
        bubble.locator(".rag-answer, [data-testid=stAlert]").first.wait_for(timeout=60_000)
        cards = bubble.locator(".rag-quote").count()
        shown = bubble.inner_text()
        assert bubble.locator(".rag-answer").count() == 1 and cards >= 1, shown  # answered, with cited passages
        assert "Traceback" not in bubble.inner_text()
        shot = screenshot(page, "chat-local-model.png")
        later = ask(page, "What did Erdogan and Putin agree on in Sochi?", timeout_ms=420_000)
        # Switching tabs while an answer is being written reruns the page; the answer must still arrive.
        page.fill(INPUT, "What trade volume target did the two presidents set?")
        page.keyboard.press("Enter")
        page.locator(MESSAGE).nth(5).wait_for(timeout=60_000)
        page.get_by_role("tab", name="Article").click()
        page.locator(".rag-article").wait_for(timeout=60_000)
        page.get_by_role("tab", name="Chat").click()
        third = page.locator(MESSAGE).nth(5)
        third.locator("[data-testid=stCaptionContainer], [data-testid=stAlert]").first.wait_for(timeout=420_000)
        assert "interrupted" not in third.inner_text().lower()
        _record(
            "local",
            {
                "usable_page_s": round(usable, 2),
                "model_loaded_s": round(loaded, 2),
                "first_text_first_question_s": first,
                "first_text_later_question_s": later,
                "cards": cards,
                "screenshot": str(shot),
            },
        )
        page.close()


@pytest.mark.llm
def test_usable_before_the_local_model_loads(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue 24: the chat is usable once the index is open; a question asked at once is answered by quoting and
    says why (unless the model was loaded by then: the footer names who answered either way); then the sidebar
    names the model. Records both times from `streamlit run`."""
    with serve_app(tmp_path_factory.mktemp("browser-quick"), {"RAG_MAX_ANSWER_TOKENS": "48"}) as server:
        page, usable = open_app(browser, server)
        ask(page, QUICK_QUESTION, timeout_ms=420_000)
        bubble = page.locator(MESSAGE).nth(1)
        bubble.locator(".rag-answer, [data-testid=stAlert]").first.wait_for(timeout=60_000)
        shown = bubble.inner_text()
        quoted = LOADING_NOTE in shown
        assert ("Extractive" in shown) == quoted and ("Local model" in shown) == (not quoted), shown
        assert bubble.locator(".rag-quote").count() >= 1, shown
        loaded = wait_for_model(page, server)
        page.get_by_test_id("stSidebar").get_by_text("Local model").wait_for(timeout=60_000)
        _record("quick-start", {"usable_page_s": round(usable, 2), "model_loaded_s": round(loaded, 2),
                                "answered_by_quoting_while_loading": quoted})  # fmt: skip
        page.close()


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as the kernel shows them) of sockets listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in list(f)[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, hexport = local.split(":")
                if state == "0A" and int(hexport, 16) == port:
                    found.add(addr)
    return found


@pytest.mark.server
def test_binds_to_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    """A plain `streamlit run app.py` (no address flag) listens on 127.0.0.1 only; so does `make run`."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux /proc/net/tcp")
    with serve_app(tmp_path, {"RAG_PROVIDER": "extractive"}, address=None) as server:
        port = int(server.url.rsplit(":", 1)[1])
        addresses = _listening(port)
    loopback = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
    assert addresses and addresses <= loopback, addresses
    dry_run = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "--server.address 127.0.0.1" in dry_run
