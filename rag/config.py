"""One frozen `Settings`. `Settings.from_env()` is the only place that reads the environment.

Every field can be set in code (`dataclasses.replace(settings, top_k=6)`) or by an environment
variable `RAG_<FIELD>` (`RAG_TOP_K=6`). The usual provider variables are honoured too:
OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL, CHROMA_HOST, CHROMA_PORT.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import platformdirs

from rag.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
# From a checkout, the project's own folders are used (prompts/ is the one place prompts are edited). An
# installed wheel carries the prompts and the default article inside the package (rag/_bundled, copied there
# at build time) and keeps its index and model in the user's data folder.
IN_CHECKOUT = (PROJECT_DIR / "pyproject.toml").is_file() and (PROJECT_DIR / "prompts").is_dir()
BUNDLED_DIR = PROJECT_DIR if IN_CHECKOUT else PACKAGE_DIR / "_bundled"
DATA_DIR = PROJECT_DIR if IN_CHECKOUT else Path(platformdirs.user_data_dir("article-rag"))
PROMPT_DIR = BUNDLED_DIR / "prompts"
PROVIDERS = ("auto", "local", "openai", "extractive")
EMBED_PROVIDERS = ("local", "openai")
ANSWERABILITY = ("words", "judge")

# Conventional variable names that users already have set; RAG_<FIELD> still wins over them.
_ALIASES = {
    "openai_api_key": "OPENAI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "openai_model": "OPENAI_MODEL",
    "chroma_host": "CHROMA_HOST",
    "chroma_port": "CHROMA_PORT",
}


@dataclass(frozen=True)
class StoreSettings:
    """Where the Chroma store is: the key of its client."""

    index_dir: Path
    chroma_host: str | None
    chroma_port: int
    chroma_timeout: float


@dataclass(frozen=True)
class EmbedSettings:
    """What embeds text: the key of the loaded embedding model."""

    embed_provider: str
    openai_embed_model: str
    openai_api_key: str | None = field(repr=False)
    openai_base_url: str | None
    request_timeout: float
    max_retries: int


@dataclass(frozen=True)
class LocalModelSettings:
    """The local model file and how its server runs: the key of the server process."""

    model_dir: Path
    llm_threads: int
    llm_context: int


@dataclass(frozen=True)
class ChatSettings:
    """Who answers and how: the key of the chat client."""

    provider: str  # resolved: local or openai
    openai_api_key: str | None = field(repr=False)
    openai_base_url: str | None
    openai_model: str
    model_dir: Path
    llm_threads: int
    llm_context: int
    max_answer_tokens: int
    temperature: float
    request_timeout: float
    max_retries: int


@dataclass(frozen=True)
class Settings:
    # Documents and index
    corpus_path: Path = BUNDLED_DIR / "data" / "turkey-russia-article.txt"
    index_dir: Path = DATA_DIR / "index"
    collection: str = "article"
    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_timeout: float = 5.0
    max_source_bytes: int = 20_000_000
    fetch_timeout: float = 20.0  # seconds for reading a URL, redirects included
    allow_private_urls: bool = False  # the app on a non-loopback address refuses URLs on private networks
    # Embeddings
    embed_provider: str = "local"
    openai_embed_model: str = "text-embedding-3-small"
    # Answering
    provider: str = "auto"
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    model_dir: Path = DATA_DIR / "models"
    llm_threads: int = 2
    llm_context: int = 4096
    max_answer_tokens: int = 320
    temperature: float = 0.0
    request_timeout: float = 60.0
    max_retries: int = 2
    fallback_extractive: bool = True
    # Refusing before generating: "judge" (the model's own P(yes) over the answer's prompt, a threshold fitted on
    # the tuning split; held-out figures in rag/answer/thresholds.json; the word gate where the model gives no
    # probabilities) or "words" (question words found in the documents, always).
    answerability: str = "judge"
    # Each sentence before it is shown: "words" (overlap with its cited passage: numbers, names, content words) or
    # "judge" (then also the model's P(yes) that its passage states it, threshold fitted on the tuning split; it
    # did not pay for its time on held-out pages, docs/decisions.md 2026-12-02).
    support: str = "words"
    # Stricter or looser than fitted: the P(yes) below which a question is refused / a sentence not shown
    # (None: the values fitted on the tuning split, rag/answer/thresholds.json).
    judge_threshold: float | None = None
    support_threshold: float | None = None
    # A question whose best passage comes from a document short enough for the model's context reads that
    # document whole, from a prompt prefix that stays the same for every question about it (rag.answer.whole).
    whole_documents: bool = True
    # Retrieval and input limits
    top_k: int = 4
    max_question_chars: int = 2000

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `environ` (default: os.environ); keyword overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"RAG_{f.name.upper()}")
            if raw is None and f.name in _ALIASES:
                raw = env.get(_ALIASES[f.name])
            if raw is not None and raw.strip() != "":
                values[f.name] = _convert(f.name, f.type, raw.strip())
        values.update(overrides)
        return cls(**values)

    @property
    def resolved_provider(self) -> str:
        """`auto` means OpenAI (or a compatible server) when a key or base URL is set, else the local model."""
        if self.provider != "auto":
            return self.provider
        return "openai" if (self.openai_api_key or self.openai_base_url) else "local"

    @property
    def server_mode(self) -> bool:
        return bool(self.chroma_host)

    # Frozen groups by concern: the caches of loaded things are keyed by these, so a field added to a
    # group can't be forgotten in a key.
    @property
    def store(self) -> StoreSettings:
        return _group(StoreSettings, self)

    @property
    def embedding(self) -> EmbedSettings:
        return _group(EmbedSettings, self)

    @property
    def local_model(self) -> LocalModelSettings:
        return _group(LocalModelSettings, self)

    @property
    def chat(self) -> ChatSettings:
        return _group(ChatSettings, self, provider=self.resolved_provider)


G = TypeVar("G")


def _group(kind: type[G], settings: Settings, **given: Any) -> G:
    names = [f.name for f in dataclasses.fields(kind)]  # type: ignore[arg-type]
    return kind(**{name: given[name] if name in given else getattr(settings, name) for name in names})


def _convert(name: str, type_: Any, raw: str) -> Any:
    """Turn an environment string into the field's type, with a message naming the variable."""
    kind = str(type_)
    try:
        if "Path" in kind:
            return Path(raw).expanduser()
        if kind == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind in ("float", "float | None"):
            return float(raw)
    except ValueError:
        raise ConfigError(f"RAG_{name.upper()} has an invalid value {raw!r} (expected {kind}).") from None
    return raw


