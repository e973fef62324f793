"""Chunking: exact offsets for any input, fragment merging on the real article, long paragraphs split."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.index.chunking import MAX_CHARS, chunk_text, merge_fragments, paragraph_spans

ARTICLE = (Path(__file__).resolve().parents[1] / "data" / "turkey-russia-article.txt").read_text(encoding="utf-8")

# Text drawn from an alphabet rich in the characters the chunker reacts to.
_alphabet = st.sampled_from(list("abc XYZ.;!?\n\n\t\r,'\"”é€0") + ["\u00a0", "\u2029", "\x00", "\U0001f600"])
_texts = st.one_of(st.text(), st.lists(_alphabet, max_size=3000).map("".join))


@settings(max_examples=300, deadline=None)
@given(_texts, st.integers(min_value=20, max_value=800))
def test_offsets_are_exact_and_cover_all_text(text: str, max_chars: int) -> None:
    chunks = chunk_text(text, max_chars)
    previous_end = 0
    covered = set()
    for chunk in chunks:
        piece = text[chunk.start : chunk.end]
        assert 0 <= previous_end <= chunk.start < chunk.end <= len(text)
        assert piece.strip() == piece != ""
        assert len(piece) <= max(max_chars, 1)
        covered.update(range(chunk.start, chunk.end))
        previous_end = chunk.end
    # Nothing but whitespace is ever left out of every passage.
    assert all(i in covered or ch.isspace() for i, ch in enumerate(text))


def _chunk_with(fragment: str) -> str:
    texts = [ARTICLE[c.start : c.end] for c in chunk_text(ARTICLE)]
    found = [t for t in texts if fragment in t]
    assert len(found) == 1, fragment
    return found[0]


def test_short_paragraph_joins_the_previous_one() -> None:
    chunk = _chunk_with("It is $100 billion.")
    assert "remained very far from the goal set by Erdogan and Putin." in chunk


def test_sentence_split_across_paragraphs_is_rejoined() -> None:
    chunk = _chunk_with("to an imbalance of power in the Black Sea.")
    assert "the annexation of Crimea in 2014;" in chunk


def test_paragraph_ending_in_semicolon_continues_in_the_next() -> None:
    assert "Such as coordination on geopolitical issues" in _chunk_with("cooperation in strategic areas;")
    assert "All are indications" in _chunk_with("grain deal with Ukraine under Turkish auspices;")


def test_every_article_passage_reads_on_its_own() -> None:
    for chunk in chunk_text(ARTICLE):
        text = ARTICLE[chunk.start : chunk.end]
        assert text[0].isupper(), text
        assert text.endswith("."), text
        assert len(text) >= 40


def test_lowercase_paragraph_continues_the_previous_one() -> None:
    text = "The first paragraph ends here with a full stop.\n\nand this one starts in lower case.\n\nA new paragraph that stands on its own feet."
    units = merge_fragments(text, paragraph_spans(text))
    assert [text[s:e] for s, e in units] == [
        text[: text.index("\n\nA new")],
        "A new paragraph that stands on its own feet.",
    ]


def test_long_paragraph_is_split_at_sentence_boundaries() -> None:
    sentences = [f"Sentence number {i} talks about topic {i} at some length to fill space." for i in range(60)]
    text = "Title line.\n\n" + " ".join(sentences)
    chunks = chunk_text(text)
    body = [text[c.start : c.end] for c in chunks][1:]
    assert len(body) > 3
    for piece in body:
        assert len(piece) <= MAX_CHARS
        assert re.fullmatch(r"Sentence number \d+ .*\.", piece), piece
    assert " ".join(body) == " ".join(sentences)


def test_run_on_text_without_punctuation_is_cut_at_spaces() -> None:
    text = " ".join(["word"] * 1000)
    chunks = chunk_text(text)
    assert all(len(text[c.start : c.end]) <= MAX_CHARS for c in chunks)
    assert all(text[c.start : c.end].startswith("word") for c in chunks)


def test_windows_line_endings_and_blank_input() -> None:
    text = "First paragraph here, long enough to stand.\r\n\r\nSecond paragraph here, also quite long enough."
    assert [text[c.start : c.end] for c in chunk_text(text)] == [
        "First paragraph here, long enough to stand.",
        "Second paragraph here, also quite long enough.",
    ]
    assert chunk_text("") == [] and chunk_text(" \n\n \t") == []


def test_passages_never_span_a_page_break() -> None:
    # "Findings" is a heading without final punctuation: it would continue into the next paragraph,
    # but that paragraph starts a new page, so each passage stays on its own page.
    text = "First page text ends here.\n\nFindings\n\nSecond page text."
    page_two = text.index("Second")
    merged = chunk_text(text)
    assert any(c.start < page_two < c.end for c in merged)  # without breaks: merged across the page
    chunks = chunk_text(text, breaks=(0, text.index("Findings"), page_two))
    assert not any(c.start < page_two < c.end for c in chunks)
    assert [text[c.start : c.end] for c in chunks][-1] == "Second page text."
