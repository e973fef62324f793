"""Suggested questions with the real local model on the default article (slow: marked llm): every suggestion
is answered, not refused, when asked again through `rag.query`, with citations matching the article."""

from __future__ import annotations

import dataclasses
import time

import pytest

import rag
from rag.config import Settings
from rag.index import library


@pytest.mark.llm
def test_suggestions_for_the_default_article_are_all_answered(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.from_env(index_dir=tmp_path_factory.mktemp("suggest-local"), provider="local")
    rag.build_index(settings=settings)  # its own index: the suggestions are stored in it (RAG_MODEL_DIR is honoured)
    doc = rag.list_documents(settings)[0]
    started = time.perf_counter()
    questions = rag.suggested_questions(doc.id, settings=settings)
    seconds = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n{len(questions)} suggestions in {seconds:.0f} s: {questions}")
    assert 3 <= len(questions) <= 4
    assert library.stored_suggestions(settings, rag.open_index(settings).stats.collection, doc.id) == questions
    text = settings.corpus_path.read_text(encoding="utf-8")
    for question in questions:
        answer = rag.query(question, settings=settings)
        assert not answer.refused and answer.citations, (question, answer.text)
        for c in answer.citations:
            assert c.document == doc.id and text[c.start : c.end] == c.text
    # Stored: asking again reads them, no model call (a broken model would raise here).
    broken = dataclasses.replace(settings, openai_base_url="http://127.0.0.1:9/v1", provider="openai")
    assert rag.suggested_questions(doc.id, settings=broken) == questions
