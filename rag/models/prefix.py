"""A prompt prefix read once, kept on disk: llama.cpp's slot save and restore.

Reading a short document's whole-document prompt costs 20-70 s on 2 cores; restoring the model's saved state
for it (its KV cache, ~28 KB a token) takes well under a second. So a prefix is read once, ever: after the
server has read it, the slot is saved to a file named by the prompt's hash; later (another question, or a
restart of the app) the file is restored instead of reading the prompt again. Only the local server does this
(`--slot-save-path`); other servers just read the prompt (their own caches, if any, apply).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx

log = logging.getLogger(__name__)

Read = Literal["restored", "read"]
# Files kept at most (oldest dropped): ~56 MB each for a 2,000-token document, so about 1 GB on disk.
MAX_FILES = 20
SLOT = 0  # the server runs one slot (rag.models.server)


def prefix_file(messages: Sequence[Any], model_file: Path, context: int) -> str:
    """The file name of a prefix's saved state: its text, the model file and the context size decide it."""
    digest = hashlib.sha256(json.dumps([list(messages), model_file.name, context], sort_keys=True).encode())
    return f"prefix-{digest.hexdigest()[:32]}.bin"


def keep_prefix(address: str, slot_dir: Path, name: str, read: Callable[[], None], timeout: float) -> Read:
    """Restore the saved state `name` into the server's slot, or `read()` the prompt and save it."""
    if (slot_dir / name).is_file() and _slot(address, "restore", name, timeout):
        (slot_dir / name).touch()  # recently used: kept longest
        return "restored"
    read()
    if _slot(address, "save", name, timeout):
        _prune(slot_dir)
    return "read"


def _slot(address: str, action: str, name: str, timeout: float) -> bool:
    """One slot action; False (logged) when the server refuses it: reading the prompt is the fallback."""
    try:
        reply = httpx.post(f"{address}/slots/{SLOT}", params={"action": action}, json={"filename": name},
                           timeout=timeout)  # fmt: skip
    except httpx.HTTPError as err:
        log.warning("prompt cache %s failed: %s", action, err)
        return False
    if reply.status_code != 200:
        log.warning("prompt cache %s refused (HTTP %s)", action, reply.status_code)
    return reply.status_code == 200


def _prune(slot_dir: Path) -> None:
    files = sorted(slot_dir.glob("prefix-*.bin"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[MAX_FILES:]:
        old.unlink(missing_ok=True)
