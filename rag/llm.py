"""Chat models: the local Qwen model served by xllamacpp, OpenAI, and OpenAI-compatible servers.

This is the only module that imports model clients. Everything above it sees `ChatModel`.
(Being built: the protocol below is the contract the answering code is written against.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, TypedDict

from .config import Settings


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


class ChatModel(Protocol):
    """Streams the reply to a chat as text deltas. Raises ModelError / ModelAuthError on failure."""

    provider: str  # "local" | "openai" | "openai-compatible"
    model: str

    def stream(self, messages: Sequence[Message]) -> Iterator[str]: ...


def ensure_model(settings: Settings) -> Path:
    """Assemble the local GGUF from the model-part packages, verify its sha256, return its path."""
    raise NotImplementedError


def get_chat_model(settings: Settings) -> ChatModel:
    """The chat model for `settings.resolved_provider` (local or openai), loaded once per process."""
    raise NotImplementedError
