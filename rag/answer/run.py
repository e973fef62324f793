"""One answer in progress (`Run`): its plan, its parts, the decision, the clock, and the steps that need them
all: quoting passages (the extractive answer and the fallback), judging a sentence's support, the final `Answer`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from rag.answer.checks import Checked
from rag.answer.citations import Numbering, render_sentence
from rag.answer.decide import Decision, cutoff, fits_question
from rag.answer.plan import PassageSource, Plan, passage_vectors
from rag.answer.quotes import choose
from rag.answer.support import judge_claim
from rag.config import Settings
from rag.models.chat import ChatModel
from rag.models.embed import similarity
from rag.types import REFUSAL, Answer, Passage, Timings

Trace = Callable[[str, Any], None]


def ignore(name: str, value: Any) -> None:
    return None


@dataclass
class Run:
    """One answer in progress: its plan, its parts, the decision and the clock."""

    plan: Plan
    settings: Settings
    retriever: PassageSource
    model: ChatModel | None
    started: float
    trace: Trace
    first: float | None = None  # seconds to the first generated token or shown text
    shown: float | None = None  # seconds to the first checked words shown
    decision: Decision = Decision(False, "")
    support: str = ""  # "meaning" once a sentence was judged by the model, "words" when overlap alone decided
    support_seconds: float = 0.0

    def mark_first(self) -> None:
        self.first = self.first or time.perf_counter() - self.started

    def mark_shown(self) -> None:
        self.mark_first()
        self.shown = self.shown or time.perf_counter() - self.started

    @property
    def judging(self) -> bool:
        return self.model is not None and self.settings.support == "judge"

    def supported(self, checked: Checked) -> bool:
        """The model's judgement of one sentence (after its overlap check passed): shown only at or above the
        fitted threshold; where no probability comes back, the overlap check's verdict stands."""
        if not self.judging or self.model is None:
            self.support = self.support or "words"
            return True
        started = time.perf_counter()
        judged = judge_claim(self.model, checked.passages, checked.claim)
        self.support_seconds += time.perf_counter() - started
        self.trace("support", judged)
        self.support = "meaning" if judged.probability is not None else (self.support or "words")
        return judged.passes(cutoff(self.settings, "support"))

    def quotes(self, among: Sequence[Passage] = (), most: int = 0) -> list[Checked]:
        """Quotes from `among` (default: the plan's passages), or [] when they don't fit the question (an
        overview, which can't be refused, asks for no particular fact)."""
        plan = self.plan
        pool = list(among) or list(plan.evidence)
        vectors = passage_vectors(self.retriever, pool, self.settings) if plan.policy.quotes == "central" else None
        units = choose(plan.policy, plan.question, pool, similarity=similarity(self.settings), vectors=vectors,
                       most=most)  # fmt: skip
        if plan.policy.refusable and not (units and fits_question(plan.question, " ".join(u.text for u in units))):
            return []
        return [Checked(u.text, (pool[u.passage_index],)) for u in units]

    def extractive(self, prefer: Sequence[Passage] = (), most: int = 0) -> Generator[str, None, Answer]:
        """Quote the best sentences (at most `most`, 0: the policy's choice); from the `prefer`red passages (the
        model's pick) when they answer."""
        chosen = (self.quotes(prefer) if prefer else []) or self.quotes()
        chosen = chosen[:most] if most else chosen
        # A quote standing in for the model's answer passes the same judgement as the model's sentences.
        chosen = [c for c in chosen if self.supported(c)] if self.judging else chosen
        if not chosen:
            return self.refusal(provider="extractive")
        numbering = Numbering()
        text = " ".join(render_sentence(c.claim, c.passages, numbering) for c in chosen)
        self.mark_shown()
        yield text
        return self.answer(text, numbering, provider="extractive")

    def refusal(self, provider: str | None = None) -> Answer:
        return self.answer(REFUSAL, Numbering(), refused=True, provider=provider)

    def answer(self, text: str, numbering: Numbering, *, refused: bool = False, provider: str | None = None) -> Answer:
        model = self.model
        if provider is None:
            provider = model.provider if model is not None else "extractive"
        return Answer(
            text=text,
            citations=[] if refused else numbering.citations(),
            # What retrieval found, and the passages cited beyond it (a document read whole cites any of its own).
            passages=[*self.plan.evidence, *(p for p in numbering.passages if p not in self.plan.evidence)],
            refused=refused,
            standalone_question=self.plan.question,
            provider=provider,
            model=model.model if model is not None and provider != "extractive" else "",
            timings=Timings(retrieve=self.plan.retrieve_seconds, first_token=self.first,
                            total=time.perf_counter() - self.started, decide=self.decision.seconds,
                            first_shown=None if refused else self.shown, support=self.support_seconds),  # fmt: skip
            support="" if refused else self.support,
        )
