"""Answer or refuse? Decided once before anything is generated, and the answer's shape checked after.

Before generating (`decide`), in order:
1. No passages: refuse.
2. A name or number of the question that occurs nowhere in the whole document(s): refuse ("What did Biden say?"
   about an article that never names him). Needs no model.
3. With a model that returns token probabilities (llama.cpp's server, OpenAI) and a message about the document:
   the model reads the answer's own prompt with one more paragraph asking yes or no
   (`prompts/answerable_check.txt`), giving P(yes) / (P(yes) + P(no)). Everything before that paragraph is the
   answer's prompt token for token, so llama.cpp's prompt cache reads it once for both: the judgement costs ~20
   prompt tokens and one generated token. The same is asked for a content-free question over the same passages
   (once per prompt), and a logistic model over SIGNALS, fitted on the tuning split (`thresholds.json`
   "decision" says where and when), refuses below its cut. A threshold given in the settings, or no fitted
   model, means one threshold on P(yes) per path instead.
4. Otherwise (no model, no probabilities, `RAG_ANSWERABILITY=words`, or a message the kind model calls "other",
   for which a yes/no about the passages means nothing): word coverage, fewer than MIN_COVERAGE of the question's
   meaningful words in the documents means refuse.
An overview is never refused: a document can always be summarised.

After generating (`fits_question`): an amount question needs a new amount, a date question a date.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from rag.answer.plan import Plan, messages
from rag.answer.prompts import render
from rag.answer.terms import asks_amount, asks_date, content_stems, name_stems, names, numbers, stem, stem_in
from rag.config import Settings
from rag.errors import ModelAuthError, ModelError
from rag.models.chat import ChatModel, Message

log = logging.getLogger(__name__)
THRESHOLDS = Path(__file__).with_name("thresholds.json")
# Share of the question's meaningful words the documents must hold (hand-set in 42f24e7 on the dev questions).
MIN_COVERAGE = 0.6
_YEAR = re.compile(r"^(1[89]|20)\d\d$")
_MONTH = re.compile(r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b")


@dataclass(frozen=True)
class Decision:
    refuse: bool
    reason: str  # "no passages", "names absent", "combined", "judged", "word coverage", "not refusable"
    probability: float | None = None  # the judgement's P(yes), when it ran
    seconds: float = 0.0


@dataclass(frozen=True)
class Coverage:
    """How much of a question the documents speak about."""

    ratio: float  # share of the question's content terms found
    missing_terms: tuple[str, ...]
    missing_names: tuple[str, ...]  # names and numbers of the question found nowhere: a strong refusal signal


def decide(plan: Plan, settings: Settings, model: ChatModel | None) -> Decision:
    """Whether to refuse `plan`'s question before generating (see the module's order)."""
    if not plan.policy.refusable:
        return Decision(False, "not refusable")
    started = time.perf_counter()
    judge_with = model if settings.answerability == "judge" and plan.about_document else None
    decision = _decide(plan, judge_with, settings)
    return Decision(decision.refuse, decision.reason, decision.probability, time.perf_counter() - started)


def _decide(plan: Plan, model: ChatModel | None, settings: Settings) -> Decision:
    if not plan.passages:
        return Decision(True, "no passages")
    if question_coverage(plan.question, plan.sources, plan.names).missing_names:
        return Decision(True, "names absent")
    probability = judge(model, plan.messages) if model is not None else None
    # Read whole only: there the content-free judgement is asked once per document (+0.99 s p50 to the first
    # checked words); over retrieved passages it is asked for every question (+2.43 s, past the 1 s the speed
    # target allows), so that path keeps its one threshold (docs/decisions.md, 2026-12-03 evening).
    fitted = settings.judge_threshold is None and plan.policy.whole
    combined = fitted_decision() if fitted else None
    if probability is not None and combined is not None and model is not None:
        # One more request, only when its signal weighs; if it fails, the model was not fitted for that case.
        base = baseline(model, plan) if "calibrated" in combined.weights else None
        if base is not None or "calibrated" not in combined.weights:
            values = signals(plan, probability, base)
            return Decision(combined.probability(values) < combined.cut, "combined", probability)
    if probability is not None:  # the whole-document prompt reads differently: its own threshold
        name = "judge_whole" if plan.policy.whole else "judge"
        return Decision(probability < cutoff(settings, name), "judged", probability)
    return Decision(refusal_before(plan.question, plan.sources, plan.names) is not None, "word coverage")


# What one answer-or-refuse decision may combine, all known before anything is generated (tools/decision_fit.py
# fits a logistic model over them on the tuning split).
SIGNALS = ("p_judge", "calibrated", "coverage", "margin", "open", "whole")


def signals(plan: Plan, probability: float, base: float | None) -> dict[str, float]:
    """The decision's signals for `plan`, its answerability P(yes) and the content-free P(yes) `base`."""
    scores = [p.score for p in plan.evidence]
    margin = scores[0] - scores[1] if len(scores) > 1 else None
    coverage = question_coverage(plan.question, plan.sources, plan.names).ratio
    return signal_values(probability, base, coverage, margin, plan.policy.kind, plan.policy.whole)


