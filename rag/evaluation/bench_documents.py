"""`bench --only documents`: how long adding a 50-page text PDF takes until questions can be asked.

The PDF is printed by Debian's chromium from generated HTML (one page-break per page, ~300 words a page,
written from the default article's sentences so the text reads like an article). The figures split the
time into reading (pypdf), embedding and storing, and count the progress updates the UI's bar gets.
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

    local = dataclasses.replace(settings, index_dir=tmp / "documents-index", chroma_host=None)
    rag.open_index(local)
    pdf = make_pdf(tmp, settings.corpus_path.read_text(encoding="utf-8"))
    start = time.perf_counter()
    read_file(pdf, max_bytes=settings.max_source_bytes)
    read_s = time.perf_counter() - start
    updates: list[tuple[float, float]] = []
    start = time.perf_counter()
    doc = rag.add_document(pdf, settings=local, progress=lambda f, m: updates.append((time.perf_counter(), f)))
    total = time.perf_counter() - start
    embedded = [t for t, f in updates if 0.1 < f < 1.0]
    embed_s = (embedded[-1] - embedded[0]) if len(embedded) > 1 else None
    return {
        "add_pdf_pages": doc.pages,
        "add_pdf_passages": doc.passages,
        "add_pdf_total_s": round(total, 2),
        "add_pdf_read_s": round(read_s, 2),
        "add_pdf_embed_s": round(embed_s, 2) if embed_s is not None else None,
        "add_pdf_progress_updates": len(updates),
    }
