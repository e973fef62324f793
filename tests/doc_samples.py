"""Small real documents for the reader tests and tools/measure_readers.py, written with the same libraries
the readers use (python-docx, ebooklib, pypdf), plus damaged variants of them."""

from __future__ import annotations

import zipfile
from pathlib import Path

from docx import Document
from ebooklib import epub
from pypdf import PdfReader, PdfWriter

DOCS = Path(__file__).resolve().parent / "data" / "docs"
NEWS_HTML = DOCS / "news.html"
TWO_PAGE_PDF = DOCS / "two-pages.pdf"  # printed by chromium from two pages of HTML (see tests/data/docs/README.md)
ARTICLE_MD = DOCS / "article.md"

DOCX_HEADINGS = ("Quarterly field report", "Soil samples", "Next steps")
EPUB_CHAPTERS = ("The lighthouse keeper", "The storm")


def make_docx(path: Path) -> Path:
    """A Word file with a title, two headings, paragraphs and a table."""
    doc = Document()
    doc.core_properties.title = "Field report Q3"
    doc.core_properties.author = "Ines Varga"
    doc.add_heading(DOCX_HEADINGS[0], level=0)
    doc.add_paragraph("The team visited eleven farms along the river between July and September.")
    doc.add_heading(DOCX_HEADINGS[1], level=1)
    doc.add_paragraph("Nitrate levels in the soil samples fell by a fifth compared with last year.")
    table = doc.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, (("farm", "nitrate"), ("Hollow Creek", "12 mg/kg")), strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    doc.add_heading(DOCX_HEADINGS[2], level=2)
    doc.add_paragraph("Sampling will resume in spring once the fields have thawed.")
    doc.save(str(path))
    return path


def make_epub(path: Path) -> Path:
    """An EPUB 3 book with two chapters in spine order."""
    book = epub.EpubBook()
    book.set_identifier("sample-book-001")
    book.set_title("Tales of the Coast")
    book.set_language("en")
    book.add_author("Tomas Lind")
    bodies = (
        "<p>Every night the keeper climbed one hundred and twelve steps to light the lamp.</p>"
        "<ul><li><p>He logged every passing ship in a green ledger.</p></li></ul>",
        "<p>In the winter of 1911 a storm tore the roof from the keeper's cottage.</p>",
    )
    chapters = []
    for number, (title, body) in enumerate(zip(EPUB_CHAPTERS, bodies, strict=True), start=1):
        chapter = epub.EpubHtml(title=title, file_name=f"chap_{number}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>{title}</h1>{body}</body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(path), book)
    return path


def make_encrypted_pdf(path: Path, password: str = "s3cret") -> Path:
    """The two-page PDF locked with a user password (RC4, which pypdf handles without extra packages)."""
    writer = PdfWriter(clone_from=PdfReader(TWO_PAGE_PDF))
    writer.encrypt(user_password=password, owner_password=password, algorithm="RC4-128")
    writer.write(path)
    return path


def make_blank_pdf(path: Path) -> Path:
    """A valid two-page PDF without any text, like a scan without OCR."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_blank_page(width=595, height=842)
    writer.write(path)
    return path


def make_zip_bomb_docx(path: Path, unpacked_mb: int = 64) -> Path:
    """A real DOCX plus one entry of zeros that deflates about 1000:1 (64 MB from ~64 KB)."""
    make_docx(path)
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("word/media/padding.bin", "w", force_zip64=True) as entry,
    ):
        for _ in range(unpacked_mb):
            entry.write(bytes(1024 * 1024))
    return path


def truncated(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """The first part of a file, as a broken download leaves it."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst
