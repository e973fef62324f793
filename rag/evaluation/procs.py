"""Small helpers shared by the benchmark modules: timing statistics, memory, free ports, a Chroma server.

Nothing here is used by the product itself; it lives in `rag/` so `python -m rag bench` works on a fresh clone.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from rag.config import PACKAGE_DIR
from rag.errors import StoreUnavailableError

Figures = dict[str, float | int | str | None]


def percentile(samples: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def pct(name: str, samples: Sequence[float], unit: str = "ms") -> Figures:
    """`{name}_p50_{unit}` and `{name}_p95_{unit}` from samples in seconds (unit "ms" or "s"); None if empty."""
    scale, digits = (1000.0, 2) if unit == "ms" else (1.0, 3)
    out: Figures = {}
    for q in (50, 95):
        value = percentile(samples, q)
        out[f"{name}_p{q}_{unit}"] = None if value is None else round(value * scale, digits)
    return out


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds per call of `fn` over `repeats` calls, after `warmup` untimed calls (caches, lazy loads)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def _vm_hwm_kb(pid: int | str) -> int:
    """Peak resident set (VmHWM) of a live process in KiB; 0 if it is gone or unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_peak_rss_mb() -> tuple[float, float]:
    """(peak RSS of this process, sum of the peaks of its live descendants), in MB.

    The local model runs in a child process; the sum of the two is an upper bound of the simultaneous
    peak, which is what "fits in memory" needs.
    """
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    descendants_kb = sum(_vm_hwm_kb(pid) for pid in tree - {os.getpid()})
    # VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts at its parent's RSS at fork time.
    own_kb = _vm_hwm_kb(os.getpid())
    return round(own_kb / 1024.0, 1), round(descendants_kb / 1024.0, 1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the small race is fine for tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chroma_binary() -> Path:
    """The `chroma` CLI installed next to this interpreter (the venv's bin/)."""
    path = Path(sys.executable).parent / "chroma"
    if not path.exists():
        raise StoreUnavailableError(f"The chroma command was not found at {path}; run `make setup`.")
    return path


def start_chroma(path: Path, log: Path | None = None, timeout: float = 60.0) -> tuple[subprocess.Popen[bytes], int]:
    """Start a real `chroma run` over `path` on 127.0.0.1:<free port>; return once it answers its heartbeat."""
    port = free_port()
    cmd = [str(chroma_binary()), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    with open(log or os.devnull, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while not _heartbeat(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise StoreUnavailableError(f"The Chroma server did not start on 127.0.0.1:{port} (log: {log}).")
        time.sleep(0.05)
    return proc, port


def _heartbeat(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1.0).status_code == 200
    except httpx.HTTPError:  # not listening yet
        return False


@contextlib.contextmanager
def chroma_server(path: Path, log: Path | None = None) -> Iterator[tuple[str, int, float]]:
    """A real `chroma run` for the duration of the block; yields (host, port, startup seconds)."""
    start = time.perf_counter()
    proc, port = start_chroma(path, log)
    try:
        yield "127.0.0.1", port, time.perf_counter() - start
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop a server we started: ask politely (SIGTERM), then SIGKILL if it hasn't gone within `timeout`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A scratch directory outside the repo (never the project's index/), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"rag-bench-{prefix}-") as name:
        yield Path(name)


def env_for_child() -> dict[str, str]:
    """The environment for benchmark subprocesses: ours, with this very `rag` package importable."""
    env = dict(os.environ)
    root = str(PACKAGE_DIR.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def report(shown: Any, result: Any, json_path: Path | None) -> int:
    """A bench module's ending: `shown` printed as JSON, the whole `result` written to `json_path` if given."""
    import json

    print(json.dumps(shown, indent=1))
    if json_path:
        json_path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0
