"""The document readers of rag.index against real files and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import time
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from docx import Document
from hypothesis import given
from hypothesis import strategies as st

from rag.errors import SourceError
from rag.evaluation.procs import free_port
from rag.index import web
from rag.index.documents import read_document
from rag.index.extracted import ExtractedDocument, document_id, normalise_text, page_of
from tests import doc_samples as samples
from tests.helpers import serve_http

LIMIT = 5_000_000
ARTICLE_PHRASES = (
    "switched on its first tidal energy plant on Friday",
    "twelve underwater turbines at the mouth of the estuary",
    "140 million euros and took four years to build",
    "the tides can be predicted decades ahead",
    "left the main shipping channel open",
    "The council plans a second array",
)
BOILERPLATE_PHRASES = (
    "We use cookies",
    "Accept all cookies",
    "Manage preferences",
    "World news",
    "Sport scores",
    "Subscribe today",
    "Most read",
    "secret lasagne recipe",
    "morning newsletter",
    "GreenDave77",
    "SkepticalSue",
    "winter storm breaks the turbines",
    "Post comment",
    "All rights reserved",
    "Privacy policy",
    "Contact the newsroom",
    "tracking pixel",
)
SCRIPT_ONLY = b"<!DOCTYPE html><html><head><title>App</title></head><body><div id='root'></div><script>render()</script></body></html>"


def read(
    target: str | Path, *, max_bytes: int = LIMIT, timeout: float = 5.0, allow_private: bool = True
) -> ExtractedDocument:
    return read_document(target, max_bytes=max_bytes, timeout=timeout, allow_private=allow_private)


def fails(target: str | Path, *words: str, **kwargs: float | bool) -> str:
    """The SourceError message for `target`; it must contain every one of `words`."""
    with pytest.raises(SourceError) as info:
        read(target, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


# --- a real HTTP server ------------------------------------------------------------------------------------


def _respond(handler: BaseHTTPRequestHandler, status: int, ctype: str, body: bytes, length: bool = True) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", ctype)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _redirect(handler: BaseHTTPRequestHandler, location: str) -> None:
    handler.send_response(302)
    handler.send_header("Location", location)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def _drip(handler: BaseHTTPRequestHandler) -> None:
    """Headers at once, then a few bytes every 0.2 s for 5 s: only an overall deadline stops this."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.end_headers()
    for _ in range(25):
        handler.wfile.write(b"<p>drip</p>")
        handler.wfile.flush()
        time.sleep(0.2)


def _slow(handler: BaseHTTPRequestHandler, delay: float) -> None:
    time.sleep(delay)
    _respond(handler, 200, "text/html", samples.NEWS_HTML.read_bytes())


ROUTES: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {
    "/news": lambda h: _respond(h, 200, "text/html; charset=utf-8", samples.NEWS_HTML.read_bytes()),
    "/moved": lambda h: _redirect(h, "/news"),
    "/loop-a": lambda h: _redirect(h, "/loop-b"),
    "/loop-b": lambda h: _redirect(h, "/loop-a"),
    "/missing": lambda h: _respond(h, 404, "text/html", b"<html><body><p>Not found</p></body></html>"),
    "/broken": lambda h: _respond(h, 500, "text/html", b"<html><body><p>Internal error</p></body></html>"),
    "/slow": lambda h: _slow(h, 3.0),
    "/drip": _drip,
    "/image": lambda h: _respond(h, 200, "image/png", b"\x89PNG\r\n\x1a\n" + bytes(64)),
    "/script-only": lambda h: _respond(h, 200, "text/html", SCRIPT_ONLY),
    "/report": lambda h: _respond(h, 200, "application/pdf", samples.TWO_PAGE_PDF.read_bytes()),
    "/huge": lambda h: _respond(h, 200, "text/html", b"<p>" + b"x" * 200_000 + b"</p>"),
    "/huge-unsized": lambda h: _respond(h, 200, "text/html", b"<p>" + b"x" * 200_000 + b"</p>", length=False),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        route = ROUTES.get(self.path)
        if route is None:
            _respond(self, 404, "text/plain", b"no route")
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the reader hung up on purpose (limits)
            route(self)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve_http(Handler) as url:  # teardown doesn't wait for the deliberately slow handlers
        yield url


def assert_article_only(doc: ExtractedDocument) -> None:
    for phrase in ARTICLE_PHRASES:
        assert phrase in doc.text, phrase
    kept = [phrase for phrase in BOILERPLATE_PHRASES if phrase.lower() in doc.text.lower()]
    assert kept == []


# --- URLs ----------------------------------------------------------------------------------------------------


def test_news_page_keeps_the_article_and_drops_the_boilerplate(server: str) -> None:
    doc = read(f"{server}/news")
    assert_article_only(doc)
    assert (doc.format, doc.source) == ("url", f"{server}/news")
    assert doc.title == "Harbour city opens tidal energy plant"
    assert (doc.author, doc.date) == ("Maria Okafor", "2025-03-14")
    assert doc.pages == ()


def test_a_redirect_is_followed(server: str) -> None:
    assert "twelve underwater turbines" in read(f"{server}/moved").text


def test_a_redirect_loop_stops(server: str) -> None:
    fails(f"{server}/loop-a", "/loop-a", "too many redirects")


def test_http_errors_are_named(server: str) -> None:
    fails(f"{server}/missing", f"{server}/missing", "not found", "404")
    fails(f"{server}/broken", f"{server}/broken", "500")


def test_a_slow_server_times_out(server: str) -> None:
    started = time.monotonic()
    fails(f"{server}/slow", "/slow", "did not answer within 0.5 seconds", timeout=0.5)
    assert time.monotonic() - started < 2.5


def test_a_dripping_server_is_stopped_by_the_overall_deadline(server: str) -> None:
    started = time.monotonic()
    fails(f"{server}/drip", "/drip", "did not answer within 1 seconds", timeout=1.0)
    assert time.monotonic() - started < 3


def test_other_content_types_are_refused(server: str) -> None:
    fails(f"{server}/image", "/image", "image/png", "not a web page")


def test_a_pdf_url_is_read_as_a_pdf(server: str) -> None:
    doc = read(f"{server}/report")
    assert (doc.format, doc.source, len(doc.pages)) == ("pdf", f"{server}/report", 2)


def test_a_page_without_article_text(server: str) -> None:
    fails(f"{server}/script-only", "/script-only", "no article text")


@pytest.mark.parametrize("path", ["/huge", "/huge-unsized"])
def test_a_page_over_the_size_limit(server: str, path: str) -> None:
    fails(f"{server}{path}", path, "size limit", max_bytes=100_000)


def test_an_unreachable_site(server: str) -> None:
    fails(f"http://127.0.0.1:{free_port()}/x", "can't be reached")


def test_private_addresses_are_refused_unless_allowed(server: str) -> None:
    fails(f"{server}/news", f"{server}/news", "private or local", "127.0.0.1", allow_private=False)
    for url in (
        "http://10.1.2.3/a",
        "http://169.254.169.254/latest",
        "http://[::1]/",
        "http://localhost/",
        "http://0.0.0.0/",
    ):
        with pytest.raises(SourceError, match="private or local"):
            web.check_url(url, allow_private=False)
    web.check_url("http://93.184.216.34/", allow_private=False)  # a public literal address passes (no DNS needed)


def test_a_redirect_into_the_private_network_is_refused(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each hop is checked: pretend 127.0.0.1 is public and let the page redirect to "localhost"."""
    monkeypatch.setitem(ROUTES, "/inward", lambda h: _redirect(h, server.replace("127.0.0.1", "localhost") + "/news"))
    monkeypatch.setattr(web, "_blocked_address", lambda host: None if host == "127.0.0.1" else "127.0.0.1")
    fails(f"{server}/inward", "private or local", allow_private=False)


@pytest.mark.parametrize("url", ["ftp://example.org/a.pdf", "file:///etc/passwd", "http:///nohost"])
def test_only_http_urls_with_a_host(url: str) -> None:
    fails(url, url)


# --- files ---------------------------------------------------------------------------------------------------


def test_saved_html_file(tmp_path: Path) -> None:
    doc = read(samples.NEWS_HTML)
    assert_article_only(doc)
    assert (doc.format, doc.source) == ("html", "news.html")


def test_two_page_pdf_keeps_page_numbers() -> None:
    doc = read(samples.TWO_PAGE_PDF)
    assert (doc.format, doc.title, len(doc.pages), doc.pages[0]) == ("pdf", "Glacier survey report", 2, 0)
    second = doc.text.index("glacier tongue retreated forty metres")
    first = doc.text.index("lower weather station")
    assert (page_of(doc, first), page_of(doc, second)) == (1, 2)
    assert page_of(doc, doc.pages[1]) == 2 and page_of(doc, doc.pages[1] - 1) == 1
    assert page_of(doc, len(doc.text)) is None


def test_encrypted_pdf(tmp_path: Path) -> None:
    fails(samples.make_encrypted_pdf(tmp_path / "locked.pdf"), "locked.pdf", "password")


def test_pdf_without_text(tmp_path: Path) -> None:
    fails(samples.make_blank_pdf(tmp_path / "scan.pdf"), "scan.pdf", "scanned?", "no text to index")


def test_epub_chapters_become_sections(tmp_path: Path) -> None:
    doc = read(samples.make_epub(tmp_path / "book.epub"))
    assert (doc.format, doc.title, doc.author) == ("epub", "Tales of the Coast", "Tomas Lind")
    assert [heading for _, heading in doc.sections] == list(samples.EPUB_CHAPTERS)
    assert all(doc.text[offset:].startswith(heading) for offset, heading in doc.sections)
    assert "one hundred and twelve steps" in doc.text and doc.text.count("The storm") == 1  # nav not indexed
    assert doc.text.index("roof from the keeper") > doc.sections[1][0]


def test_docx_headings_become_sections(tmp_path: Path) -> None:
    doc = read(samples.make_docx(tmp_path / "report.docx"))
    assert (doc.format, doc.title, doc.author) == ("docx", "Field report Q3", "Ines Varga")
    assert [heading for _, heading in doc.sections] == list(samples.DOCX_HEADINGS)
    assert all(doc.text[offset:].startswith(heading) for offset, heading in doc.sections)
    assert "Hollow Creek | 12 mg/kg" in doc.text
    assert doc.text.index("fell by a fifth") > doc.sections[1][0]


def test_markdown_is_plain_text_with_sections() -> None:
    doc = read(samples.ARTICLE_MD)
    assert (doc.format, doc.title) == ("markdown", "Night trains return to the Alps")
    assert [heading for _, heading in doc.sections] == ["Night trains return to the Alps", "Timetable", "Prices"]
    assert all(doc.text[offset:].startswith(heading) for offset, heading in doc.sections)
    assert "links Zurich and Vienna" in doc.text and "on the operator's site in October" in doc.text
    for markup in ("#", "**", "](", "https://example.org", "```", "- Couchettes"):
        assert markup not in doc.text, markup
    assert "A sleeper carriage at dusk" in doc.text  # image alt text is kept


@pytest.mark.parametrize(
    ("maker", "name", "words"),
    [
        (lambda d: samples.truncated(samples.TWO_PAGE_PDF, d / "cut.pdf"), "cut.pdf", ("damaged or truncated",)),
        (lambda d: samples.truncated(samples.make_docx(d / "w.docx"), d / "cut.docx"), "cut.docx", ("DOCX", "damaged")),
        (lambda d: samples.truncated(samples.make_epub(d / "b.epub"), d / "cut.epub"), "cut.epub", ("EPUB", "damaged")),
        (lambda d: _write(d / "junk.pdf", b"%PDF-1.7\nnot really a pdf"), "junk.pdf", ("damaged",)),
        (lambda d: _write(d / "junk.docx", b"this is no zip file at all"), "junk.docx", ("DOCX", "damaged")),
        (lambda d: _write(d / "junk.epub", b"PK\x03\x04garbage"), "junk.epub", ("EPUB", "damaged")),
        (lambda d: _write(d / "junk.html", b"<html><body>\x00\x00</body></html>"), "junk.html", ("no article text",)),
    ],
)
def test_damaged_files(tmp_path: Path, maker: Callable[[Path], Path], name: str, words: tuple[str, ...]) -> None:
    fails(maker(tmp_path), name, *words)


def test_a_docx_missing_its_body_is_damaged(tmp_path: Path) -> None:
    """A structurally valid zip whose parts are broken: python-docx's own failure becomes a SourceError."""
    source = samples.make_docx(tmp_path / "w.docx")
    broken = tmp_path / "broken.docx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data[: len(data) // 2] if info.filename == "word/document.xml" else data)
    fails(broken, "broken.docx", "DOCX file is damaged")


def test_zip_bomb_is_refused_before_opening(tmp_path: Path) -> None:
    fails(samples.make_zip_bomb_docx(tmp_path / "bomb.docx"), "bomb.docx", "zip bomb")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_plain_text(tmp_path: Path) -> None:
    doc = read(_write(tmp_path / "notes.txt", "\ufeffFirst  paragraph\r\nstill first.\r\n\r\n\r\nSecond.\n".encode()))
    assert (doc.text, doc.format, doc.title, doc.pages, doc.sections) == (
        "First paragraph\nstill first.\n\nSecond.",
        "text",
        "notes.txt",
        (),
        (),
    )


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"abc\x00def", ("binary",)),
        ("caf\u00e9".encode("latin-1"), ("not UTF-8",)),
        (b"  \n\t\n", ("is empty",)),
        (b"", ("is empty",)),
    ],
)
def test_unusable_text_files(tmp_path: Path, data: bytes, words: tuple[str, ...]) -> None:
    fails(_write(tmp_path / "bad.txt", data), "bad.txt", *words)


