"""Markdown (rendered to plain text with markdown-it-py, headings kept as sections) and plain UTF-8 text."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ..errors import SourceError
from .extracted import ExtractedDocument, TextBuilder

_MD = MarkdownIt("commonmark").enable("table")
# Token types whose content is a block of its own; inline tokens are flattened by _inline_text.
_CODE_BLOCKS = frozenset({"fence", "code_block"})


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 text without a BOM; binary or other encodings are refused rather than guessed."""
    if b"\x00" in data:
        raise SourceError(f"{name}: looks like a binary file (it contains NUL bytes), not text.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"{name}: is not UTF-8 text; convert it to UTF-8 first.") from None
    return text.removeprefix("\ufeff")


def _inline_text(token: Token) -> str:
    """The visible text of an inline token: link text without the URL, image alt text, breaks as spaces/lines."""
    pieces: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            pieces.append(child.content if child.type != "html_inline" else "")
        elif child.type == "softbreak":
            pieces.append(" ")
        elif child.type == "hardbreak":
            pieces.append("\n")
        elif child.type == "image":
            pieces.append(child.content)  # markdown-it puts the alt text in `content`
    return "".join(pieces)


def read_markdown(data: bytes, *, name: str) -> ExtractedDocument:
    """Markdown as plain text: one block per paragraph, heading, list item or code block."""
    tokens = _MD.parse(decode_text(data, name))
    builder = TextBuilder()
    title: str | None = None
    in_heading = False
    for token in tokens:
        if token.type == "heading_open":
            in_heading = True
        elif token.type == "heading_close":
            in_heading = False
        elif token.type == "inline":
            text = _inline_text(token)
            if in_heading and title is None:
                title = text
            builder.add(text, heading=in_heading)
        elif token.type in _CODE_BLOCKS:
            builder.add(token.content)
    if not builder.parts:
        raise SourceError(f"{name}: is empty (no text after removing the Markdown markup).")
    return builder.build(title=title or name, source=name, format="markdown")


def read_text(data: bytes, *, name: str) -> ExtractedDocument:
    """Plain UTF-8 text; paragraphs are the blocks between blank lines."""
    text = decode_text(data, name)
    builder = TextBuilder()
    for paragraph in text.replace("\r\n", "\n").split("\n\n"):
        builder.add(paragraph)
    if not builder.parts:
        raise SourceError(f"{name}: is empty.")
    return builder.build(title=name, source=name, format="text")
