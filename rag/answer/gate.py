"""Refusal decisions that don't need a model: before generation (is the question covered by the retrieved
passages at all?) and after it (does the answer have the shape the question asks for?).

A refusal must not be the easy way out, so each rule targets a specific kind of unanswerable question:
names or numbers found in no passage ("Brazil", "FIFA", "2018"), questions whose meaningful words mostly
appear nowhere ("population", "recipe"), and quantity questions answered without any new quantity.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answer.support import question_coverage
from rag.answer.terms import numbers

MIN_COVERAGE = 0.6
_QUANTITY = re.compile(r"^\s*how\s+(much|many|long|large|big|far|old)\b|\bwhat\s+(percentage|amount|number)\b", re.I)
_YEAR = re.compile(r"^(1[89]|20)\d\d$")
_WHEN = re.compile(r"^\s*(when|what year|in what year|which year)\b", re.I)


def refusal_before(question: str, passage_texts: Sequence[str], main_names: frozenset[str]) -> str | None:
    """A reason to refuse without generating, or None. Reasons are for logs and tests, not for users."""
    cov = question_coverage(question, passage_texts, main_names)
    if cov.missing_names:
        return f"not in the passages: {', '.join(cov.missing_names)}"
    if cov.ratio < MIN_COVERAGE:
        return f"question terms mostly absent ({cov.ratio:.2f}): {', '.join(cov.missing_terms)}"
    return None


def fits_question(question: str, answer_text: str) -> bool:
    """Quantity questions need a quantity that the question didn't already contain (a year is not an amount);
    "when" questions need a date-like number. Other questions pass."""
    new = numbers(answer_text) - numbers(question)
    if _QUANTITY.search(question):
        return any(not _YEAR.match(n) for n in new)
    if _WHEN.search(question):
        return bool(new) or bool(re.search(r"\b(January|February|March|April|May|June|July|August|September|"
                                           r"October|November|December)\b", answer_text))
    return True
