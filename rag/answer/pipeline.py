"""How an answer is made, in reading order:

1. condense  a follow-up ("and Russia?") becomes a standalone question (condense.py);
2. plan      its kind, policy, passages and prompt, built once (plan.py, policy.py); a short document is
             read whole, from a prompt prefix the same for every question about it (whole.py);
3. decide    answer or refuse, before anything is generated (decide.py);
4. generate  stream the model's reply; each sentence is checked against its cited passage by word overlap
             (checks.py), then by the model's judgement of its support once the reply is complete
             (support.py), and only then shown; open answers led and completed by verbatim quotes (quotes.py);
5. fall back when no sentence survives or the model fails: quote the passages (quotes.py), each quote judged
             like a sentence of the model's, or refuse.
Without a model (the extractive provider) step 4 is the quotes alone. Inputs were validated and the parts
(retriever, chat model) chosen by the caller (`rag.api`). `trace`, when given, receives every intermediate
value by name ("standalone", "plan", "decision", "sentence", "answer") for measuring tools.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

from rag.answer.checks import Checked, Relevance, check_sentence, says_cant_tell, whole_copy
from rag.answer.citations import Numbering, marker_numbers, render_sentence, split_complete, strip_markers, unfinished
from rag.answer.condense import condense
from rag.answer.decide import decide, fits_question
from rag.answer.plan import PassageSource, Plan, hold_prefix, make_plan, passage_vectors
from rag.answer.quotes import adds_to, central, repeats, select_reasons
from rag.answer.run import Run, Trace, ignore
from rag.config import Settings
from rag.errors import ModelAuthError, ModelError
from rag.models.chat import ChatModel
from rag.models.embed import similarity
from rag.types import Answer, Passage, Turn

__all__ = ["AnswerStream", "PassageSource", "SentenceTrace", "Trace", "answer_stream", "respond"]


class AnswerStream:
    """Iterate for the answer's text deltas (checked sentences, already numbered); then read `.answer`.

    `st.write_stream(stream)` works as is. Reading `.answer` before the end consumes the rest. The final
    `answer.text` is authoritative: when the model fails mid-answer the fallback replaces what streamed.
    """

    def __init__(self, steps: Generator[str, None, Answer]) -> None:
        self._steps = steps
        self._answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        while self._answer is None:
            try:
                yield next(self._steps)
            except StopIteration as stop:
                self._answer = stop.value

    @property
    def answer(self) -> Answer:
        for _ in self:
            pass
        if self._answer is None:  # unreachable: iteration ends only when the generator returned
            raise RuntimeError("the answer stream ended without an answer")
        return self._answer


@dataclass(frozen=True)
class SentenceTrace:
    """One generated sentence as the checks saw it (`checked` None: it failed support)."""

    sentence: str
    checked: Checked | None
    kept: bool
    shares_words: bool | None = None
    cosine: float | None = None


def answer_stream(question: str, history: tuple[Turn, ...], *, settings: Settings, retriever: PassageSource,
                  model: ChatModel | None, trace: Trace | None = None) -> AnswerStream:  # fmt: skip
    """Answer a validated question with these parts; `model` None answers by quoting passages."""
    return AnswerStream(_steps(question, history, settings, retriever, model, trace or ignore))


def _steps(question: str, history: tuple[Turn, ...], settings: Settings, retriever: PassageSource,
           model: ChatModel | None, trace: Trace) -> Generator[str, None, Answer]:  # fmt: skip
    started = time.perf_counter()
    standalone = condense(question, history, model)
    trace("standalone", standalone)
    plan = make_plan(standalone, retriever, settings, started=started)
    answer = yield from respond(plan, settings, retriever, model, started=started, trace=trace)
    return answer


def respond(plan: Plan, settings: Settings, retriever: PassageSource, model: ChatModel | None, *,
            started: float | None = None, trace: Trace | None = None) -> Generator[str, None, Answer]:  # fmt: skip
    """Steps 3-5 for a plan: decide, then generate and check, or quote, or refuse."""
    trace = trace or ignore
    trace("plan", plan)
    run = Run(plan, settings, retriever, model, time.perf_counter() if started is None else started, trace)
    if model is not None:
        hold_prefix(plan, model)
    run.decision = decide(plan, settings, model)
    trace("decision", run.decision)
    if run.decision.refuse:
        answer = run.refusal()
    elif model is None:
        answer = yield from run.extractive()
    else:
        answer = yield from generate(run, model, trace)
    trace("answer", answer)
    return answer


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


def generate(run: Run, model: ChatModel, trace: Trace) -> Generator[str, None, Answer]:
    """Stream the model's reply, showing only sentences that pass the checks; then the supplement, the fallback
    or the refusal."""
    plan, policy = run.plan, run.plan.policy
    shown, draft, numbering = list(plan.shown), _Draft(), Numbering()
    relevance = Relevance(plan.question, plan.names, run.settings)
    # An open answer opens with quotes: true to their passage by construction, and shown before the model has
    # read its prompt (reading it and writing a first sentence took ~1.4 s past the first token on this CPU).
    draft.lead = run.quotes(most=policy.lead) if policy.lead else []
    for lead in draft.lead:
        draft.kept.append(lead)
        run.mark_shown()
        yield (" " if len(draft.kept) > 1 else "") + render_sentence(lead.claim, lead.passages, numbering)
    sentences = _sentences(run, model, keep_fragment=policy.keep_fragment)
    pending: list[Checked] = []  # passed the overlap check, waiting for the model's judgement
    try:
        for sentence in sentences:
            checked = _take(sentence, shown, draft, run, relevance, trace)
            if checked is not None and run.judging:
                pending.append(checked)
            elif checked is not None and run.supported(checked):  # overlap alone: says so in the answer
                run.mark_shown()
                yield (" " if len(draft.kept) > 1 else "") + render_sentence(checked.claim, checked.passages, numbering)
            if len(draft.kept) >= policy.sentences or draft.dropped >= policy.dropped:
                break  # the rest would only cost time on a CPU: the prompt asks for no more
    except ModelAuthError:
        raise
    except ModelError:
        if not run.settings.fallback_extractive:
            raise
        return (yield from run.extractive(draft.pointed))  # a cut-off reply is never the final answer
    finally:
        sentences.close()  # stops generation (closes the HTTP stream) when we stop early
    # Judged once the reply is complete: the local server has one slot, so a judgement can only run between
    # requests (and reads the answer's prompt from its cache).
    for checked in pending:
        if not run.supported(checked):
            draft.kept.remove(checked)
            draft.dropped += 1
            continue
        run.mark_shown()
        yield (" " if draft.kept.index(checked) > 0 else "") + render_sentence(checked.claim, checked.passages, numbering)
    return (yield from _conclude(run, draft, numbering))


def _conclude(run: Run, draft: _Draft, numbering: Numbering) -> Generator[str, None, Answer]:
    """The kept sentences with the supplement; else a refusal when the model said it can't tell; else quotes."""
    kept = draft.kept
    wrote = len(kept) > len(draft.lead) or draft.echoed  # a sentence of the model's own passed its checks
    if kept and fits_question(run.plan.question, " ".join(c.claim for c in kept)):
        for extra in _supplement(run, kept):
            kept.append(extra)
            run.mark_shown()
            yield " " + render_sentence(extra.claim, extra.passages, numbering)
        text = " ".join(render_sentence(c.claim, c.passages, numbering) for c in kept)
        return run.answer(text, numbering, provider=None if wrote else "extractive")  # quotes only: say so
    if not kept and not draft.pointed and (draft.cant_tell or draft.invented):
        return run.refusal()  # the model says, or shows by reaching outside them, that the passages can't tell
    # Standing in for a reply none of whose sentences passed, one quote: the best sentence. Its runners-up came
    # from other passages that share the question's words without answering it (an instruction planted in a
    # page among them); on the tuning sets the answer words were in the first quote in all 6 answerable cases.
    return (yield from run.extractive(draft.pointed, most=1))


