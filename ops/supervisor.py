"""The supervisor behind `rehab up`: start processes stage by stage, restart any that dies or hangs, stop them all on a
signal.

A process that hangs (stuck, or stopped) does not exit, so waiting for it to die would leave it hung for good: its
ready URL is asked every `LIVENESS_INTERVAL` seconds once it has started, and after `HUNG_AFTER` of those in a row
without an answer it is killed, and restarted as one that died (Kubernetes' liveness probe does the same there).

It knows a process only as a command line, the ports it binds and a URL that answers 200 once it is ready; it never
imports what it runs. Each process writes to its own log file; the console gets only short status lines, so nothing a
process prints can reach a terminal or a terminal's scroll-back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import json
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

BACKOFF_FIRST = 0.5  # seconds before the first restart
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a process that stayed up this long starts again from BACKOFF_FIRST when it dies
POLL_INTERVAL = 0.1
LIVENESS_INTERVAL = 5.0  # seconds between two questions to a running process
LIVENESS_TIMEOUT = 3.0
HUNG_AFTER = 4  # questions in a row without an answer: 4 × (5 s apart + 3 s each), about half a minute


@dataclass(frozen=True)
class ProcessSpec:
    """One process to run: how to start it, how to tell it is ready, which ports it binds."""

    name: str
    argv: Sequence[str]
    ready_url: str  # answers 200 once the process serves
    ports: Mapping[int, str] = field(default_factory=dict)  # each port it binds → the setting that moves it
    env: Mapping[str, str] = field(default_factory=dict)  # on top of the supervisor's own environment
    stage: int = 0  # lower stages start first and stop last; a stage starts once the one before is ready
    # Under sealed key custody (kit.custody): the process reads unseal passphrases from a pipe it inherits
    # (REHAB_UNSEAL_FD), never from its environment, arguments or a file.
    takes_passphrase: bool = False


class StartupError(Exception):
    """The system cannot start; the message says which process and where to look."""


@dataclass
class _Child:
    spec: ProcessSpec
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    ready: bool = False  # answered its ready URL since it was last started
    backoff: float = BACKOFF_FIRST
    passphrase_pipe: int | None = None  # the end the supervisor writes unseal passphrases to


class Supervisor:
    """Runs `specs` in the foreground until SIGINT, SIGTERM or `stop()`."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        log_dir: Path,
        on_ready: Callable[[], None] = lambda: _say("all processes are up"),
        startup_timeout: float = 60.0,
        stop_timeout: float = 5.0,
        passphrase: str | None = None,
        control_socket: Path | None = None,
        liveness_interval: float = LIVENESS_INTERVAL,
        liveness_timeout: float = LIVENESS_TIMEOUT,
    ) -> None:
        self._children = [_Child(spec, log_dir / f"{spec.name}.log") for spec in specs]
        self._log_dir = log_dir
        self._on_ready = on_ready
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._liveness_interval = liveness_interval
        self._liveness_timeout = liveness_timeout
        self._stop_requested = asyncio.Event()
        # Asks the processes whether they are ready; only loopback, so no proxy from the environment.
        self._http = httpx.AsyncClient(timeout=1.0, trust_env=False)
        # Sealed custody: the unseal passphrase, handed to each process at its first start and then forgotten: a
        # process restarted later starts sealed, until `rehab unseal` hands one over through `control_socket`
        # (owner-only). Keeping it would let a restart undo a `rehab seal`.
        self._passphrase = passphrase
        self._control_socket = control_socket

    def stop(self) -> None:
        """Ask `run()` to stop every process and return, as SIGINT and SIGTERM do."""
        self._stop_requested.set()

    async def run(self) -> int:
        """Start everything, keep it running until asked to stop, then stop it all; returns the exit code."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop)
        try:
            return await self._serve()
        finally:
            # Whatever happened above, leave no process behind.
            await self._stop_all()
            await self._http.aclose()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    async def _serve(self) -> int:
        try:
            check_ports([child.spec for child in self._children])
            self._log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not await _unless(self._stop_requested, self._start_all()):
                return 0  # stopped during start-up
        except StartupError as error:
            _say(f"error: {error}", error=True)
            return 1
        self._passphrase = None
        control = await self._open_control_socket()
        self._on_ready()
        watchers = [asyncio.create_task(watch(child)) for child in self._children
                    for watch in (self._keep_running, self._kill_if_hung)]
        try:
            await self._stop_requested.wait()
        finally:
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            if control is not None:
                control.close()
                with contextlib.suppress(FileNotFoundError):
                    self._control_socket.unlink()  # type: ignore[union-attr]
        return 0

    async def _open_control_socket(self) -> asyncio.AbstractServer | None:
        """`rehab unseal` talks to the supervisor here: a Unix socket only its owner may open."""
        if self._control_socket is None:
            return None
        with contextlib.suppress(FileNotFoundError):
            self._control_socket.unlink()
        old_mask = os.umask(0o177)
        try:
            return await asyncio.start_unix_server(self._on_control, path=str(self._control_socket))
        finally:
            os.umask(old_mask)

    async def _on_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            command = (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
            if command == "unseal":
                passphrase = (await asyncio.wait_for(reader.readline(), 5)).decode().rstrip("\r\n")
                handed = self.hand_passphrase(passphrase)
                writer.write(f"handed to {handed} processes\n".encode())
            else:
                writer.write(b"unknown command\n")
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()

    def hand_passphrase(self, passphrase: str) -> int:
        """Write an unseal passphrase to every running process's pipe; how many took it."""
        handed = 0
        for child in self._children:
            if child.passphrase_pipe is None:
                continue
            try:
                os.write(child.passphrase_pipe, (passphrase + "\n").encode())
                handed += 1
            except OSError:  # the process is gone; its next start gets a new pipe
                pass
        return handed

    async def _start_all(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        for stage in sorted({child.spec.stage for child in self._children}):
            batch = [child for child in self._children if child.spec.stage == stage]
            for child in batch:
                await self._spawn(child)
            # They start side by side; waiting for them one after the other costs nothing more.
            for child in batch:
                await self._wait_ready(child, deadline)

    async def _keep_running(self, child: _Child) -> None:
        """Restart `child` whenever it exits, waiting longer after each quick failure."""
        assert child.process is not None
        while True:
            code = await child.process.wait()
            _signal_group(child.process.pid, signal.SIGKILL)  # anything it left behind would hold its port
            if time.monotonic() - child.started_at >= STABLE_AFTER:
                child.backoff = BACKOFF_FIRST
            delay, child.backoff = child.backoff, min(child.backoff * 2, BACKOFF_MAX)
            _say(f"{child.spec.name} exited with code {code}; restarting in {delay:.1f}s")
            await asyncio.sleep(delay)
            try:
                await self._spawn(child)
                await self._wait_ready(child, time.monotonic() + self._startup_timeout)
            except StartupError as error:
                # If it died (or never started), the next turn tries again, later; if it hangs, it stays as it is.
                _say(f"error: {error}", error=True)

    async def _kill_if_hung(self, child: _Child) -> None:
        """Kill `child` once it has left `HUNG_AFTER` questions in a row unanswered; `_keep_running` restarts it."""
        unanswered = 0
        while True:
            await asyncio.sleep(self._liveness_interval)
            process = child.process
            # Not running, or starting and not ready yet: `_keep_running`'s and `_wait_ready`'s to judge. Once it
            # has been ready it is asked at once, not after the start-up window: one that hangs soon after a restart
            # was otherwise left hung for a minute more (an outside review's find).
            if process is None or process.returncode is not None or (
                    not child.ready and time.monotonic() - child.started_at < self._startup_timeout):
                unanswered = 0
                continue
            try:
                await self._http.get(child.spec.ready_url, timeout=self._liveness_timeout)
                unanswered = 0
            except httpx.HTTPError:
                unanswered += 1
            if unanswered >= HUNG_AFTER:
                _say(f"{child.spec.name} has not answered for {unanswered} checks in a row; killing it", error=True)
                _signal_group(process.pid, signal.SIGKILL)
                unanswered = 0

    async def _spawn(self, child: _Child) -> None:
        spec = child.spec
        with child.log_path.open("ab") as log:
            # A JSON line like every line the processes print (kit.logs), so a log shipper reads the file as one format.
            marker = {"event": f"supervisor: starting {spec.name}", "logger": "supervisor", "level": "info",
                      "timestamp": datetime.now(UTC).isoformat()}
            log.write((json.dumps(marker) + "\n").encode())
            log.flush()
            env = {**os.environ, **spec.env}
            inherited: tuple[int, ...] = ()
            if spec.takes_passphrase:
                if child.passphrase_pipe is not None:
                    with contextlib.suppress(OSError):
                        os.close(child.passphrase_pipe)
                reading, child.passphrase_pipe = os.pipe()
                inherited, env["REHAB_UNSEAL_FD"] = (reading,), str(reading)
                if self._passphrase is not None:
                    os.write(child.passphrase_pipe, (self._passphrase + "\n").encode())
            try:
                child.process = await asyncio.create_subprocess_exec(
                    *spec.argv,
                    env=env,
                    pass_fds=inherited,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    # Its own process group: Ctrl-C in a terminal reaches only the supervisor, which stops the
                    # rest in order; and the whole group can be signalled, helpers included.
                    start_new_session=True,
                    preexec_fn=functools.partial(_die_with_parent, os.getpid()),
                )
            except OSError as error:
                raise StartupError(f"cannot start {spec.name}: {error}") from error
            finally:
                for fd in inherited:  # the child's end, now the child's alone
                    os.close(fd)
        child.started_at, child.ready = time.monotonic(), False

    async def _wait_ready(self, child: _Child, deadline: float) -> None:
        spec, process = child.spec, child.process
        assert process is not None
        while True:
            if process.returncode is not None:
                raise StartupError(
                    f"{spec.name} exited with code {process.returncode} during start-up{_taken_meanwhile(spec)}; "
                    f"see {child.log_path}"
                )
            if await self._answers(spec.ready_url):
                _say(f"{spec.name} is ready (pid {process.pid})")
                child.ready = True
                return
            if time.monotonic() > deadline:
                raise StartupError(f"{spec.name} was not ready within {self._startup_timeout:g}s; see {child.log_path}")
            await asyncio.sleep(POLL_INTERVAL)

    async def _answers(self, url: str) -> bool:
        try:
            response = await self._http.get(url)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _stop_all(self) -> None:
        """Stop stage by stage, the last started first: the gateway before the services, NATS after them."""
        if not any(child.process for child in self._children):
            return
        _say("stopping")
        for stage in sorted({child.spec.stage for child in self._children}, reverse=True):
            await asyncio.gather(*(self._stop(child) for child in self._children if child.spec.stage == stage))
        _say("stopped")

    async def _stop(self, child: _Child) -> None:
        process = child.process
        if process is None:
            return
        if process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self._stop_timeout)
            except TimeoutError:
                _say(f"{child.spec.name} did not stop within {self._stop_timeout:g}s; killing it")
                _signal_group(process.pid, signal.SIGKILL)
                await process.wait()
        _signal_group(process.pid, signal.SIGKILL)  # whatever it started and left behind


