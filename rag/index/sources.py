"""Turn paths and URLs into library documents: the extracted text citations point into, plus what it is.

Plain text files are kept byte for byte (only a BOM is dropped) so offsets match the file a user opens;
every other format goes through its reader in `rag.index.documents`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.config import PROJECT_DIR, Settings
from rag.errors import SourceError
from rag.index.documents import detect_format, document_id, page_of, read_file, read_url
from rag.index.extracted import ExtractedDocument
from rag.index.plain import decode_text
from rag.types import Document

_URL_SCHEMES = ("http://", "https://")
MAX_TITLE = 120


@dataclass(frozen=True)
class LibraryDoc:
    """A document as the index stores it: id, extracted text and metadata, and when it was added."""

    id: str
    doc: ExtractedDocument
    added: str

    def page(self, offset: int) -> int | None:
        return page_of(self.doc, offset)

    def record(self, passages: int) -> Document:
        d = self.doc
        return Document(self.id, d.title, d.source, d.format, self.added, len(d.text), passages, len(d.pages),
                        d.author, d.date)  # fmt: skip

    def metadata(self, order: int) -> dict[str, Any]:
        """Chroma metadata (str/int values only; None is stored as "")."""
        d = self.doc
        return {"source": d.source, "order": order, "id": self.id, "title": d.title, "format": d.format,
                "added": self.added, "author": d.author or "", "date": d.date or "",
                "pages": json.dumps(d.pages), "sections": json.dumps(d.sections)}  # fmt: skip


def from_metadata(text: str, meta: dict[str, Any]) -> LibraryDoc:
    """The inverse of `LibraryDoc.metadata`; builds made before documents had ids get one from their text."""
    doc = ExtractedDocument(
        text=text, title=meta.get("title") or meta["source"], source=meta["source"], format=meta.get("format", "text"),
        author=meta.get("author") or None, date=meta.get("date") or None,
        pages=tuple(json.loads(meta.get("pages", "[]"))),
        sections=tuple((int(s), str(h)) for s, h in json.loads(meta.get("sections", "[]"))),
    )  # fmt: skip
    return LibraryDoc(meta.get("id") or document_id(doc), doc, meta.get("added", ""))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def source_id(path: Path) -> str:
    """How a file is named in passages: relative to the project when inside it, else absolute."""
    resolved = path.expanduser().resolve()
    try:
        return resolved.relative_to(PROJECT_DIR).as_posix()
    except ValueError:
        return resolved.as_posix()


def _check_path(path: Path, max_bytes: int) -> None:
    shown = str(path).encode("utf-8", "replace").decode("utf-8")
    if shown != str(path):  # undecodable bytes in the name (surrogates) can't be stored as its source id
        raise SourceError(f"{shown}: the file name is not valid UTF-8; rename the file.")
    if not path.exists():
        raise SourceError(f"{path}: no such file.")
    if path.is_dir():
        raise SourceError(f"{path}: is a directory, not a document.")
    if not path.is_file():  # a FIFO or device (/dev/zero) reports size 0 and would block or never end
        raise SourceError(f"{path}: is not a regular file.")
    size = path.stat().st_size
    if size > max_bytes:
        raise SourceError(f"{path}: {size:,} bytes is over the limit of {max_bytes:,} (RAG_MAX_SOURCE_BYTES).")


def _title_of_text(text: str, path: Path) -> str:
    first = text.strip().split("\n", 1)[0].strip()
    if first and len(first) <= MAX_TITLE and not first.endswith((".", ",", ";", ":")):
        return first
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize() or path.name


def read_path(path: Path, max_bytes: int) -> ExtractedDocument:
    """One local file of any supported format; `source` is its project-relative or absolute path."""
    _check_path(path, max_bytes)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SourceError(f"{path}: can't be read ({err.strerror or err}).") from None
    if detect_format(data, path.suffix, str(path)) != "text":
        return dataclasses.replace(read_file(path, max_bytes=max_bytes), source=source_id(path))
    text = decode_text(data, str(path))
    if not text.strip():
        raise SourceError(f"{path}: is empty.")
    return ExtractedDocument(text=text, title=_title_of_text(text, path), source=source_id(path), format="text")


def read_one(path_or_url: str | Path, settings: Settings, *, allow_private: bool) -> LibraryDoc:
    """A URL (http/https) or a file, read into a library document, or a SourceError naming it."""
    if isinstance(path_or_url, str) and path_or_url.strip().lower().startswith(_URL_SCHEMES):
        doc = read_url(path_or_url.strip(), max_bytes=settings.max_source_bytes, timeout=settings.fetch_timeout,
                       allow_private=allow_private)  # fmt: skip
    elif isinstance(path_or_url, str) and "://" in path_or_url[:12]:
        raise SourceError(f"{path_or_url}: only http and https addresses can be added.")
    else:
        doc = read_path(Path(path_or_url), settings.max_source_bytes)
    return LibraryDoc(document_id(doc), doc, now())


def from_text(text: str, title: str) -> LibraryDoc:
    """Pasted text as a document (kept as given, like a text file)."""
    if not isinstance(text, str) or not text.strip():
        raise SourceError("The pasted text is empty.")
    name = " ".join(str(title).split())[:MAX_TITLE] or "Pasted text"
    doc = ExtractedDocument(text=text.strip(), title=name, source=f"pasted: {name}", format="text")
    return LibraryDoc(document_id(doc), doc, now())


def read_sources(paths: Sequence[str | Path], settings: Settings) -> tuple[list[LibraryDoc], list[str]]:
    """Readable documents (in the given order, the same content once) and one message per unusable source."""
    docs: dict[str, LibraryDoc] = {}
    errors: list[str] = []
    for raw in paths:
        try:
            one = read_one(raw, settings, allow_private=True)  # the caller named these paths itself
        except SourceError as err:
            errors.append(str(err))
            continue
        docs.setdefault(one.id, one)
    return list(docs.values()), errors
