"""The reader's result, and the one text normalisation every format goes through.

Citations point into `ExtractedDocument.text` by character offset, so the text must be the same for the same
input on every run: each reader hands its blocks (paragraphs, pages, headings) to a `TextBuilder`, which
normalises them with `normalise_text` and records where each page and section starts in the joined text.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

BLOCK_SEPARATOR = "\n\n"

# Invisible characters that only affect layout or hyphenation: dropping them keeps search and quotes stable.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace except a newline (tabs, NBSP, thin spaces, ...)
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class ExtractedDocument:
    """Plain text of one document plus where its pages and sections start (character offsets into `text`)."""

    text: str
    title: str
    source: str
    format: str  # url, html, pdf, epub, docx, markdown or text
    author: str | None = None
    date: str | None = None
    pages: tuple[int, ...] = ()
    sections: tuple[tuple[int, str], ...] = ()


def normalise_text(raw: str) -> str:
    """NFC, `\\n` line ends, no control or invisible characters, single spaces, at most one blank line.

    A pure function of its input (no locale, no heuristics), so re-reading a document gives identical offsets.
    """
    text = unicodedata.normalize("NFC", raw).replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    # Control characters (form feeds from PDFs, stray escapes) would break display; treat them as spaces.
    text = "".join(" " if unicodedata.category(ch) == "Cc" and ch != "\n" else ch for ch in text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


@dataclass
class TextBuilder:
    """Joins normalised blocks with a blank line and remembers page and section start offsets."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    pages: list[int] = field(default_factory=list)
    sections: list[tuple[int, str]] = field(default_factory=list)

    def _next_offset(self) -> int:
        return self.length + (len(BLOCK_SEPARATOR) if self.parts else 0)

    def start_page(self) -> None:
        """The next block begins a new page (a page without text still counts, so numbering matches the file)."""
        self.pages.append(self._next_offset())

    def add(self, raw: str, *, heading: bool = False) -> None:
        """Append one block; a heading block also opens a section named by its text."""
        text = normalise_text(raw)
        if not text:
            return
        offset = self._next_offset()
        if heading:
            self.sections.append((offset, " ".join(text.split())))
        self.parts.append(text)
        self.length = offset + len(text)

    def text(self) -> str:
        return BLOCK_SEPARATOR.join(self.parts)

    def build(
        self, *, title: str, source: str, format: str, author: str | None = None, date: str | None = None
    ) -> ExtractedDocument:
        """The finished document; empty author or date strings become None."""
        # A trailing page without text records an offset one separator past the end; clamp it into the text.
        return ExtractedDocument(
            text=self.text(),
            title=" ".join(normalise_text(title).split()),
            source=source,
            format=format,
            author=normalise_text(author or "") or None,
            date=(date or "").strip() or None,
            pages=tuple(min(p, self.length) for p in self.pages),
            sections=tuple(self.sections),
        )


def page_of(doc: ExtractedDocument, offset: int) -> int | None:
    """The 1-based page holding character `offset`, or None when the format has no pages or it is out of range."""
    if not doc.pages or not 0 <= offset < max(len(doc.text), 1):
        return None
    # bisect_right: an offset equal to a page's start belongs to that page; empty pages share the next start,
    # and the last of them (the one whose text actually starts there) wins.
    return max(bisect.bisect_right(doc.pages, offset), 1)


def document_id(doc: ExtractedDocument) -> str:
    """A stable id from the text alone: the same content added twice (under another name or URL) gets the same id."""
    canonical = " ".join(doc.text.split()).casefold()
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
