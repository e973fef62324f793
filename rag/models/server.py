"""The local model's server: llama.cpp's OpenAI-compatible HTTP server (xllamacpp) in a child process.

Why a child process and not `xllamacpp.Server` on threads of the app's own process: a crash in
llama.cpp then can't take the app down, "the server died" is a real, detectable event (the process
exits, connections are refused) that we can restart from, and the 1.9 GB of weights leave with it.
Tearing an in-process server down and up again was measured to destabilise the host process.

One child per parent process and settings (model file, context, threads), started on first use
and bound to 127.0.0.1 on a port it picks itself. It exits when its stdin closes, so it never
outlives the parent (even one killed with SIGKILL). Run directly, this module is that child:
`python -m rag.models.server '{"model": ..., "context": ..., "threads": ...}'`.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO

from rag.cache import SettingsCache
from rag.config import PACKAGE_DIR, Settings
from rag.errors import ModelError
from rag.models.weights import MODEL_NAME, ensure_model

log = logging.getLogger(__name__)

SLOT_DIR = "prompt-cache"  # under the model directory: saved KV state belongs to this model file
START_TIMEOUT = 180.0  # seconds to load the model; a few on this machine, far more on a busy one


class LocalServer:
    """One server child for one model file and settings: started on first use, restarted at most once."""

    def __init__(self, model_path: Path, *, context: int, threads: int, slot_dir: Path | None = None) -> None:
        self.model_path = model_path
        self.context = context
        self.threads = threads
        self.slot_dir = slot_dir  # where prompt prefixes are saved to and restored from (rag.models.prefix)
        self.restarts = 0
        self.load_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._address = ""  # kept after the child dies, so a request to it fails and triggers a restart
        self._stderr: deque[str] = deque(maxlen=20)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalServer({self.model_path.name}, address={self._address or None}, restarts={self.restarts})"

    @property
    def address(self) -> str:
        """`http://127.0.0.1:PORT` of the server, starting it on first use (only then: a dead one stays dead)."""
        with self._lock:
            if not self._address:
                self._start()
            return self._address

    def start(self) -> str:
        """Start the server unless it was started before (dead or alive); its address."""
        return self.address

    @property
    def last_address(self) -> str:
        """The address it listens (or last listened) on, without starting it; "" before the first start."""
        return self._address

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        """Whether the child runs and accepts connections (a cheap TCP connect, no request)."""
        proc, address = self._proc, self._address
        if proc is None or proc.poll() is not None or not address:
            return False
        host, _, port = address.removeprefix("http://").partition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=2.0):
                return True
        except OSError:
            return False

    def restart(self, dead_address: str) -> str:
        """Start the server again after it was found dead at `dead_address`; once per process, then ModelError."""
        with self._lock:
            if self._address != dead_address and self._proc is not None and self._proc.poll() is None:
                return self._address  # another thread already restarted it
            if self.restarts >= 1:
                raise ModelError("The local model server stopped again after a restart; restart the app.")
            self.restarts += 1
            log.warning("local model server at %s is not answering; restarting it", dead_address)
            self._terminate()
            self._start()
            return self._address

    def stop(self) -> None:
        """Shut the child down. A later request finds it dead and restarts it (which counts as the restart)."""
        with self._lock:
            self._terminate()

    def _start(self) -> None:
        config = {"model": str(self.model_path), "context": self.context, "threads": self.threads,
                  "slots": str(self.slot_dir) if self.slot_dir is not None else ""}  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.models.server", json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # `python -m` imports from its working directory first: the child runs this very package,
            # from a checkout or an installed wheel alike, without touching PYTHONPATH.
            cwd=str(PACKAGE_DIR.parent),
        )
        self._stderr.clear()
        threading.Thread(target=self._drain_stderr, args=(proc,), daemon=True, name="llama-stderr").start()
        line = _read_line(proc, START_TIMEOUT)
        if not line.startswith("http://"):
            proc.kill()
            proc.wait()
            detail = line or (self._stderr[-1] if self._stderr else "no output")
            raise ModelError(f"The local model server could not start ({self.model_path.name}): {detail[:200]}")
        threading.Thread(target=self._drain_stdout, args=(proc,), daemon=True, name="llama-stdout").start()
        self._proc, self._address = proc, line.rstrip("/")
        self.load_seconds = time.perf_counter() - started
        log.info("local model server pid %s on %s, up in %.1f s", proc.pid, self._address, self.load_seconds)

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the child's signal to exit
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _drain_stdout(self, proc: subprocess.Popen[bytes]) -> None:
        self._drain(proc.stdout)

    def _drain_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        self._drain(proc.stderr)

    def _drain(self, pipe: IO[bytes] | None) -> None:
        # Reading the child's output keeps its pipes from filling up (which would block it).
        for raw in pipe or ():
            text = raw.decode("utf-8", "replace").rstrip()
            self._stderr.append(text)
            log.debug("llama.cpp: %s", text)


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The child's first stdout line (its address, or an error), or "" if it exits or times out first."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline().decode("utf-8", "replace").strip()


_servers: SettingsCache[LocalServer] = SettingsCache()


def local_server(settings: Settings) -> LocalServer:
    """The process-wide server for these settings (model file, context, threads); not started yet."""
    path = ensure_model(settings)
    return _servers.get(
        settings.local_model,
        lambda: LocalServer(path, context=settings.llm_context, threads=settings.llm_threads,
                            slot_dir=settings.model_dir / SLOT_DIR),  # fmt: skip
    )


@atexit.register
def _stop_all() -> None:
    for server in _servers.values():
        server.stop()


def _serve(config: dict[str, object]) -> None:
    """The child: load the model, print the address, serve until stdin closes."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(config["model"])
    params.n_ctx = int(str(config["context"]))
    params.n_parallel = 1  # one slot: the whole context for one request, and its prompt cache kept
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = int(str(config["threads"]))
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # the server binds a free port itself (no race) and reports it in listening_address
    params.verbosity = 1  # errors only: llama.cpp's per-request logs would flood stderr
    params.model_alias = {MODEL_NAME}
    params.cache_prompt = True  # reuse the KV cache of a shared prefix (the constant system prompt)
    # llama.cpp also keeps earlier prompts' KV state in RAM (8 GiB by default); ~28 KB a token for this
    # model, so 256 MiB still holds dozens of recent prompts without letting a laptop's memory creep up.
    params.cache_ram_mib = 256
    if config.get("slots"):  # llama.cpp joins this and the file name as strings: the separator is ours
        Path(str(config["slots"])).mkdir(parents=True, exist_ok=True)
        params.slot_save_path = str(config["slots"]).rstrip(os.sep) + os.sep
    # No warm-up run: measured (2026-12-02, docs/decisions.md) to cost ~3 s of the load and save ~1 s of the first
    # request. The app answers by quoting until the load ends, so a shorter load means the model answers sooner;
    # and its first real work, reading the documents ahead (rag.prime_overview), pays those first-run costs anyway.
    params.warmup = False
    try:
        server = xllamacpp.Server(params)
    except Exception as err:  # the binding raises RuntimeError for a bad file or params
        print(f"error: {err}", flush=True)
        os._exit(1)
    print(str(server.listening_address), flush=True)
    sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe or died
    os._exit(0)  # skip deallocating the server: the process is going away anyway


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
