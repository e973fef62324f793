"""`read_document`: one entry point for a URL or a file of any supported format.

The format of a file is decided by its first bytes where they are unambiguous (PDF, zip) and by its suffix
otherwise; a file whose suffix promises a binary format it doesn't have is reported as damaged by that
format's reader. A URL is read as HTML, or as a PDF when the server says it serves one (papers and
reports are often linked as PDFs); any other content type is refused.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from ..errors import SourceError
from .extracted import ExtractedDocument, document_id, page_of
from .htmltext import read_html
from .office import read_docx, read_epub
from .pdf import read_pdf
from .plain import read_markdown, read_text
from .web import fetch_url

__all__ = ["ExtractedDocument", "detect_format", "document_id", "page_of", "read_document"]

SUFFIX_FORMATS = {
    ".pdf": "pdf",
    ".epub": "epub",
    ".docx": "docx",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".txt": "text",
    ".text": "text",
}
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
SUPPORTED = "PDF, EPUB, DOCX, HTML, Markdown or plain text"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _zip_kind(data: bytes) -> str | None:
    """ "docx" or "epub" from the archive's member names (read from the central directory only)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, EOFError):
        return None
    if "word/document.xml" in names:
        return "docx"
    return "epub" if "META-INF/container.xml" in names else None


def detect_format(data: bytes, suffix: str, name: str) -> str:
    """The reader to use for a file's bytes: magic bytes first, then the suffix, then a text check."""
    claimed = SUFFIX_FORMATS.get(suffix.lower())
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        kind = claimed if claimed in ("docx", "epub") else _zip_kind(data)
        if kind:
            return kind
        raise SourceError(f"{name}: is a zip archive that is neither a DOCX nor an EPUB; use {SUPPORTED}.")
    if claimed:
        return claimed
    if _looks_like_html(data):
        return "html"
    if b"\x00" in data[:8192]:
        raise SourceError(f"{name}: this file type ({suffix or 'no extension'}) is not supported; use {SUPPORTED}.")
    return "text"  # an unknown suffix with text inside (.rst, .csv, no extension) is read as plain text


def _read_file_bytes(path: Path, max_bytes: int) -> bytes:
    name = path.name or str(path)
    if not path.exists():
        raise SourceError(f"{name}: no such file.")
    if not path.is_file():  # directories, FIFOs and devices would fail oddly or block
        raise SourceError(f"{name}: is not a regular file.")
    size = path.stat().st_size
    if size > max_bytes:
        raise SourceError(f"{name}: {size:,} bytes is over the size limit of {max_bytes:,}.")
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # a file growing while we read still can't pass the limit
    except OSError as err:
        raise SourceError(f"{name}: can't be read ({err.strerror or err}).") from None
    if len(data) > max_bytes:
        raise SourceError(f"{name}: is over the size limit of {max_bytes:,} bytes.")
    if not data.strip():
        raise SourceError(f"{name}: is empty.")
    return data


def read_file(path: Path, *, max_bytes: int) -> ExtractedDocument:
    """A local file of any supported format; `source` is its file name."""
    data = _read_file_bytes(path, max_bytes)
    name = path.name
    fmt = detect_format(data, path.suffix, name)
    if fmt == "pdf":
        return read_pdf(data, name=name)
    if fmt == "docx":
        return read_docx(data, name=name)
    if fmt == "epub":
        return read_epub(data, name=name)
    if fmt == "html":
        return read_html(data, name=name, fmt="html")
    if fmt == "markdown":
        return read_markdown(data, name=name)
    return read_text(data, name=name)


def read_url(url: str, *, max_bytes: int, timeout: float, allow_private: bool) -> ExtractedDocument:
    """A web page (format "url") or a PDF served at a URL (format "pdf"); `source` is the URL as given."""
    fetched = fetch_url(url, max_bytes=max_bytes, timeout=timeout, allow_private=allow_private)
    ctype = fetched.content_type
    if ctype == "application/pdf" or (not ctype and fetched.body.startswith(b"%PDF-")):
        return read_pdf(fetched.body, name=url)
    if ctype in HTML_TYPES or (not ctype and _looks_like_html(fetched.body)):
        if not fetched.body.strip():
            raise SourceError(f"{url}: the page is empty.")
        return read_html(fetched.body, name=url, fmt="url", url=fetched.url)
    raise SourceError(f"{url}: serves {ctype or 'an unknown content type'}, not a web page (HTML) or a PDF.")


def read_document(path_or_url: str | Path, *, max_bytes: int, timeout: float, allow_private: bool) -> ExtractedDocument:
    """Read a URL (http/https) or a local file into plain text with page and section offsets.

    Every failure is a `SourceError` whose message names the document and is safe to show a user.
    `timeout` bounds a URL fetch overall; `allow_private` permits URLs on loopback/private networks.
    """
    if isinstance(path_or_url, str) and _URL.match(path_or_url.strip()):
        return read_url(path_or_url.strip(), max_bytes=max_bytes, timeout=timeout, allow_private=allow_private)
    return read_file(Path(path_or_url), max_bytes=max_bytes)