def test_empty_documents(tmp_path: Path) -> None:
    fails(_write(tmp_path / "rule.md", b"---\n\n<!-- nothing -->\n"), "rule.md", "empty")
    Document().save(str(tmp_path / "blank.docx"))
    fails(tmp_path / "blank.docx", "blank.docx", "no text")


def test_unsupported_types(tmp_path: Path) -> None:
    fails(
        _write(tmp_path / "photo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "photo.png", "(.png) is not supported"
    )
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as archive:
        archive.writestr("a.txt", "hello")
    fails(tmp_path / "bundle.zip", "bundle.zip", "neither a DOCX nor an EPUB")


def test_format_is_sniffed_from_the_content(tmp_path: Path) -> None:
    """A PDF saved without its suffix, and a DOCX renamed .txt, are still read by the right reader."""
    assert read(_write(tmp_path / "download", samples.TWO_PAGE_PDF.read_bytes())).format == "pdf"
    docx = samples.make_docx(tmp_path / "r.docx")
    assert read(_write(tmp_path / "r.txt", docx.read_bytes())).format == "docx"


def test_missing_directory_and_oversized_files(tmp_path: Path) -> None:
    fails(tmp_path / "nope.pdf", "nope.pdf", "no such file")
    fails(tmp_path, "not a regular file")
    fails(samples.TWO_PAGE_PDF, "two-pages.pdf", "over the size limit", max_bytes=1000)


# --- ids and determinism -------------------------------------------------------------------------------------


def test_reading_is_deterministic_and_ids_follow_the_content(tmp_path: Path) -> None:
    for path in (samples.NEWS_HTML, samples.TWO_PAGE_PDF, samples.ARTICLE_MD):
        assert read(path) == read(path)
    copy = _write(tmp_path / "other-name.html", samples.NEWS_HTML.read_bytes())
    assert document_id(read(copy)) == document_id(read(samples.NEWS_HTML))
    assert document_id(read(samples.ARTICLE_MD)) != document_id(read(samples.NEWS_HTML))
    assert len(document_id(read(samples.ARTICLE_MD))) == 16


@given(st.text())
def test_normalisation_is_idempotent(raw: str) -> None:
    once = normalise_text(raw)
    assert normalise_text(once) == once
    assert "\r" not in once and "\n\n\n" not in once and once == once.strip()
