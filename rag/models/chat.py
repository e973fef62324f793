"""Chat models: the local Qwen model served by xllamacpp, OpenAI, and OpenAI-compatible servers.

This is the only module (with its helpers `localmodel` and `localserver`) that imports model clients. Everything above
it sees `ChatModel`. All three providers go through the same code: LlamaIndex's `OpenAILike` talking
to an OpenAI-compatible `/v1/chat/completions`, the local one on 127.0.0.1.

Failure policy: retries (exponential backoff, `settings.max_retries`) only on 429, 5xx, connection
errors and timeouts, and only before the first token was yielded; once text has been streamed, a
failure raises ModelError ("cut off") so no caller shows a partial reply as complete. A local server
that stops answering is restarted once. No message, log line or repr ever contains the API key.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypedDict
from urllib.parse import urlsplit

from rag.cache import SettingsCache
from rag.config import Settings
from rag.errors import ConfigError, InputError, ModelAuthError, ModelError
from rag.models.weights import MODEL_NAME
from rag.models.logprobs import TOP_LOGPROBS, first_token_alternatives, yes_share
from rag.models.prefix import keep_prefix, prefix_file
from rag.models.server import LocalServer, local_server

log = logging.getLogger(__name__)

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
ROLES = ("system", "user", "assistant")
_BACKOFF_BASE, _BACKOFF_CAP = 0.5, 8.0
_CUT_CAUSES = {"connect": "connection lost", "timeout": "no data in time", "retry": "a server error"}


PREFILL_TIMEOUT = 600.0  # seconds


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


class ChatModel(Protocol):
    """Streams the reply to a chat as text deltas. Raises ModelError / ModelAuthError on failure."""

    provider: str  # "local" | "openai" | "openai-compatible"
    model: str

    def stream(self, messages: Sequence[Message]) -> Iterator[str]: ...

    def yes_probability(self, messages: Sequence[Message]) -> float | None:
        """P(yes) / (P(yes) + P(no)) of a one-word reply, from the token probabilities; None without them."""
        ...

    def prefill(self, messages: Sequence[Message]) -> None:
        """Have the server read a prompt and reply with one token, so a later prompt sharing its start is
        served from the server's prompt cache (llama.cpp keeps it; other servers may not)."""
        ...

    def keep_prefix(self, messages: Sequence[Message]) -> str:
        """Like `prefill`, kept across restarts where the server can save its state: "restored" or "read"."""
        ...


class _CutOff(Exception):
    """The stream ended without a finish reason: the connection closed before the reply was complete."""


