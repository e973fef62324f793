"""Is the answer to a question written in the retrieved passages? A yes/no judgement scored by token probability.

One chat request to any OpenAI-compatible server (the local llama.cpp server, OpenAI, vLLM, ...):
the prompts `prompts/answerable_system.txt` and `prompts/answerable_user.txt` (the passages, the question, then
"Do the passages state the answer ...? Reply yes or no."), `max_tokens=1`, `temperature=0`, `logprobs=True`,
`top_logprobs=10`. The score is P(yes) / (P(yes) + P(no)), each summed over the top tokens that read "yes" / "no"
whatever their case or leading space ("Yes", " yes", "YES").

`answerable_probability` returns None when the score can't be computed: the server sent no logprobs (some
OpenAI-compatible servers ignore the option) or neither "yes" nor "no" is among the top tokens. The caller then
falls back to the judgements that need no model (`Judgement.reply` still holds the one-word text reply, which a
caller may use as a hard yes/no).

Prompts use the project's conventions: `$name` placeholders (string.Template), every placeholder must get a value
and every value a placeholder, or ConfigError. This module imports nothing from `rag` but errors and config.
"""

from __future__ import annotations

import functools
import math
import string
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import PROJECT_DIR
from ..errors import ConfigError, ModelAuthError, ModelError

