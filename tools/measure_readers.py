"""Measure the document readers: extraction time and characters per format, and how much of the news page's
boilerplate stays out of the text.

    python tools/measure_readers.py [--runs 20]

Samples are the test documents (tests/data/docs, tests/doc_samples.py) and the project's article; the URL
case fetches the news page from a local http.server, so the time includes a real HTTP round trip.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import lxml.html

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rag.index.documents import read_document  # noqa: E402
from rag.index.extracted import ExtractedDocument  # noqa: E402
from tests import doc_samples as samples  # noqa: E402

LIMIT = 20_000_000
# Parts of the news page that are not the article (see tests/data/docs/news.html).
BOILERPLATE_XPATH = "//*[@id='cookie-banner'] | //nav | //aside | //*[@id='comments'] | //footer | //script"


def _quiet_server(directory: Path) -> ThreadingHTTPServer:
    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _time(read: Callable[[], ExtractedDocument], runs: int) -> tuple[float, ExtractedDocument]:
    """Median milliseconds of `runs` reads (after one warm-up read that loads the libraries)."""
    doc = read()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        doc = read()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), doc


def boilerplate_kept_out(html_path: Path, text: str) -> tuple[int, int]:
    """(words of boilerplate blocks kept out of `text`, words of all boilerplate blocks)."""
    root = lxml.html.fromstring(html_path.read_bytes())
    total = kept_out = 0
    for part in root.xpath(BOILERPLATE_XPATH):
        for block in part.xpath(".//text()[normalize-space()]") if part.tag != "script" else [part.text_content()]:
            phrase = " ".join(str(block).split())
            words = len(phrase.split())
            total += words
            kept_out += 0 if phrase in text else words
    return kept_out, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "news.html").write_bytes(samples.NEWS_HTML.read_bytes())
        httpd = _quiet_server(tmp)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/news.html"
        cases: dict[str, str | Path] = {
            "url": url,
            "html": samples.NEWS_HTML,
            "pdf": samples.TWO_PAGE_PDF,
            "epub": samples.make_epub(tmp / "book.epub"),
            "docx": samples.make_docx(tmp / "report.docx"),
            "markdown": samples.ARTICLE_MD,
            "text": REPO / "data" / "turkey-russia-article.txt",
        }
        print(f"{'format':<9} {'sample':<28} {'bytes':>7} {'chars':>6} {'ms (median of ' + str(runs) + ')':>20}")
        for fmt, target in cases.items():
            size = len(samples.NEWS_HTML.read_bytes()) if fmt == "url" else Path(target).stat().st_size
            ms, doc = _time(partial(read_document, target, max_bytes=LIMIT, timeout=10, allow_private=True), runs)
            name = "news.html over HTTP" if fmt == "url" else Path(target).name
            print(f"{fmt:<9} {name:<28} {size:>7} {len(doc.text):>6} {ms:>20.2f}")
        httpd.shutdown()
        text = read_document(samples.NEWS_HTML, max_bytes=LIMIT, timeout=10, allow_private=True).text
    kept_out, total = boilerplate_kept_out(samples.NEWS_HTML, text)
    print(f"\nnews.html boilerplate kept out of the text: {kept_out}/{total} words ({kept_out / total:.0%})")


if __name__ == "__main__":
    main()