def _validate(s: Settings) -> None:
    if s.provider not in PROVIDERS:
        raise ConfigError(f"Unknown provider {s.provider!r}: choose one of {', '.join(PROVIDERS)} (RAG_PROVIDER).")
    if s.answerability not in ANSWERABILITY:
        raise ConfigError(f"Unknown answerability check {s.answerability!r}: choose judge or words (RAG_ANSWERABILITY).")
    if s.support not in ANSWERABILITY:
        raise ConfigError(f"Unknown support check {s.support!r}: choose judge or words (RAG_SUPPORT).")
    if s.embed_provider not in EMBED_PROVIDERS:
        raise ConfigError(
            f"Unknown embedding provider {s.embed_provider!r}: choose local or openai (RAG_EMBED_PROVIDER)."
        )
    if not 3 <= len(s.collection) <= 40 or not s.collection.replace("-", "").replace("_", "").isalnum():
        raise ConfigError("RAG_COLLECTION must be 3-40 letters, digits, '-' or '_'.")
    for name in ("top_k", "max_question_chars", "llm_threads", "llm_context", "max_answer_tokens", "chroma_port"):
        if getattr(s, name) < 1:
            raise ConfigError(f"RAG_{name.upper()} must be a positive number.")
    if s.top_k > 50:
        raise ConfigError("RAG_TOP_K must be at most 50.")
    if s.max_retries < 0:
        raise ConfigError("RAG_MAX_RETRIES must be 0 or more.")
    for name in ("request_timeout", "chroma_timeout", "fetch_timeout"):
        if not getattr(s, name) > 0:  # `not > 0` also refuses nan
            raise ConfigError(f"RAG_{name.upper()} must be a positive number of seconds.")
    for name in ("judge_threshold", "support_threshold"):
        value = getattr(s, name)
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"RAG_{name.upper()} must be a probability between 0 and 1.")
    if not 0.0 <= s.temperature <= 2.0:
        raise ConfigError("RAG_TEMPERATURE must be between 0 and 2.")
