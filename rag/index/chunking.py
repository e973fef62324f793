"""Paragraph-aware chunking with exact character offsets.

Every chunk is a `(start, end)` slice of the source, so `source_text[start:end]` is always the passage
text; a passage that spans several paragraphs is the source slice from the first paragraph's start
to the last one's end (the blank lines between them included), never a re-joined string.

The article is a translation with broken paragraphs. Fragments are merged with their neighbours so
each passage reads on its own:
  * a very short paragraph ("It is $100 billion.") belongs to the previous one;
  * a paragraph ending in ";" or without terminal punctuation continues in the next one;
  * a paragraph starting in lower case continues the previous one.
Long units are then split at sentence boundaries so that top-k retrieval stays small.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import math
import re
from dataclasses import dataclass

from rag.text import sentence_spans, trim

# Part of the index identity: changing the rules below must rebuild existing indexes.
CHUNKER_VERSION = "para-merge-v1"

MAX_CHARS = 600  # a unit longer than this is split at sentence boundaries
SHORT_CHARS = 40  # a paragraph shorter than this is a fragment of the previous one

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_TERMINAL = tuple(".!?\"'”’)]…")


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the non-blank paragraphs (separated by blank lines), trimmed of surrounding whitespace."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append((pos, match.start()))
        pos = match.end()
    spans.append((pos, len(text)))
    return [trimmed for s, e in spans if (trimmed := trim(text, s, e)) is not None]


def _continues_next(para: str) -> bool:
    return para.endswith(";") or not para.endswith(_TERMINAL)


def _continues_previous(para: str) -> bool:
    return len(para) < SHORT_CHARS or para[0].islower()


def merge_fragments(
    text: str, spans: list[tuple[int, int]], breaks: Sequence[int] = ()
) -> list[tuple[int, int]]:
    """Join paragraph spans that don't read on their own with their neighbours (see module doc); never across
    a hard break (a page start), so every passage lies on one page and cites it."""
    units: list[tuple[int, int]] = []
    hard = sorted(breaks)
    for start, end in spans:
        para = text[start:end]
        if units:
            prev_start, prev_end = units[-1]
            crosses = bisect.bisect_right(hard, prev_start) != bisect.bisect_right(hard, start)
            if not crosses and (_continues_next(text[prev_start:prev_end]) or _continues_previous(para)):
                units[-1] = (prev_start, end)
                continue
        units.append((start, end))
    return units


def _sentence_pieces(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Sentence spans inside [start, end); pieces still longer than max_chars are cut at whitespace.

    A unit's line breaks are not sentence ends: merging put them inside sentences broken across paragraphs."""
    out: list[tuple[int, int]] = []
    for s, e in sentence_spans(text, start, end, line_breaks=False):
        out.extend(_hard_split(text, s, e, max_chars))
    return out


def _hard_split(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut a run-on sentence into pieces of at most max_chars, preferring a space."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + max_chars // 2, start + max_chars)
        if cut <= start:
            cut = start + max_chars
        trimmed = trim(text, start, cut)
        if trimmed:
            pieces.append(trimmed)
        start = cut
    trimmed = trim(text, start, end)
    if trimmed:
        pieces.append(trimmed)
    return pieces


def split_long(text: str, start: int, end: int, max_chars: int = MAX_CHARS) -> list[tuple[int, int]]:
    """Split one unit into about equal runs of whole sentences, each at most ~max_chars."""
    if end - start <= max_chars:
        return [(start, end)]
    sentences = _sentence_pieces(text, start, end, max_chars)
    # Aim for equal parts so a long paragraph doesn't leave a one-sentence tail without context.
    parts = math.ceil((end - start) / max_chars)
    target = (end - start) / parts
    chunks: list[tuple[int, int]] = []
    cur_start, cur_end = sentences[0]
    for s, e in sentences[1:]:
        too_big = e - cur_start > max_chars
        if too_big or (cur_end - cur_start >= target and e - cur_start > target * 1.15):
            chunks.append((cur_start, cur_end))
            cur_start = s
        cur_end = e
    chunks.append((cur_start, cur_end))
    return chunks


def chunk_text(text: str, max_chars: int = MAX_CHARS, breaks: Sequence[int] = ()) -> list[Chunk]:
    """Passages of `text` as exact (start, end) slices, fragments merged (not across `breaks`, the offsets
    where pages start), long units split."""
    units = merge_fragments(text, paragraph_spans(text), breaks)
    return [Chunk(s, e) for us, ue in units for s, e in split_long(text, us, ue, max_chars)]
