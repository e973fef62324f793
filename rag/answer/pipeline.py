"""The answering flow over given parts: condense a follow-up -> retrieve -> refusal gate -> generate (streamed,
each sentence checked against its cited passage before it is shown) -> after-checks -> extractive fallback or
refusal. Inputs were validated and the parts (retriever, chat model) chosen by the caller (`rag.api`).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from typing import Protocol

from rag.answer import overview
from rag.answer.composer import Composer
from rag.answer.condense import condense
from rag.answer.evidence import gather
from rag.answer.kinds import kind
from rag.config import Settings
from rag.models.chat import ChatModel
from rag.types import Answer, Passage, Turn


class PassageSource(Protocol):
    """What answering needs of a retriever (the real one is `rag.search.retriever.Retriever`)."""

    def retrieve(self, question: str, k: int = 5) -> list[Passage]: ...
    def source_text(self, source: str) -> str: ...


class AnswerStream:
    """Iterate for the answer's text deltas (checked sentences, already numbered); then read `.answer`.

    `st.write_stream(stream)` works as is. Reading `.answer` before the end consumes the rest. The final
    `answer.text` is authoritative: when the model fails mid-answer the fallback replaces what streamed.
    """

    def __init__(self, steps: Generator[str, None, Answer]) -> None:
        self._steps = steps
        self._answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        while self._answer is None:
            try:
                yield next(self._steps)
            except StopIteration as stop:
                self._answer = stop.value

    @property
    def answer(self) -> Answer:
        for _ in self:
            pass
        if self._answer is None:  # unreachable: iteration ends only when the generator returned
            raise RuntimeError("the answer stream ended without an answer")
        return self._answer


def answer_stream(
    question: str,
    history: tuple[Turn, ...],
    *,
    settings: Settings,
    retriever: PassageSource,
    model: ChatModel | None,
) -> AnswerStream:
    """Answer a validated question with these parts; `model` None answers by quoting passages."""
    return AnswerStream(_steps(Composer(settings, retriever, model), question, history))


def _steps(composer: Composer, question: str, history: tuple[Turn, ...]) -> Generator[str, None, Answer]:
    started = time.perf_counter()
    begin(composer, condense(question, history, composer.model), started)
    if composer.refuse_before():
        return composer.refusal()
    if composer.model is None:
        return (yield from composer.extractive())
    return (yield from composer.generate())


def begin(composer: Composer, standalone: str, started: float) -> str:
    """The question's kind, then its evidence given to `composer` (everything before the answerability
    decision); returns the kind the question model gave ("factual", "open", "overview" or "other")."""
    question_kind = kind(standalone)  # factual, open or overview: how much evidence, how long an answer
    about_document = question_kind != "other"
    path = question_kind if about_document else "factual"  # chit-chat, an instruction: the factual checks refuse
    whole = overview.evidence(composer.retriever, composer.settings) if path == "overview" else None
    if whole is not None:  # the whole document, or passages spread across it
        composer.start(standalone, whole[0], started, whole[1])
    else:
        passages = gather(composer.retriever, standalone, path, composer.settings.top_k, composer.settings)
        composer.start(standalone, passages, started, path, about_document=about_document)
    return question_kind
