"""The whole-document path (a short document read whole from one prompt prefix) and the support judgement that
stands before every shown sentence, around a scripted model on the real article index."""

from __future__ import annotations

import dataclasses

from rag import query
from rag.answer.decide import check_messages, fitted_decision
from rag.answer.plan import make_plan
from rag.api import open_index
from rag.config import Settings
from rag.types import REFUSAL
from tests.fakes import MockModel

SOCHI = "What did Erdogan and Putin agree on in Sochi?"
AGREED = ("On August 5, Presidents Recep Tayyip Erdogan and Vladimir Putin agreed in Sochi to strengthen the "
          "partnership between their countries on many levels [1].")  # fmt: skip
INVERTED = "In Sochi, Erdogan and Putin agreed to end the partnership between their countries [1]."


def _local(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(settings, provider="local", **changes)  # type: ignore[arg-type]


def _judging(settings: Settings) -> Settings:
    return _local(settings, support="judge")


def _decision_requests() -> int:
    """Judgements asked before generating, read whole: P(yes), and the content-free one when the fitted
    decision weighs it."""
    fitted = fitted_decision()
    return 2 if fitted is not None and "calibrated" in fitted.weights else 1


def _prefix(content: str) -> str:
    return content[: content.index("Question:")]


def test_every_question_about_a_short_document_starts_with_the_same_prompt(article_settings: Settings) -> None:
    settings = _local(article_settings)
    retriever = open_index(settings)
    factual = make_plan(SOCHI, retriever, settings, kind="factual")
    other = make_plan("Why didn't Turkey align with the West?", retriever, settings, kind="open")
    assert factual.policy.whole and other.policy.whole  # the article fits the local model's context
    article = settings.corpus_path.read_text(encoding="utf-8")
    assert len(factual.shown) == len(retriever.document_passages(factual.passages[0].document)[0])
    assert [p.start for p in factual.shown] == sorted(p.start for p in factual.shown)  # document order
    assert all(article[p.start : p.end] == p.text for p in factual.shown)
    # Same system prompt, same passages before the question: llama.cpp reads that prefix once.
    assert factual.messages[0] == other.messages[0]
    assert _prefix(factual.messages[1]["content"]) == _prefix(other.messages[1]["content"])
    # The answerability judgement appends to the answer's own prompt, so it shares its prefix too.
    judged = check_messages(factual.messages)
    assert judged[0] == factual.messages[0]
    assert judged[1]["content"].startswith(factual.messages[1]["content"] + "\n\n")
    # The passages listed with the answer (and quoted by the fallback) are what retrieval found.
    assert 0 < len(factual.evidence) <= settings.top_k < len(factual.passages)


def test_a_document_too_long_for_the_context_keeps_the_retrieval_path(article_settings: Settings) -> None:
    settings = _local(article_settings, llm_context=1024, max_answer_tokens=200)
    plan = make_plan(SOCHI, open_index(settings), settings, kind="factual")
    assert not plan.policy.whole and len(plan.passages) == settings.top_k
    off = _local(article_settings, whole_documents=False)
    assert not make_plan(SOCHI, open_index(off), off, kind="factual").policy.whole


def test_a_sentence_judged_unsupported_is_never_shown(article_settings: Settings) -> None:
    # Both sentences pass word overlap (the inverted one keeps every name and most words); the model's
    # judgement of each decides: yes for the first, no for the second.
    model = MockModel().judge(0.95)
    before = _decision_requests()
    if before == 2:
        model.judge(0.5)
    model.enqueue(f"{AGREED} {INVERTED}").judge(0.9).judge(0.05)
    answer = query(SOCHI, settings=_judging(article_settings), model=model)
    assert not answer.refused and "strengthen the partnership" in answer.text
    assert "end the partnership" not in answer.text and answer.support == "meaning"
    # Each sentence is judged against the passage it cites, after the constant instruction.
    statement = model.judged[before + 1][1]["content"]
    assert len(model.judged) == before + 2 and "Statement: " + INVERTED.removesuffix(" [1].") in statement
    assert "agreed in Sochi" in statement and model.judged[before][0] == model.judged[before + 1][0]
    assert answer.timings.first_shown is not None and answer.timings.support >= 0.0


def test_without_probabilities_word_overlap_decides_and_the_answer_says_so(article_settings: Settings) -> None:
    model = MockModel().enqueue(AGREED)  # no judgement queued: the server gives no probabilities
    answer = query(SOCHI, settings=_judging(article_settings), model=model)
    assert not answer.refused and "strengthen the partnership" in answer.text and answer.support == "words"
    assert len(model.judged) == 2  # it was asked (the answerability judgement, then the sentence's)


def test_by_default_overlap_alone_checks_sentences(article_settings: Settings) -> None:
    model = MockModel().judge(0.95).enqueue(AGREED)
    answer = query(SOCHI, settings=_local(article_settings), model=model)
    assert not answer.refused and answer.support == "words" and len(model.judged) == _decision_requests()


def test_a_quote_standing_in_for_the_model_passes_the_same_judgement(article_settings: Settings) -> None:
    # The model's sentence fails word overlap: dropped. The fallback quote is then judged, and judged no: the
    # answer is the refusal, not a quote that may not answer.
    vague = "Both leaders talked warmly for many long hours about various things [1]."
    model = MockModel().judge(0.95).enqueue(vague).judge(0.05).judge(0.05).judge(0.05)  # a quote may run on
    answer = query(SOCHI, settings=_judging(article_settings), model=model)
    assert answer.refused and answer.text == REFUSAL and answer.citations == [] and len(model.judged) >= 2
    judged_yes = MockModel().judge(0.95).enqueue(vague).judge(0.9).judge(0.9).judge(0.9)
    quoted = query(SOCHI, settings=_judging(article_settings), model=judged_yes)
    assert not quoted.refused and quoted.provider == "extractive" and "Sochi" in quoted.text
