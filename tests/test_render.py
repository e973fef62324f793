"""Unit tests of ui.render: escaping, highlighted article HTML, positions and the Markdown export."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from rag import Answer, Citation, Timings
from ui.render import (
    Exchange,
    Mark,
    answer_footer,
    answer_html,
    article_html,
    conversation_markdown,
    escape_markdown,
    escape_text,
    locate,
    paragraph_number,
    paragraph_starts,
    refusal_text,
    rewritten,
    shown_spans,
    when,
)

TRICKS = "<script>window.__pwned=1</script> **bold** # head ![x](http://127.0.0.1/x.png) $x$ :red[r] [a](javascript:x)"


class _Text(HTMLParser):
    """Collects the displayed text, minus our paragraph numbers and labels, plus the tags that appear."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[str] = []
        self.marked: list[str] = []
        self._skip = 0
        self._in_mark = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        cls = dict(attrs).get("class") or ""
        if tag in ("span", "sup") and ("rag-para" in cls or "rag-label" in cls):
            self._skip += 1
        if tag == "mark":
            self._in_mark += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("span", "sup") and self._skip:
            self._skip -= 1
        if tag == "mark":
            self._in_mark -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)
            if self._in_mark:
                self.marked.append(data)


def _parse(html: str) -> _Text:
    parser = _Text()
    parser.feed(html)
    return parser


def test_escape_text_leaves_no_markup_and_no_raw_newline() -> None:
    escaped = escape_text(TRICKS + "\n\nnext")
    assert not re.search(r"[<>*\[\]()#!$:\n]", re.sub(r"&#\d+;", "", escaped))
    assert _parse(escaped).text == [TRICKS + "\n\nnext"]


def test_escape_text_replaces_control_characters() -> None:
    assert escape_text("a\x00b\x07c\td") == "a\ufffdb\ufffdc\td"


def test_escape_markdown_backslashes_every_special() -> None:
    assert escape_markdown("a*b [1] <x> $5 #h") == r"a\*b \[1\] \<x\> \$5 \#h"
    # Per character, so deltas can be escaped one by one.
    assert "".join(escape_markdown(c) for c in TRICKS) == escape_markdown(TRICKS)


def test_paragraphs_and_locate() -> None:
    text = "First para.\n\nSecond para\nstill second.\n\n\nThird."
    starts = paragraph_starts(text)
    assert [text[s : s + 5] for s in starts] == ["First", "Secon", "Third"]
    assert paragraph_number(text, 0) == 1
    assert paragraph_number(text, text.index("still")) == 2
    assert paragraph_number(text, text.index("Third")) == 3
    assert (
        locate(text, text.index("Third"), len(text))
        == f"paragraph 3 of 3 · characters {text.index('Third')}–{len(text)}"
    )
    assert locate(text, 0, text.index("still")) == f"paragraphs 1–2 of 3 · characters 0–{text.index('still')}"
    assert locate(None, 5, 9) == "characters 5–9"


def test_article_html_highlights_exact_spans_and_escapes() -> None:
    text = "Intro.\n\n" + TRICKS + "\n\nEnd of it."
    start = text.index("<script>")
    end = start + len("<script>window.__pwned=1</script>")
    marks = [Mark("[1]", start, end, "cite-1-1", focused=True), Mark("[2]", text.index("End"), len(text), "cite-1-2")]
    html = article_html(text, marks)
    parsed = _parse(html)
    assert "".join(parsed.text) == text
    assert "".join(parsed.marked) == text[start:end] + "End of it."
    assert "script" not in parsed.tags and "a" not in parsed.tags and "img" not in parsed.tags
    assert 'id="cite-1-1"' in html and "rag-focus" in html
    assert "\n" not in html  # one HTML block: Markdown never gets to parse the document


def test_article_html_overlapping_and_invalid_marks() -> None:
    text = "abcdefghij"
    marks = [Mark("[1]", 2, 6, "a"), Mark("[2]", 4, 8, "b"), Mark("[3]", 5, 99, "c"), Mark("[4]", 3, 3, "d")]
    parsed = _parse(article_html(text, marks))
    assert "".join(parsed.text) == text
    assert "".join(parsed.marked) == "cdefgh"  # each character highlighted once; invalid marks ignored


@given(
    st.text(max_size=200),
    st.lists(st.tuples(st.integers(-5, 220), st.integers(-5, 220)), max_size=6),
)
def test_article_html_keeps_any_text(text: str, spans: list[tuple[int, int]]) -> None:
    marks = [Mark(f"[{i}]", a, b, f"m{i}") for i, (a, b) in enumerate(spans, 1)]
    html = article_html(text, marks)
    expected = re.sub(r"[\x00-\x08\x0b-\x1f]", "\ufffd", text.replace("\r", ""))
    assert "".join(_parse(html).text) == expected
    assert "\n" not in html