def _take(sentence: str, shown: list[Passage], draft: _Draft, run: Run, relevance: Relevance,
          trace: Trace) -> Checked | None:  # fmt: skip
    """Check one generated sentence; record it in `draft` (kept, dropped, or a bare pointer)."""
    policy, checker = run.plan.policy, run.plan.checker
    draft.cant_tell = draft.cant_tell or says_cant_tell(sentence)
    if not strip_markers(sentence).strip(" .,;:"):
        draft.pointed += [shown[n - 1] for n in marker_numbers(sentence) if 1 <= n <= len(shown)]
        return None
    checked = whole_copy(check_sentence(sentence, shown, checker), shown)
    echo = checked is not None and bool(draft.lead) and not adds_to(checked.claim, [c.claim for c in draft.lead])
    draft.echoed = draft.echoed or echo  # the model's checked sentence says what the quote says: it agrees
    keep = checked is not None and not echo and all(c.claim != checked.claim for c in draft.kept)
    keep = keep and (not policy.relevance or relevance.answers(checked))  # type: ignore[arg-type]
    keep = keep and (not policy.on_topic or relevance.on_topic(checked.claim))  # type: ignore[union-attr]
    keep = keep and not _crowded(checked, draft.kept, policy.per_passage)  # type: ignore[arg-type]
    if checked is not None and trace is not ignore:
        trace("sentence", SentenceTrace(sentence, checked, keep, relevance.shares_words(checked),
                                        relevance.similarity(checked.claim)))  # fmt: skip
    if not keep or checked is None:
        draft.invented = draft.invented or bool(checker.foreign_names(sentence, [p.text for p in shown]))
        draft.dropped += 1
        return None
    draft.kept.append(checked)
    return checked


