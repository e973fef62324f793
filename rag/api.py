"""The public functions: the one place that validates input, chooses the parts and decides when to build.

Scripts, the CLI and the chat app all come through here: `open_index` (opens the index, building the
default article's on first use, with a progress callback), `retrieve`, `query`, `query_stream`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from rag.answer.pipeline import AnswerStream, PassageSource, answer_stream
from rag.config import Settings
from rag.errors import IndexMissingError, ModelAuthError, ModelError
from rag.index.build import Progress, build_index
from rag.inputs import validate_history, validate_k, validate_question
from rag.models.chat import ChatModel, get_chat_model
from rag.search.retriever import Retriever, open_retriever
from rag.types import Answer, Passage, Turn

DEFAULT_CORPUS = next(f.default for f in dataclasses.fields(Settings) if f.name == "corpus_path")


def open_index(
    settings: Settings | None = None, *, progress: Progress | None = None, any_corpus: bool = False
) -> Retriever:
    """The retriever over the current index. When none exists, `settings.corpus_path` is built first
    (reporting to `progress`) if it is the bundled default article, or any corpus with `any_corpus` (the
    app, whose user chose RAG_CORPUS_PATH); otherwise `IndexMissingError` says to run `python -m rag index`."""
    settings = settings or Settings.from_env()
    try:
        return open_retriever(settings)
    except IndexMissingError:
        if settings.corpus_path != DEFAULT_CORPUS and not any_corpus:
            raise
    build_index(settings=settings, progress=progress)
    return open_retriever(settings)


def retrieve(question: str, k: int = 5, *, settings: Settings | None = None) -> list[Passage]:
    """The k passages that best answer `question` (hybrid BM25 + dense, fused score in Passage.score)."""
    settings = settings or Settings.from_env()
    text = validate_question(question, settings)
    k = validate_k(k)  # before open_index, which may build the default index first
    return open_index(settings).retrieve(text, k)


def query(
    question: str,
    *,
    history: Sequence[Turn] = (),
    settings: Settings | None = None,
    retriever: PassageSource | None = None,
    model: ChatModel | None = None,
) -> Answer:
    """Answer `question` (a follow-up of `history`) about the indexed article(s), with checked citations."""
    return query_stream(question, history=history, settings=settings, retriever=retriever, model=model).answer


def query_stream(
    question: str,
    *,
    history: Sequence[Turn] = (),
    settings: Settings | None = None,
    retriever: PassageSource | None = None,
    model: ChatModel | None = None,
) -> AnswerStream:
    """Like `query`, streaming: iterate for text, then `.answer`. Bad input raises InputError right here."""
    settings = settings or Settings.from_env()
    text = validate_question(question, settings)
    turns = validate_history(history, settings)
    if retriever is None:
        retriever = open_index(settings)
    if model is None and settings.resolved_provider != "extractive":
        model = load_chat_model(settings)
    return answer_stream(text, turns, settings=settings, retriever=retriever, model=model)


def load_chat_model(settings: Settings) -> ChatModel | None:
    """The chat model, or None (answers quote passages) when it fails and the extractive fallback is on."""
    try:
        return get_chat_model(settings)
    except ModelAuthError:
        raise  # a rejected key must be fixed, not hidden behind the fallback
    except ModelError:
        if settings.fallback_extractive:
            return None
        raise
