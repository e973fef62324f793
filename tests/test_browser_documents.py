"""The Documents tab in a real browser: `streamlit run app.py` on 127.0.0.1, Debian's Chromium through Playwright,
a real file input, a web page from a real http.server on 127.0.0.1. Screenshots go to artifacts/ (gitignored)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

import rag
from rag.index.chunking import chunk_text
from rag.index.documents import read_file
from tests import doc_samples as samples
from tests.browser import MESSAGE, Server, ask, open_app, screenshot

pytestmark = pytest.mark.browser

GLACIER = "What does the report state about the glacier tongue?"
PDF_TITLE = "Glacier survey report"
NEWS_TITLE = "Harbour city opens tidal energy plant"


def _documents_tab(page: Page) -> None:
    page.get_by_role("tab", name="Documents").click()
    page.locator("[data-testid=stFileUploaderDropzoneInput]").wait_for(state="attached", timeout=30_000)


def _added(page: Page, title: str) -> None:
    page.locator("[data-testid=stAlert]", has_text=f"Added “{title}”").wait_for(timeout=180_000)


def test_upload_pdf_add_url_ask_and_switch_the_selection(
    browser: Browser,
    extractive_server: Server,
    docs_site: str,
) -> None:
    page, _ = open_app(browser, extractive_server)
    _documents_tab(page)
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(samples.TWO_PAGE_PDF))
    _added(page, PDF_TITLE)
    page.get_by_label("Web address").fill(f"{docs_site}/news.html")
    page.get_by_role("button", name="Add web page").click()
    _added(page, NEWS_TITLE)
    for title in (PDF_TITLE, NEWS_TITLE):
        expect(page.locator("[data-testid=stMarkdownContainer] strong", has_text=title)).to_be_visible()
    pdf = read_file(samples.TWO_PAGE_PDF, max_bytes=10**7)  # the figures the list shows, from the same reader
    passages = len(chunk_text(pdf.text, breaks=pdf.pages))
    expect(
        page.get_by_text(f"PDF · two-pages.pdf · {len(pdf.text)} characters · {passages} passages · 2 pages")
    ).to_be_visible()
    screenshot(page, "documents-tab.png")

    page.get_by_role("tab", name="Chat").click()
    ask(page, GLACIER)
    bubble = page.locator(MESSAGE).nth(1)
    card = bubble.locator(".st-key-card-1-1")
    expect(card).to_contain_text(f"{PDF_TITLE} · page 2 · characters")
    assert "forty metres" in card.locator(".rag-quote").inner_text()
    screenshot(page, "documents-chat-pdf-page-2.png", center=".st-key-card-1-1")

    bubble.get_by_role("button", name="Show in article").first.click()
    focus = page.locator("mark.rag-focus").first
    focus.wait_for(timeout=30_000)
    page.wait_for_function("document.querySelector('mark.rag-focus').getBoundingClientRect().top < innerHeight")
    # A passage spanning two paragraphs (the "Findings" heading and its text) is marked once per paragraph.
    assert "forty metres" in " ".join(page.locator("mark.rag-focus").all_inner_texts())
    expect(page.locator("#page-2")).to_have_text("page 2")
    screenshot(page, "documents-article-pdf.png", center="mark.rag-focus")

    # Ask about: take the PDF out of the selection; the same question no longer quotes it.
    page.get_by_role("tab", name="Chat").click()
    sidebar = page.locator("[data-testid=stSidebar]")
    expect(sidebar.locator(f'[data-tag][aria-label="{PDF_TITLE}"]')).to_have_count(1)
    sidebar.get_by_label(f"Remove {PDF_TITLE}").click()
    expect(sidebar.locator(f'[data-tag][aria-label="{PDF_TITLE}"]')).to_have_count(0)
    ask(page, GLACIER)
    second = page.locator(MESSAGE).nth(3)
    assert "Glacier survey report · page" not in second.inner_text()
    answer = rag.query(GLACIER, settings=extractive_server.settings(),
                       documents=[d.id for d in rag.list_documents(extractive_server.settings()) if d.title != PDF_TITLE])  # fmt: skip
    assert all(c.title != PDF_TITLE for c in answer.citations)
    if answer.refused:
        expect(second.locator("[data-testid=stAlert]")).to_contain_text("doesn't cover")
    screenshot(page, "documents-ask-about.png")
    page.close()
