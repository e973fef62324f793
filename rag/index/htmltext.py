"""Main text and metadata of an HTML page with trafilatura: menus, cookie banners, sidebars, comments and
footers are left out, so only the article is indexed and cited."""

from __future__ import annotations

import logging

import trafilatura

from ..errors import SourceError
from .extracted import ExtractedDocument, TextBuilder

# trafilatura logs "discarding data" and similar at WARNING for ordinary pages; the caller reports outcomes.
logging.getLogger("trafilatura").setLevel(logging.ERROR)


def read_html(data: bytes, *, name: str, fmt: str, url: str | None = None) -> ExtractedDocument:
    """The article in an HTML page (`fmt` is "url" for a fetched page, "html" for a saved file)."""
    try:
        result = trafilatura.bare_extraction(
            data,
            url=url,
            with_metadata=True,
            include_comments=False,  # reader comments are not the article
            include_tables=True,
            favor_precision=True,  # prefer leaving out a borderline block over indexing boilerplate
            deduplicate=False,  # deduplication keeps a cache across calls; the same input must give the same text
        )
    except Exception as err:  # lxml or trafilatura on malformed input; the message names only the document
        raise SourceError(f"{name}: the page could not be parsed as HTML ({type(err).__name__}).") from None
    text = getattr(result, "text", None) if result is not None else None
    if not text or not text.strip():
        raise SourceError(f"{name}: no article text was found on the page (it may need JavaScript, or be empty).")
    builder = TextBuilder()
    # trafilatura puts one paragraph, heading or list item per line: each becomes a block.
    for line in text.split("\n"):
        builder.add(line)
    return builder.build(
        title=getattr(result, "title", None) or name,
        source=name,
        format=fmt,
        author=getattr(result, "author", None),
        date=getattr(result, "date", None),
    )
