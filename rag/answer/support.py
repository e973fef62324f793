"""Does a passage support a sentence? And does the retrieved evidence cover a question at all?

The check is lexical and deliberately strict about facts: every number and every name in the sentence must
occur in the cited passage (names the article uses throughout, like "Turkey", are allowed anywhere), and most
of its content words must too. It is the reason a citation can be trusted, so it errs towards dropping.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.terms import content_stems, names, numbers, stem, stem_in

# Phrases the model uses to point at its sources; they carry no claim and must not count against it.
_META = re.compile(
    r"\b(?:according to|as (?:stated|mentioned|noted|described) in|as per|based on)\s+"
    r"(?:the\s+)?(?:passages?|article|text|author|sources?)?\s*(?:\[?\d+\]?)?,?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Support:
    """Outcome of checking one sentence against one passage."""

    supported: bool
    overlap: float
    missing_numbers: tuple[str, ...] = ()
    missing_names: tuple[str, ...] = ()


def strip_meta(sentence: str) -> str:
    return _META.sub("", sentence).strip()


class SupportChecker:
    """Checks sentences against passages. `allowed_names` are the article's main names (terms.main_names)."""

    def __init__(self, allowed_names: frozenset[str] = frozenset(), min_overlap: float = 0.6) -> None:
        self.allowed_names = allowed_names
        self.min_overlap = min_overlap

    def check(self, sentence: str, passage_text: str) -> Support:
        claim = strip_meta(sentence)
        passage_numbers = numbers(passage_text)
        missing_numbers = tuple(sorted(n for n in numbers(claim) if n not in passage_numbers))
        passage_stems = set(content_stems(passage_text))
        missing_names = tuple(
            sorted(
                n
                for n in names(claim, first_words=False)
                if n not in self.allowed_names and not stem_in(stem(n), passage_stems)
            )
        )
        overlap = self._overlap(claim, passage_stems)
        ok = not missing_numbers and not missing_names and overlap >= self.min_overlap
        return Support(ok, overlap, missing_numbers, missing_names)

    def _overlap(self, claim: str, passage_stems: set[str]) -> float:
        allowed = {stem(n) for n in self.allowed_names}
        # Main names the passage lacks are neutral ("the two countries" vs "Turkey and Russia").
        found = {s: stem_in(s, passage_stems, anywhere=False) for s in dict.fromkeys(content_stems(claim))}
        terms = [s for s, ok in found.items() if ok or s not in allowed]
        if not terms:
            return 0.0
        return sum(1 for s in terms if found[s]) / len(terms)

    def terms_found(self, sentence: str, passage_text: str) -> set[str]:
        """The sentence's content stems that `passage_text` contains, the article's main names left out (every
        passage has those)."""
        stems = set(content_stems(passage_text))
        common = {stem(n) for n in self.allowed_names}
        return {
            s for s in content_stems(strip_meta(sentence)) if s not in common and stem_in(s, stems, anywhere=False)
        }

    def foreign_names(self, sentence: str, passages: Sequence[str]) -> set[str]:
        """Names in `sentence` found in none of `passages`: the model reaching outside them ("Baku")."""
        stems = set(content_stems("\n".join(passages)))
        return {
            n for n in names(strip_meta(sentence), first_words=False)
            if n not in self.allowed_names and not stem_in(stem(n), stems)
        }

    def best(self, sentence: str, passages: Sequence[str]) -> tuple[int, Support] | None:
        """The passage (index) that supports `sentence` best, or None when none supports it."""
        results = [(i, self.check(sentence, text)) for i, text in enumerate(passages)]
        good = [(i, r) for i, r in results if r.supported]
        if not good:
            return None
        return max(good, key=lambda item: (item[1].overlap, -item[0]))


@dataclass(frozen=True)
class Coverage:
    """How much of a question the retrieved passages speak about."""

    ratio: float  # share of the question's content terms found in the passages
    missing_terms: tuple[str, ...]
    missing_names: tuple[str, ...]  # names and numbers of the question found nowhere: a strong refusal signal


def question_coverage(question: str, texts: Sequence[str], main_names: frozenset[str] = frozenset()) -> Coverage:
    joined = "\n".join(texts)
    stems = set(content_stems(joined))
    joined_numbers = numbers(joined)
    terms = list(dict.fromkeys(content_stems(question)))
    missing = tuple(s for s in terms if not stem_in(s, stems))
    # Names: any capitalised word of the question, the first one included ("Brazil's GDP?").
    missing_names = [n for n in sorted(names(question, first_words=False)) if stem(n) in missing]
    missing_names += sorted(n for n in numbers(question) if n not in joined_numbers)
    # The article's main names are in every passage: they say nothing about whether the question is covered.
    common = {stem(n) for n in main_names}
    weighed = [s for s in terms if s not in common]
    ratio = 1.0 - len([s for s in missing if s not in common]) / len(weighed) if weighed else 1.0
    return Coverage(ratio, missing, tuple(missing_names))
