"""Composing one answer: the refusal gate, the extractive answer, and the checked model answer.

`Composer` holds what one question needs (settings, retriever, model, retrieved passages, the article's
main names) so each step stays a short method. Answers leave here with final numbering and citations.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag.answer import overview
from rag.answer.answerability import Decision, decide
from rag.answer.citations import Numbering, marker_numbers, render_sentence, strip_markers
from rag.answer.evidence import FACTUAL, FIRST_RUN, Budget, OnTopic, budget, cached_vectors, select_reasons
from rag.answer.extractive import Similarity, Unit, adds_to, select
from rag.answer.gate import fits_question
from rag.answer.messages import answer_messages
from rag.answer.support import SupportChecker
from rag.answer.terms import content_stems, main_names, stem, stem_in
from rag.answer.verify import Checked, check_sentence, says_cant_tell, split_complete, unfinished, whole_copy
from rag.errors import ModelAuthError, ModelError, RagError
from rag.models.chat import ChatModel, Message
from rag.types import Answer, Passage, Timings

REFUSAL = "The article doesn't cover this: the retrieved passages don't answer the question."
# How many passages the model sees and how long the prompt and the answer may be: by kind, evidence.Budget.


def refusal_text() -> str:
    return REFUSAL


@dataclass
class _Draft:
    """What the checks made of the model's reply so far."""

    kept: list[Checked] = field(default_factory=list)
    lead: list[Checked] = field(default_factory=list)  # the quote an open answer opens with (in kept too)
    echoed: bool = False  # a model sentence passed its checks but only said the lead quote again
    pointed: list[Passage] = field(default_factory=list)  # passages named by a bare "[2]" with no sentence
    dropped: int = 0
    cant_tell: bool = False  # the model said the passages don't tell
    invented: bool = False  # a dropped sentence named something no shown passage mentions