PROMPT_DIR = PROJECT_DIR / "prompts"
SYSTEM_PROMPT = "answerable_system"
USER_PROMPT = "answerable_user"
TOP_LOGPROBS = 10
_YES = "yes"
_NO = "no"


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible chat endpoint. `api_key` is only ever sent as the credential."""

    base_url: str  # e.g. http://127.0.0.1:8080/v1
    model: str
    api_key: str | None = None
    timeout: float = 30.0

    def __repr__(self) -> str:  # never show the key
        return f"Endpoint(base_url={self.base_url!r}, model={self.model!r}, timeout={self.timeout!r})"

    @property
    def where(self) -> str:
        """host:port, for messages (never the path, query or credentials in the URL)."""
        try:
            parts = urlsplit(self.base_url)
            return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or "the model server")
        except ValueError:
            return "the model server"


@dataclass(frozen=True)
class Judgement:
    """`probability` = P(yes) / (P(yes) + P(no)), or None without usable logprobs; `reply` = the text reply."""

    probability: float | None
    reply: str
    p_yes: float = 0.0
    p_no: float = 0.0


# -- prompts -----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def load_prompt(name: str, directory: Path = PROMPT_DIR) -> str:
    """The text of `prompts/<name>.txt`, trailing newline removed."""
    if not name.replace("_", "").isalnum():
        raise ConfigError(f"Invalid prompt name {name!r}.")
    path = directory / f"{name}.txt"
    try:
        return path.read_text(encoding="utf-8").rstrip("\n")
    except OSError:
        raise ConfigError(f"Prompt file {path} is missing.") from None


def render_prompt(name: str, directory: Path = PROMPT_DIR, **values: str) -> str:
    """Fill prompt `name`; a placeholder without a value, or a value without a placeholder, is a ConfigError."""
    template = load_prompt(name, directory)
    wanted = {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(template)} - {None}
    if wanted - values.keys():
        raise ConfigError(f"Prompt {name!r} needs a value for: {', '.join(sorted(wanted - values.keys()))}.")
    if values.keys() - wanted:
        raise ConfigError(f"Prompt {name!r} has no placeholder for: {', '.join(sorted(values.keys() - wanted))}.")
    return string.Template(template).substitute(values)


def format_passages(passages: Sequence[str]) -> str:
    """Passages numbered [1], [2], ... one blank line apart."""
    return "\n\n".join(f"[{i}] {' '.join(text.split())}" for i, text in enumerate(passages, 1))


def messages(
    question: str, passages: Sequence[str], *, system: str = SYSTEM_PROMPT, user: str = USER_PROMPT
) -> list[dict[str, str]]:
    """The chat messages of the judgement."""
    return [
        {"role": "system", "content": render_prompt(system)},
        {"role": "user", "content": render_prompt(user, passages=format_passages(passages), question=question.strip())},
    ]


# -- scoring -----------------------------------------------------------------------------------------------


def score_top_logprobs(top: Sequence[tuple[str, float]]) -> tuple[float | None, float, float]:
    """(P(yes) / (P(yes) + P(no)) or None, P(yes), P(no)) from (token, logprob) pairs."""
    p_yes = p_no = 0.0
    for token, logprob in top:
        word = token.strip().lower()
        if word == _YES:
            p_yes += math.exp(logprob)
        elif word == _NO:
            p_no += math.exp(logprob)
    total = p_yes + p_no
    return (p_yes / total if total > 0 else None), p_yes, p_no


def judge(
    question: str,
    passages: Sequence[str],
    endpoint: Endpoint,
    *,
    system: str = SYSTEM_PROMPT,
    user: str = USER_PROMPT,
) -> Judgement:
    """Ask the yes/no question once (no retries: a failed judgement should fall back, not wait)."""
    if not passages:
        return Judgement(0.0, "", 0.0, 1.0)  # nothing retrieved: nothing can state the answer
    client = _client(endpoint.base_url, endpoint.api_key, endpoint.timeout)
    try:
        response = client.chat.completions.create(
            model=endpoint.model,
            messages=messages(question, passages, system=system, user=user),
            max_tokens=1,
            temperature=0.0,
            logprobs=True,
            top_logprobs=TOP_LOGPROBS,
        )
    except Exception as err:  # the SDK's messages may quote the key: ours never do
        raise _error(err, endpoint) from None
    try:
        choice = response.choices[0]
        reply = (choice.message.content or "").strip()
    except (AttributeError, IndexError, TypeError):
        raise ModelError(f"The model server at {endpoint.where} sent a reply that could not be read.") from None
    top = _top_logprobs(choice)
    if not top:
        return Judgement(None, reply)
    probability, p_yes, p_no = score_top_logprobs(top)
    return Judgement(probability, reply, p_yes, p_no)


def answerable_probability(
    question: str,
    passages: Sequence[str],
    endpoint: Endpoint,
    *,
    system: str = SYSTEM_PROMPT,
    user: str = USER_PROMPT,
) -> float | None:
    """P(yes) / (P(yes) + P(no)) that the passages state the answer, or None without logprobs (then fall back)."""
    return judge(question, passages, endpoint, system=system, user=user).probability


def _top_logprobs(choice: Any) -> list[tuple[str, float]]:
    """(token, logprob) pairs of the first generated token: its top alternatives, else the token itself."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return []
    first = content[0]
    pairs = [(str(t.token), float(t.logprob)) for t in (getattr(first, "top_logprobs", None) or [])]
    if not pairs and getattr(first, "token", None) is not None and getattr(first, "logprob", None) is not None:
        pairs = [(str(first.token), float(first.logprob))]
    return [(token, lp) for token, lp in pairs if math.isfinite(lp)]


_clients: dict[tuple[str, str | None, float], Any] = {}
_clients_lock = threading.Lock()


def _client(base_url: str, api_key: str | None, timeout: float) -> Any:
    """One `openai.OpenAI` client per endpoint, so repeated judgements reuse the connection."""
    from openai import OpenAI

    key = (base_url, api_key, timeout)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = OpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=0)
        return _clients[key]


def _error(err: Exception, endpoint: Endpoint) -> ModelError:
    import openai

    where = endpoint.where
    if isinstance(err, openai.AuthenticationError | openai.PermissionDeniedError):
        return ModelAuthError(f"The model provider at {where} rejected the API key: set a valid OPENAI_API_KEY.")
    if isinstance(err, openai.APITimeoutError):
        return ModelError(f"The model at {where} did not judge answerability within {endpoint.timeout:g} s.")
    if isinstance(err, openai.APIConnectionError):
        return ModelError(f"Can't reach the model server at {where}.")
    status = getattr(err, "status_code", None)
    if status is not None:
        return ModelError(f"The model server at {where} refused the answerability request (HTTP {status}).")
    return ModelError(f"The answerability request to {where} failed ({type(err).__name__}).")
