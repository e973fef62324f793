"""Support by meaning: before a generated sentence (or a quote standing in for one) is shown, the model's
P(yes) that the passages state it as an answer to the question.

Word overlap (checks.py) passes a sentence that swaps one word for its opposite ("one of the smallest ports"
for the passage's "largest") or restates a question's false premise, because the words are all there. The
judgement reads the answer's own prompt (passages, then the question) with one paragraph more
(`prompts/support_check.txt`): llama.cpp's prompt cache has just read that prompt for the answer, so each
sentence costs its own ~40 tokens and one generated token. Below the threshold fitted on the tuning split
(`thresholds.json`, "support") the sentence is not shown. Where the server returns no token probabilities
(some OpenAI-compatible servers) or `RAG_SUPPORT=words`, the overlap check alone decides, and the answer says
which ran (`Answer.support`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.prompts import render
from rag.errors import ModelAuthError, ModelError
from rag.models.chat import ChatModel, Message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Judged:
    """One sentence's judgement: P(yes), or None when no probability could be had."""

    claim: str
    probability: float | None

    def passes(self, threshold: float) -> bool:
        return self.probability is None or self.probability >= threshold


def support_messages(answer: Sequence[Message], claim: str) -> list[Message]:
    """The answer's chat with the proposed answer and the yes/no question appended to its last (user) message,
    so the answer's prompt is a prefix of the judgement's."""
    *head, last = answer
    return [*head, {**last, "content": f"{last['content']}\n\n{render('support_check', claim=claim)}"}]


def judge_claim(model: ChatModel, answer: Sequence[Message], claim: str) -> Judged:
    """P(yes) that the answer prompt's passages state `claim` as the answer (None: no probabilities, or the
    request failed; the caller keeps the overlap check's verdict)."""
    try:
        return Judged(claim, model.yes_probability(support_messages(answer, claim)))
    except ModelAuthError:
        raise
    except ModelError as err:
        log.warning("support judgement failed: %s", err)
        return Judged(claim, None)
