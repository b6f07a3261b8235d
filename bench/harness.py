"""Processes for a benchmark: the load generator in its own process, the baseline server, memory readings.

Everything here talks to this machine only, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx

from bench.load_spec import LoadResult, LoadSpec, check_loopback

T = TypeVar("T")

# `python -m bench.…` and `python -m ops.cli` find their packages from here, wherever the caller stands.
REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], T], *, timeout: float, interval: float = 0.1, what: str = "a condition") -> T:
    """Call `check` until it returns something truthy; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(interval)


def answers_200(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


# ---- the load generator --------------------------------------------------------------------------------------------

def run_load(spec: LoadSpec) -> LoadResult:
    """Run `python -m bench.load` in its own process (so it does not share a core's event loop with the harness)."""
    check_loopback(spec.base_url)  # the generator checks too; failing here says so before a process starts
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="bench-load-", delete=False) as file:
        file.write(spec.model_dump_json())
    try:
        limit = spec.warmup + spec.duration + 60  # the generator bounds itself; this only guards against a hang
        done = subprocess.run([sys.executable, "-m", "bench.load", file.name], capture_output=True, text=True,
                              timeout=limit, check=False, cwd=REPO_ROOT)
    finally:
        os.unlink(file.name)
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    return LoadResult.model_validate_json(done.stdout)


# ---- the baseline --------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def baseline_server() -> Iterator[tuple[str, int]]:
    """`bench.baseline_app` on a free port: (base URL, pid) while the block runs."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.baseline_app", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or answers_200(url + "/healthz"), timeout=30,
                 what="the baseline server answering")
        if process.poll() is not None:
            raise RuntimeError(f"the baseline server exited: {process.stderr.read().decode()[-2000:]}")
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- memory ----------------------------------------------------------------------------------------------------------

def rss_mib(pid: int) -> float | None:
    """Resident set size of a process from /proc (Linux), in MiB; None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def children_of(parent: int) -> dict[int, str]:
    """The direct children of a process: pid → command line (a /proc scan; `ps --ppid` does the same)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # The command name sits in parentheses and may hold spaces: the parent pid is the 2nd field after it.
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == parent:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return found


class PeakMemory:
    """Samples the RSS of some processes in a background thread while a block runs; the peak per process."""

    def __init__(self, pids: dict[str, int], interval: float = 0.25) -> None:
        self.pids = pids
        self.interval = interval
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                value = rss_mib(pid)
                if value is not None and value > self.peak.get(name, 0.0):
                    self.peak[name] = value
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def merge_into(self, peaks: dict[str, float]) -> None:
        for name, value in self.peak.items():
            peaks[name] = max(peaks.get(name, 0.0), value)
