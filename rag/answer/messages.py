"""The chat an answer sends the model: the constant rules as the system message, then the numbered passages and
the question. Factual and open questions show excerpts of a few passages; overview questions the whole document
(rag.answer.overview).
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.answer import overview
from rag.answer.evidence import FACTUAL, Budget, clip
from rag.answer.prompts import render
from rag.answer.terms import content_stems
from rag.models.chat import Message
from rag.text import sentence_spans
from rag.types import Passage


def answer_messages(question: str, passages: Sequence[Passage], kind: Budget = FACTUAL) -> list[Message]:
    """System: the constant rules (cached by llama.cpp). User: the numbered passages, then the question.

    Each passage is cut to its sentences that share most words with the question, so the uncached part of
    the prompt stays near 250 tokens (first token in ~4 s on 2 cores); citations still name whole passages.
    """
    if kind.kind == "overview":
        return overview.messages(question, passages, kind)
    per_passage = kind.prompt_chars // max(1, len(passages))
    blocks = [f"[{i}] {excerpt(question, p.text, per_passage)}" for i, p in enumerate(passages, 1)]
    if kind is not FACTUAL:  # many passages: each one's excerpt is held to its share
        blocks = [clip(b, per_passage + 5) for b in blocks]
    return [
        {"role": "system", "content": render("answer_system")},
        {"role": "user", "content": render(kind.prompt, passages="\n\n".join(blocks), question=question)},
    ]


def excerpt(question: str, text: str, limit: int) -> str:
    """`text` on one line, or, when longer than `limit`, its sentences most related to the question (in order)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    spans = sentence_spans(text)
    wanted = set(content_stems(question))
    ranked = sorted(range(len(spans)), key=lambda i: -len(wanted & set(content_stems(text[slice(*spans[i])]))))
    chosen: list[int] = []
    used = 0
    for i in ranked:
        size = spans[i][1] - spans[i][0]
        if chosen and used + size > limit:
            continue
        chosen.append(i)
        used += size
    return " ... ".join(" ".join(text[slice(*spans[i])].split()) for i in sorted(chosen))
