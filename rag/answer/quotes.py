"""Quote choice: which passage sentences, quoted verbatim, answer the question.

Quotes are exact slices of passage text (`passage.text[unit.start:unit.end] == unit.text`), so they are true to
their passage by construction; the work here is choosing ones that answer. `choose` serves every policy:
"best" (a factual question: the 1-3 best sentences), "reasons" (an open question: one quote per distinct reason,
each with the sentence after it) and "central" (an overview: the opening and the most central sentences).
Used for the extractive provider, the fallback when the model's sentences fail, an open answer's lead and the
reasons the model left out.

Hand-set weights below come from the first answering commit (42f24e7, 2026-11-23), set by reading the dev
questions' answers (tuning split) and never fitted since; fitted ones say where.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.answer.policy import FIRST_RUN, Policy
from rag.answer.terms import asks_amount, asks_date, content_stems, numbers, stem_in
from rag.models.embed import QUESTION_COSINES, Similarity, rescale
from rag.text import near_duplicate, sentence_spans
from rag.types import Passage

QUOTE_JACCARD = 0.7  # content-stem overlap above which two quoted sentences say the same (hand-set, 42f24e7)
MIN_LEXICAL = 0.3  # share of the question's (idf-weighted) words a quoted sentence must hold (hand-set, 42f24e7)
DENSE_WEIGHT = 0.5  # meaning vs words in a sentence's score: an even mix (hand-set, 42f24e7)
NUMBER_BONUS = 0.2  # an amount question favours sentences with a number, and disfavours others (hand-set, 42f24e7)
RANK_BONUS = 0.05  # at most this much for the passage's retrieval rank: it only breaks ties
MIN_SCORE = 0.34  # a factual quote scores at least this (hand-set, 42f24e7)
KEEP_RATIO = 0.65  # a factual quote scores at least this share of the best one (hand-set, 42f24e7)
# An open question's quotes: looser bars, as each reason is only part of the answer (hand-set in 8aa7f8f,
# 2026-11-25, on the tuning open questions).
REASON_MIN_SCORE, REASON_MIN_LEXICAL, REASON_KEEP_RATIO = 0.3, 0.2, 0.5
LEAD = 2  # opening sentences an extractive overview always quotes: the "lead-2" summary baseline

# Units that only make sense with the sentence before them ("It is $100 billion.", "Such as ...", "to an ...").
_CONTINUATION = re.compile(r"^(?:[a-z]|It\b|Such as\b|All are\b|This (?:is|was|result)\b)")
# The open prompt clips each passage's excerpt ("... along with Russia's approval of ..."), and the model may copy
# the cut text, dots and all.
_CLIPPED = re.compile(r"\s*(?:\.\.\.|…)$")


@dataclass(frozen=True)
class Unit:
    """A quotable span of a passage: `passage.text[start:end] == text`."""

    passage_index: int
    text: str
    start: int
    end: int
    score: float = 0.0
    lexical: float = 0.0  # share of the question's (idf-weighted) terms in the unit


def choose(policy: Policy, question: str, pool: Sequence[Passage], *, similarity: Similarity | None,
           vectors: np.ndarray | None = None, most: int = 0) -> list[Unit]:  # fmt: skip
    """The quotes `policy` gives from `pool` (up to `most` sentences for reasons; default its budget).
    `vectors` are the pool's passage vectors, which a central pick needs."""
    if policy.quotes == "central":
        return central(pool, vectors)
    if policy.quotes == "reasons":
        return select_reasons(question, pool, similarity=similarity, max_units=most or policy.sentences)
    return select(question, pool, similarity=similarity)


def units(passages: Sequence[Passage]) -> list[Unit]:
    """Sentences of every passage, a continuation fragment merged into the sentence before it."""
    found: list[Unit] = []
    for i, passage in enumerate(passages):
        spans: list[tuple[int, int]] = []
        for start, end in sentence_spans(passage.text):
            if spans and _CONTINUATION.match(passage.text[start:end]):
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        found += [Unit(i, passage.text[s:e], s, e) for s, e in spans]
    return found


def with_next(unit: Unit, passage: Passage) -> Unit | None:
    """`unit` extended over the sentence that follows it in its passage (one exact slice), or None at its end."""
    after = next((u for u in units([passage]) if u.start >= unit.end), None)
    if after is None:
        return None
    return Unit(unit.passage_index, passage.text[unit.start : after.end], unit.start, after.end, unit.score,
                unit.lexical)  # fmt: skip


