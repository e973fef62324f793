"""Do the retrieved passages answer the question? Decided before anything is generated.

1. A name or number of the question that occurs nowhere in the whole document(s) means no (a strong signal
   that needs no model: "What did Biden say?" about an article that never names him).
2. With a model that returns token probabilities (llama.cpp's server, OpenAI): the model reads the answer's
   own prompt (same rules, same passage excerpts, same question) with one more paragraph asking yes or no
   (`prompts/answerable_check.txt`), and P(yes) / (P(yes) + P(no)) is compared with a threshold fitted on the
   tuning split (`thresholds.json` says where and when). Everything before that paragraph is the answer's
   prompt token for token, so llama.cpp's prompt cache reads it once for both: the judgement costs ~20 prompt
   tokens and one generated token, not a second prompt. The judge it replaced (its own prompt over the top 4
   whole passages) cost ~3 s more before the first word; on the tuning SQuAD sample it ranked about as well
   (AUROC 0.64 against 0.57 on the same 58 Normans questions), on held-out SQuAD better (complexity theory: 0.86
   against 0.58), on held-out article rewordings worse (false refusals 0.23 against 0.10).
3. Without probabilities (no model: the extractive provider; or a compatible server that ignores `logprobs`):
   the older word-coverage gate (`gate.refusal_before`) decides, as it did before the judgement existed.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.answer.gate import refusal_before
from rag.answer.prompts import render
from rag.answer.support import question_coverage
from rag.errors import ModelAuthError, ModelError
from rag.models.chat import ChatModel, Message

log = logging.getLogger(__name__)
THRESHOLDS = Path(__file__).with_name("thresholds.json")


@dataclass(frozen=True)
class Decision:
    refuse: bool
    reason: str  # "no passages", "names absent", "judged", "word coverage"
    probability: float | None = None


@functools.cache
def threshold(name: str = "judge") -> float:
    """A fitted threshold from thresholds.json (its `fitted_on` says which split; never the held-out one)."""
    return float(json.loads(THRESHOLDS.read_text(encoding="utf-8"))["thresholds"][name])


def check_messages(answer: Sequence[Message]) -> list[Message]:
    """The answer's chat with the yes/no question appended to its last (user) message: the answer's prompt is
    then a prefix of the judgement's, which the server has just read and cached."""
    *head, last = answer
    return [*head, {**last, "content": f"{last['content']}\n\n{render('answerable_check')}"}]


def judge(model: ChatModel, answer: Sequence[Message]) -> float | None:
    """P(yes) that the passages of the `answer` prompt state the answer, or None (no probabilities, or the
    judgement failed)."""
    try:
        return model.yes_probability(check_messages(answer))
    except ModelAuthError:
        raise
    except ModelError as err:  # the answer request will meet the same failure and fall back: just don't judge
        log.warning("answerability judgement failed: %s", err)
        return None


def decide(
    question: str,
    passages: Sequence[str],
    documents: Sequence[str],
    main_names: frozenset[str],
    model: Any = None,
    answer: Sequence[Message] = (),
) -> Decision:
    """Whether to refuse before generating; `passages` are the retrieved texts (best first), `documents` the
    whole texts they come from, `answer` the chat the answer will send (judged when `model` is given)."""
    if not passages:
        return Decision(True, "no passages")
    if question_coverage(question, documents, main_names).missing_names:
        return Decision(True, "names absent")
    probability = judge(model, answer) if model is not None and answer else None
    if probability is not None:
        return Decision(probability < threshold(), "judged", probability)
    return Decision(refusal_before(question, documents, main_names) is not None, "word coverage")
