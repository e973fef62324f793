"""The Documents panel's pure helpers (ui/documents.py) and the document-aware parts of ui/render.py."""

from __future__ import annotations

from rag.types import Answer, Citation, Document
from ui import documents as labels
from ui import render


def _doc(**kw: object) -> Document:
    fields: dict = dict(id="d1", title="Glacier survey report", source="/tmp/rag-upload-x/0/two-pages.pdf",
                        format="pdf", added="2026-01-02T03:04:05+00:00", chars=2_150, passages=4, pages=2,
                        author=None, date=None)  # fmt: skip
    fields.update(kw)
    return Document(**fields)


def test_sizes_and_details() -> None:
    assert labels.size_label(812) == "812 characters"
    assert labels.size_label(12_345) == "12.3k characters"
    assert labels.size_label(1_400_000) == "1.4M characters"
    line = labels.details(_doc())
    assert line == "PDF · two\\-pages\\.pdf · 2\\.1k characters · 4 passages · 2 pages"
    one = labels.details(_doc(format="url", source="https://example.org/a_b", pages=0, passages=1, author="M. O"))
    assert "web page · https\\://example\\.org/a\\_b" in one and "1 passage ·" in one and "page" not in one[-20:]
    assert one.endswith("by M\\. O")


def test_source_label() -> None:
    assert labels.source_label("https://example.org/news") == "https://example.org/news"
    assert labels.source_label("pasted: Notes") == "pasted: Notes"
    assert labels.source_label("data/turkey-russia-article.txt") == "turkey-russia-article.txt"


def test_title_label_shortens_and_falls_back() -> None:
    assert labels.title_label(_doc(title="  A\n title ")) == "A title"
    assert labels.title_label(_doc(title="")) == "two-pages.pdf"
    assert labels.title_label(_doc(title="x" * 100), limit=10) == "x" * 9 + "…"


def test_selection_follows_the_library() -> None:
    # First time: everything is chosen.
    assert labels.reconcile([], [], ["a", "b"]) == ["a", "b"]
    # A new document joins; a deliberate choice (only a) stays; a removed one drops out.
    assert labels.reconcile(["a"], ["a", "b"], ["a", "b", "c"]) == ["a", "c"]
    assert labels.reconcile(["a", "b"], ["a", "b"], ["b"]) == ["b"]
    assert labels.reconcile([], ["a", "b"], ["a", "b"]) == []  # the user emptied it: stays empty
    assert labels.restriction(["b", "a"], ["a", "b"]) is None  # all of them: no restriction
    assert labels.restriction(["b"], ["a", "b"]) == ["b"]
    assert labels.restriction([], ["a"]) == []


def test_private_urls_only_when_listening_on_this_machine() -> None:
    for address in ("127.0.0.1", "localhost", "::1", " LOCALHOST "):
        assert labels.allow_private(address) is None
    for address in ("0.0.0.0", "192.168.1.5", "", None):
        assert labels.allow_private(address) is False


def test_upload_names_are_safe() -> None:
    assert labels.upload_name("two-pages.pdf") == "two-pages.pdf"
    assert labels.upload_name("../../etc/passwd") == "passwd"
    assert labels.upload_name("C:\\Users\\me\\notes (1).md") == "notes (1).md"
    assert labels.upload_name("..") == "upload"
    assert labels.upload_name("a\x00b<>.txt") == "a_b_.txt"
    long = labels.upload_name("x" * 500 + ".pdf")
    assert len(long) == 120 and long.endswith(".pdf")


def test_messages_name_the_file_not_the_temp_folder() -> None:
    msg = "/tmp/rag-upload-ab/0/scan.pdf: has no text layer (a scanned PDF?)."
    assert labels.without_dir(msg, "/tmp/rag-upload-ab/0") == "scan.pdf: has no text layer (a scanned PDF?)."


def test_paste_title() -> None:
    assert labels.paste_title("  My  notes ", "text") == "My notes"
    assert labels.paste_title("", "\n\n  First line here\nsecond") == "First line here"
    assert labels.paste_title("", "y" * 80) == "y" * 60 + "…"
    assert labels.paste_title("", "   ") == "Pasted text"


def test_citation_heading_names_the_document_and_page() -> None:
    paged = Citation(1, "/tmp/x/two-pages.pdf", "retreated forty metres", 120, 160, document="d1",
                     title="Glacier *survey*", page=2)  # fmt: skip
    assert render.cite_heading(paged, None) == "**[1]** Glacier \\*survey\\* · page 2 · characters 120–160"
    text = "First.\n\nSecond paragraph here."
    flat = Citation(2, "data/article.txt", "Second", 8, 14, document="d2", title="")
    assert render.cite_heading(flat, text) == "**[2]** article\\.txt · paragraph 2 of 2 · characters 8–14"
    url = Citation(3, "https://example.org/n", "x", 0, 1, document="d3", title="")
    assert "https\\://example\\.org/n" in render.cite_heading(url, None)


def test_article_marks_pages() -> None:
    text = "Page one text.\n\nPage two text."
    html = render.article_html(text, [], pages=(0, text.index("Page two")))
    assert html.count('class="rag-page"') == 2
    assert html.index('id="page-2"') < html.index("Page two") and html.index('id="page-1"') < html.index("Page one")
    assert 'class="rag-page"' not in render.article_html(text, [])


def test_export_names_title_and_page() -> None:
    cite = Citation(1, "/tmp/x/two-pages.pdf", "forty metres", 5, 17, document="d1", title="Glacier survey", page=2)
    answer = Answer(text="It retreated [1].", citations=[cite], provider="extractive")
    md = render.conversation_markdown([render.Exchange("How far?", answer)], lambda c: None)
    assert '[^1]: "forty metres" (Glacier survey, /tmp/x/two-pages.pdf, page 2 · characters 5–17)' in md
