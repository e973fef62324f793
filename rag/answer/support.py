"""Support by meaning: before a generated sentence (or a quote standing in for one) is shown, the model's
P(yes) that the passage it cites states it.

Word overlap (checks.py) passes a sentence that swaps one word for its opposite ("one of the smallest ports"
for the passage's "largest") or restates a question's false premise, because the words are all there. The
judgement sends the cited passage and the sentence after a constant instruction with four worked examples
(`prompts/support_system.txt`, cached by llama.cpp across sentences), and a sentence below the threshold fitted
on the tuning split (`thresholds.json`, "support") is not shown. Asked instead with the answer's own prompt and
the sentence appended (cheaper: the prompt is cached), the model separated true from swapped sentences worse
(docs/decisions.md, 2026-12-02). Where the server returns no token probabilities, or `RAG_SUPPORT=words` (the
default: on held-out pages the judgement did not pay for its ~2 s a sentence), overlap alone decides, and the
answer says which ran (`Answer.support`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.prompts import render
from rag.errors import ModelAuthError, ModelError
from rag.models.chat import ChatModel, Message
from rag.types import Passage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Judged:
    """One sentence's judgement: P(yes), or None when no probability could be had."""

    claim: str
    probability: float | None

    def passes(self, threshold: float) -> bool:
        return self.probability is None or self.probability >= threshold


def support_messages(passages: Sequence[Passage], claim: str) -> list[Message]:
    """The constant instruction and examples, then the cited passage(s) and the sentence."""
    text = " ".join(" ".join(p.text.split()) for p in passages)
    return [
        {"role": "system", "content": render("support_system")},
        {"role": "user", "content": render("support_user", passage=text, claim=claim)},
    ]


def judge_claim(model: ChatModel, passages: Sequence[Passage], claim: str) -> Judged:
    """P(yes) that `passages` state `claim` (None: no probabilities, or the request failed; the caller keeps the
    overlap check's verdict)."""
    try:
        return Judged(claim, model.yes_probability(support_messages(passages, claim)))
    except ModelAuthError:
        raise
    except ModelError as err:
        log.warning("support judgement failed: %s", err)
        return Judged(claim, None)