class OpenAICompatibleModel:
    """A `ChatModel` over any OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM, llama.cpp)."""

    def __init__(
        self,
        settings: Settings,
        *,
        provider: str,
        model: str,
        base_url: str = "",
        api_key: str | None = None,
        server: LocalServer | None = None,
        context_window: int = 128_000,
    ) -> None:
        self.provider = provider
        self.model = model
        self._settings = settings
        self._fixed_base = base_url.rstrip("/")
        self._key = api_key
        self._server = server
        self._context_window = context_window
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAICompatibleModel(provider={self.provider!r}, model={self.model!r}, at={self._where()!r})"

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        """Yield the reply's text deltas; retry only while nothing has been yielded yet."""
        chat = _to_chat_messages(messages)
        attempt, restarted = 0, False
        while True:
            yielded = False
            reply = self._stream_once(chat)
            try:
                for delta in reply:
                    yielded = True
                    yield delta
                return
            except ModelError:
                raise
            except Exception as err:  # mapped below to our own messages: SDK text may quote a key
                kind = _classify(err)
                if yielded:
                    raise ModelError(
                        f"The model's reply was cut off ({_CUT_CAUSES.get(kind, 'a bad chunk')} from {self._where()} "
                        "mid-answer); the partial text was discarded."
                    ) from None
                if kind == "connect" and not restarted and self._server is not None and not self._server.alive():
                    self._server.restart(self._server.last_address)  # once per process, then ModelError
                    restarted = True
                    continue
                if kind in ("retry", "connect", "timeout") and attempt < self._settings.max_retries:
                    delay = _backoff(attempt, err)
                    log.warning("%s: %s, retrying in %.1f s", self.provider, _status_text(err, kind), delay)
                    time.sleep(delay)
                    attempt += 1
                    continue
                raise self._final_error(kind, err, attempt + 1) from None
            finally:
                reply.close()  # now, not whenever it is collected: closing it closes the connection

    def yes_probability(self, messages: Sequence[Message]) -> float | None:
        """Ask for one token with its top alternatives and score yes against no. None when the server sends
        no logprobs (some OpenAI-compatible servers ignore the option) or neither word is among the top tokens:
        the caller then falls back to the checks that need no probabilities. One attempt (a restart of a dead
        local server aside): a judgement that fails should fall back, not wait."""
        _to_chat_messages(messages)  # the same checks as `stream`
        for attempt in (1, 2):
            try:
                reply = self._sdk().chat.completions.create(
                    model=self.model, messages=list(messages), max_tokens=1, temperature=0.0,
                    logprobs=True, top_logprobs=TOP_LOGPROBS,
                )  # fmt: skip
                return yes_share(first_token_alternatives(reply))
            except Exception as err:  # mapped to our own messages: SDK text may quote a key
                kind = _classify(err)
                if kind == "connect" and attempt == 1 and self._server is not None and not self._server.alive():
                    self._server.restart(self._server.last_address)
                    continue
                raise self._final_error(kind, err, attempt) from None
        return None

    def prefill(self, messages: Sequence[Message]) -> None:
        """One request for one token: the prompt is read, nothing is generated after it (a stream closed after
        its first token was measured to leave llama.cpp generating on, holding its only slot)."""
        _to_chat_messages(messages)
        try:
            # A long prompt on a busy CPU can take minutes; this runs in the background, so let it.
            self._sdk().chat.completions.create(model=self.model, messages=list(messages), max_tokens=1,
                                                temperature=0.0, timeout=PREFILL_TIMEOUT)  # fmt: skip
        except Exception as err:  # mapped to our own messages: SDK text may quote a key
            raise self._final_error(_classify(err), err, 1) from None

    def keep_prefix(self, messages: Sequence[Message]) -> str:
        """Have the server hold `messages` as a cached prefix: restored from its saved state when there is one
        (the local server), else read (`prefill`) and saved. "restored" or "read"."""
        server = self._server
        if server is None or server.slot_dir is None:
            self.prefill(messages)
            return "read"
        name = prefix_file(messages, server.model_path, server.context)
        return keep_prefix(server.address, server.slot_dir, name, lambda: self.prefill(messages), PREFILL_TIMEOUT)

    def _sdk(self) -> Any:
        """The OpenAI SDK client under LlamaIndex's (its chat API has no logprobs), with the same key handling."""
        import openai

        base = self._base_url()
        with self._lock:
            key = f"sdk:{base}"
            if key not in self._clients:
                self._clients[key] = openai.OpenAI(
                    base_url=base, api_key="unused", http_client=_http_client(self._key, base),
                    timeout=self._settings.request_timeout, max_retries=0,
                )  # fmt: skip
            return self._clients[key]

    def _stream_once(self, chat: list[Any]) -> Generator[str, None, None]:
        finished = False
        # One HTTP client per reply, closed when the reply ends or its reader stops early: closing the
        # connection is the only way to tell llama.cpp to stop generating (measured: a stream merely abandoned
        # after its first token kept the server's one slot busy ~20 s, and the next question waited for it).
        http = _http_client(self._key, self._base_url())
        try:
            for chunk in self._client(http).stream_chat(chat):
                if chunk.delta:
                    yield chunk.delta
                choices = getattr(chunk.raw, "choices", None) or []
                if choices and getattr(choices[0], "finish_reason", None):
                    finished = True
                    if choices[0].finish_reason == "length":
                        log.info("%s reply stopped at max_answer_tokens", self.provider)
        finally:
            http.close()
        if not finished:
            raise _CutOff()

    def _base_url(self) -> str:
        return self._server.address + "/v1" if self._server is not None else self._fixed_base

    def _where(self) -> str:
        """host:port of the endpoint, for messages: never the path, query or any credentials in the URL."""
        base = self._server.last_address if self._server is not None else self._fixed_base
        try:
            parts = urlsplit(base)
            return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or "the model server")
        except ValueError:
            return "the model server"

    def _client(self, http_client: Any = None) -> Any:
        """LlamaIndex's chat client over `http_client` (a new one when None). Cheap to make: one per reply."""
        from llama_index.llms.openai_like import OpenAILike

        base = self._base_url()
        s = self._settings
        return OpenAILike(  # type: ignore[call-arg]  # http_client is an OpenAI.__init__ argument
            model=self.model,
            api_base=base,
            # The key travels only in the HTTP client's auth, never in LlamaIndex's object, whose repr,
            # to_dict() and instrumentation events would otherwise carry it.
            api_key="unused",
            http_client=http_client if http_client is not None else _http_client(self._key, base),
            is_chat_model=True,
            context_window=self._context_window,
            temperature=s.temperature,
            max_tokens=s.max_answer_tokens,
            timeout=s.request_timeout,
            max_retries=0,  # retries are ours: the SDK's would also retry after tokens arrived
            reuse_client=True,
        )

    def _final_error(self, kind: str, err: Exception, attempts: int) -> ModelError:
        status = getattr(err, "status_code", None)
        where = self._where()
        tries = f" after {attempts} attempt{'s' if attempts > 1 else ''}"
        if kind == "auth":
            what = "rejected the API key" if status == 401 else "refused access with this API key"
            return ModelAuthError(f"The model provider at {where} {what} (HTTP {status}): set a valid OPENAI_API_KEY.")
        if kind == "timeout":
            return ModelError(
                f"The model at {where} did not answer within {self._settings.request_timeout:g} s{tries} "
                "(RAG_REQUEST_TIMEOUT)."
            )
        if kind == "connect":
            hint = "" if self._server is not None else " Check that it is running and OPENAI_BASE_URL."
            return ModelError(f"Can't reach the model server at {where}{tries}.{hint}")
        if kind == "retry" and status == 429:
            return ModelError(f"The model provider at {where} is rate-limiting requests (HTTP 429){tries}; try later.")
        if kind == "retry":
            return ModelError(f"The model server at {where} failed (HTTP {status}){tries}.")
        if status == 404:
            return ModelError(f"The model server at {where} doesn't know the model {self.model!r} (HTTP 404).")
        if status is not None:
            return ModelError(f"The model server at {where} refused the request (HTTP {status}).")
        return ModelError(f"The model server at {where} sent a reply that could not be read.")


