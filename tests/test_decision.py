"""The combined answer-or-refuse decision: its signals, the content-free judgement it calibrates P(yes) with
(against a real OpenAI-compatible HTTP server on 127.0.0.1), and where its weights were fitted."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from rag import Settings
from rag.answer import decide
from rag.answer.plan import make_plan
from rag.answer.prompts import render
from rag.api import open_index
from rag.models.chat import get_chat_model
from tests.openai_server import OpenAIServer, Reply

KEY = "sk-decision-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SOCHI = "What did Erdogan and Putin agree on in Sochi?"


@pytest.fixture
def settings(article_settings: Settings, openai_server: OpenAIServer) -> Settings:
    return dataclasses.replace(
        article_settings, provider="openai", openai_api_key=KEY, openai_base_url=openai_server.url,
        openai_model="test-model", request_timeout=5.0, max_retries=0,
    )  # fmt: skip


@pytest.mark.server
def test_the_content_free_judgement_reads_the_same_passages_once(
    settings: Settings, openai_server: OpenAIServer
) -> None:
    tops = [("Yes", math.log(0.3)), ("No", math.log(0.6))]
    openai_server.enqueue_judgement(Reply(chunks=["No"], top_logprobs=tops))
    plan = make_plan(SOCHI, open_index(settings), settings)
    model = get_chat_model(settings)
    first, again = decide.baseline(model, plan), decide.baseline(model, plan)
    assert first == again == pytest.approx(1 / 3)
    assert len(openai_server.judgement_requests) == 1  # the second came from the cache
    asked = openai_server.judgement_requests[0].body["messages"][-1]["content"]
    # The question's own prompt with the content-free question in its place, then the yes/no paragraph.
    assert decide.CONTENT_FREE in asked and SOCHI not in asked and asked.endswith(render("answerable_check"))
    assert plan.shown[0].text.split()[0] in asked


def test_calibrated_is_the_judgements_log_odds_less_the_content_free_ones() -> None:
    values = decide.signal_values(0.8, 0.5, 0.75, 0.2, "open", True)
    assert values["p_judge"] == pytest.approx(math.log(4)) and values["calibrated"] == pytest.approx(math.log(4))
    lean = decide.signal_values(0.8, 0.8, 0.75, None, "factual", False)  # a document that leans to yes
    assert lean["calibrated"] == pytest.approx(0.0) and lean["margin"] == 0.0
    assert (lean["open"], lean["whole"]) == (0.0, 0.0) and set(values) == set(decide.SIGNALS)


def test_a_combined_decision_refuses_below_its_cut() -> None:
    combined = decide.Combined({"p_judge": 2.0, "whole": 1.0}, -1.0, 0.5)
    sure = decide.signal_values(0.9, None, 1.0, None, "factual", True)
    unsure = decide.signal_values(0.3, None, 1.0, None, "factual", True)
    assert combined.probability(sure) > 0.5 > combined.probability(unsure)


def test_the_combined_decision_was_fitted_on_tuning_sets_only() -> None:
    fitted = json.loads(decide.THRESHOLDS.read_text(encoding="utf-8")).get("decision")
    if fitted is None:  # no combined decision shipped: one threshold on P(yes) decides, fitted as tested elsewhere
        assert decide.fitted_decision() is None
        return
    tuned = fitted["fitted_on"].split("never")[0]
    for held_out in ("web-heldout", "article", "cct"):
        assert held_out not in tuned
    assert set(fitted["signals"]) <= set(decide.SIGNALS) and len(fitted["weights"]) == len(fitted["signals"])
    assert fitted["fitted_at"] and 0.0 < fitted["cut"] < 1.0
    assert decide.fitted_decision() is not None


@pytest.mark.server
def test_without_a_content_free_probability_one_threshold_decides(
    settings: Settings, openai_server: OpenAIServer
) -> None:
    decide._baseline.cache_clear()  # an earlier test's content-free judgement of the same prompt would be reused
    openai_server.enqueue_judgement(Reply(chunks=["Yes"], top_logprobs=[("Yes", math.log(0.95)), ("No", -4.0)]))
    plan = make_plan(SOCHI, open_index(settings), settings)
    decision = decide.decide(plan, settings, get_chat_model(settings))
    # The content-free request got a reply without probabilities: the combined model never saw that case.
    assert decision.reason == "judged" and not decision.refuse and (decision.probability or 0.0) > 0.9
    fitted = decide.fitted_decision()
    assert len(openai_server.judgement_requests) == (2 if fitted and "calibrated" in fitted.weights else 1)


@pytest.mark.server
def test_over_retrieved_passages_one_threshold_decides(settings: Settings, openai_server: OpenAIServer) -> None:
    # The content-free judgement would be asked for every question there (its passages differ each time).
    retrieval = dataclasses.replace(settings, whole_documents=False)
    openai_server.enqueue_judgement(Reply(chunks=["Yes"], top_logprobs=[("Yes", math.log(0.95)), ("No", -4.0)]))
    plan = make_plan(SOCHI, open_index(retrieval), retrieval)
    decision = decide.decide(plan, retrieval, get_chat_model(retrieval))
    assert not plan.policy.whole and decision.reason == "judged" and not decision.refuse
    assert len(openai_server.judgement_requests) == 1
