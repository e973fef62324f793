"""The yes/no answerability scorer against a real OpenAI-compatible HTTP server on 127.0.0.1.

The server is a small copy of tests/openai_server.py's idea that also sends `logprobs` (as llama.cpp's server and
OpenAI do) or leaves them out (as some compatible servers do). Nothing in the SDK is patched.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rag.answer.answerability import Endpoint, answerable_probability, judge, messages, score_top_logprobs
from rag.errors import ModelAuthError, ModelError

KEY = "sk-test-secret-123"


class LogprobServer:
    """Answers every chat completion with `reply`, plus `top` as the first token's top_logprobs (None: no
    logprobs field at all); records the request bodies."""

    def __init__(self) -> None:
        self.reply = "yes"
        self.top: list[tuple[str, float]] | None = None
        self.status = 200
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def payload(self) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": self.reply},
                                  "finish_reason": "length"}  # fmt: skip
        if self.top is not None:
            first = self.top[0] if self.top else (self.reply, 0.0)
            tops = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in self.top]
            token = {"token": first[0], "logprob": first[1], "bytes": list(first[0].encode()), "top_logprobs": tops}
            choice["logprobs"] = {"content": [token]}
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice],
                "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner: LogprobServer = self.server.owner  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        owner.bodies.append(body)
        owner.headers.append(dict(self.headers))
        if owner.status != 200:
            given = self.headers.get("Authorization", "").removeprefix("Bearer ")
            data = json.dumps({"error": {"message": f"Incorrect API key provided: {given}", "code": owner.status}})
        else:
            data = json.dumps(owner.payload())
        self.send_response(owner.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data.encode())))
        self.end_headers()
        self.wfile.write(data.encode())


@pytest.fixture()
def server() -> Iterator[LogprobServer]:
    srv = LogprobServer()
    srv._thread.start()
    yield srv
    srv._httpd.shutdown()
    srv._httpd.server_close()


def _endpoint(server: LogprobServer, key: str | None = None) -> Endpoint:
    return Endpoint(server.url, "test-model", api_key=key, timeout=5.0)


PASSAGES = ["In 2016 the two countries launched a gas pipeline project.", "Trade is expected to reach $10 billion."]


def test_score_from_top_logprobs(server: LogprobServer) -> None:
    server.top = [("Yes", math.log(0.6)), (" yes", math.log(0.1)), ("No", math.log(0.2)), ("maybe", math.log(0.05))]
    score = answerable_probability("What project started in 2016?", PASSAGES, _endpoint(server))
    assert score == pytest.approx(0.7 / 0.9, abs=1e-9)
    body = server.bodies[-1]
    assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 10
    assert body["temperature"] == 0
    user = body["messages"][-1]["content"]
    assert "[1] In 2016 the two countries launched" in user and "[2] Trade is expected" in user
    assert "Question: What project started in 2016?" in user


def test_no_dominates(server: LogprobServer) -> None:
    server.reply = "no"
    server.top = [("no", math.log(0.9)), ("yes", math.log(0.03)), ("NO", math.log(0.02))]
    score = answerable_probability("What is the GDP of Brazil?", PASSAGES, _endpoint(server))
    assert score == pytest.approx(0.03 / 0.95, abs=1e-9)


def test_no_logprobs_returns_none(server: LogprobServer) -> None:
    server.top = None  # the reply has no logprobs field, like servers that ignore the option
    assert answerable_probability("What project started in 2016?", PASSAGES, _endpoint(server)) is None
    assert judge("What project started in 2016?", PASSAGES, _endpoint(server)).reply == "yes"


def test_neither_yes_nor_no_returns_none(server: LogprobServer) -> None:
    server.reply = "The"
    server.top = [("The", math.log(0.7)), ("Passage", math.log(0.2))]
    assert answerable_probability("Q?", PASSAGES, _endpoint(server)) is None


def test_key_sent_only_as_credential(server: LogprobServer) -> None:
    server.top = [("yes", 0.0)]
    assert answerable_probability("Q?", PASSAGES, _endpoint(server, KEY)) == 1.0
    assert server.headers[-1]["Authorization"] == f"Bearer {KEY}"
    assert KEY not in json.dumps(server.bodies[-1])
    assert KEY not in repr(_endpoint(server, KEY))
    server.status = 401  # the body quotes the key, like real providers
    with pytest.raises(ModelAuthError) as err:
        answerable_probability("Q?", PASSAGES, _endpoint(server, KEY))
    assert KEY not in str(err.value)


def test_unreachable_server_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="127.0.0.1:9"):
        answerable_probability("Q?", PASSAGES, Endpoint("http://127.0.0.1:9/v1", "m", timeout=2.0))


def test_no_passages_scores_zero_without_a_request(server: LogprobServer) -> None:
    assert answerable_probability("Q?", [], _endpoint(server)) == 0.0
    assert server.bodies == []


def test_score_helper_and_prompt() -> None:
    assert score_top_logprobs([("x", 0.0)])[0] is None
    msgs = messages("  Who?  ", ["a {b} $c"])
    assert msgs[0]["role"] == "system" and "yes or no" in msgs[0]["content"]
    assert "[1] a {b} $c" in msgs[1]["content"] and "Question: Who?" in msgs[1]["content"]
