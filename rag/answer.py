"""Answers with verified citations: `query` for scripts, `query_stream` for the chat UI, `ask` on the CLI.

Flow: validate -> condense a follow-up -> retrieve -> refusal gate -> generate (streamed, each sentence
checked against its cited passage before it is shown) -> after-checks -> extractive fallback or refusal.
Retriever and chat model are arguments so tests and the UI can pass their own.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Generator, Iterator, Sequence
from typing import Protocol

from .composer import Composer
from .condense import condense
from .config import Settings
from .errors import InputError, ModelAuthError, ModelError
from .llm import ChatModel
from .types import Answer, Passage, Turn

MAX_HISTORY_TURNS = 50
MAX_TURN_CHARS = 20_000


class Retriever(Protocol):
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
        assert self._answer is not None  # set when the generator returns  # noqa: S101
        return self._answer


def query(
    question: str,
    *,
    history: Sequence[Turn] = (),
    settings: Settings | None = None,
    retriever: Retriever | None = None,
    model: ChatModel | None = None,
) -> Answer:
    """Answer `question` (a follow-up of `history`) about the indexed article(s), with checked citations."""
    return query_stream(question, history=history, settings=settings, retriever=retriever, model=model).answer


def query_stream(
    question: str,
    *,
    history: Sequence[Turn] = (),
    settings: Settings | None = None,
    retriever: Retriever | None = None,
    model: ChatModel | None = None,
) -> AnswerStream:
    """Like `query`, streaming: iterate for text, then `.answer`. Bad input raises InputError right here."""
    settings = settings or Settings.from_env()
    text = _validate(question, history, settings)
    turns = tuple(history)
    if retriever is None:
        from .retrieve import open_retriever

        retriever = open_retriever(settings)
    if model is None and settings.resolved_provider != "extractive":
        model = _load_model(settings)
    composer = Composer(settings, retriever, model)
    return AnswerStream(_steps(composer, text, turns))


def _load_model(settings: Settings) -> ChatModel | None:
    from .llm import get_chat_model

    try:
        return get_chat_model(settings)
    except ModelAuthError:
        raise  # a rejected key must be fixed, not hidden behind the fallback
    except ModelError:
        if settings.fallback_extractive:
            return None
        raise


def _validate(question: object, history: object, settings: Settings) -> str:
    from .retrieve import validate_question

    text = validate_question(question, settings)
    if isinstance(history, str | bytes) or not isinstance(history, Sequence):
        raise InputError("The history must be a list of Turn(question, answer) items.")
    if len(history) > MAX_HISTORY_TURNS:
        raise InputError(f"The history has {len(history)} turns; the limit is {MAX_HISTORY_TURNS}.")
    for i, turn in enumerate(history, 1):
        if not isinstance(turn, Turn):
            raise InputError(f"History item {i} is not a Turn(question, answer).")
        if not isinstance(turn.question, str) or not isinstance(turn.answer, str):
            raise InputError(f"History item {i} must hold text for both question and answer.")
        if len(turn.question) > settings.max_question_chars or len(turn.answer) > MAX_TURN_CHARS:
            raise InputError(f"History item {i} is too long.")
    return text


def _steps(composer: Composer, question: str, history: tuple[Turn, ...]) -> Generator[str, None, Answer]:
    started = time.perf_counter()
    standalone = condense(question, history, composer.model)
    passages = composer.retriever.retrieve(standalone, k=composer.settings.top_k)
    composer.start(standalone, passages, started)
    if composer.refuse_before():
        return composer.refusal()
    if composer.model is None:
        return (yield from composer.extractive())
    return (yield from composer.generate())


def render_answer_cli(question: str, *, settings: Settings, as_json: bool) -> int:
    """`python -m rag ask`: stream the checked answer, then list its citations (or print it as JSON)."""
    stream = query_stream(question, settings=settings)
    if as_json:
        print(json.dumps(dataclasses.asdict(stream.answer), ensure_ascii=False, indent=2))
        return 0
    shown = ""
    for delta in stream:
        shown += delta
        sys.stdout.write(delta)
        sys.stdout.flush()
    answer = stream.answer
    if answer.text != shown:
        print(("\n\n" if shown else "") + "Checked answer:\n" + answer.text, end="")
    print()
    for c in answer.citations:
        print(f"\n[{c.number}] {c.source} (characters {c.start}-{c.end})\n    {_one_line(c.text)}")
    model = f"{answer.provider}" + (f" / {answer.model}" if answer.model else "")
    print(f"\n({model}; {answer.timings.total:.1f} s)", file=sys.stderr)
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split())