def signal_values(probability: float, base: float | None, coverage: float, margin: float | None, kind: str,
                  whole: bool) -> dict[str, float]:  # fmt: skip
    # P(yes) as log-odds: the logistic model is then linear in what the model itself is sure of; "calibrated" is
    # that less the log-odds for the content-free question over the same passages (0 when there is none).
    judged = _logit(probability)
    return {"p_judge": judged, "calibrated": judged - _logit(base) if base is not None else 0.0,
            "coverage": coverage, "margin": margin or 0.0, "open": float(kind == "open"),
            "whole": float(whole)}  # fmt: skip


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class Combined:
    """A logistic model of "the passages answer the question" over SIGNALS, and the cut below which to refuse."""

    weights: dict[str, float]
    bias: float
    cut: float

    def probability(self, values: dict[str, float]) -> float:
        z = self.bias + sum(w * values[name] for name, w in self.weights.items())
        return 1 / (1 + math.exp(-max(-50.0, min(50.0, z))))


@functools.cache
def fitted_decision() -> Combined | None:
    """The combined decision fitted on the tuning split (thresholds.json "decision"), or None: one threshold on
    P(yes) then decides."""
    fitted = json.loads(THRESHOLDS.read_text(encoding="utf-8")).get("decision")
    if fitted is None:
        return None
    weights = dict(zip(fitted["signals"], map(float, fitted["weights"]), strict=True))
    return Combined(weights, float(fitted["bias"]), float(fitted["cut"]))


# A question with no content. The model's P(yes) for it over the same passages is their own lean toward "yes",
# which differs from one document to the next (contextual calibration: Zhao et al., "Calibrate Before Use", ICML 2021).
CONTENT_FREE = "N/A"


def baseline(model: ChatModel, plan: Plan) -> float | None:
    """P(yes) for the content-free question over `plan`'s passages (cached: a document read whole asks it once)."""
    # Keyed by the model object (hashed by identity) and the prompt: another model or other passages ask again.
    return _baseline(cast(Hashable, model), json.dumps(check_messages(messages(CONTENT_FREE, plan.shown, plan.policy))))


@functools.lru_cache(maxsize=64)
def _baseline(model: Hashable, chat: str) -> float | None:
    try:
        return cast(ChatModel, model).yes_probability(json.loads(chat))
    except ModelAuthError:
        raise
    except ModelError as err:
        log.warning("content-free judgement failed: %s", err)
        return None


@functools.cache
def threshold(name: str = "judge") -> float:
    """A fitted threshold from thresholds.json (its `fitted_on` says which split; never the held-out one)."""
    return float(json.loads(THRESHOLDS.read_text(encoding="utf-8"))["thresholds"][name])


def cutoff(settings: Settings, name: str) -> float:
    """The threshold `name` ("judge", "judge_whole", "support") in force: the settings' own, else the fitted one."""
    given = settings.support_threshold if name == "support" else settings.judge_threshold
    return threshold(name) if given is None else given


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


def question_coverage(question: str, texts: Sequence[str], main_names: frozenset[str] = frozenset()) -> Coverage:
    joined = "\n".join(texts)
    stems = set(content_stems(joined))
    joined_numbers = numbers(joined)
    terms = list(dict.fromkeys(content_stems(question)))
    missing = tuple(s for s in terms if not stem_in(s, stems))
    # Names: any capitalised word of the question, the first one included ("Brazil's GDP?").
    missing_names = [n for n in sorted(names(question, first_words=False)) if stem(n) in missing]
    missing_names += sorted(n for n in numbers(question) if n not in joined_numbers)
    # The main names are in every passage: they say nothing about whether the question is covered.
    common = name_stems(main_names)
    weighed = [s for s in terms if s not in common]
    ratio = 1.0 - len([s for s in missing if s not in common]) / len(weighed) if weighed else 1.0
    return Coverage(ratio, missing, tuple(missing_names))


def refusal_before(question: str, texts: Sequence[str], main_names: frozenset[str]) -> str | None:
    """A reason to refuse by word coverage alone, or None. Reasons are for logs and tests, not for users."""
    cov = question_coverage(question, texts, main_names)
    if cov.missing_names:
        return f"not in the passages: {', '.join(cov.missing_names)}"
    if cov.ratio < MIN_COVERAGE:
        return f"question terms mostly absent ({cov.ratio:.2f}): {', '.join(cov.missing_terms)}"
    return None


def fits_question(question: str, answer_text: str) -> bool:
    """An amount question needs an amount the question didn't already contain (a year is not an amount); a date
    question needs a date-like number or a month. Other questions pass."""
    new = numbers(answer_text) - numbers(question)
    if asks_amount(question):
        return any(not _YEAR.match(n) for n in new)
    if asks_date(question):
        return bool(new) or bool(_MONTH.search(answer_text))
    return True
