"""`bench --only documents`: how long adding a 50-page text PDF takes until questions can be asked.

The PDF is printed by Debian's chromium from generated HTML (one page-break per page, ~300 words a page,
written from the default article's sentences so the text reads like an article). The figures split the
time into reading (pypdf), embedding and storing, and count the progress updates the UI's bar gets.

Adding is BM25-first: the figures give the seconds from the file to keyword-searchable and to fully embedded,
beside the old path measured in the same run (every vector written before the document becomes visible:
searchable only when fully embedded), each into its own copy of the library, the embedder already loaded.
"""

from __future__ import annotations

import dataclasses
import html
import shutil
import subprocess
import time
from pathlib import Path

from rag.config import Settings
from rag.evaluation.procs import Figures
from rag.index import build, library, vectors
from rag.types import Document

PAGES = 50
WORDS_PER_PAGE = 300


def make_pdf(tmp: Path, source_text: str, pages: int = PAGES) -> Path:
    """A `pages`-page text PDF printed by chromium (RuntimeError when chromium is missing)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise RuntimeError("chromium not found (scripts/ensure-chromium.sh installs it)")
    words = source_text.split()
    body = []
    for page in range(pages):
        start = (page * WORDS_PER_PAGE) % max(1, len(words) - WORDS_PER_PAGE)
        chunk = " ".join(words[start : start + WORDS_PER_PAGE])
        body.append(f"<h2>Section {page + 1}</h2><p>{html.escape(chunk)}</p><div style='page-break-after:always'></div>")
    page_html = tmp / "long.html"
    page_html.write_text(f"<html><body>{''.join(body)}</body></html>", encoding="utf-8")
    out = tmp / "long.pdf"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
         "--disable-background-networking", f"--print-to-pdf={out}", str(page_html)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return out


def add_pdf(settings: Settings, tmp: Path) -> Figures:
    """Seconds to add the 50-page PDF to a library holding the default article, and where they went."""
    import rag
    from rag.index.documents import read_file

    base = dataclasses.replace(settings, index_dir=tmp / "documents-index", chroma_host=None)
    rag.open_index(base)  # builds the article's index and loads the embedder: neither is part of the figures
    pdf = make_pdf(tmp, settings.corpus_path.read_text(encoding="utf-8"))
    start = time.perf_counter()
    read_file(pdf, max_bytes=settings.max_source_bytes)
    read_s = time.perf_counter() - start
    old_s = _embedding_first(_copy(base, tmp / "old-path-index"), pdf)
    local = _copy(base, tmp / "bm25-first-index")
    doc, searchable, updates = _bm25_first(local, pdf)
    # The pass reports once before its first batch and after each: first to last is the embedding.
    embed_s = updates[-1][0] - updates[0][0] if len(updates) > 1 else None
    return {
        "add_pdf_pages": doc.pages,
        "add_pdf_passages": doc.passages,
        "add_pdf_total_s": round(updates[-1][0], 2),
        "add_pdf_read_s": round(read_s, 2),
        "add_pdf_embed_s": round(embed_s, 2) if embed_s is not None else None,
        "add_pdf_progress_updates": len(updates),
        "add_pdf_searchable_s": round(searchable, 2),
        "add_pdf_old_path_searchable_s": round(old_s, 2),
        "add_pdf_passages_per_s": round(doc.passages / embed_s, 2) if embed_s else None,
    }


def _bm25_first(settings: Settings, pdf: Path) -> tuple[Document, float, list[tuple[float, float]]]:
    """(the document, seconds from the file to its first keyword hit, (seconds, fraction) of the vector pass's
    progress until every vector is written), timed from the file."""
    import rag

    start = time.perf_counter()
    doc = library.add_document(pdf, settings=settings)
    retriever = rag.open_index(settings)  # the first question after an add loads the new build and its BM25
    hits = retriever.retrieve("Turkey and Russia", 3, [doc.id])
    searchable = time.perf_counter() - start
    if not hits or retriever.vectors_pending([doc.id]) != doc.passages:
        raise RuntimeError("the PDF was not found by keyword search alone")
    updates: list[tuple[float, float]] = []

    def counted(done: int, left: int) -> None:
        updates.append((time.perf_counter() - start, done / (done + left) if done + left else 1.0))

    vectors.finish(settings, counted=counted)
    return doc, searchable, updates


def _copy(settings: Settings, index_dir: Path) -> Settings:
    """A copy of the library in `settings.index_dir` (the store closed first, so the copy is whole)."""
    from rag.index import store

    store.forget_client(settings)
    shutil.copytree(settings.index_dir, index_dir)
    return dataclasses.replace(settings, index_dir=index_dir)


def _embedding_first(settings: Settings, pdf: Path) -> float:
    """Seconds from the file to searchable by the path before BM25-first: the new build, every vector written,
    becomes visible only then (`build.switch_to` without `defer`, as `library` called it)."""
    start = time.perf_counter()
    new = library.read_one(pdf, settings, allow_private=True)
    with build.build_lock(settings):
        client = build.open_for_build(settings)
        docs, reuse = build.current_library(client, settings)
        build.switch_to(client, settings, [*docs, new], lambda fraction, message: None, reuse)
    seconds = time.perf_counter() - start
    if vectors.pending(settings):
        raise RuntimeError("the old path left passages without vectors")
    return seconds
