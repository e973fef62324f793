"""rag.models.loading.ModelLoader: the chat model loaded on a background thread, once per settings group."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import ModelError
from rag.models.chat import ChatModel
from rag.models.loading import NO_MODEL, ModelLoader
from tests.fakes import MockModel


class Gated:
    """A load that returns `result` (or raises it) once the test opens the gate; counts its calls."""

    def __init__(self, result: object) -> None:
        self.result = result
        self.gate = threading.Event()
        self.calls: list[Settings] = []

    def __call__(self, settings: Settings) -> ChatModel:
        self.calls.append(settings)
        assert self.gate.wait(30)
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result  # type: ignore[return-value]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(provider="local", index_dir=tmp_path)


def test_status_starts_the_load_once_and_never_waits(settings: Settings) -> None:
    model = MockModel()
    load = Gated(model)
    loader = ModelLoader(load=load)
    assert loader.status(settings).loading and loader.status(settings).loading
    assert loader.wait(settings, timeout=0.05).loading  # still held by the gate
    load.gate.set()
    done = loader.wait(settings, timeout=10)
    assert done.model is model and done.error is None and not done.loading
    assert loader.status(settings).model is model
    assert len(load.calls) == 1  # one load for all of these calls


def test_another_chat_settings_group_is_another_load(settings: Settings) -> None:
    load = Gated(MockModel())
    load.gate.set()
    loader = ModelLoader(load=load)
    loader.wait(settings, timeout=10)
    loader.wait(dataclasses.replace(settings, top_k=7), timeout=10)  # not a chat setting: the same model
    assert len(load.calls) == 1
    loader.wait(dataclasses.replace(settings, llm_context=2048), timeout=10)
    assert len(load.calls) == 2


def test_a_failed_load_is_kept_with_its_message(settings: Settings) -> None:
    load = Gated(ModelError("The local model server could not start (test)."))
    load.gate.set()
    loader = ModelLoader(load=load)
    failed = loader.wait(settings, timeout=10)
    assert failed.model is None and not failed.loading
    assert str(failed.error) == "The local model server could not start (test)."
    assert loader.status(settings).error is failed.error and len(load.calls) == 1  # not retried


def test_an_unexpected_error_becomes_a_message_safe_to_show(settings: Settings) -> None:
    load = Gated(RuntimeError("llama_model_load: /secret/path/model.gguf: bad magic"))
    load.gate.set()
    failed = ModelLoader(load=load).wait(settings, timeout=10)
    assert isinstance(failed.error, ModelError) and "/secret" not in str(failed.error)


def test_the_extractive_provider_loads_nothing(settings: Settings) -> None:
    load = Gated(MockModel())
    loader = ModelLoader(load=load)
    extractive = dataclasses.replace(settings, provider="extractive")
    assert loader.status(extractive) == NO_MODEL and loader.wait(extractive) == NO_MODEL
    assert load.calls == []