def clipped(claim: str) -> bool:
    return bool(_CLIPPED.search(claim))


def completed(claim: str, passages: Sequence[Passage]) -> tuple[Passage, str] | None:
    """The whole sentence(s) a `claim` copied up to an excerpt's cut ("... and carries some risks, and..."): one
    exact slice of the passage that holds the copy word for word, or None when the claim is no verbatim copy."""
    words = _CLIPPED.sub("", claim).split()
    if len(words) < 4:
        return None
    copy = re.compile(r"\s+".join(map(re.escape, words)))
    for passage in passages:
        found = copy.search(passage.text)
        if found is None:
            continue
        spans = units([passage])
        first = next(u for u in spans if u.end > found.start())
        last = next(u for u in spans if u.end >= found.end())
        return passage, passage.text[first.start : last.end]
    return None


def points_back(text: str) -> bool:
    """A unit that still opens like a continuation: `units` merges those into the sentence before, so this one
    opens its passage and what it points back to ("This is what could not have been done ...") was cut off."""
    return bool(_CONTINUATION.match(text))


def _idf(question_terms: list[str], pool: list[set[str]]) -> dict[str, float]:
    n = len(pool) or 1
    return {t: math.log(1 + n / (1 + sum(1 for u in pool if stem_in(t, u)))) for t in question_terms}


def score_units(question: str, passages: Sequence[Passage], similarity: Similarity | None = None) -> list[Unit]:
    """Every unit scored for how well it answers `question` (0..~1.3), best first."""
    candidates = units(passages)
    if not candidates:
        return []
    stems = [set(content_stems(u.text)) for u in candidates]
    terms = list(dict.fromkeys(content_stems(question)))
    weights = _idf(terms, stems)
    total = sum(weights.values()) or 1.0
    dense = list(similarity(question, [u.text for u in candidates])) if similarity else None
    wants_number = asks_amount(question) or asks_date(question)
    scored: list[Unit] = []
    for k, (unit, unit_stems) in enumerate(zip(candidates, stems, strict=True)):
        lexical = sum(w for t, w in weights.items() if stem_in(t, unit_stems)) / total
        score = lexical
        if dense is not None:
            score = (1 - DENSE_WEIGHT) * lexical + DENSE_WEIGHT * float(rescale(dense[k], *QUESTION_COSINES))
        if wants_number:
            score += NUMBER_BONUS if numbers(unit.text) else -NUMBER_BONUS
        score += RANK_BONUS / (1 + unit.passage_index)
        scored.append(Unit(unit.passage_index, unit.text, unit.start, unit.end, score, lexical))
    return sorted(scored, key=lambda u: -u.score)


def select(question: str, passages: Sequence[Passage], *, min_score: float = MIN_SCORE,
           min_lexical: float = MIN_LEXICAL, max_units: int = 3, similarity: Similarity | None = None) -> list[Unit]:  # fmt: skip
    """The units to quote, best first, from distinct passages where possible; [] when none is good enough."""
    # Meaning alone finds a sentence "about" anything; the question's own words must be there too.
    ranked = [u for u in score_units(question, passages, similarity) if u.score >= min_score and u.lexical >= min_lexical]
    if not ranked:
        return []
    keep_from = max(min_score, KEEP_RATIO * ranked[0].score)
    chosen: list[Unit] = []
    for unit in ranked:
        if len(chosen) >= max_units or unit.score < keep_from:
            break
        if any(repeats(unit.text, c.text) for c in chosen):
            continue
        chosen.append(unit)
    return chosen


def select_reasons(question: str, passages: Sequence[Passage], *, similarity: Similarity | None = None,
                   max_units: int = 5, said: Sequence[str] = ()) -> list[Unit]:  # fmt: skip
    """Sentences to quote for an open question: the best one of each passage (the passages are already
    diverse), no two saying the same, each answering about as well as REASON_KEEP_RATIO of the best. Sentences
    mostly `said` already (by the model's kept sentences) are passed over, so the passage's next best
    sentence can bring its other points."""
    # A unit ending in ";" or ":" is half a thought ("... was not limited to the interests between them;"), and so
    # is one whose first half was cut off by the passage's start.
    ranked = [u for u in score_units(question, passages, similarity)
              if u.score >= REASON_MIN_SCORE and u.lexical >= REASON_MIN_LEXICAL
              and not u.text.rstrip().endswith((";", ":", ",")) and not points_back(u.text)]  # fmt: skip
    if not ranked:
        return []
    floor = max(REASON_MIN_SCORE, REASON_KEEP_RATIO * ranked[0].score)  # set by the best sentence, said or not
    ranked = [u for u in ranked if not said or adds_to(u.text, said)]
    chosen: list[Unit] = []
    for unit in ranked:
        if len(chosen) >= max_units or unit.score < floor:
            break
        if any(c.passage_index == unit.passage_index or repeats(unit.text, c.text) for c in chosen):
            continue
        chosen.append(unit)
    return _followed(chosen, passages, max_units, said)


