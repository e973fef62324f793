"""A document's whole-document prefix is read once, ever: saved after the first read, restored after a restart."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from rag import Settings
from rag.models.chat import Message, OpenAICompatibleModel
from rag.models.prefix import MAX_FILES, _prune, prefix_file
from rag.models.server import LocalServer
from rag.models.weights import MODEL_NAME, ensure_model


def _prefix(article: str) -> list[Message]:
    return [
        {"role": "system", "content": "You answer questions about a document, using only its passages."},
        {"role": "user", "content": f"Passages:\n[1] {article[:1200]}\n\nQuestion: "},
    ]


def _cached_tokens(server: LocalServer, messages: list[Message]) -> int:
    """How many prompt tokens the server took from its cache for `messages` (llama.cpp reports it)."""
    reply = httpx.post(f"{server.address}/v1/chat/completions", timeout=600,
                       json={"model": MODEL_NAME, "messages": messages, "max_tokens": 1})  # fmt: skip
    return int(reply.json()["usage"]["prompt_tokens_details"]["cached_tokens"])


@pytest.mark.llm
def test_a_saved_prefix_is_restored_after_the_server_restarts(tmp_path: Path) -> None:
    # Its own small context and slot directory: a server of this test only.
    settings = dataclasses.replace(Settings(provider="local"), llm_context=1024)
    prefix = _prefix(settings.corpus_path.read_text(encoding="utf-8"))
    question = [prefix[0], {**prefix[1], "content": prefix[1]["content"] + "Who met in Sochi?"}]
    servers = []
    try:
        for expected in ("read", "restored"):
            server = LocalServer(ensure_model(settings), context=1024, threads=settings.llm_threads, slot_dir=tmp_path)
            servers.append(server)
            model = OpenAICompatibleModel(settings, provider="local", model=MODEL_NAME, server=server,
                                          context_window=1024)  # fmt: skip
            assert model.keep_prefix(prefix) == expected
            assert (tmp_path / prefix_file(prefix, server.model_path, 1024)).is_file()
            if expected == "restored":  # a fresh process: only the restored state can hold the prefix
                assert _cached_tokens(server, question) >= 200
            server.stop()
    finally:
        for server in servers:
            server.stop()


def test_old_prefix_files_are_pruned_newest_kept(tmp_path: Path) -> None:
    import os

    for i in range(MAX_FILES + 3):
        path = tmp_path / f"prefix-{i:02d}.bin"
        path.write_bytes(b"x")
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    _prune(tmp_path)
    kept = sorted(p.name for p in tmp_path.glob("prefix-*.bin"))
    assert len(kept) == MAX_FILES and kept[0] == "prefix-03.bin"
