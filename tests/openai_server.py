"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests, scripted to answer or misbehave.

It speaks `POST /v1/chat/completions` (plain JSON, and server-sent events when `"stream": true`, sent
with chunked transfer encoding like real providers) and `GET /v1/models`. Every request is recorded
(headers and JSON body) so tests can check the key header and the prompt. Replies come from a
queue of `Reply` objects; each can fail on purpose: an HTTP error status, a delay longer than the
client's timeout, a connection dropped mid-stream, a stream that ends without a finish reason.

Take the `openai_server: OpenAIServer` fixture (tests/conftest.py: a fresh server per test) as a test
argument, and script it with `Reply` (`from tests.openai_server import OpenAIServer, Reply`).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ERROR_TYPES = {401: "invalid_request_error", 403: "permission_denied", 429: "rate_limit_exceeded"}


@dataclass
class Reply:
    """One scripted reply. `chunks` are the streamed content deltas (their join is the whole text)."""

    chunks: list[str] = field(default_factory=lambda: ["Hello", " world", "."])
    status: int = 200
    delay: float = 0.0  # seconds to wait before answering (or, with stall_after, mid-stream)
    stall_after: int | None = None  # stream: wait `delay` after this many chunks
    pace: float = 0.0  # stream: seconds between chunks, as a model writing token by token
    drop_after: int | None = None  # stream: close the socket abruptly after this many chunks
    stop_after: int | None = None  # stream: end the body cleanly after this many chunks (no finish, no [DONE])
    retry_after: str | None = None  # Retry-After header on an error status
    location: str | None = None  # Location header (with a 3xx status: a redirect)
    # Non-streamed replies: the first token's top_logprobs as (token, logprob) pairs, sent when the request asks
    # for logprobs (as llama.cpp's server and OpenAI do); None sends no logprobs field (as some servers do).
    top_logprobs: list[tuple[str, float]] | None = None

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class OpenAIServer:
    """Threaded server; `url` is the OpenAI base URL (`http://127.0.0.1:PORT/v1`)."""

    def __init__(self, model: str = "test-model") -> None:
        self.model = model
        self.requests: list[Request] = []
        self.judgement_requests: list[Request] = []
        self.abandoned = 0  # streams whose client closed the connection before the end
        self.default = Reply(chunks=["ok"])  # used when the queue is empty
        self._queue: deque[Reply] = deque()
        self._judgements: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-test-server", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def next_reply(self) -> Reply:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    def enqueue_judgement(self, *replies: Reply) -> None:
        """Replies to answerability judgements (requests asking for logprobs), kept apart from the answers'
        queue; with none queued a judgement gets a plain "yes" without logprobs, so the client falls back."""
        with self._lock:
            self._judgements.extend(replies)

    def next_judgement(self) -> Reply:
        with self._lock:
            return self._judgements.popleft() if self._judgements else Reply(chunks=["yes"])

    def record(self, request: Request) -> None:
        # Answerability judgements (they ask for logprobs) are kept apart, so tests count answer requests.
        with self._lock:
            (self.judgement_requests if request.body.get("logprobs") else self.requests).append(request)

    def start(self) -> OpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # wakes handlers that are sleeping on a scripted delay
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def owner(self) -> OpenAIServer:
        return self.server.owner  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output quiet
        pass

    def handle(self) -> None:
        with contextlib.suppress(OSError):  # the client gave up (timeout) or we dropped the connection on purpose
            super().handle()

    def do_GET(self) -> None:
        self.owner.record(Request("GET", self.path, dict(self.headers), {}))
        if self.path.rstrip("/") != "/v1/models":
            return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        model = {"id": self.owner.model, "object": "model", "created": 0, "owned_by": "tests"}
        self._json(200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        self.owner.record(Request("POST", self.path, dict(self.headers), body))
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        reply = self.owner.next_judgement() if body.get("logprobs") else self.owner.next_reply()
        if reply.delay and reply.stall_after is None and self.owner.stopping.wait(reply.delay):
            return
        if reply.status != 200:
            return self._error(reply)
        if body.get("stream"):
            return self._stream(reply)
        message = {"role": "assistant", "content": reply.text}
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": "stop"}
        if body.get("logprobs") and reply.top_logprobs is not None:
            choice["logprobs"] = {"content": [_token_logprobs(reply.top_logprobs)]}
        self._json(200, {**self._envelope("chat.completion"), "choices": [choice], "usage": _usage(reply)})

    def _error(self, reply: Reply) -> None:
        # Like real providers, a 401 message quotes the key it was given: the client must never pass it on.
        given = self.headers.get("Authorization", "").removeprefix("Bearer ")
        message = f"Incorrect API key provided: {given}." if reply.status == 401 else f"scripted HTTP {reply.status}"
        error = {"message": message, "type": _ERROR_TYPES.get(reply.status, "server_error"), "code": reply.status}
        headers = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
        if reply.location is not None:
            headers["Location"] = reply.location
        self._json(reply.status, {"error": error}, headers)

    def _stream(self, reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._event({"role": "assistant", "content": ""}, None)
        for i, text in enumerate(reply.chunks):
            if i == reply.drop_after:
                return self._drop()
            if i == reply.stop_after:
                return self._end_body()
            if i == reply.stall_after and self.owner.stopping.wait(reply.delay):
                return
            if reply.pace and self.owner.stopping.wait(reply.pace):
                return
            try:
                self._event({"content": text}, None)
            except OSError:  # the client closed the connection: a real server stops generating here
                with self.owner._lock:
                    self.owner.abandoned += 1
                return
        self._event({}, "stop")
        self._chunk(b"data: [DONE]\n\n")
        self._end_body()

    def _event(self, delta: dict[str, Any], finish: str | None) -> None:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        payload = {**self._envelope("chat.completion.chunk"), "choices": [choice]}
        self._chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_body(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        # Mid-chunk, then gone: the client sees an incomplete chunked body, as when a proxy or server dies.
        self.wfile.write(b'40\r\ndata: {"trunc')
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {"id": "chatcmpl-test", "object": kind, "created": int(time.time()), "model": self.owner.model}

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _token_logprobs(top: list[tuple[str, float]]) -> dict[str, Any]:
    first = top[0] if top else ("", 0.0)
    alternatives = [{"token": tok, "logprob": lp, "bytes": list(tok.encode())} for tok, lp in top]
    return {"token": first[0], "logprob": first[1], "bytes": list(first[0].encode()), "top_logprobs": alternatives}


def _usage(reply: Reply) -> dict[str, int]:
    return {"prompt_tokens": 10, "completion_tokens": len(reply.chunks), "total_tokens": 10 + len(reply.chunks)}
