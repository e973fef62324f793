"""Suggested questions for one document: questions a reader would ask, each already answered with citations.

Passages spread across the document are chosen (the document cut into consecutive parts; from each, the passage
closest to the document's mean vector, its most central one), the chat model writes one short question that the
passage answers (prompts/suggest_*.txt), and every candidate is asked through the real answering pipeline
(`ask`, given by `rag.api`): only a question answered, not refused, with every citation inside this document and
matching its text at the cited offsets is kept. Without a chat model there are no suggestions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from rag.answer.prompts import render
from rag.answer.terms import content_stems, words
from rag.errors import InputError
from rag.models.chat import ChatModel, Message
from rag.text import near_duplicate
from rag.types import Answer, Passage

MAX_SUGGESTIONS = 4  # the app shows at most this many
ENOUGH = 3  # after SPREAD tries, stop once this many passed
SPREAD = 6  # passages spread across the document, tried first
MAX_TRIES = 8  # then the next most central passages, up to this many candidates in all
MIN_PASSAGE_CHARS = 150  # shorter passages (a heading, a one-line transition) rarely make a good question
PASSAGE_CHARS = 900  # the passage shown to the model is cut here (whole sentences kept where possible)
MAX_WORDS = 20
_PREFIX = re.compile(r"^\s*(?:\d+[.)]\s*|[-*•]\s*|(?:suggested\s+)?question\s*\d*\s*:\s*)+", re.I)
# A question about the passage itself can't be asked of the whole library.
_VAGUE = re.compile(r"\b(passage|excerpt|the text|the author|this article|this document|above)\b", re.I)


def try_order(passages: Sequence[Passage], vectors: np.ndarray) -> list[Passage]:
    """The passages to write questions from, in the order to try them: first one per part of the document (its
    most central passage), in document order; then the remaining passages, most central first."""
    usable = [i for i, p in enumerate(passages) if len(p.text.strip()) >= MIN_PASSAGE_CHARS]
    usable = usable or list(range(len(passages)))
    if not usable:
        return []
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    mean = unit[usable].mean(axis=0)
    centrality = unit @ (mean / max(float(np.linalg.norm(mean)), 1e-12))
    parts = np.array_split(np.array(usable), min(SPREAD, len(usable)))
    first = [int(max(part, key=lambda i: centrality[i])) for part in parts]
    rest = sorted(set(usable) - set(first), key=lambda i: -centrality[i])
    return [passages[i] for i in first + rest]


def question_messages(title: str, passage: str) -> list[Message]:
    return [
        {"role": "system", "content": render("suggest_system")},
        {"role": "user", "content": render("suggest_user", title=" ".join(title.split()), passage=_cut(passage))},
    ]


def _cut(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= PASSAGE_CHARS:
        return flat
    head = flat[:PASSAGE_CHARS]
    end = max(head.rfind(". "), head.rfind("? "), head.rfind("! "))
    return head[: end + 1] if end > PASSAGE_CHARS // 2 else head


def clean_question(reply: str) -> str | None:
    """The model's reply as one question, or None when it isn't one a reader could ask as it stands."""
    line = next((raw for raw in reply.strip().splitlines() if raw.strip()), "")
    line = _PREFIX.sub("", line).strip().strip("\"'“”*_`").strip()
    if not line.endswith("?") or line.count("?") > 1 or _VAGUE.search(line):
        return None
    if not 3 <= len(words(line)) <= MAX_WORDS or not content_stems(line):
        return None
    return line[0].upper() + line[1:]


def candidate(model: ChatModel, title: str, passage: Passage) -> str | None:
    """One question the model writes about `passage`, or None when its reply isn't a usable question. A failing
    model raises ModelError: nothing is stored then, so the suggestions are made again once it works."""
    return clean_question("".join(model.stream(question_messages(title, passage.text))))


def answered_in(answer: Answer, doc_id: str, text: str) -> bool:
    """Answered (not refused), with citations that all point into this document's text, exactly."""
    return (
        not answer.refused
        and bool(answer.citations)
        and all(c.document == doc_id and text[c.start : c.end] == c.text for c in answer.citations)
    )


def make_suggestions(
    doc_id: str,
    title: str,
    text: str,
    passages: Sequence[Passage],
    vectors: np.ndarray,
    *,
    model: ChatModel,
    ask: Callable[[str], Answer],
) -> list[str]:
    """Up to MAX_SUGGESTIONS questions about one document, in the order tried, each answered by `ask`."""
    kept: list[str] = []
    for tries, passage in enumerate(try_order(passages, vectors)[:MAX_TRIES], 1):
        question = candidate(model, title, passage)
        if (
            question is not None
            and not any(_similar(question, q) for q in kept)
            and _answers(ask, question, doc_id, text)
        ):
            kept.append(question)
        if len(kept) >= MAX_SUGGESTIONS or (tries >= SPREAD and len(kept) >= ENOUGH):
            break
    return kept


def _answers(ask: Callable[[str], Answer], question: str, doc_id: str, text: str) -> bool:
    try:
        return answered_in(ask(question), doc_id, text)
    except InputError:  # a question the pipeline won't take (too long, odd characters) is simply not offered
        return False


def _similar(a: str, b: str) -> bool:
    return near_duplicate(set(content_stems(a)), set(content_stems(b)), 0.6)