def _followed(chosen: list[Unit], passages: Sequence[Passage], max_units: int, said: Sequence[str]) -> list[Unit]:
    """Each chosen sentence quoted with the sentence after it (the best one with up to `FIRST_RUN` after it),
    best first, while the budget (in sentences) lasts. The sentence nearest a "why" or "how" question names its
    topic; the text's explanation tends to follow it ("Richard left Messina ... But a storm dispersed the
    fleet."). On the tuning open questions the 8 quotes covered 0.518 of the key points as single sentences,
    0.70 with the next ones (0.63 at the same number of sentences), 0.767 with two after the best one (0.752
    with two after every one)."""
    out: list[Unit] = []
    used = 0
    for n, unit in enumerate(chosen):
        if used >= max_units:
            break
        quote, length = unit, 1
        while length <= (FIRST_RUN if n == 0 else 1) and used + length < max_units:
            longer = with_next(quote, passages[unit.passage_index])
            if longer is None or not _brings_news(longer.text[len(quote.text) :], chosen, said):
                break
            quote, length = longer, length + 1
        out.append(quote)
        used += length
    return out


def _brings_news(sentence: str, chosen: Sequence[Unit], said: Sequence[str]) -> bool:
    """A following sentence is quoted unless another quote repeats it or the model's sentences already say it."""
    return not any(repeats(sentence, other.text) for other in chosen) and (not said or adds_to(sentence, said))


def centrality(vectors: np.ndarray) -> np.ndarray:
    """Cosine of each vector with the mean direction of all: how typical of the whole a passage is."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    mean = unit.mean(axis=0)
    return unit @ (mean / max(float(np.linalg.norm(mean)), 1e-12))


def central(passages: Sequence[Passage], vectors: np.ndarray | None, most: int = 6,
            covered: frozenset[int] = frozenset()) -> list[Unit]:  # fmt: skip
    """The extractive overview: the document's two opening sentences and, from each of the following contiguous
    runs of passages, the first sentence of its most central passage. Runs holding a `covered` passage (one the
    model's own sentences cite) are skipped: that part was summarised already."""
    whole = [i for i, p in enumerate(passages) if _opening(p.text) is not None]
    if not whole:
        return []
    runs = [[i] for i in whole[:LEAD]]  # a document's opening states its subject (news leads, abstracts)
    rest = whole[LEAD:]
    if vectors is not None and len(vectors) == len(passages) and rest and most > LEAD:
        typical = dict(zip(rest, centrality(np.asarray(vectors, dtype=np.float32)[rest]), strict=True))
        bounds = np.linspace(0, len(rest), min(most - LEAD, len(rest)) + 1).round().astype(int)
        runs += [sorted(rest[lo:hi], key=lambda i: -typical[i]) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    chosen = [run[0] for run in runs if run and not covered.intersection(run)]
    return [Unit(i, passages[i].text[s:e], s, e) for i in chosen if (span := _opening(passages[i].text))
            for s, e in [span]]  # fmt: skip


def _opening(text: str) -> tuple[int, int] | None:
    """The span of a passage's first sentence, unless it is half a thought (ends with ";", ":" or ",")."""
    spans = sentence_spans(text)
    if not spans or text[spans[0][0] : spans[0][1]].rstrip().endswith((";", ":", ",")):
        return None
    return spans[0]


def adds_to(text: str, said: Sequence[str], share: float = 0.5) -> bool:
    """True when at least `share` of `text`'s content words are in none of the sentences already `said`: a
    passage sentence the model cited but only half used still brings its other points (half: hand-set, 8aa7f8f)."""
    stems = set(content_stems(text))
    have = {t for sentence in said for t in content_stems(sentence)}
    return bool(stems) and len(stems - have) / len(stems) >= share


def repeats(a: str, b: str) -> bool:
    """Two sentences saying nearly the same: the article repeats a paragraph almost word for word, and quoting
    both adds nothing."""
    return near_duplicate(set(content_stems(a)), set(content_stems(b)), QUOTE_JACCARD)