def _crowded(checked: Checked, kept: list[Checked], most: int) -> bool:
    """Every passage `checked` cites already backs `most` kept sentences (`most` 0: never crowded)."""
    return most > 0 and all(sum(p in c.passages for c in kept) >= most for p in checked.passages)


def _supplement(run: Run, kept: list[Checked]) -> list[Checked]:
    """The points the model left out, quoted: for an open question one quote from each passage (its best sentence,
    with the next while the budget lasts) passing over what the kept sentences mostly say; for an overview a
    central sentence from each part of the document no kept sentence cites. Up to the sentence budget."""
    plan, policy = run.plan, run.plan.policy
    pool = list(plan.evidence)
    if policy.quotes == "central":
        cited = frozenset(i for i, p in enumerate(pool) if any(p in c.passages for c in kept))
        vectors = passage_vectors(run.retriever, pool, run.settings)
        extra: list[Checked] = []
        for unit in central(pool, vectors, covered=cited):
            if len(kept) + len(extra) >= policy.sentences:
                break
            if not any(repeats(unit.text, c.claim) for c in [*kept, *extra]):
                extra.append(Checked(unit.text, (pool[unit.passage_index],)))
        return extra
    if policy.quotes != "reasons":
        return []
    # Every passage, cited ones too: the model often keeps one point of a passage that gives several.
    units = select_reasons(plan.question, pool, similarity=similarity(run.settings),
                           max_units=policy.sentences - len(kept), said=[c.claim for c in kept])  # fmt: skip
    return [Checked(u.text, (pool[u.passage_index],)) for u in units]


def _sentences(run: Run, model: ChatModel, *, keep_fragment: bool) -> Generator[str, None, None]:
    buffer = ""
    for delta in model.stream(run.plan.messages):
        run.mark_first()
        buffer += delta
        done, buffer = split_complete(buffer)
        yield from done
    rest = buffer.strip()
    # The token limit can cut a long answer's last sentence mid-way ("... rather than an"), and its words may
    # still pass the check: not shown. A factual reply is often a bare fragment ("7 months ago") and keeps it.
    if rest and (keep_fragment or not unfinished(rest)):
        yield rest
