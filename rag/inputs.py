"""Input checks, run once at each entry point (`rag.api`, the CLI, the app): the stages trust what they get."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from rag.config import Settings
from rag.errors import InputError
from rag.types import Turn

MAX_K = 50
MAX_HISTORY_TURNS = 50
MAX_TURN_CHARS = 20_000
_ALLOWED_CONTROL = {"\n", "\t", "\r"}


def validate_question(question: object, settings: Settings) -> str:
    """The question stripped of surrounding whitespace, or an InputError a user understands."""
    if not isinstance(question, str):
        raise InputError("The question must be text.")
    text = question.strip()
    if not text:
        raise InputError("The question is empty: type a question about the article.")
    if len(text) > settings.max_question_chars:
        raise InputError(
            f"The question is {len(text):,} characters long; the limit is {settings.max_question_chars:,} "
            "(RAG_MAX_QUESTION_CHARS)."
        )
    if any(unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROL for ch in text):
        raise InputError("The question contains control characters (such as NUL); remove them and try again.")
    if any(unicodedata.category(ch) == "Cs" for ch in text):
        # Lone surrogates (e.g. non-UTF-8 bytes in a command-line argument) can't be encoded for the embedder.
        raise InputError("The question is not valid Unicode text (it holds undecodable bytes); retype it.")
    return text


def validate_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InputError(f"k must be a whole number between 1 and {MAX_K}.")
    return k


def validate_history(history: object, settings: Settings) -> tuple[Turn, ...]:
    """The earlier turns as a tuple, or an InputError naming the first bad item."""
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
    return tuple(history)
