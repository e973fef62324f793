"""Extractive answering: quote the retrieved sentences that best answer the question, verbatim.

Used as a provider on its own (no generator at all) and as the fallback when a model is unreachable or its
answer fails the checks. Quoted units are exact slices of the passage text, so they are true to their passage
by construction; the work here is choosing units that answer the question.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.answer.terms import content_stems, numbers, stem_in
from rag.text import near_duplicate, sentence_spans
from rag.types import Passage

QUOTE_JACCARD = 0.7  # content-stem overlap above which two quoted sentences say the same
MIN_LEXICAL = 0.3  # share of the question's (idf-weighted) words a quoted sentence must hold
# A sentence scorer by meaning: (question, sentences) -> cosine similarities. Optional; lexical alone works.
Similarity = Callable[[str, Sequence[str]], Sequence[float]]

_NUMERIC_QUESTION = re.compile(r"^\s*(how (much|many|large|big|long)|what (year|percentage|share|amount))\b", re.I)
# Units that only make sense with the sentence before them ("It is $100 billion.", "Such as ...", "to an ...").
_CONTINUATION = re.compile(r"^(?:[a-z]|It\b|Such as\b|All are\b|This (?:is|was|result)\b)")


@dataclass(frozen=True)
class Unit:
    """A quotable span of a retrieved passage: `passage.text[start:end] == text`."""

    passage_index: int
    text: str
    start: int
    end: int
    score: float = 0.0
    lexical: float = 0.0  # share of the question's (idf-weighted) terms in the unit


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
    """`unit` extended over the sentence that follows it in its passage (one exact slice), or None at the
    passage's end."""
    after = next((u for u in units([passage]) if u.start >= unit.end), None)
    if after is None:
        return None
    return Unit(unit.passage_index, passage.text[unit.start : after.end], unit.start, after.end, unit.score,
                unit.lexical)  # fmt: skip


# The open prompt clips each passage's excerpt ("... along with Russia's approval of ..."), and the model may copy
# the cut text, dots and all.
_CLIPPED = re.compile(r"\s*(?:\.\.\.|…)$")


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


def score_units(
    question: str, passages: Sequence[Passage], similarity: Similarity | None = None
) -> list[Unit]:
    """Every unit scored for how well it answers `question` (0..~1.3), best first."""
    candidates = units(passages)
    if not candidates:
        return []
    stems = [set(content_stems(u.text)) for u in candidates]
    terms = list(dict.fromkeys(content_stems(question)))
    weights = _idf(terms, stems)
    total = sum(weights.values()) or 1.0
    dense = list(similarity(question, [u.text for u in candidates])) if similarity else None
    wants_number = bool(_NUMERIC_QUESTION.match(question))
    scored: list[Unit] = []
    for k, (unit, unit_stems) in enumerate(zip(candidates, stems, strict=True)):
        lexical = sum(w for t, w in weights.items() if stem_in(t, unit_stems)) / total
        score = lexical if dense is None else 0.5 * lexical + 0.5 * _rescale(dense[k])
        if wants_number:
            score += 0.2 if numbers(unit.text) else -0.2
        score += 0.05 / (1 + unit.passage_index)  # retrieval rank breaks ties
        scored.append(Unit(unit.passage_index, unit.text, unit.start, unit.end, score, lexical))
    return sorted(scored, key=lambda u: -u.score)


def _rescale(cosine: float) -> float:
    # e5 cosines crowd into 0.70-0.90; spread that range over 0..1.
    return min(1.0, max(0.0, (cosine - 0.72) / 0.16))


def select(
    question: str,
    passages: Sequence[Passage],
    *,
    min_score: float = 0.34,
    min_lexical: float = MIN_LEXICAL,
    max_units: int = 3,
    similarity: Similarity | None = None,
) -> list[Unit]:
    """The units to quote, best first, from distinct passages where possible; [] when none is good enough."""
    # Meaning alone finds a sentence "about" anything; the question's own words must be there too.
    ranked = [u for u in score_units(question, passages, similarity) if u.score >= min_score and u.lexical >= min_lexical]
    if not ranked:
        return []
    keep_from = max(min_score, 0.65 * ranked[0].score)
    chosen: list[Unit] = []
    for unit in ranked:
        if len(chosen) >= max_units or unit.score < keep_from:
            break
        if any(repeats(unit.text, c.text) for c in chosen):
            continue
        chosen.append(unit)
    return chosen


def adds_to(text: str, said: Sequence[str], share: float = 0.5) -> bool:
    """True when at least `share` of `text`'s content words are in none of the sentences already `said`: a
    passage sentence the model cited but only half used still brings its other points."""
    stems = set(content_stems(text))
    have = {t for sentence in said for t in content_stems(sentence)}
    return bool(stems) and len(stems - have) / len(stems) >= share


def repeats(a: str, b: str) -> bool:
    """Two sentences saying nearly the same: the article repeats a paragraph almost word for word, and quoting
    both adds nothing."""
    return near_duplicate(set(content_stems(a)), set(content_stems(b)), QUOTE_JACCARD)
