"""The app while the local model loads (AppTest, the real app script and index): the chat input is there from the
first run, answers quote the article and say why, and once the model is loaded the page uses it. The loading is
the app's own `ui.model.LOADER` replaced by one whose load waits for the test (a scripted model, no real one)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import rag
from rag import Settings
from rag.errors import ModelError
from rag.models.chat import ChatModel
from rag.models.loading import ModelLoader
from tests.fakes import MockModel
from tests.helpers import app_ask, app_environment, start_app
from ui import model as ui_model
from ui import render
from ui import suggestions as ui_suggestions

QUESTION = "Why didn't Turkey align with the West?"
SOCHI = "What did Erdogan and Putin agree on in Sochi?"
NOTE = render.escape_markdown(ui_model.LOADING_NOTE)  # as the page shows it


class GatedLoad:
    """A model load that ends when the test says so: with `model`, or raising `error`."""

    def __init__(self, model: MockModel) -> None:
        self.model = model
        self.error: Exception | None = None
        self.gate = threading.Event()
        self.calls = 0

    def __call__(self, settings: Settings) -> ChatModel:
        self.calls += 1
        assert self.gate.wait(60), "the test never let the model load"
        if self.error is not None:
            raise self.error
        return self.model


@pytest.fixture
def env(article_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The default provider (the local model) over this test's copy of the article's index."""
    return app_environment(monkeypatch, article_copy, RAG_PROVIDER="local")


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedLoad]:
    gated = GatedLoad(MockModel(provider="local", model="mock-model"))
    monkeypatch.setattr(ui_model, "LOADER", ModelLoader(load=gated))
    # Nothing in the background may use the scripted model: its replies are queued for the answers here.
    idle = ui_suggestions.Makers(make=lambda key, settings, model: None)
    monkeypatch.setattr(ui_suggestions, "MAKERS", idle)
    monkeypatch.setattr(ui_suggestions, "PRIMERS", idle)
    yield gated
    gated.gate.set()  # no load thread is left waiting


def _captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def _loaded(at: AppTest, env: Settings, load: GatedLoad) -> None:
    """Let the model load, wait for the app's loader to see it, and run the page again (as its poll does)."""
    load.gate.set()
    assert not ui_model.LOADER.wait(env, timeout=30).loading
    at.run()
    assert not at.exception, at.exception


def test_while_the_model_loads_answers_quote_the_article_and_say_so(env: Settings, load: GatedLoad) -> None:
    at = start_app()
    assert len(at.chat_input) == 1 and load.calls == 1  # the input is there; the load was started, not awaited
    assert ui_model.LOADING_STATUS in _captions(at)
    app_ask(at, QUESTION)
    answer = at.session_state["messages"][1]["answer"]
    assert answer.provider == "extractive" and answer.citations and not answer.refused
    assert NOTE in _captions(at)
    assert load.model.history == [] and load.calls == 1  # the model was neither used nor loaded again
    assert [c.value for c in at.sidebar.caption if c.value == ui_model.LOADING_STATUS]


def test_once_the_model_is_loaded_answers_use_it(env: Settings, load: GatedLoad) -> None:
    at = app_ask(start_app(), QUESTION)
    _loaded(at, env, load)
    assert ui_model.LOADING_STATUS not in _captions(at)
    assert render.escape_markdown("mock-model") in [c.value for c in at.sidebar.caption]  # answering with it
    assert _captions(at).count(NOTE) == 1  # the earlier quoted answer keeps its note
    top = rag.retrieve(SOCHI, 1, settings=env)[0].text
    sentence = re.split(r"(?<=[.!?])\s", top.strip())[0].rstrip(".")
    load.model.enqueue(f"{sentence} [1].")
    app_ask(at, SOCHI)
    answer = at.session_state["messages"][3]["answer"]
    assert answer.provider == "local" and answer.model == "mock-model", answer
    assert len(load.model.history) == 1 and load.calls == 1
    assert _captions(at).count(NOTE) == 1  # only the answer given while loading has it


def test_a_page_opened_after_the_load_answers_with_the_model_at_once(env: Settings, load: GatedLoad) -> None:
    load.gate.set()
    assert ui_model.LOADER.wait(env, timeout=30).model is load.model
    load.model.enqueue("Unsupported words with no citation.")  # checked out: the answer falls back to quotes
    at = app_ask(start_app(), QUESTION)
    assert len(load.model.history) == 1  # asked the model, not quoted right away
    assert NOTE not in _captions(at)


@pytest.mark.parametrize("fallback", ["true", "false"])
def test_a_failed_load_is_shown_and_answers_quote_or_fail(
    env: Settings, load: GatedLoad, monkeypatch: pytest.MonkeyPatch, fallback: str
) -> None:
    monkeypatch.setenv("RAG_FALLBACK_EXTRACTIVE", fallback)
    at = start_app()
    load.error = ModelError("The local model server could not start (test).")
    _loaded(at, Settings.from_env(), load)
    app_ask(at, QUESTION)
    msg = at.session_state["messages"][1]
    if fallback == "true":
        assert msg["answer"].provider == "extractive" and "could not start (test)" in at.warning[0].value
    else:
        assert "answer" not in msg and msg["error"] == "The local model server could not start (test)."
    assert load.calls == 1  # the failure is kept for the process: not retried on every page run
    assert NOTE not in _captions(at)
