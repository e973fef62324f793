"""Short documents read whole: the answer to a factual or open question about a document that fits the model's
context reads all of it, not the few passages retrieval found.

Most articles people read are short (the default article ~1,800 tokens, saved web pages 500-2,000), and a
reworded question's evidence is often not among the top passages. Reading the whole document removes those
misses; and because its passages come in document order before the question, the prompt starts the same way
for every question about that document, so llama.cpp's prompt cache reads it once (`prime`) and each question
after costs only its own words. Which document: the one retrieval's best passage comes from, so a library of
many documents still answers from the right one. The refusal decision and the sentence checks stay in front.
`plan.prime_documents` has the model read a document's prefix ahead of its first question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from rag.config import Settings
from rag.types import Passage

CHARS_PER_TOKEN = 4.0  # English prose in Qwen's tokenizer: 4.9 measured on the default article; 4 leaves room
PROMPT_RESERVE = 400  # tokens for the rules, the question and the chat template around them
# With a remote model the context is large, but each question sends the whole text again: past this many tokens
# the passages are picked instead, to bound cost and time (a stated bound, not fitted).
REMOTE_WHOLE_TOKENS = 16_000


class DocumentSource(Protocol):
    """What reading a document whole needs of a retriever (a part of `plan.PassageSource`)."""

    def document_passages(self, doc_id: str) -> tuple[list[Passage], Any]: ...


def token_budget(settings: Settings) -> int:
    """Tokens of passage text that can go into one prompt whole."""
    if settings.resolved_provider == "local":
        return settings.llm_context - settings.max_answer_tokens - PROMPT_RESERVE
    return REMOTE_WHOLE_TOKENS


def fits(passages: Sequence[Passage], settings: Settings) -> bool:
    return bool(passages) and sum(len(p.text) for p in passages) / CHARS_PER_TOKEN <= token_budget(settings)


def whole_document(retriever: DocumentSource, found: Sequence[Passage], settings: Settings) -> list[Passage] | None:
    """Every passage of the document of the best passage `found`, in document order, when the whole-document
    path is on and they fit the model's context; else None (the retrieved passages are used)."""
    # Quoting passages (the extractive provider) reads nothing: the retrieved passages are the better evidence
    # there (tuning web pages, extractive: false refusals 0.317 -> 0.439 when answered from one document).
    if not settings.whole_documents or settings.resolved_provider == "extractive" or not found or not found[0].document:
        return None
    try:
        passages, _ = retriever.document_passages(found[0].document)
    except Exception:  # noqa: BLE001 - a retriever that can't list the document: answer from what it found
        return None
    return list(passages) if fits(passages, settings) else None
