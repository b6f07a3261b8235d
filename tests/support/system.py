"""The whole system as processes: `rehab up` in a temporary state folder on free ports, and small clients for it.

Used by the end-to-end story, the fuzzing and the fault tests. With REHAB_TEST_POSTGRES_URL / REHAB_TEST_NATS_URL
set, the system uses fresh PostgreSQL databases and that NATS server, as the rest of the suite does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ops.supervisor import free_ports
from tests.support.nats import reset_streams
from tests.support.postgres import create_database, drop_database

EXTERNAL_PG = os.environ.get("REHAB_TEST_POSTGRES_URL")
EXTERNAL_NATS = os.environ.get("REHAB_TEST_NATS_URL")

ADMIN_PASSWORD = "Admin-Passphrase-2026!"
STAFF_PASSWORD = "Long-enough-passphrase-42"
PROCESSES = ("intake", "referrals", "funds", "reports", "gateway")

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.2) -> T:
    """Retry `check` until it returns something truthy (events travel asynchronously)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not reached in {timeout}s; last: {last!r}")


class System:
    """`rehab up` in a temporary state folder, on free ports.

    `databases` gives some processes a database URL of the test's choosing (e.g. a private PostgreSQL server);
    `env` adds settings; `own_nats` starts the embedded NATS even when the suite has an external one (a test that
    kills NATS must not kill a server others share).
    """

    def __init__(self, root: Path, *, databases: Mapping[str, str] | None = None,
                 env: Mapping[str, str] | None = None, own_nats: bool = False) -> None:
        self.state = root / "var"
        ports = iter(free_ports(2 * len(PROCESSES) + 1))
        self.ports = {name: next(ports) for name in (*PROCESSES, "nats")}
        # Each process's /metrics listener (loopback), apart from its main port.
        self.metrics_ports = {name: next(ports) for name in PROCESSES}
        self.gateway_port = self.ports["gateway"]
        self.env = {
            **os.environ,
            "REHAB_STATE_DIR": str(self.state),
            **{f"REHAB_{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
            **{f"REHAB_{name.upper()}_METRICS_PORT": str(port) for name, port in self.metrics_ports.items()},
            "REHAB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            # These tests sign the same people in many times a minute, and a TOTP code works once per 30 s: the
            # second factor is proved by its own tests (test_gateway_mfa.py, the console's), with the default.
            "REHAB_MFA_REQUIRED_ROLES": "",
        }
        self.created_databases: list[str] = []
        for name in PROCESSES:
            if databases and name in databases:
                self.env[f"REHAB_{name.upper()}_DATABASE_URL"] = databases[name]
            elif EXTERNAL_PG:
                url = create_database(EXTERNAL_PG, f"rehab_e2e_{name}_{uuid.uuid4().hex[:8]}")
                self.created_databases.append(url)
                self.env[f"REHAB_{name.upper()}_DATABASE_URL"] = url
        self.external_nats = None if own_nats else EXTERNAL_NATS
        if self.external_nats:
            reset_streams(self.external_nats)
            self.env["REHAB_NATS_URL"] = self.external_nats
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.gateway_port}"

    # ---- running -------------------------------------------------------------------------------------------------

    def start(self, timeout: float = 90) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.output = open(self.state.parent / "supervisor.out", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "ops.cli", "up"], env=self.env,
                                     stdout=self.output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        eventually(self._ready, timeout=timeout, interval=0.3)

    def start_on_terminal(self, passphrase: str, *, typed: int = 1, timeout: float = 90) -> None:
        """`rehab up` on a terminal of its own (a pseudo-terminal), typing `passphrase` at its prompt `typed` times
        (twice when it makes the sealed keys: it asks again to confirm)."""
        import pty

        self.state.mkdir(parents=True, exist_ok=True)
        pid, terminal = pty.fork()
        if pid == 0:  # the child: rehab up, its terminal the pseudo-terminal's other end
            os.execve(sys.executable, [sys.executable, "-m", "ops.cli", "up"], self.env)
        self.terminal, self.terminal_pid = terminal, pid
        self.proc = _Forked(pid)
        self.output = open(self.state.parent / "supervisor.out", "ab")  # noqa: SIM115
        import select
        import threading

        seen = b""
        for _ in range(typed):  # "unseal passphrase: ", then "Repeat for confirmation: "
            deadline = time.monotonic() + 30
            # click writes the prompt, then getpass turns echo off (flushing what was typed) and writes " ": type
            # only after that space.
            while not seen.endswith(b": ") and time.monotonic() < deadline:
                if select.select([terminal], [], [], 0.5)[0]:
                    seen += os.read(terminal, 1024)
            assert seen.endswith(b": "), f"no prompt from rehab up: {seen!r}"
            seen = b""
            os.write(terminal, passphrase.encode() + b"\n")

        def drain() -> None:  # keep reading the terminal, or rehab up blocks on a full one
            try:
                while chunk := os.read(terminal, 4096):
                    self.output.write(chunk)
                    self.output.flush()
            except OSError:
                pass

        threading.Thread(target=drain, daemon=True).start()
        eventually(self._ready, timeout=timeout, interval=0.3)

    def _ready(self) -> bool:
        assert self.proc and self.proc.poll() is None, f"rehab up exited: {self.console()}"
        return self.ready()

    def ready(self) -> bool:
        """Every process answers /readyz with 200 on its own port: the gateway and every service behind it can work
        (the gateway's own /readyz speaks only of the gateway)."""
        try:
            return all(httpx.get(f"http://127.0.0.1:{self.ports[name]}/readyz", timeout=2).status_code == 200
                       for name in PROCESSES)
        except httpx.HTTPError:
            return False

    def metrics(self, name: str) -> str:
        """What one of PROCESSES serves on its metrics listener (Prometheus text)."""
        answer = httpx.get(f"http://127.0.0.1:{self.metrics_ports[name]}/metrics", timeout=5)
        answer.raise_for_status()
        return answer.text

    def console(self) -> str:
        return (self.state.parent / "supervisor.out").read_text(errors="replace")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self.output.close()
        return code

    def cleanup(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for url in self.created_databases:
            drop_database(EXTERNAL_PG, url)

    # ---- its parts ---------------------------------------------------------------------------------------------

    @property
    def nats_url(self) -> str:
        return self.external_nats or f"nats://127.0.0.1:{self.ports['nats']}"

    def nats_seed(self, user: str = "ops") -> Path:
        """A NATS user's nkey seed file under the system's secrets folder ("ops" may do everything)."""
        return self.state / "secrets" / user / "nats.nk"

    def nats_options(self, user: str = "ops") -> dict[str, Any]:
        """What `nats.connect` needs besides the URL to log in to the system's NATS as `user`: the embedded server
        refuses anyone without a key; an external test server (REHAB_TEST_NATS_URL) asks for none."""
        return {} if self.external_nats else {"nkeys_seed": str(self.nats_seed(user))}

    def database_url(self, name: str) -> str:
        return self.env.get(f"REHAB_{name.upper()}_DATABASE_URL") or f"sqlite:///{self.state / f'{name}.db'}"

    def pid(self, name: str) -> int:
        """The pid of the process listening on `name`'s port (one of PROCESSES, or "nats" for the embedded one)."""
        found = pid_listening_on(self.ports[name])
        assert found is not None, f"nothing listens on {name}'s port {self.ports[name]}"
        return found

    def kill(self, name: str, signum: int = signal.SIGKILL) -> int:
        """Send `signum` to one of the system's processes (the supervisor restarts it); its pid."""
        pid = self.pid(name)
        os.kill(pid, signum)
        return pid

    def run_cli(self, *args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess:
        """`rehab …` with this system's settings."""
        return subprocess.run([sys.executable, "-m", "ops.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False, **kwargs)


class _Forked:
    """A forked `rehab up` seen through the same few methods as a subprocess.Popen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout or 3600)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("rehab up", timeout or 0)
            time.sleep(0.05)
        assert self.returncode is not None
        return self.returncode


def pid_listening_on(port: int) -> int | None:
    """Which process listens on 127.0.0.1:`port`, from /proc (no lsof or ss needed)."""
    return pid_with_socket(port, listening=True)


def pid_with_socket(port: int, *, listening: bool) -> int | None:
    """Which process has a TCP socket whose local end is `port`: listening on it, or (listening=False) any socket,
    such as a client connection's end."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == port and (state == "0A" or not listening):  # 0A: LISTEN
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


class Client:
    """An httpx client with a bearer token, for one signed-in user or partner."""

    def __init__(self, base: str, token: str, timeout: float = 10) -> None:
        self.token = token
        self.http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def __getattr__(self, verb: str):
        return getattr(self.http, verb)


def sign_in(base: str, **form: str) -> Client:
    answer = httpx.post(base + "/auth/token", data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    return Client(base, answer.json()["access_token"])


def activated(base: str, issued: dict, activation_code: str | None = None) -> dict[str, str]:
    """A partner API client just issued (`POST /api/admin/clients`'s answer), activated as its partner's system does:
    its setup secret (and the approving admin's code, where one approved it) for a secret of its own. The client id
    and that secret, for the client_credentials grant."""
    form = {"client_id": issued["client_id"], "client_secret": issued["client_secret"]}
    if activation_code is not None:
        form["activation_code"] = activation_code
    answer = httpx.post(base + "/auth/clients/activate", data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    return {"client_id": issued["client_id"], "client_secret": answer.json()["client_secret"]}