def _http_client(key: str | None, base_url: str) -> Any:
    """An httpx client for the SDK that adds the key to requests for `base_url`'s origin only."""
    import httpx
    import openai

    origin = urlsplit(base_url)

    class BearerAuth(httpx.Auth):
        def __repr__(self) -> str:
            return "BearerAuth(<hidden>)"

        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
            # Only to the configured server: a redirect elsewhere never gets the key.
            same = (request.url.scheme, request.url.host, request.url.port) == (
                origin.scheme, origin.hostname, origin.port
            )  # fmt: skip
            if key and same:
                request.headers["Authorization"] = f"Bearer {key}"
            yield request

    return openai.DefaultHttpxClient(auth=BearerAuth(), follow_redirects=False)


def _classify(err: Exception) -> str:
    """auth | retry (429/5xx) | connect | timeout | fatal, from the exceptions the SDK and httpx raise."""
    import httpx
    import openai

    if isinstance(err, openai.AuthenticationError | openai.PermissionDeniedError):
        return "auth"
    if isinstance(err, openai.APIStatusError):
        return "retry" if err.status_code == 429 or err.status_code >= 500 else "fatal"
    if isinstance(err, openai.APITimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(err, openai.APIConnectionError | httpx.TransportError | _CutOff):
        return "connect"
    return "fatal"


def _status_text(err: Exception, kind: str) -> str:
    status = getattr(err, "status_code", None)
    return f"HTTP {status}" if status else kind


def _backoff(attempt: int, err: Exception) -> float:
    """Exponential backoff; a short Retry-After from the server wins."""
    delay = min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt)
    response = getattr(err, "response", None)
    retry_after = response.headers.get("retry-after") if response is not None else None
    try:
        if retry_after is not None:
            delay = min(_BACKOFF_CAP, max(0.0, float(retry_after)))
    except ValueError:
        pass
    return delay


def _to_chat_messages(messages: Sequence[Message]) -> list[Any]:
    from llama_index.core.llms import ChatMessage

    if not messages:
        raise InputError("No messages to send to the model.")
    chat = []
    for m in messages:
        role, content = m.get("role"), m.get("content")
        if role not in ROLES or not isinstance(content, str):
            raise InputError("A chat message needs a role (system, user or assistant) and text content.")
        chat.append(ChatMessage(role=role, content=content))
    return chat


_models: SettingsCache[OpenAICompatibleModel] = SettingsCache()


def get_chat_model(settings: Settings) -> ChatModel:
    """The chat model for `settings.resolved_provider` (local or openai), loaded once per process."""
    provider = settings.resolved_provider
    if provider not in ("local", "openai"):
        raise ConfigError(f"The {provider!r} provider has no chat model; it answers by quoting passages.")
    if provider == "openai" and not (settings.openai_api_key or settings.openai_base_url):
        raise ConfigError("The openai provider needs OPENAI_API_KEY (or OPENAI_BASE_URL for a compatible server).")
    return _models.get(settings.chat, lambda: _make_model(settings, provider))


def _make_model(settings: Settings, provider: str) -> OpenAICompatibleModel:
    if provider == "local":
        server = local_server(settings)
        server.start()  # load now (the app does this in the background, rag.models.loading), not at the first question
        model = OpenAICompatibleModel(
            settings, provider="local", model=MODEL_NAME, server=server, context_window=settings.llm_context
        )
    else:
        base = settings.openai_base_url
        model = OpenAICompatibleModel(
            settings,
            provider="openai-compatible" if base else "openai",
            model=settings.openai_model,
            base_url=base or OPENAI_DEFAULT_BASE,
            api_key=settings.openai_api_key,
        )
    model._client()  # import LlamaIndex's client (a second or two) now too; no request is sent
    return model
