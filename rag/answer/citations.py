"""Citation markers: parse, strip, number, render; and cutting a streamed reply into sentences with their markers.

Invariants every answer leaves here with: markers are numbered 1..n in order of first appearance with no
gaps; each number maps to exactly one retrieved passage (and each passage to one number); a marker pointing
at no passage is removed; `Citation.text == source_text[start:end]` because it is the retrieved Passage itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.text import SENTENCE_END
from rag.types import Citation, Passage

# [1]  [1, 2]  [1,2,3]  [12]  and the model's habit [Passage 2] / [source 1]. At most 3 digits: "[2016]" is a year.
MARKER = re.compile(r"\[\s*(?:(?:passage|source|doc)\s*)?(\d{1,3}(?:\s*[,;]\s*(?:(?:passage|source|doc)\s*)?\d{1,3})*)\s*\]", re.I)
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([.,;:!?])")
_MULTI_SPACE = re.compile(r"[ \t]{2,}")


def marker_numbers(text: str) -> list[int]:
    """Every number referenced by a marker, in order of appearance (repeats kept)."""
    return [int(n) for m in MARKER.finditer(text) for n in re.findall(r"\d+", m.group(1))]


def strip_markers(text: str) -> str:
    """The text without any marker (nor one formed by removing another: "[3[0]]"), spaces tidied."""
    while MARKER.search(text):
        text = MARKER.sub("", text)
    return _tidy(text)


def _tidy(text: str) -> str:
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _MULTI_SPACE.sub(" ", text).strip()


def _key(p: Passage) -> tuple[str, int, int]:
    return (p.source, p.start, p.end)


@dataclass
class Numbering:
    """Assigns final numbers to passages by first appearance; shared across the sentences of one answer."""

    passages: list[Passage]

    def __init__(self) -> None:
        self.passages = []
        self._numbers: dict[tuple[str, int, int], int] = {}

    def number(self, passage: Passage) -> int:
        key = _key(passage)
        if key not in self._numbers:
            self.passages.append(passage)
            self._numbers[key] = len(self.passages)
        return self._numbers[key]

    def citations(self) -> list[Citation]:
        return [
            Citation(i, p.source, p.text, p.start, p.end, document=p.document, title=p.title, page=p.page)
            for i, p in enumerate(self.passages, 1)
        ]


def render_sentence(sentence: str, passages: Sequence[Passage], numbering: Numbering) -> str:
    """A claim followed by the final markers of the passages that support it. A quote's own bracketed numbers
    (an encyclopedia's footnotes, "data,[8] and") are removed: in the answer they would read as citations."""
    if MARKER.search(sentence):
        sentence = strip_markers(sentence)
    finals = list(dict.fromkeys(numbering.number(p) for p in passages))
    marks = "".join(f"[{n}]" for n in finals)
    return f"{sentence} {marks}" if marks else sentence


# rag.text's sentence end, plus the citation markers that follow it on the same line, is complete once more
# text follows; a line break completes a sentence at once. Waiting for the next non-space character keeps
# "... West. [2]" together. Markers attach only on the same line: a streamed line break can't know what
# follows, so one across it would split differently depending on where the stream was cut.
_BOUNDARY = re.compile(rf"{SENTENCE_END}(?:[ \t]*\[[^\]\n]{{1,40}}\])*(?=\s+[^\s\[])|\n+")
# A list item's number, alone or with the markers the model puts before the item's text ("1. [3] Turkey's ...").
_LIST_NUMBER = re.compile(r"\d{1,2}[.)](?:[ \t]*\[[^\]\n]{1,40}\])*")
_FINISHED = re.compile(rf"(?:{SENTENCE_END}|\])\s*$")


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


def unfinished(text: str) -> bool:
    """Text that ends neither a sentence nor a citation: a reply cut off by the token limit ("... rather than an")."""
    return not _FINISHED.search(text)
