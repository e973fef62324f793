"""The one sentence-boundary definition (rag.text) and its three users: chunker, answer checks, stream splitter."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.answer.citations import split_complete
from rag.text import near_duplicate, sentence_spans

_alphabet = st.sampled_from(list("ab X.!?…;\n\n \t'\"”’)][1]") + ["\u00a0"])
_texts = st.one_of(st.text(), st.lists(_alphabet, max_size=400).map("".join))


def _sentences(text: str, **kwargs: bool) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text, **kwargs)]


@settings(max_examples=300, deadline=None)
@given(_texts, st.booleans())
def test_spans_are_exact_ordered_trimmed_and_cover_the_text(text: str, line_breaks: bool) -> None:
    previous = 0
    covered: set[int] = set()
    for a, b in sentence_spans(text, line_breaks=line_breaks):
        assert previous <= a < b <= len(text)
        assert text[a:b].strip() == text[a:b]
        covered.update(range(a, b))
        previous = b
    assert all(i in covered or ch.isspace() for i, ch in enumerate(text))


def test_a_sentence_keeps_its_closing_quotes_and_brackets() -> None:
    text = 'He said "Go." Then (they left.) It ended… Did it? Yes! ‘Done.’ Last'
    assert _sentences(text) == ['He said "Go."', "Then (they left.)", "It ended…", "Did it?", "Yes!", "‘Done.’", "Last"]


def test_line_breaks_end_sentences_unless_the_lines_are_running_prose() -> None:
    text = "- first point\n- second point.\n\ncontinued here"
    assert _sentences(text) == ["- first point", "- second point.", "continued here"]
    assert _sentences(text, line_breaks=False) == ["- first point\n- second point.", "continued here"]


def test_a_window_of_the_text_is_split_in_place() -> None:
    text = "Skip me. One here. Two here. Skip too."
    start, end = text.index("One"), text.index(" Skip too")
    assert [text[a:b] for a, b in sentence_spans(text, start, end)] == ["One here.", "Two here."]


def test_the_stream_splitter_uses_the_same_ends() -> None:
    # The same sentence ends as sentence_spans, plus the markers that follow on the same line.
    assert split_complete('He said "Go." [1] It ended… [2] Next') == (['He said "Go." [1]', "It ended… [2]"], " Next")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["One is here. ", "Two! ", "It said “Three.” ", "Four… ", "Five?\n"]), max_size=8))
def test_streamed_sentences_match_the_spans_of_the_whole_text(parts: list[str]) -> None:
    text = "".join(parts) + "End"
    done, rest = split_complete(text)
    assert done + [rest.strip()] == _sentences(text)


def test_near_duplicate_is_jaccard_at_a_threshold() -> None:
    a, b = {"a", "b", "c"}, {"a", "b", "c", "d"}
    assert near_duplicate(a, b, 0.75) and not near_duplicate(a, b, 0.8)
    assert not near_duplicate(set(), set(), 0.0) and not near_duplicate({"a"}, set(), 0.0)
