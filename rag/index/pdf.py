"""PDF text with pypdf, one block per page so page numbers can be given for every cited passage."""

from __future__ import annotations

import io
import logging
from datetime import datetime

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

from ..errors import SourceError
from .extracted import ExtractedDocument, TextBuilder

# pypdf warns (via logging) about every small syntax oddity it repairs; those are not the user's concern.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def _open(data: bytes, name: str) -> PdfReader:
    """A reader with its page tree loaded, or a SourceError for damaged and password-protected files."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # many PDFs are "encrypted" with an empty password
            raise FileNotDecryptedError("password required")
        _ = len(reader.pages)  # the page tree is parsed lazily: fail here rather than mid-way
    except (FileNotDecryptedError, DependencyError):
        raise SourceError(f"{name}: the PDF is password-protected or encrypted; save an unprotected copy.") from None
    except Exception:  # PdfReadError, PdfStreamError, and the KeyError/ValueError that broken objects raise
        raise SourceError(f"{name}: the PDF is damaged or truncated and can't be read.") from None
    return reader


def _pdf_date(reader: PdfReader) -> str | None:
    try:
        created = reader.metadata.creation_date if reader.metadata else None
    except (ValueError, PdfReadError):  # a malformed date string in the info dictionary
        return None
    return created.date().isoformat() if isinstance(created, datetime) else None


SHORT_LINE = 0.7  # a line shorter than this share of the page's typical line ends a paragraph (or is a heading)


def paragraphs(page_text: str) -> list[str]:
    """A page's lines joined back into paragraphs. pypdf returns one line per printed line, so a sentence
    would otherwise be cut wherever the layout wrapped it; a full-width line continues into the next, a short
    one (a paragraph's last line, a heading) or a blank line ends the paragraph. No library does this reflow
    for pypdf's plain-text output, and the quoted passages and sentence checks need whole sentences."""
    lines = [line.strip() for line in page_text.split("\n")]
    widths = sorted(len(line) for line in lines if line)
    typical = widths[len(widths) // 2] if widths else 0
    out: list[str] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        if current and (not line or len(line) < SHORT_LINE * typical):
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out


def read_pdf(data: bytes, *, name: str) -> ExtractedDocument:
    """Every page's text layer; `pages` holds the offset where each page starts."""
    reader = _open(data, name)
    builder = TextBuilder()
    try:
        for page in reader.pages:
            builder.start_page()
            for paragraph in paragraphs(page.extract_text() or ""):
                builder.add(paragraph)
    except Exception:  # a broken content stream on some page
        raise SourceError(f"{name}: the PDF is damaged and its text can't be read.") from None
    if not builder.parts:
        raise SourceError(f"{name}: the PDF has no text layer (scanned?), so there is no text to index.")
    meta = reader.metadata
    return builder.build(
        title=(meta.title if meta else None) or name,
        source=name,
        format="pdf",
        author=meta.author if meta else None,
        date=_pdf_date(reader),
    )
