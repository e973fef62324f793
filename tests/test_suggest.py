"""Suggested questions: written by a scripted model (MockModel), checked through the real pipeline on a real
index of the article, stored with the build and read back without the model; a new build starts without them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import rag
from rag.answer.prompts import load_prompt
from rag.config import Settings
from rag.index import library
from rag.suggest import SPREAD, answered_in, clean_question, try_order
from rag.types import Answer, Citation, Passage
from tests.fakes import MockModel

SOCHI = "What did Erdogan and Putin agree on in Sochi?"
PIPELINE = "What did the two countries launch in 2016?"
COMPETE = "Where do Turkey and Russia compete?"


@pytest.fixture
def settings(article_copy: Path) -> Settings:
    """A fresh index of the article per test (suggestions are stored in it)."""
    return Settings(index_dir=article_copy, provider="local")


def _doc(settings: Settings) -> rag.Document:
    return rag.list_documents(settings)[0]


def _scripted() -> MockModel:
    """Six candidates: three answered, one refused (a name the article never mentions), one not a question,
    one repeating a kept question. Answers are queued only for questions that reach generation."""
    model = MockModel()
    model.enqueue(f"Question: {SOCHI}").enqueue("Erdogan and Putin agreed in Sochi to strengthen the partnership [1].")
    model.enqueue("What did Joe Biden say about the Sochi summit?")  # refused before generation
    model.enqueue("Here is a question about the passage.")  # not a question: dropped unasked
    model.enqueue(PIPELINE).enqueue(
        "In 2016, the two countries launched the Turkish gas pipeline construction project [1]."
    )
    model.enqueue(COMPETE).enqueue("Russia is a major strategic competitor to Turkey in the Black Sea [1].")
    model.enqueue("What did Putin and Erdogan agree on in Sochi?")  # the same question again
    return model


def test_candidates_are_checked_stored_and_read_back_without_the_model(settings: Settings) -> None:
    doc = _doc(settings)
    model = _scripted()
    made = rag.suggested_questions(doc.id, settings=settings, model=model)
    assert made == [SOCHI, PIPELINE, COMPETE]
    assert len(model.history) == SPREAD + 3  # six questions written, three answers: the queue is used up
    system, user = model.history[0]
    assert system["content"] == load_prompt("suggest_system")
    assert user["content"].startswith(f"Document: {doc.title}\n\nPassage:\n") and user["content"].endswith("Question:")
    text = rag.open_index(settings).document_text(doc.id)
    for question in made:  # the kept ones really are answered from this document
        assert answered_in(
            rag.query(question, settings=dataclasses.replace(settings, provider="extractive")), doc.id, text
        )
    # Stored with the build: read back by any later call, and the model is never asked again.
    idle = MockModel()  # raises if called: nothing is queued
    assert rag.suggested_questions(doc.id, settings=settings, model=idle) == made
    assert rag.suggested_questions(settings=settings, make=False) == made
    assert idle.history == []
    build = rag.open_index(settings).stats.collection
    assert library.stored_suggestions(settings, build, doc.id) == made


def test_a_new_build_starts_without_suggestions(settings: Settings) -> None:
    doc = _doc(settings)
    assert rag.suggested_questions(doc.id, settings=settings, make=False) == []  # none made yet, none made now
    rag.suggested_questions(doc.id, settings=settings, model=_scripted())
    old = rag.open_index(settings).stats.collection
    note = rag.add_text(
        "Ankara and Moscow signed a grain corridor deal in Istanbul in July.", title="Grain", settings=settings
    )
    assert rag.open_index(settings).stats.collection != old
    assert rag.suggested_questions(settings=settings, make=False) == []
    assert library.stored_suggestions(settings, rag.open_index(settings).stats.collection, doc.id) is None
    assert not library.store_suggestions(settings, old, doc.id, ["Stale?"], "mock")  # the old build is gone
    assert note.id != doc.id


def test_nothing_passes_nothing_is_offered_but_it_is_stored(settings: Settings) -> None:
    doc = _doc(settings)
    model = MockModel()
    for _ in range(8):
        model.enqueue("What did Joe Biden say about the FIFA World Cup in Brazil?")
    assert rag.suggested_questions(doc.id, settings=settings, model=model) == []
    assert len(model.history) == 8  # every candidate tried, none answered
    assert rag.suggested_questions(doc.id, settings=settings, model=MockModel()) == []  # stored as made: not retried


def test_a_failing_model_stores_nothing(settings: Settings) -> None:
    doc = _doc(settings)
    with pytest.raises(rag.ModelError):
        rag.suggested_questions(doc.id, settings=settings, model=MockModel().enqueue(rag.ModelError("server down")))
    assert library.stored_suggestions(settings, rag.open_index(settings).stats.collection, doc.id) is None


def test_extractive_provider_has_no_suggestions(settings: Settings) -> None:
    extractive = dataclasses.replace(settings, provider="extractive")
    assert rag.suggested_questions(settings=extractive) == []
    with pytest.raises(rag.InputError):
        rag.suggested_questions("no-such-doc", settings=settings)


def test_cli_suggest_prints_the_stored_questions(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    doc = _doc(settings)
    rag.suggested_questions(doc.id, settings=settings, model=_scripted())
    monkeypatch.setenv("RAG_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("RAG_PROVIDER", "local")
    assert main(["suggest", "--doc", doc.id]) == 0  # read from the store: no model is loaded
    out = capsys.readouterr().out
    assert doc.id in out and SOCHI in out and COMPETE in out
    assert main(["suggest", "--provider", "extractive"]) == 0
    assert main(["suggest", "--doc", "nope"]) == 1


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Question: What did Turkey buy from Russia?", "What did Turkey buy from Russia?"),
        ('1. "why did erdogan meet putin in sochi?"\nBecause...', "Why did erdogan meet putin in sochi?"),
        ("What does the passage say about Turkey?", None),
        ("Turkey bought S-400s.", None),
        ("Why? Who?", None),
        ("Why?", None),
        ("What " + "very " * 25 + "long?", None),
    ],
)
def test_clean_question(reply: str, expected: str | None) -> None:
    assert clean_question(reply) == expected


def test_try_order_spreads_over_the_document_and_skips_short_passages() -> None:
    passages = [Passage("a", ("x" * 40 if i % 4 == 3 else "word " * 60), i * 400, i * 400 + 300) for i in range(24)]
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(24, 8)).astype(np.float32)
    order = try_order(passages, vectors)
    assert all(len(p.text) >= 150 for p in order) and len(order) == 18
    first = [passages.index(p) for p in order[:SPREAD]]
    assert first == sorted(first) and first[0] < 4 and first[-1] >= 20  # one per part, in document order


def test_answered_in_requires_citations_inside_the_document() -> None:
    text = "Turkey bought S-400s. Russia sold them."
    good = Citation(1, "a", "Turkey bought S-400s.", 0, 21, document="d1")
    assert answered_in(Answer("Turkey bought S-400s [1].", [good]), "d1", text)
    assert not answered_in(Answer("x [1].", [dataclasses.replace(good, document="d2")]), "d1", text)
    assert not answered_in(Answer("x [1].", [dataclasses.replace(good, start=1)]), "d1", text)
    assert not answered_in(Answer("refused", [], refused=True), "d1", text)
    assert not answered_in(Answer("no citations"), "d1", text)
