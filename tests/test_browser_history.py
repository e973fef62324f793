"""Saved conversations in a real browser across a real restart: `streamlit run app.py`, a question, the server
stopped and started again on the same index directory; the conversation is in the sidebar and reopens with its
citation cards and "Show in article"."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Browser

import rag
from tests.browser import MESSAGE, ask, open_app, screenshot, serve_app

pytestmark = pytest.mark.browser

QUESTION = "Why didn't Turkey align with the West?"


def test_the_conversation_list_survives_a_restart(browser: Browser, tmp_path: Path) -> None:
    env = {"RAG_PROVIDER": "extractive"}
    with serve_app(tmp_path, env) as server:
        page, _ = open_app(browser, server)
        ask(page, QUESTION)
        conv_id = parse_qs(urlparse(page.url).query)["c"][0]
        page.locator(f".st-key-conv-{conv_id} button:visible").wait_for(timeout=30_000)  # listed once answered
        expected = rag.query(QUESTION, settings=server.settings())
        page.close()

    with serve_app(tmp_path, env) as server:  # the same index dir, so the same history file
        page, _ = open_app(browser, server)
        assert page.locator(MESSAGE).count() == 0  # a new page: a new conversation
        entry = page.locator(f".st-key-conv-{conv_id} button:visible")
        entry.wait_for(timeout=30_000)
        assert entry.inner_text().strip() == QUESTION
        entry.click()
        bubble = page.locator(MESSAGE).nth(1)
        bubble.locator(".st-key-card-1-1 .rag-quote").wait_for(timeout=60_000)
        assert parse_qs(urlparse(page.url).query)["c"] == [conv_id]  # the link names the reopened conversation
        assert bubble.locator(".rag-quote").count() == len(expected.citations)
        for cite in expected.citations:
            quote = bubble.locator(f".st-key-card-1-{cite.number} .rag-quote").inner_text()
            assert " ".join(quote.split()) == " ".join(cite.text.split())
        screenshot(page, "history-reopened.png")
        bubble.get_by_role("button", name="Show in article").first.click()
        focus = page.locator("mark.rag-focus").first
        focus.wait_for(timeout=30_000)
        shown = " ".join(page.locator("mark.rag-focus").all_inner_texts())  # one mark per paragraph
        assert " ".join(shown.split()) == " ".join(expected.citations[0].text.split())
        page.close()