def check_ports(specs: Sequence[ProcessSpec]) -> None:
    """Fail before anything starts when a port is taken, or wanted by two processes."""
    owners: dict[int, str] = {}
    for spec in specs:
        for port, setting in spec.ports.items():
            if port in owners:
                raise StartupError(f"port {port} is wanted by both {owners[port]} and {spec.name}; set {setting}")
            owners[port] = spec.name
            if not port_is_free(port):
                raise StartupError(f"port {port} ({spec.name}) is in use; set {setting} to a free port")


def _taken_meanwhile(spec: ProcessSpec) -> str:
    """Why a process that exited during start-up may have: a port of its, free when `check_ports` looked, now held
    by another process (an outgoing connection can be given any port in the kernel's range)."""
    for port, setting in spec.ports.items():
        if not port_is_free(port):
            return f": port {port} was free when checked but is now in use by another process; set {setting}"
    return ""


SYSTEM_PORTS = ("gateway", "intake", "referrals", "funds", "reports", "nats")


def port_in_use(ports: Any) -> str | None:
    """The first of the system's ports (`ports`: the settings `rehab up` uses) in use, as an operator reads it
    ("port 8000 (gateway)"), or None. Any in use means the system may be running."""
    for name in SYSTEM_PORTS:
        port = getattr(ports, f"{name}_port")
        if not port_is_free(port):
            return f"port {port} ({name})"
    return None


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers do: a port whose old connections linger in TIME_WAIT is free to listen on.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (and not handed out here before: `free_ports`)."""
    return free_ports(1, host)[0]


# Ports this process handed out: a system started in the background binds them only later, and the kernel may hand
# a port just released to the next ask, so a second system (an OpenBao, a test server) chosen meanwhile got the
# first one's port.
_HANDED_OUT: set[int] = set()
LOWEST_CHOSEN_PORT = 10000


def _first_outgoing_port() -> int:
    """The lowest port the kernel gives outgoing connections (Linux's ip_local_port_range; 32768 when unknown)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _candidate_ports(size: int = 1) -> range | None:
    """Where to look for `size` free ports in a row: below the ports the kernel gives outgoing connections, which
    could otherwise take a chosen port (any process's connection to NATS, PostgreSQL or another test's server) in
    the seconds before its server binds it (uvicorn then exits with 3). None when that range is too small to pick
    from (a machine that gives outgoing connections nearly every port): then the kernel chooses."""
    top = _first_outgoing_port() - size
    return range(LOWEST_CHOSEN_PORT, top) if top - LOWEST_CHOSEN_PORT >= 1000 else None


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports nobody listens on right now, none handed out by this process before, chosen at random
    below the outgoing connections' range (`_candidate_ports`). Each stays bound until all are chosen."""
    candidates = _candidate_ports()
    probes: list[socket.socket] = []
    chosen: list[int] = []
    try:
        for _ in range(100 * count):
            if len(chosen) == count:
                break
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                probe.bind((host, random.choice(candidates) if candidates else 0))
            except OSError:  # taken
                probe.close()
                continue
            probes.append(probe)
            if (port := probe.getsockname()[1]) not in _HANDED_OUT:
                chosen.append(port)
        if len(chosen) < count:
            raise RuntimeError(f"no {count} free ports on {host}")
        _HANDED_OUT.update(chosen)
        return chosen
    finally:
        for probe in probes:
            probe.close()


def free_block(size: int, host: str = "127.0.0.1") -> int:
    """The first of `size` ports in a row that are all free now (a cluster lays its replicas' ports out by offset),
    none handed out by this process before; chosen as `free_ports` chooses."""
    candidates = _candidate_ports(size) or range(LOWEST_CHOSEN_PORT, 65536 - size)
    for _ in range(200):
        base = random.choice(candidates)
        block = range(base, base + size)
        if not _HANDED_OUT.intersection(block) and all(port_is_free(port, host) for port in block):
            _HANDED_OUT.update(block)
            return base
    raise RuntimeError(f"no {size} free ports in a row on {host}")


def _say(line: str, *, error: bool = False) -> None:
    print(line, file=sys.stderr if error else sys.stdout, flush=True)


async def _unless(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> bool:
    """Run `work` to its end, or cancel it when `stop` is set first; True when it ran to its end."""
    working = asyncio.create_task(work)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not working.done():
        working.cancel()
        await asyncio.gather(working, return_exceptions=True)
        return False
    working.result()  # raises what `work` raised
    return True


def _signal_group(pid: int, signum: int) -> None:
    """Signal a child's whole process group (its id is the child's pid: each child starts its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


# Loaded once here: loading a library in a child between fork and exec could deadlock.
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Runs in the child before exec: have Linux send it SIGTERM when the supervisor dies, even by SIGKILL."""
    if _libc is None:
        return
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
        os._exit(1)
