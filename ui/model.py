"""The chat model as the page sees it: the local one loads in the background while answers quote the article.

The page draws its chat input at once and answers from the first question: until the local model is ready it
answers by quoting passages and says so; once it is ready, the page reruns and answers use it. The process-wide
`LOADER` is the only loader the app uses; a test gives the app another one (`ModelLoader(load=...)`). No
Streamlit here: the app shows the status and polls.
"""

from __future__ import annotations

import dataclasses

from rag import Settings
from rag.errors import ModelAuthError
from rag.models.loading import ModelLoader, ModelStatus

LOADER = ModelLoader()
LOADING_NOTE = "The language model is still loading: this answer quotes the article."
LOADING_STATUS = "Loading the language model… until it is ready, answers quote the article."


def start(settings: Settings) -> None:
    """Start loading the chat model for `settings` (once per process); returns at once."""
    LOADER.status(settings)


def current(settings: Settings) -> ModelStatus:
    """The model's status now. The local model is never waited for; a remote provider's client is, since making
    it sends no request and takes well under a second: quoting meanwhile would cost more than it saves."""
    if settings.resolved_provider == "local":
        return LOADER.status(settings)
    return LOADER.wait(settings)


def quoting(settings: Settings, status: ModelStatus) -> bool:
    """Whether answers quote passages instead of using the model: it is loading, or it failed and the
    extractive fallback is on (a rejected key is never hidden behind the fallback)."""
    if status.loading:
        return True
    failed = status.error is not None and not isinstance(status.error, ModelAuthError)
    return failed and settings.fallback_extractive


def answer_settings(settings: Settings, status: ModelStatus) -> Settings:
    """The settings to answer with: the extractive provider while quoting, or `rag` would wait for the model."""
    return dataclasses.replace(settings, provider="extractive") if quoting(settings, status) else settings