class Composer:
    def __init__(self, settings: Any, retriever: Any, model: ChatModel | None) -> None:
        self.settings = settings
        self.retriever = retriever
        self.model = model
        self.question = ""
        self.passages: list[Passage] = []
        self.sources: list[str] = []
        self.checker = SupportChecker()
        self._started = 0.0
        self._retrieved = 0.0
        self._first: float | None = None
        self.decision: Decision | None = None
        self.judge_seconds = 0.0
        self.budget: Budget = FACTUAL
        self._prompt: list[Message] | None = None  # the answer's chat, built once: judged, then sent
        self.topic = OnTopic("", settings)  # is a sentence on the question? (set per question in start)
        self.about_document = True

    def start(self, standalone: str, passages: list[Passage], started: float, kind: str | Budget = "factual",
              *, about_document: bool = True) -> None:  # fmt: skip
        self.question, self.passages, self._started = standalone, passages, started
        self._prompt = None
        # A message the kind model calls "other" (an instruction, chit-chat) asks nothing the passages could
        # answer, so the yes/no judgement means nothing there (an injection scored P(yes) 0.72 on the tuning
        # split): the word gate decides it, as it does without probabilities.
        self.about_document = about_document
        # open questions: more, diverse passages and a longer answer; overviews: the whole document
        self.budget = kind if isinstance(kind, Budget) else budget(kind)
        self.topic = OnTopic(standalone, self.settings)
        self._retrieved = time.perf_counter() - started
        seen = dict.fromkeys(p.source for p in passages)
        self.sources = [self.retriever.source_text(s) for s in seen]
        self.checker = SupportChecker(_main_names("\n".join(self.sources)))

    # -- decisions -------------------------------------------------------------------------------------

    def refuse_before(self) -> bool:
        """Refuse without generating? (rag.answer.answerability: names absent, the model's judgement, or words)."""
        if self.overview:
            return False  # a document can always be summarised: there is no question to find in it
        started = time.perf_counter()
        judge = self.model if self.settings.answerability == "judge" and self.about_document else None
        prompt = self.prompt() if judge is not None else []
        self.decision = decide(self.question, [p.text for p in self.passages], self.sources,
                               self.checker.allowed_names, judge, prompt)  # fmt: skip
        self.judge_seconds = time.perf_counter() - started
        return self.decision.refuse

    def refusal(self, provider: str | None = None) -> Answer:
        return self._answer(REFUSAL, Numbering(), refused=True, provider=provider)

    # -- extractive ------------------------------------------------------------------------------------

    def select_units(self, among: Sequence[Passage] | None = None, most: int = 0) -> list[tuple[Passage, Unit]]:
        """Sentences to quote, from `among` (default: every retrieved passage), with their passages; for an
        open question up to `most` (default: the answer's sentence budget)."""
        pool = list(among) if among is not None else self.passages
        if self.overview:
            return overview.central_units(self.retriever, self.settings, pool)
        if self.budget is FACTUAL:
            units = select(self.question, pool, similarity=self._similarity())
        else:  # one quote per distinct reason (a sentence, or it and the next)
            units = select_reasons(self.question, pool, similarity=self._similarity(),
                                   max_units=most or self.budget.sentences)  # fmt: skip
        if not units or not fits_question(self.question, " ".join(u.text for u in units)):
            return []
        return [(pool[u.passage_index], u) for u in units]

    def extractive(self, prefer: Sequence[Passage] = ()) -> Generator[str, None, Answer]:
        """Quote the best sentences; from the `prefer`red passages (the model's pick) when they answer."""
        chosen = (self.select_units(prefer) if prefer else []) or self.select_units()
        if not chosen:
            return self.refusal(provider="extractive")
        numbering = Numbering()
        text = " ".join(render_sentence(u.text, [p], numbering) for p, u in chosen)
        self._first = self._first or time.perf_counter() - self._started
        yield text
        return self._answer(text, numbering, provider="extractive")

    # -- model -----------------------------------------------------------------------------------------

    def generate(self) -> Generator[str, None, Answer]:
        assert self.model is not None  # noqa: S101 - only called with a model
        shown = self.passages[: self.budget.prompt_passages]
        draft, numbering = _Draft(), Numbering()
        draft.lead = self._lead()
        for lead in draft.lead:
            draft.kept.append(lead)
            self._first = self._first or time.perf_counter() - self._started  # the first words shown, as extractive
            yield (" " if len(draft.kept) > 1 else "") + render_sentence(lead.claim, lead.passages, numbering)
        sentences = self._sentences(self.model, self.prompt())
        try:
            for sentence in sentences:
                checked = self._take(sentence, shown, draft)
                if checked is not None:
                    yield (" " if len(draft.kept) > 1 else "") + render_sentence(checked.claim, checked.passages, numbering)
                if len(draft.kept) >= self.budget.sentences or draft.dropped >= self.budget.dropped:
                    break  # the rest would only cost time on a CPU: the prompt asks for no more
        except ModelAuthError:
            raise
        except ModelError:
            if not self.settings.fallback_extractive:
                raise
            return (yield from self.extractive(draft.pointed))  # a cut-off reply is never the final answer
        finally:
            sentences.close()  # stops generation (closes the HTTP stream) when we stop early
        kept = draft.kept
        wrote = len(kept) > len(draft.lead) or draft.echoed  # a sentence of the model's own passed its checks
        if kept and fits_question(self.question, " ".join(c.claim for c in kept)):
            for extra in self._supplement(kept):
                kept.append(extra)
                yield " " + render_sentence(extra.claim, extra.passages, numbering)
            text = " ".join(render_sentence(c.claim, c.passages, numbering) for c in kept)
            return self._answer(text, numbering, provider=None if wrote else "extractive")  # quotes only: say so
        if not kept and not draft.pointed and (draft.cant_tell or draft.invented):
            return self.refusal()  # the model says, or shows by reaching outside them, that the passages can't tell
        return (yield from self.extractive(draft.pointed))

    def _take(self, sentence: str, shown: list[Passage], draft: _Draft) -> Checked | None:
        """Check one generated sentence; record it in `draft` (kept, dropped, or a bare pointer)."""
        draft.cant_tell = draft.cant_tell or says_cant_tell(sentence)
        if not strip_markers(sentence).strip(" .,;:"):
            draft.pointed += [shown[n - 1] for n in marker_numbers(sentence) if 1 <= n <= len(shown)]
            return None
        checked = whole_copy(check_sentence(sentence, shown, self.checker), shown)
        echo = checked is not None and bool(draft.lead) and not adds_to(checked.claim, [c.claim for c in draft.lead])
        draft.echoed = draft.echoed or echo  # the model's checked sentence says what the quote says: it agrees
        if checked is None or echo or _repeats(checked, draft.kept) or not self._relevant(checked) or (
            self.budget.kind == "open" and not self.topic(checked.claim)  # open: drops true sentences that don't answer
        ):
            draft.invented = draft.invented or bool(self.checker.foreign_names(sentence, [p.text for p in shown]))
            draft.dropped += 1
            return None
        draft.kept.append(checked)
        return checked

    def _relevant(self, checked: Checked) -> bool:
        """A true sentence can still answer another question ("$100 billion" for "how much did Turkey pay for
        the S-400?"). When the question has two or more words beyond the article's main names, the sentence or
        its passage must contain one of them, or the sentence must be close to the question in meaning
        (evidence.RELEVANT_COSINE): a reworded question ("worried about Ankara's middle path") shares no word
        with its answer ("Turkey's balancing act is becoming a source of concern")."""
        if self.overview:
            return True  # an overview's question ("What is it about?") names no topic to look for
        return self.shares_words(checked) or self.topic.answers(checked.claim)

    def shares_words(self, checked: Checked) -> bool:
        common = {stem(n) for n in self.checker.allowed_names}
        terms = [t for t in dict.fromkeys(content_stems(self.question)) if t not in common]
        if len(terms) < 2:
            return True
        have = set(content_stems(" ".join([checked.claim, *(p.text for p in checked.passages)])))
        return any(stem_in(t, have) for t in terms)

    def _lead(self) -> list[Checked]:
        """An open answer opens with the retrieved sentence that answers best and up to two after it (or the next
        passage's best), quoted and cited, before the model writes: reading the longer open prompt and writing a
        whole first sentence before it can be checked took ~1.4 s past the first token on this CPU, and the
        quote is true to its passage by construction. More than one sentence: on the tuning open questions the
        key points went 0.555 -> 0.679 with two, 0.715 with three (the explanation tends to follow the sentence
        nearest the question)."""
        if self.budget is FACTUAL or self.overview:
            return []
        return [Checked(unit.text, (passage,)) for passage, unit in self.select_units(most=1 + FIRST_RUN)]

    def _supplement(self, kept: list[Checked]) -> list[Checked]:
        """For an open question, the reasons the model left out: one verbatim quote from each retrieved passage
        (evidence.select_reasons: its best sentence, with the next one while the budget lasts), passing over
        those the kept sentences mostly say, up to the sentence budget. Quotes are exact slices of their
        passage, so they are true to it; select_reasons keeps only those that answer the question."""
        if self.budget is FACTUAL:
            return []
        if self.overview:
            return overview.uncovered_parts(self.retriever, self.settings, self.passages, kept, self.budget.sentences)
        # Every passage, cited ones too: the model's sentence often keeps one point of a passage that gives
        # several ("because of its proximity, its role in global trade, ..."), or one sentence of a paragraph
        # whose next sentences hold the rest.
        # (A sentence repeating a kept one is mostly said by it, so `said` passes it over too.)
        pool = list(self.passages)
        units = select_reasons(self.question, pool, similarity=self._similarity(),
                               max_units=self.budget.sentences - len(kept), said=[c.claim for c in kept])  # fmt: skip
        return [Checked(u.text, (pool[u.passage_index],)) for u in units]

    def _sentences(self, model: ChatModel, messages: list[Message]) -> Generator[str, None, None]:
        buffer = ""
        for delta in model.stream(messages):
            if self._first is None:
                self._first = time.perf_counter() - self._started
            buffer += delta
            done, buffer = split_complete(buffer)
            yield from done
        rest = buffer.strip()
        # The token limit can cut a long answer's last sentence mid-way ("... rather than an"), and its words may
        # still pass the check: not shown. A factual reply is often a bare fragment ("7 months ago") and keeps it.
        if rest and (self.budget is FACTUAL or not unfinished(rest)):
            yield rest

    # -- helpers ---------------------------------------------------------------------------------------

    def prompt(self) -> list[Message]:
        """The answer's chat (the passages shown, the question); the judgement asks about this very prompt."""
        if self._prompt is None:
            shown = self.passages[: self.budget.prompt_passages]
            self._prompt = answer_messages(self.question, shown, self.budget)
        return self._prompt

    @property
    def overview(self) -> bool:
        return self.budget.kind == "overview"

    def _similarity(self) -> Similarity | None:
        try:
            from rag.models.embed import embed_query, get_embedder

            embedder = get_embedder(self.settings)
        except (RagError, ImportError):
            return None

        def similarity(question: str, texts: Sequence[str]) -> list[float]:
            query = embed_query(embedder, question)
            return [float(v @ query) for v in cached_vectors(embedder, texts)]

        return similarity

    def _answer(self, text: str, numbering: Numbering, *, refused: bool = False, provider: str | None = None) -> Answer:
        model = self.model
        if provider is None:
            provider = model.provider if model is not None else "extractive"
        total = time.perf_counter() - self._started
        return Answer(
            text=text,
            citations=[] if refused else numbering.citations(),
            passages=list(self.passages),
            refused=refused,
            standalone_question=self.question,
            provider=provider,
            model=model.model if model is not None and provider != "extractive" else "",
            timings=Timings(retrieve=self._retrieved, first_token=self._first, total=total, decide=self.judge_seconds),
        )


def _repeats(checked: Checked, kept: list[Checked]) -> bool:
    return any(c.claim == checked.claim for c in kept)


@functools.lru_cache(maxsize=16)
def _main_names(text: str) -> frozenset[str]:
    return main_names(text)
