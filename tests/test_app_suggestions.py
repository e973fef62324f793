"""Suggested questions in the chat (AppTest, the real app script and index): the ones stored with the build are
buttons on the empty chat and clicking one asks it; a document without any gets them made in the background and
the buttons appear once they are stored. The model is a scripted OpenAI-compatible server, never a real one."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import rag
from rag import Settings
from rag.index import library
from tests.helpers import app_environment, start_app
from tests.openai_server import OpenAIServer, Reply
from ui import suggestions as ui_suggestions

SOCHI = "What did Erdogan and Putin agree on in Sochi?"
COMPETE = "Where do Turkey and Russia compete?"


@pytest.fixture
def env(article_copy: Path, monkeypatch: pytest.MonkeyPatch, openai_server: OpenAIServer) -> Settings:
    """The app's environment over this test's copy of the article's index, answering with the scripted server."""
    return app_environment(
        monkeypatch, article_copy, RAG_PROVIDER="openai", OPENAI_BASE_URL=openai_server.url, OPENAI_MODEL="test-model"
    )


@pytest.fixture
def makers(monkeypatch: pytest.MonkeyPatch) -> Iterator[ui_suggestions.Makers]:
    """A fresh process-wide maker registry per test (the app script reads ui.suggestions.MAKERS)."""
    fresh = ui_suggestions.Makers(make=lambda doc, settings, model: pytest.fail("no suggestions should be made"))
    monkeypatch.setattr(ui_suggestions, "MAKERS", fresh)
    yield fresh


def _store(settings: Settings, questions: list[str]) -> str:
    retriever = rag.open_index(settings)
    doc = retriever.documents()[0].id
    assert library.store_suggestions(settings, retriever.stats.collection, doc, questions, "test")
    return doc


def _starters(at: AppTest) -> list[str]:
    return [b.label for b in at.button if b.key and b.key.startswith("starter-")]


def test_stored_suggestions_are_buttons_and_clicking_one_asks_it(
    env: Settings, makers: ui_suggestions.Makers, openai_server: OpenAIServer
) -> None:
    _store(env, [SOCHI, COMPETE])
    at = start_app()
    assert _starters(at) == [SOCHI, COMPETE]
    assert not any("Finding questions" in c.value for c in at.caption)  # nothing is being made
    openai_server.enqueue(Reply(chunks=["Erdogan and Putin agreed in Sochi ", "to strengthen the partnership [1]."]))
    at.button(key="starter-0").click().run()
    assert not at.exception, at.exception
    messages = at.session_state["messages"]
    assert messages[0]["content"] == SOCHI
    answer = messages[1]["answer"]
    assert not answer.refused and answer.citations and "partnership" in answer.text
    asked = f"Question: {SOCHI}"  # the question is the user turn's (the answer prompt's form is asked after it)
    assert any(asked in r.body.get("messages", [{}])[-1].get("content", "") for r in openai_server.requests)
    assert _starters(at) == []  # the chat is no longer empty


def test_missing_suggestions_are_made_in_the_background_then_shown(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    calls: list[str] = []

    def make(doc: str, settings: Settings, model: object) -> list[str]:
        calls.append(doc)
        release.wait(60)
        _store(settings, [COMPETE])
        return [COMPETE]

    makers = ui_suggestions.Makers(make=make)
    monkeypatch.setattr(ui_suggestions, "MAKERS", makers)
    at = start_app()
    assert _starters(at) == [] and any("Finding questions" in c.value for c in at.caption)
    at.run()  # a rerun while it is being made starts no second maker
    release.set()
    deadline = time.monotonic() + 30
    while _busy(makers, env) or not calls:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    at.run()
    assert _starters(at) == [COMPETE] and calls == [rag.list_documents(env)[0].id]
    at.run()
    assert calls == [rag.list_documents(env)[0].id]  # made once: later runs only read the stored ones


def _busy(makers: ui_suggestions.Makers, settings: Settings) -> bool:
    """The article's maker is still running (its key as ui.suggestions.Key: store, build, document id)."""
    key = (str(settings.store), rag.open_index(settings).stats.collection, rag.list_documents(settings)[0].id)
    return makers.busy([key])


def test_extractive_provider_shows_no_suggestions(
    env: Settings, makers: ui_suggestions.Makers, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store(env, [SOCHI])
    monkeypatch.setenv("RAG_PROVIDER", "extractive")
    at = start_app()
    assert _starters(at) == [] and "Ask anything about your documents." in [m.value for m in at.markdown]


def test_the_app_reads_the_overview_prompt_ahead_only_for_the_local_model(
    env: Settings, makers: ui_suggestions.Makers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app starts one background read of the asked-about documents' overview prompt per build and scope,
    and only for the local model (a remote one would bill for it and keeps no cache of ours)."""
    calls: list[tuple[str, str]] = []
    primers = ui_suggestions.Makers(make=lambda scope, settings, model: calls.append((scope, settings.provider)))
    monkeypatch.setattr(ui_suggestions, "PRIMERS", primers)
    _store(env, ["What did Erdogan and Putin agree on in Sochi?"])
    start_app()
    assert calls == []  # the scripted OpenAI-compatible server: nothing read ahead
    retriever = rag.open_index(env)
    local = dataclasses.replace(env, provider="local")
    ui_suggestions.prime(local, retriever, object(), None)
    ui_suggestions.prime(local, retriever, object(), None)  # the same build and scope: once
    ui_suggestions.prime(local, retriever, None, None)  # no model (it failed to load): nothing
    deadline = time.monotonic() + 10
    while primers.busy([(str(local.store), retriever.stats.collection, "")]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert calls == [("", "local")]
