"""Property tests (hypothesis) on arbitrary input, beside the existing ones in test_chunking.py (chunk offsets),
test_citations.py (marker stripping on a marker-rich alphabet) and test_render.py (escaping).

Here: marker parsing and stripping on any text, sentence splitting while streaming in any chunks, sentence
checking on any model output, question validation on any string.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.answer.checks import SupportChecker, check_sentence
from rag.answer.citations import MARKER, marker_numbers, split_complete, strip_markers
from rag.config import Settings
from rag.errors import InputError
from rag.inputs import validate_question
from rag.types import Passage

P = [Passage("doc", f"The partnership grew in year {i} across trade and energy.", i * 100, i * 100 + 50) for i in range(5)]

# Arbitrary text with the pieces that matter mixed in: markers of every spelling, brackets, sentence ends.
_piece = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["[1]", "[2]", "[ 3 ]", "[1, 2]", "[4;5]", "[Passage 2]", "[source 1]", "[2016]", "[0]", "[99]",
                     "[", "]", "[[", "]]", ". ", "! ", "?\n", "\n\n", " ", "$1.5", "”. ", "[1]."]),
)  # fmt: skip
_texts = st.lists(_piece, max_size=25).map("".join)


@settings(max_examples=400, deadline=None)
@given(_texts)
def test_markers_parse_and_strip_on_any_text(text: str) -> None:
    numbers = marker_numbers(text)
    assert all(isinstance(n, int) and n >= 0 for n in numbers)
    stripped = strip_markers(text)
    assert stripped == stripped.strip()
    # What stripping leaves has no marker of its own (else a claim could carry an unchecked citation).
    assert MARKER.search(stripped) is None, stripped


@settings(max_examples=400, deadline=None)
@given(_texts, st.lists(st.integers(1, 30), max_size=30))
def test_sentences_are_the_same_however_the_stream_is_chunked(text: str, cuts: list[int]) -> None:
    def sentences(deltas: list[str]) -> list[str]:
        out, buffer = [], ""
        for delta in deltas:  # the pipeline's loop: complete sentences leave as soon as they are known
            buffer += delta
            done, buffer = split_complete(buffer)
            out += done
        return out + ([buffer.strip()] if buffer.strip() else [])

    deltas, rest = [], text
    for cut in cuts:
        deltas.append(rest[:cut])
        rest = rest[cut:]
    deltas.append(rest)
    streamed = sentences(deltas)
    assert streamed == sentences([text])
    assert " ".join(streamed).split() == text.split()  # no text lost or invented, whitespace aside


_CHECKER = SupportChecker(frozenset({"Turkey", "Russia"}))


@settings(max_examples=300, deadline=None)
@given(_texts)
def test_checking_any_model_sentence_never_crashes_and_cites_only_prompt_passages(sentence: str) -> None:
    checked = check_sentence(sentence, P[:3], _CHECKER)
    if checked is not None:
        assert set(checked.passages) <= set(P[:3]) and checked.passages
        assert MARKER.search(checked.claim) is None and checked.claim.strip() == checked.claim != ""


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(["\x00", "\udce9"]))))
def test_question_validation_accepts_clean_text_or_raises_input_error(question: str) -> None:
    try:
        text = validate_question(question, Settings(max_question_chars=200))
    except InputError as err:
        assert str(err).endswith(".") or str(err).endswith("retype it.")
        return
    assert text == text.strip() != "" and len(text) <= 200
    text.encode("utf-8")  # always encodable for the embedder and the model
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text)
