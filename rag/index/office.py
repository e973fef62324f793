"""DOCX (python-docx) and EPUB (ebooklib + lxml): paragraphs in reading order, headings kept as sections.

Both are zip files: `archive.open_zip` checks them for zip bombs before either library touches them.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from datetime import datetime

import lxml.html
from docx import Document
from docx.table import Table
from docx.text.paragraph import Paragraph
from ebooklib import ITEM_DOCUMENT, epub

from ..errors import SourceError
from .archive import open_zip
from .extracted import ExtractedDocument, TextBuilder

HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
BLOCK_TAGS = HEADING_TAGS | {"p", "li", "pre", "blockquote", "dt", "dd", "td", "th", "figcaption", "div"}


def _docx_blocks(doc: object) -> Iterator[tuple[str, bool]]:
    """(text, is_heading) for each paragraph and table row of the body, in document order."""
    for item in doc.iter_inner_content():  # type: ignore[attr-defined]
        if isinstance(item, Paragraph):
            style = (item.style.name if item.style is not None else "") or ""
            yield item.text, style.startswith("Heading") or style == "Title"
        elif isinstance(item, Table):
            for row in item.rows:
                yield " | ".join(cell.text for cell in row.cells), False


def read_docx(data: bytes, *, name: str) -> ExtractedDocument:
    """Body text of a Word document; paragraphs styled Title or Heading N open sections."""
    with open_zip(data, name=name, kind="DOCX") as archive:
        if "word/document.xml" not in archive.namelist():
            raise SourceError(f"{name}: is not a Word document (no word/document.xml inside).")
    try:
        doc = Document(io.BytesIO(data))
        blocks = list(_docx_blocks(doc))
        props = doc.core_properties
    except Exception:  # KeyError, lxml XMLSyntaxError, zipfile errors on damaged parts
        raise SourceError(f"{name}: the DOCX file is damaged and can't be read.") from None
    builder = TextBuilder()
    for text, heading in blocks:
        builder.add(text, heading=heading)
    if not builder.parts:
        raise SourceError(f"{name}: the document contains no text.")
    created = props.created
    return builder.build(
        title=props.title or name,
        source=name,
        format="docx",
        author=props.author,
        date=created.date().isoformat() if isinstance(created, datetime) else None,
    )


def _leaf_blocks(root: lxml.html.HtmlElement) -> Iterator[lxml.html.HtmlElement]:
    """Block elements holding no other block element, so nested markup (li > p) is not read twice."""
    for element in root.iter(*BLOCK_TAGS):
        if not any(child.tag in BLOCK_TAGS for child in element.iterdescendants()):
            yield element


def _add_chapter(builder: TextBuilder, content: bytes) -> None:
    if not content.strip():
        return
    root = lxml.html.document_fromstring(content)
    for junk in root.xpath("//script | //style | //head"):
        junk.drop_tree()
    for element in _leaf_blocks(root):
        builder.add(element.text_content(), heading=element.tag in HEADING_TAGS)


def _dc(book: epub.EpubBook, field: str) -> str | None:
    values = book.get_metadata("DC", field)
    return str(values[0][0]) if values and values[0][0] else None


def read_epub(data: bytes, *, name: str) -> ExtractedDocument:
    """The chapters of an e-book in spine (reading) order; chapter headings open sections."""
    open_zip(data, name=name, kind="EPUB").close()
    builder = TextBuilder()
    try:
        with warnings.catch_warnings():  # ebooklib warns about its own deprecated options on every read
            warnings.simplefilter("ignore")
            book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
        for idref, _linear in book.spine:
            item = book.get_item_with_id(idref)
            # The navigation document repeats the table of contents: indexing it would duplicate every heading.
            if item is not None and item.get_type() == ITEM_DOCUMENT and not isinstance(item, epub.EpubNav):
                _add_chapter(builder, item.get_content())
    except Exception:  # EpubException, KeyError for missing parts, lxml errors on broken chapters
        raise SourceError(f"{name}: the EPUB file is damaged and can't be read.") from None
    if not builder.parts:
        raise SourceError(f"{name}: the e-book contains no text.")
    return builder.build(
        title=_dc(book, "title") or name,
        source=name,
        format="epub",
        author=_dc(book, "creator"),
        date=_dc(book, "date"),
    )
