"""Do the retrieved passages answer the question? Decided before anything is generated.

1. A name or number of the question that occurs nowhere in the whole document(s) means no (a strong signal
   that needs no model: "What did Biden say?" about an article that never names him).
2. With a model that returns token probabilities (llama.cpp's server, OpenAI): the model is asked whether the
   question can be answered from the retrieved passages (prompts `answerable_system` / `answerable_user`, the
   top passages whole), and P(yes) / (P(yes) + P(no)) is compared with a threshold fitted on the tuning split
   (`thresholds.json` says where and when). Asking inside the answer's own prompt (so the answer would reuse the
   cached prefix) was measured and dropped: on SQuAD Normans its AUROC was 0.55 against 0.80 for this prompt.
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
JUDGED_PASSAGES = 4  # the judgement was fitted on the top 4 passages


@dataclass(frozen=True)
class Decision:
    refuse: bool
    reason: str  # "no passages", "names absent", "judged", "word coverage"
    probability: float | None = None


@functools.cache
def threshold(name: str = "judge") -> float:
    """A fitted threshold from thresholds.json (its `fitted_on` says which split; never the held-out one)."""
    return float(json.loads(THRESHOLDS.read_text(encoding="utf-8"))["thresholds"][name])


def check_messages(question: str, passages: Sequence[str]) -> list[Message]:
    """The yes/no judgement's chat: the passages numbered [1], [2], ... then the question."""
    numbered = "\n\n".join(f"[{i}] {' '.join(text.split())}" for i, text in enumerate(passages, 1))
    return [
        {"role": "system", "content": render("answerable_system")},
        {"role": "user", "content": render("answerable_user", passages=numbered, question=question.strip())},
    ]


def judge(model: ChatModel, question: str, passages: Sequence[str]) -> float | None:
    """P(yes) that the passages state the answer, or None (no probabilities, or the judgement failed)."""
    try:
        return model.yes_probability(check_messages(question, passages))
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
) -> Decision:
    """Whether to refuse before generating; `passages` are the retrieved texts (top_k, best first), `documents`
    the whole texts they come from."""
    if not passages:
        return Decision(True, "no passages")
    if question_coverage(question, documents, main_names).missing_names:
        return Decision(True, "names absent")
    probability = judge(model, question, passages[:JUDGED_PASSAGES]) if model is not None else None
    if probability is not None:
        return Decision(probability < threshold(), "judged", probability)
    return Decision(refusal_before(question, documents, main_names) is not None, "word coverage")
