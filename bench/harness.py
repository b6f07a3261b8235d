"""Processes for a benchmark: the load generator in its own process, the baseline server, memory readings.

Everything here talks to this machine only, and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import resource
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
from ops.supervisor import free_port

T = TypeVar("T")

# `python -m bench.…` and `python -m ops.cli` find their packages from here, wherever the caller stands.
REPO_ROOT = Path(__file__).resolve().parent.parent


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


def _stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which sits in parentheses and may hold spaces):
    [0] is the state, [1] the parent pid, [11] and [12] utime and stime. None when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return None


def children_of(parent: int) -> dict[int, str]:
    """The direct children of a process: pid → command line (a /proc scan; `ps --ppid` does the same)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        try:
            if fields is not None and int(fields[1]) == parent:
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


# ---- processor time --------------------------------------------------------------------------------------------------

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system processor time a process (all its threads) has used so far, from /proc; None when it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND  # utime, stime: fields 14 and 15 of stat


def postgres_cpu_seconds() -> float:
    """The processor time of every PostgreSQL process on the machine (its backends serve the system's queries)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        total += cpu_seconds(int(entry.name)) or 0.0
    return total


def _children_cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)  # the load generator's, once it has been waited for
    return used.ru_utime + used.ru_stime


class CpuUse:
    """How many of the machine's cores each process kept busy while a block ran (processor seconds ÷ wall seconds).

    Counted: the system's processes by name, every PostgreSQL process (`postgres`, only when one is running), and
    the load generator (`load generator`: this harness's children that ended during the block). Divided by a run's
    answers per second it is the processor time one request costs, which with the machine's core count bounds the
    throughput any concurrency can reach."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.cores: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        found = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        read = {name: value for name, value in found.items() if value is not None}
        read["postgres"] = postgres_cpu_seconds()
        read["load generator"] = _children_cpu_seconds()
        return read

    def __enter__(self) -> CpuUse:
        self._started, self._before = time.monotonic(), self._read()
        return self

    def __exit__(self, *_exc: object) -> None:
        wall = time.monotonic() - self._started
        after = self._read()
        self.cores = {name: round((after[name] - before) / wall, 3) for name, before in self._before.items()
                      if name in after and wall > 0 and (name != "postgres" or after[name] > 0)}


def machine_busy_seconds() -> float:
    """Processor seconds the whole machine has spent busy (every core, every process, ours or not), from /proc/stat:
    all but idle and iowait. Beside CpuUse's per-process figures it shows when others' work takes the cores."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle, iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal (guest is counted in user)
    return busy / _TICKS_PER_SECOND