def test_answer_html_sets_markers_and_escapes() -> None:
    parsed = _parse(answer_html("Because <b>x</b> [1] and [12]."))
    assert "".join(parsed.text) == "Because <b>x</b> [1] and [12]."
    assert parsed.tags.count("sup") == 2 and "b" not in parsed.tags


def _answer() -> Answer:
    return Answer(
        text="Frustration with the West [1], and balance [2]. Not a marker [7].",
        citations=[
            Citation(1, "doc.txt", "growing frustration with the West", 10, 43),
            Citation(2, "doc.txt", "balance between East\nand West", 60, 90),
        ],
        standalone_question="Why didn't Turkey align with the West?",
        provider="extractive",
    )


def test_conversation_markdown_footnotes_quote_passages() -> None:
    source = "x" * 10 + "growing frustration with the West" + "\n\n" + "y" * 100
    refusal = Answer(text="The article doesn't cover this.", refused=True)
    md = conversation_markdown(
        [Exchange("Why?", _answer()), Exchange("Pizza?", refusal), Exchange("And then?", _answer())],
        lambda c: source if c.source == "doc.txt" else None,
    )
    assert "Frustration with the West [^1], and balance [^2]. Not a marker [7]." in md
    assert "Frustration with the West [^3], and balance [^4]." in md
    assert '[^1]: "growing frustration with the West" (doc.txt, paragraph 1 of 2 · characters 10–43)' in md
    assert '[^2]: "balance between East and West" (doc.txt, paragraph 2 of 2 · characters 60–90)' in md
    assert md.count("[^") == 8
    assert "The article doesn't cover this." in md
    assert "_Searched for: Why didn't Turkey align with the West?_" in md


def test_conversation_markdown_empty() -> None:
    assert conversation_markdown([]).startswith("# Conversation about the article")


def test_rewritten_ignores_trivial_differences() -> None:
    assert not rewritten("why didn't Turkey align with the West", "Why didn't Turkey  align with the West?")
    assert rewritten("And Russia?", "Why did Russia want closer ties with Turkey?")
    assert not rewritten("And Russia?", "")


def test_long_documents_show_the_cited_paragraphs_only() -> None:
    paras = [f"Paragraph {i} " + "word " * 50 for i in range(1, 401)]
    text = "\n\n".join(paras)
    start = text.index("Paragraph 200 ")
    mark = Mark("[1]", start, start + 20, "cite-1-1")
    assert shown_spans(text, [mark], limit=len(text)) == [(0, len(text))]
    spans = shown_spans(text, [mark], limit=5000)
    assert spans == [(text.index("Paragraph 199 "), text.index("Paragraph 202 "))]
    parsed = _parse(article_html(text, [mark], spans))
    shown = "".join(parsed.text)
    assert "Paragraph 199 " in shown and "Paragraph 201 " in shown and "Paragraph 202 " not in shown
    assert "[…]" in shown and "".join(parsed.marked) == text[start : start + 20]
    assert 'title="paragraph 200"' in article_html(text, [mark], spans)
    assert shown_spans(text, [], limit=5000) == [(0, 5000)]


def test_refusal_text_never_repeats_itself() -> None:
    assert refusal_text("") == "The article doesn't cover this."
    assert refusal_text("The article doesn't cover this: no passage matches.") == (
        "The article doesn't cover this: no passage matches."
    )
    assert refusal_text("Nothing about pizza.") == "The article doesn't cover this. Nothing about pizza."


def test_answer_footer_names_provider_model_and_times() -> None:
    answer = Answer(text="x", provider="local", model="qwen", timings=Timings(0.1, 2.25, 4.0))
    assert answer_footer(answer) == "Local model · qwen · first words after 2.2 s · 4.0 s in all"
    assert answer_footer(Answer(text="x", provider="extractive")) == "Extractive · 0.0 s in all"


def test_when_formats_build_times() -> None:
    assert when("2026-11-23T22:10:44+00:00") == "2026-11-23 22:10 UTC"
    assert when("2026-11-23T23:10:44+01:00") == "2026-11-23 22:10 UTC"
    assert when("not a time") == "not a time"


def test_the_note_of_an_answer_with_passages_still_being_embedded() -> None:
    from ui.render import embedding_label, pending_note

    assert pending_note(Answer("text")) is None
    assert pending_note(Answer("text", vectors_pending=1)) == (
        "1 passage is still being embedded: this answer used keyword search for it."
    )
    assert pending_note(Answer("text", vectors_pending=12)) == (
        "12 passages are still being embedded: this answer used keyword search for them."
    )
    assert embedding_label(3, 40).startswith("Embedding new passages: 3 of 40")
