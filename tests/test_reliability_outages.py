"""Outages through the whole `query` path, against real servers on 127.0.0.1 that misbehave on purpose.

The model client alone (retries, backoff, cut-off detection, 401/403, unreachable) is covered in test_llm.py;
the local model server dying and being restarted once in test_local_model.py; an unreachable or silent Chroma
server at startup in test_store_server.py. Here: what a user gets from `rag.query` / `python -m rag ask`.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from pathlib import Path

import pytest

import rag
from rag import ModelError, Settings, StoreUnavailableError
from rag.evaluation.procs import free_port, start_chroma
from tests.helpers import clean_env
from tests.openai_server import OpenAIServer, Reply

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-outage-51c0ffee9d2e4b7a8c6f1e3d5b7a9c0e"
QUESTION = "What did Erdogan and Putin agree on in Sochi?"
GOOD = "Erdogan and Putin agreed in Sochi to strengthen the partnership between their countries [1]."


def _settings(article_settings: Settings, server: OpenAIServer, **overrides: object) -> Settings:
    return dataclasses.replace(
        article_settings, provider="openai", openai_api_key=KEY, openai_base_url=server.url,
        openai_model="test-model", request_timeout=0.5, max_retries=1, **overrides,  # type: ignore[arg-type]
    )  # fmt: skip


def _extractive(article_settings: Settings) -> rag.Answer:
    return rag.query(QUESTION, settings=dataclasses.replace(article_settings, provider="extractive"))


def test_the_scripted_server_answers_when_healthy(article_settings: Settings, openai_server: OpenAIServer) -> None:
    # The baseline for the outage tests below: the same question, answered by the "model".
    openai_server.enqueue(Reply(chunks=[GOOD]))
    answer = rag.query(QUESTION, settings=_settings(article_settings, openai_server))
    assert answer.provider == "openai-compatible" and answer.model == "test-model"
    assert "Sochi" in answer.text and answer.citations
    assert len(openai_server.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [Reply(status=429, retry_after="0"), Reply(status=500, retry_after="0"), Reply(status=503, retry_after="0"),
     Reply(delay=30)],  # fmt: skip
    ids=["429", "500", "503", "timeout"],
)
def test_failing_model_is_retried_a_bounded_number_of_times_then_answers_by_quoting(
    article_settings: Settings, openai_server: OpenAIServer, failure: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    openai_server.enqueue(failure, failure, failure, Reply(chunks=[GOOD]))  # would succeed on a 4th try
    with caplog.at_level(logging.WARNING):
        answer = rag.query(QUESTION, settings=_settings(article_settings, openai_server))

    assert len(openai_server.requests) == 2  # the first try + max_retries=1, then no more
    assert "retrying" in caplog.text
    expected = _extractive(article_settings)
    assert (answer.provider, answer.model, answer.refused) == ("extractive", "", False)
    assert (answer.text, answer.citations) == (expected.text, expected.citations)
    assert KEY not in caplog.text


def test_without_fallback_the_error_is_clear(article_settings: Settings, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply(status=500, retry_after="0"), Reply(status=500, retry_after="0"))
    settings = _settings(article_settings, openai_server, fallback_extractive=False)
    with pytest.raises(ModelError) as info:
        rag.query(QUESTION, settings=settings)
    message = str(info.value)
    assert "HTTP 500" in message and f"127.0.0.1:{openai_server.port}" in message and "2 attempts" in message
    assert KEY not in message and len(openai_server.requests) == 2


def test_cli_outage_is_one_line_without_key_or_traceback(
    article_settings: Settings, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(Reply(status=429, retry_after="0"), Reply(status=429, retry_after="0"))
    env = clean_env(
        RAG_INDEX_DIR=str(article_settings.index_dir), RAG_PROVIDER="openai", OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=openai_server.url, OPENAI_MODEL="test-model", RAG_MAX_RETRIES="1",
        RAG_FALLBACK_EXTRACTIVE="0",
    )  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "rag", "ask", QUESTION], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 1, out.stderr
    *notices, error = out.stderr.strip().splitlines()
    assert error.startswith("error: ") and "rate-limiting" in error and f"127.0.0.1:{openai_server.port}" in error
    assert notices == ["openai-compatible: HTTP 429, retrying in 0.0 s"]  # the one retry, logged as it happened
    assert "Traceback" not in out.stderr and KEY not in out.stdout + out.stderr
    assert out.stdout == ""  # nothing was presented as an answer


@pytest.mark.parametrize(
    "broken",
    [
        Reply(chunks=[GOOD, " They also agreed", " to buy more gas."], drop_after=2),
        Reply(chunks=[GOOD, " They also agreed", " to buy more gas."], stop_after=2),
        Reply(chunks=[GOOD, " They also agreed", " to buy more gas."], stall_after=2, delay=30),
    ],
    ids=["dropped", "ended-early", "stalled"],
)
def test_reply_cut_off_mid_stream_is_never_the_final_answer(
    article_settings: Settings, openai_server: OpenAIServer, broken: Reply
) -> None:
    openai_server.enqueue(broken)
    # Sentences checked by overlap alone (the default) are streamed as they pass (with the support judgement
    # they wait for the whole reply: see the test after the next).
    stream = rag.query_stream(QUESTION, settings=_settings(article_settings, openai_server))
    shown = "".join(stream)
    answer = stream.answer

    assert shown.startswith(GOOD.removesuffix(" [1].").split(" [")[0])  # the checked first sentence was streamed
    expected = _extractive(article_settings)
    assert answer.provider == "extractive" and answer.text == expected.text  # the whole answer, not the partial
    assert "They also agreed" not in answer.text
    assert len(openai_server.requests) == 1  # never retried once text had been shown


    openai_server.enqueue(broken)
    strict = rag.query_stream(QUESTION, settings=_settings(article_settings, openai_server, fallback_extractive=False))
    with pytest.raises(ModelError, match="cut off"):
        list(strict)


def test_a_cut_off_reply_waiting_for_its_support_judgement_shows_nothing_of_it(
    article_settings: Settings, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(Reply(chunks=[GOOD, " They also agreed", " to buy more gas."], drop_after=2))
    stream = rag.query_stream(QUESTION, settings=_settings(article_settings, openai_server, support="judge"))
    shown = "".join(stream)
    expected = _extractive(article_settings)
    assert stream.answer.provider == "extractive" and shown == stream.answer.text == expected.text


def test_open_answer_cut_off_after_its_lead_quote_is_never_the_final_answer(
    article_settings: Settings, openai_server: OpenAIServer
) -> None:
    # An open answer shows a quoted lead before the model writes; a reply cut off after a good sentence still
    # ends as the whole extractive answer, not as the lead plus the partial reply.
    question = "Why didn't Turkey align with the West?"
    good = "Moreover, the Eurasian tendencies of Turkey under Erdogan have widened the gap with the West [1]."
    openai_server.enqueue(Reply(chunks=[good, " They also agreed", " to buy more gas."], drop_after=2))
    stream = rag.query_stream(question, settings=_settings(article_settings, openai_server))
    shown = list(stream)
    answer = stream.answer
    expected = rag.query(question, settings=dataclasses.replace(article_settings, provider="extractive"))
    assert len(shown) >= 2 and answer.provider == "extractive" and answer.text == expected.text, answer.text


@pytest.mark.timeout(60)
def test_unreachable_chroma_server_fails_fast_through_query(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    settings = Settings(
        index_dir=tmp_path, provider="extractive", chroma_host="127.0.0.1", chroma_port=port, chroma_timeout=2.0
    )
    with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{port}"):
        rag.query(QUESTION, settings=settings)


@pytest.mark.timeout(180)
def test_chroma_server_dying_mid_session_gives_a_clear_error(tmp_path: Path) -> None:
    proc, port = start_chroma(tmp_path / "data", log=tmp_path / "chroma.log")
    host = "127.0.0.1"
    try:
        doc = tmp_path / "doc.txt"
        doc.write_text("The lighthouse keeper counted ships every morning before breakfast.", encoding="utf-8")
        settings = Settings(
            index_dir=tmp_path / "lock", corpus_path=doc, provider="extractive", chroma_host=host,
            chroma_port=port, chroma_timeout=2.0, collection="dying",
        )  # fmt: skip
        rag.build_index(settings=settings)
        assert rag.retrieve("Who counted ships?", 1, settings=settings)[0].text.startswith("The lighthouse")
    finally:
        proc.kill()  # the server dies: crash, OOM, someone closed its terminal
        proc.wait(timeout=30)

    with pytest.raises(StoreUnavailableError, match=f"{host}:{port}"):
        rag.retrieve("Who counted ships?", 1, settings=settings)
    with pytest.raises(StoreUnavailableError, match=f"{host}:{port}"):
        rag.query("Who counted ships?", settings=settings)
