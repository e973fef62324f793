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


def read_pdf(data: bytes, *, name: str) -> ExtractedDocument:
    """Every page's text layer; `pages` holds the offset where each page starts."""
    reader = _open(data, name)
    builder = TextBuilder()
    try:
        for page in reader.pages:
            builder.start_page()
            builder.add(page.extract_text() or "")
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
