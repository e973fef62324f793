"""The OpenAI(-compatible) path end to end, against a real HTTP server on 127.0.0.1 that misbehaves on purpose."""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
import traceback

import pytest

from rag import ConfigError, InputError, ModelAuthError, ModelError, Settings
from rag.models.chat import Message, get_chat_model
from tests.openai_server import OpenAIServer, Reply

pytestmark = pytest.mark.server

KEY = "sk-test-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"
MESSAGES: list[Message] = [
    {"role": "system", "content": "Answer from the passages."},
    {"role": "user", "content": "[1] Turkey bought S-400s.\n\nQuestion: What did Turkey buy?"},
]


def _settings(server: OpenAIServer, **overrides: object) -> Settings:
    base = Settings(
        provider="openai",
        openai_api_key=KEY,
        openai_base_url=server.url,
        openai_model="test-model",
        request_timeout=5.0,
        max_retries=2,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def _all_text(err: BaseException) -> str:
    """Everything a user or a log could see of an exception: message, repr and formatted traceback."""
    return f"{err}\n{err!r}\n{''.join(traceback.format_exception(err))}"


def test_streams_deltas_and_sends_key_model_and_prompt(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply(chunks=["Turkey ", "bought ", "S-400s [1]."]))
    model = get_chat_model(_settings(openai_server))

    deltas = list(model.stream(MESSAGES))

    assert deltas == ["Turkey ", "bought ", "S-400s [1]."]
    assert (model.provider, model.model) == ("openai-compatible", "test-model")
    [request] = openai_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "test-model"
    assert request.body["stream"] is True
    assert request.body["messages"] == MESSAGES
    assert request.body["temperature"] == 0.0
    assert request.body["max_tokens"] == Settings().max_answer_tokens


def test_a_reply_read_only_in_part_closes_its_connection(openai_server: OpenAIServer) -> None:
    """The answer stops reading once it has enough sentences; the server must learn that at once (closing the
    connection is how llama.cpp learns it), or it writes on and the next question waits for its only slot."""
    openai_server.enqueue(Reply(chunks=[f"word{i} " for i in range(300)], pace=0.01))
    model = get_chat_model(_settings(openai_server))
    stream = iter(model.stream(MESSAGES))
    assert next(stream) == "word0 "
    stream.close()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 2.5  # the whole reply would take 3 s
    while openai_server.abandoned == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert openai_server.abandoned == 1


def test_prefill_asks_for_one_token(openai_server: OpenAIServer) -> None:
    model = get_chat_model(_settings(openai_server))
    model.prefill(MESSAGES)
    [request] = openai_server.requests
    assert request.body["max_tokens"] == 1 and not request.body.get("stream") and request.body["messages"] == MESSAGES


def test_retries_429_and_500_then_succeeds(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply(status=429, retry_after="0"), Reply(status=500), Reply(chunks=["fine"]))
    model = get_chat_model(_settings(openai_server, max_retries=2))

    assert list(model.stream(MESSAGES)) == ["fine"]
    assert len(openai_server.requests) == 3


@pytest.mark.parametrize(("status", "words"), [(500, "HTTP 500"), (503, "HTTP 503"), (429, "rate-limiting")])
def test_exhausted_retries_raise_model_error(openai_server: OpenAIServer, status: int, words: str) -> None:
    openai_server.enqueue(*[Reply(status=status, retry_after="0")] * 3)
    model = get_chat_model(_settings(openai_server, max_retries=1))

    with pytest.raises(ModelError) as info:
        list(model.stream(MESSAGES))

    assert not isinstance(info.value, ModelAuthError)
    assert words in str(info.value)
    assert f"127.0.0.1:{openai_server.port}" in str(info.value)
    assert len(openai_server.requests) == 2  # the first try + max_retries, no more


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_raises_auth_error_naming_the_variable_not_the_key(
    openai_server: OpenAIServer, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    openai_server.enqueue(Reply(status=status))  # the server's 401 body quotes the key back
    model = get_chat_model(_settings(openai_server))

    with caplog.at_level(logging.DEBUG), pytest.raises(ModelAuthError) as info:
        list(model.stream(MESSAGES))

    assert "OPENAI_API_KEY" in str(info.value)
    assert KEY not in _all_text(info.value)
    assert KEY not in caplog.text
    assert len(openai_server.requests) == 1  # a rejected key is not retried


def test_timeout_raises_model_error(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply(delay=30))
    model = get_chat_model(_settings(openai_server, request_timeout=0.3, max_retries=0))

    with pytest.raises(ModelError, match="did not answer within 0.3 s"):
        list(model.stream(MESSAGES))


def test_timeout_is_retried_before_the_first_token(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Reply(delay=30), Reply(chunks=["late but whole"]))
    model = get_chat_model(_settings(openai_server, request_timeout=0.3, max_retries=1))

    assert "".join(model.stream(MESSAGES)) == "late but whole"
    assert len(openai_server.requests) == 2


@pytest.mark.parametrize(
    "reply",
    [
        Reply(chunks=["Turkey ", "bought ", "S-400s."], drop_after=2),  # connection reset mid-body
        Reply(chunks=["Turkey ", "bought ", "S-400s."], stop_after=2),  # body ends without a finish reason
        Reply(chunks=["Turkey ", "bought ", "S-400s."], stall_after=2, delay=30),  # server hangs mid-answer
    ],
    ids=["dropped", "ended-early", "stalled"],
)
def test_failure_mid_stream_is_cut_off_not_retried(openai_server: OpenAIServer, reply: Reply) -> None:
    openai_server.enqueue(reply, Reply(chunks=["a retry must not happen"]))
    model = get_chat_model(_settings(openai_server, request_timeout=0.5, max_retries=2))
    received: list[str] = []

    with pytest.raises(ModelError, match="cut off"):
        for delta in model.stream(MESSAGES):
            received.append(delta)

    assert received == ["Turkey ", "bought "]
    assert len(openai_server.requests) == 1


def test_unreachable_server_names_host_and_port_but_not_the_key() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(provider="openai", openai_api_key=KEY, openai_base_url=f"http://127.0.0.1:{port}/v1")
    model = get_chat_model(dataclasses.replace(settings, max_retries=1))

    with pytest.raises(ModelError) as info:
        list(model.stream(MESSAGES))

    assert f"127.0.0.1:{port}" in str(info.value)
    assert "OPENAI_BASE_URL" in str(info.value)
    assert KEY not in _all_text(info.value)


def test_key_is_in_no_repr_and_no_log(openai_server: OpenAIServer, caplog: pytest.LogCaptureFixture) -> None:
    openai_server.enqueue(Reply(status=500, retry_after="0"), Reply(chunks=["ok"]))
    settings = _settings(openai_server)
    model = get_chat_model(settings)

    with caplog.at_level(logging.DEBUG):
        assert "".join(model.stream(MESSAGES)) == "ok"

    assert KEY not in repr(settings)
    assert KEY not in repr(model)
    assert KEY not in caplog.text


def test_openai_without_key_or_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        get_chat_model(Settings(provider="openai"))


def test_extractive_has_no_chat_model() -> None:
    with pytest.raises(ConfigError):
        get_chat_model(Settings(provider="extractive"))


def test_provider_names_and_one_model_per_settings(openai_server: OpenAIServer) -> None:
    plain = get_chat_model(Settings(provider="auto", openai_api_key=KEY, openai_model="gpt-4o-mini"))
    assert (plain.provider, plain.model) == ("openai", "gpt-4o-mini")  # nothing is sent until stream()
    settings = _settings(openai_server)
    assert get_chat_model(settings) is get_chat_model(dataclasses.replace(settings, top_k=7))
    assert get_chat_model(settings) is not get_chat_model(dataclasses.replace(settings, max_retries=0))


@pytest.mark.parametrize(
    "messages",
    [[], [{"role": "robot", "content": "hi"}], [{"role": "user", "content": None}]],
    ids=["empty", "bad-role", "no-text"],
)
def test_malformed_messages_are_input_errors(openai_server: OpenAIServer, messages: list) -> None:
    model = get_chat_model(_settings(openai_server))
    with pytest.raises(InputError):
        list(model.stream(messages))
    assert openai_server.requests == []


def test_the_test_server_also_speaks_plain_json_and_lists_models(openai_server: OpenAIServer) -> None:
    # The fixture itself must behave like a real provider for non-streaming clients too.
    import json
    import urllib.request

    openai_server.enqueue(Reply(chunks=["plain ", "reply"]))
    body = json.dumps({"model": "test-model", "messages": MESSAGES}).encode()
    request = urllib.request.Request(f"{openai_server.url}/chat/completions", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        reply = json.load(response)
    with urllib.request.urlopen(f"{openai_server.url}/models", timeout=5) as response:
        models = json.load(response)

    assert reply["choices"][0]["message"]["content"] == "plain reply"
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert [m["id"] for m in models["data"]] == ["test-model"]


def test_llamaindex_instrumentation_never_sees_the_key(openai_server: OpenAIServer) -> None:
    # Anyone can attach a LlamaIndex event handler (tracing tools do); the events carry the LLM's fields.
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler

    seen: list[str] = []

    class Recorder(BaseEventHandler):
        def handle(self, event: object, **kwargs: object) -> None:
            seen.append(repr(event))

    dispatcher = get_dispatcher()
    recorder = Recorder()
    dispatcher.add_event_handler(recorder)
    try:
        assert "".join(get_chat_model(_settings(openai_server)).stream(MESSAGES)) == "ok"
    finally:
        dispatcher.event_handlers.remove(recorder)

    assert any("test-model" in event for event in seen)  # the events were seen, with the model's fields
    assert not [event for event in seen if KEY in event]
    assert openai_server.requests[0].headers["Authorization"] == f"Bearer {KEY}"


def test_a_redirect_elsewhere_never_receives_the_key(openai_server: OpenAIServer) -> None:
    with OpenAIServer() as elsewhere:  # another origin (port)
        openai_server.enqueue(Reply(status=307, location=f"{elsewhere.url}/chat/completions"))
        model = get_chat_model(_settings(openai_server, max_retries=0))

        with pytest.raises(ModelError):
            list(model.stream(MESSAGES))

        assert all(KEY not in str(r.headers) for r in elsewhere.requests)
