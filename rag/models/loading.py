"""The chat model loaded on a background thread, so a caller (the app) can work without it until it is ready.

Loading the local model takes seconds (a child process maps 1 GB of weights); the retriever alone can already
answer by quoting passages. `ModelLoader.status(settings)` starts the load on its first call for a settings
group and returns at once: loading, loaded (the model), or failed (a `RagError` safe to show). One load per
process and `settings.chat`, shared by every session; a failure is kept, not retried on every page run, since
a local load that fails tends to fail again after seconds of work (the message says what to fix).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass

from rag.cache import SettingsCache
from rag.config import Settings
from rag.errors import ModelError, RagError
from rag.models.chat import ChatModel, get_chat_model

log = logging.getLogger(__name__)

Load = Callable[[Settings], ChatModel]


@dataclass(frozen=True)
class ModelStatus:
    """Where the chat model is: `model` once loaded, `error` if loading failed, neither while it loads."""

    model: ChatModel | None = None
    error: RagError | None = None
    loading: bool = False


NO_MODEL = ModelStatus()  # the extractive provider: nothing to load, answers quote passages


class ModelLoader:
    """Background loads of the chat model, one per `settings.chat` group; thread-safe, process-wide."""

    def __init__(self, load: Load = get_chat_model) -> None:
        self._load = load
        self._loads: SettingsCache[Future[ChatModel]] = SettingsCache()

    def status(self, settings: Settings) -> ModelStatus:
        """The model's status for `settings`, starting its load on first call; never waits."""
        if settings.resolved_provider == "extractive":
            return NO_MODEL
        return _status(self._loads.get(settings.chat, lambda: self._start(settings)))

    def wait(self, settings: Settings, timeout: float | None = None) -> ModelStatus:
        """Like `status`, but waits up to `timeout` seconds (None: for good) for the load to end."""
        if settings.resolved_provider == "extractive":
            return NO_MODEL
        future = self._loads.get(settings.chat, lambda: self._start(settings))
        wait([future], timeout)
        return _status(future)

    def _start(self, settings: Settings) -> Future[ChatModel]:
        future: Future[ChatModel] = Future()
        threading.Thread(target=self._run, args=(settings, future), name="rag-model-load", daemon=True).start()
        return future

    def _run(self, settings: Settings, future: Future[ChatModel]) -> None:
        try:
            future.set_result(self._load(settings))
        except RagError as err:
            log.warning("the chat model did not load: %s", err)
            future.set_exception(err)
        except Exception:  # a bug or a binding's error: its text is not for users
            log.exception("loading the chat model failed")
            future.set_exception(ModelError("The language model could not be loaded; the server log has the details."))


def _status(future: Future[ChatModel]) -> ModelStatus:
    if not future.done():
        return ModelStatus(loading=True)
    err = future.exception()
    if isinstance(err, RagError):  # `_run` sets no other kind
        return ModelStatus(error=err)
    return ModelStatus(model=future.result())
