"""Checking a generated answer sentence by sentence, while it streams.

The model's text is cut into sentences as soon as each one is complete (its trailing markers included);
each sentence is checked against the passages it cites, re-attributed to the passage that supports it when
its own citation fails ("repair"), or dropped. Only checked sentences are shown, so what streams is already
verified; the numbering is final from the first sentence on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.citations import marker_numbers, strip_markers
from rag.answer.extractive import clipped, completed
from rag.answer.support import SupportChecker
from rag.answer.terms import content_stems
from rag.text import SENTENCE_END
from rag.types import Passage

# rag.text's sentence end, plus the citation markers that follow it on the same line, is complete once more
# text follows; a line break completes a sentence at once. Waiting for the next non-space character keeps
# "... West. [2]" together. Markers attach only on the same line: a streamed line break can't know what
# follows, so one across it would split differently depending on where the stream was cut.
_BOUNDARY = re.compile(rf"{SENTENCE_END}(?:[ \t]*\[[^\]\n]{{1,40}}\])*(?=\s+[^\s\[])|\n+")
REATTRIBUTE_MARGIN = 0.15
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
# A list item's number, alone or with the markers the model puts before the item's text ("1. [3] Turkey's ...").
_LIST_NUMBER = re.compile(r"\d{1,2}[.)](?:[ \t]*\[[^\]\n]{1,40}\])*")
# The model saying it can't tell. Only phrasings about the sources, so "Erdogan does not look at Russia..."
# (a claim) is never mistaken for one.
_CANT_TELL = re.compile(
    r"\b(?:passages?|article|text|context|sources?|information provided)\b[^.]{0,40}?"
    r"(?:\bnot\b|n't|\bno\b)[^.]{0,30}?\b(?:mention|say|state|specif|provide|contain|include|discuss|cover|"
    r"information|detail|answer)"
    r"|\bno (?:information|mention|details?)\b|\b(?:cannot|can't|unable to)\s+(?:be\s+)?(?:determin|answer|find|tell)",
    re.IGNORECASE,
)


def split_complete(buffer: str) -> tuple[list[str], str]:
    """Complete sentences in `buffer` (markers included) and the unfinished rest."""
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(buffer):
        piece = buffer[start : match.end()].strip()
        if _LIST_NUMBER.fullmatch(piece):
            continue  # "1. [3]" opens a list item: its number and markers belong to the sentence that follows
        if piece:
            sentences.append(piece)
        start = match.end()
    return sentences, buffer[start:]


_FINISHED = re.compile(rf"(?:{SENTENCE_END}|\])\s*$")


def unfinished(text: str) -> bool:
    """Text that ends neither a sentence nor a citation: a reply cut off by the token limit ("... rather than an")."""
    return not _FINISHED.search(text)


def says_cant_tell(sentence: str) -> bool:
    return bool(_CANT_TELL.search(sentence))


@dataclass(frozen=True)
class Checked:
    """A sentence that passed: its claim text (no markers) and the passages that support it."""

    claim: str
    passages: tuple[Passage, ...]
    repaired: bool = False


def check_sentence(
    sentence: str, prompt_passages: Sequence[Passage], checker: SupportChecker
) -> Checked | None:
    """The checked form of one generated sentence, or None to drop it.

    Markers are the prompt's numbers (1-based into `prompt_passages`); numbers outside it are ignored.
    """
    claim = _BULLET.sub("", strip_markers(sentence)).strip()
    # A line ending in a colon introduces a list ("The author makes several points:"); it states nothing.
    if len(content_stems(claim)) < 2 or says_cant_tell(claim) or claim.endswith(":"):
        return None
    cited = _cited(sentence, prompt_passages)
    results = [(p, checker.check(claim, p.text)) for p in cited]
    supporting = tuple(p for p, r in results if r.supported)
    if not supporting and len(cited) > 1 and checker.check(claim, "\n".join(p.text for p in cited)).supported:
        return Checked(claim, cited)  # a sentence joining two facts, one from each cited passage
    best = checker.best(claim, [p.text for p in prompt_passages])
    if best is None:
        return Checked(claim, supporting) if supporting else None
    best_passage, best_support = prompt_passages[best[0]], best[1]
    cited_overlap = max((r.overlap for _, r in results if r.supported), default=-1.0)
    # Keep the model's citation unless another passage plainly fits better (the model often cites [1]).
    if supporting and (best_passage in supporting or best_support.overlap < cited_overlap + REATTRIBUTE_MARGIN):
        return Checked(claim, _with_complement(claim, supporting, prompt_passages, checker))
    return Checked(claim, _with_complement(claim, (best_passage,), prompt_passages, checker), repaired=True)


def whole_copy(checked: Checked | None, shown: Sequence[Passage]) -> Checked | None:
    """A checked sentence that copied an excerpt up to its cut ("... along with Russia's approval of...") becomes
    the whole passage sentence it copied, an exact slice; one that ends in the cut's dots but is no copy is left
    out, as it stops mid-thought."""
    if checked is None or not clipped(checked.claim):
        return checked
    whole = completed(checked.claim, shown)
    return None if whole is None else Checked(whole[1], (whole[0],))


def _with_complement(
    claim: str, chosen: tuple[Passage, ...], pool: Sequence[Passage], checker: SupportChecker
) -> tuple[Passage, ...]:
    """Add the passage that also supports the claim and holds two or more of its words the chosen ones lack:
    "the war pushed Ankara and Moscow to deepen ties" draws on two passages, and the reader needs both."""
    have = set().union(*(checker.terms_found(claim, p.text) for p in chosen))
    joined = "\n".join(p.text for p in chosen)
    for p in pool:
        if p in chosen or not checker.check(claim, joined + "\n" + p.text).supported:
            continue
        if len(checker.terms_found(claim, p.text) - have) >= 2:
            return (*chosen, p)
    return chosen


def _cited(sentence: str, prompt_passages: Sequence[Passage]) -> tuple[Passage, ...]:
    found: list[Passage] = []
    for n in marker_numbers(sentence):
        if 1 <= n <= len(prompt_passages) and prompt_passages[n - 1] not in found:
            found.append(prompt_passages[n - 1])
    return tuple(found)

