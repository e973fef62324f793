"""Pure helpers for the Documents panel: labels, sizes, the "Ask about" selection, upload names, URL policy.

No Streamlit here (the app draws the panel), so every function is unit-tested directly. Titles, sources and
messages are data: they come back Markdown-escaped where they are meant for `st.markdown`/`st.caption`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from rag.types import Document
from ui.render import escape_markdown

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
FORMATS = {"url": "web page", "html": "HTML", "pdf": "PDF", "epub": "EPUB", "docx": "Word", "markdown": "Markdown",
           "text": "text"}  # fmt: skip
UPLOAD_TYPES = ("pdf", "epub", "docx", "html", "htm", "md", "markdown", "txt", "text")
_UNSAFE_NAME = re.compile(r"[^\w.\- ()+,]+")
_URL = re.compile(r"^https?://", re.IGNORECASE)


def size_label(chars: int) -> str:
    """'812 characters', '12.3k characters', '1.4M characters'."""
    if chars < 1000:
        return f"{chars:,} characters"
    if chars < 1_000_000:
        return f"{chars / 1000:.1f}k characters"
    return f"{chars / 1_000_000:.1f}M characters"


def source_label(source: str) -> str:
    """Where a document came from, for people: a URL or 'pasted: …' as given, a file by its name."""
    if _URL.match(source) or source.startswith("pasted:"):
        return source
    return Path(source).name or source


def details(doc: Document) -> str:
    """One line under a document's title: 'PDF · two-pages.pdf · 2.1k characters · 4 passages · 2 pages'."""
    parts = [FORMATS.get(doc.format, doc.format), source_label(doc.source), size_label(doc.chars),
             f"{doc.passages} passage{'s' if doc.passages != 1 else ''}"]  # fmt: skip
    if doc.pages:
        parts.append(f"{doc.pages} page{'s' if doc.pages != 1 else ''}")
    if doc.author:
        parts.append(f"by {doc.author}")
    return escape_markdown(" · ".join(parts))


def title_label(doc: Document, limit: int = 60) -> str:
    """The title for a selector option (plain text: widgets don't render Markdown in options)."""
    title = " ".join(doc.title.split()) or source_label(doc.source)
    return title if len(title) <= limit else title[: limit - 1] + "…"


def reconcile(selected: Sequence[str], known: Iterable[str], current: Sequence[str]) -> list[str]:
    """The "Ask about" selection after the library changed: removed documents drop out, new ones join
    (you add a document to ask about it), the user's other choices stay. In library order."""
    keep, seen = set(selected), set(known)
    return [d for d in current if d in keep or d not in seen]


def restriction(selected: Sequence[str], current: Sequence[str]) -> list[str] | None:
    """What `documents=` gets: None when every document is chosen (questions go to the whole library)."""
    if set(current) <= set(selected):
        return None
    return [d for d in current if d in set(selected)]


def allow_private(address: str | None) -> bool | None:
    """`allow_private` for `rag.add_document`: None (allowed) when the app listens on this machine only,
    False when other machines can reach it (no address set means every interface)."""
    if address and address.strip().lower() in LOOPBACK:
        return None
    return False


def upload_name(name: str) -> str:
    """A safe file name for an upload, keeping its extension (the readers go by content and extension)."""
    base = Path(name.replace("\\", "/")).name
    cleaned = _UNSAFE_NAME.sub("_", base).strip(" .") or "upload"
    return cleaned[-120:]


def without_dir(message: str, folder: str | Path) -> str:
    """An error message about an upload naming the file, not the temporary folder it was written to."""
    prefix = str(folder).rstrip("/") + "/"
    return message.replace(prefix, "")


def paste_title(title: str, text: str) -> str:
    """The title typed for pasted text, else its first line (shortened), else 'Pasted text'."""
    title = " ".join(title.split())
    if title:
        return title
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return (first[:60] + "…" if len(first) > 60 else first) or "Pasted text"
