"""The system under test: `rehab up` (python -m ops.cli up) in a state folder of its own, on free ports.

Embedded by default (SQLite files and a nats-server of its own); with `Backing.postgres` every service and the
gateway get a fresh PostgreSQL database, dropped afterwards. An external NATS is used only when asked for: its
streams are shared with whoever else uses that server (test runs delete them), so a benchmark that relies on it
can be disturbed and can disturb.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.harness import REPO_ROOT, answers_200, children_of, free_port, wait_for

ADMIN_PASSWORD = "Bench-Admin-Passphrase-2026!"
PROCESSES = ("gateway", "intake", "referrals", "funds", "reports", "nats")
DATABASES = ("intake", "referrals", "funds", "reports", "gateway")
STREAMS = ("INTAKE", "REFERRALS", "FUNDS")

# Settings that would otherwise measure the wrong thing: the per-user request budget (600/minute) would answer
# 429 to a benchmark within a second, a 10-minute token would expire during a long run, and sign-in is not timed.
BENCH_SETTINGS = {
    "REHAB_API_RATE_LIMIT": "100000000/minute",
    "REHAB_TOKEN_TTL_SECONDS": "3600",
    # Sign-in is not what is measured: the benchmark's users sign in with a password alone.
    "REHAB_MFA_REQUIRED_ROLES": "",
}


@dataclass
class Backing:
    """Where the system keeps its data: SQLite files (postgres_admin_url None) or fresh PostgreSQL databases."""

    postgres_admin_url: str | None = None
    nats_url: str | None = None  # an external NATS; None: the system starts its own
    created: dict[str, str] = field(default_factory=dict)  # service → database URL

    @property
    def name(self) -> str:
        database = "PostgreSQL" if self.postgres_admin_url else "SQLite"
        nats = "external NATS" if self.nats_url else "embedded NATS"
        return f"{database} + {nats}"

    def database_url(self, service: str, state_dir: Path) -> str:
        """The database of one service: created on first use on PostgreSQL, a file under `state_dir` otherwise."""
        if self.postgres_admin_url is None:
            return f"sqlite:///{(state_dir / f'{service}.db').resolve()}"
        if service not in self.created:
            name = f"rehab_bench_{service}_{uuid.uuid4().hex[:8]}"
            with _admin(self.postgres_admin_url) as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            self.created[service] = make_url(self.postgres_admin_url).set(database=name).render_as_string(
                hide_password=False)
        return self.created[service]

    def drop_databases(self) -> None:
        for url in self.created.values():
            with _admin(self.postgres_admin_url) as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        self.created.clear()

    def reset_streams(self) -> None:
        """Start an external NATS from no streams of ours (as the tests do), so old events are not replayed."""
        if self.nats_url is None:
            return
        import nats

        async def delete() -> None:
            client = await nats.connect(self.nats_url, connect_timeout=3)
            try:
                stream_api = client.jetstream()
                for name in STREAMS:
                    try:
                        await stream_api.delete_stream(name)
                    except Exception:  # a stream that does not exist yet
                        pass
            finally:
                await client.close()

        asyncio.run(delete())


class _admin:
    """An AUTOCOMMIT connection to PostgreSQL for CREATE/DROP DATABASE."""

    def __init__(self, admin_url: str) -> None:
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")

    def __enter__(self):  # noqa: ANN204
        self.conn = self.engine.connect()
        return self.conn

    def __exit__(self, *_exc: object) -> None:
        self.conn.close()
        self.engine.dispose()


class System:
    """One running system: start it, find its processes, stop it. The state folder survives a stop, so a system
    can be started again on the data it had (or on data a bulk loader put there in between)."""

    def __init__(self, state_dir: Path, backing: Backing, extra_env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.backing = backing
        # Settings on top of the usual ones (and of BENCH_SETTINGS), e.g. another key custody.
        self.extra_env = dict(extra_env or {})
        self.ports = {name: free_port() for name in ("gateway", "intake", "referrals", "funds", "reports", "nats")}
        # Each process's /metrics listener (loopback), apart from its main port.
        self.metrics_ports = {name: free_port() for name in ("gateway", "intake", "referrals", "funds", "reports")}
        self.process: subprocess.Popen | None = None
        self._console: Path = state_dir.parent / f"{state_dir.name}-supervisor.out"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def database_url(self, service: str) -> str:
        return self.backing.database_url(service, self.state_dir)

    def environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            **BENCH_SETTINGS,
            "REHAB_STATE_DIR": str(self.state_dir),
            "REHAB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            **{f"REHAB_{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
            **{f"REHAB_{name.upper()}_METRICS_PORT": str(port) for name, port in self.metrics_ports.items()},
        }
        if self.backing.postgres_admin_url:
            for service in DATABASES:
                env[f"REHAB_{service.upper()}_DATABASE_URL"] = self.database_url(service)
        if self.backing.nats_url:
            env["REHAB_NATS_URL"] = self.backing.nats_url
        else:
            env.pop("REHAB_NATS_URL", None)  # the supervisor starts its own only when none is named
        env.update(self.extra_env)
        return env

    def start(self, *, timeout: float = 120) -> None:
        self.launch()
        self.wait_until_ready(timeout=timeout)

    def launch(self) -> None:
        """`rehab up`, without waiting for it (several systems can then start side by side)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self._console, "ab") as console:
            self.process = subprocess.Popen([sys.executable, "-m", "ops.cli", "up"], env=self.environment(),
                                            stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            cwd=REPO_ROOT)

    def wait_until_ready(self, *, timeout: float = 120) -> None:
        try:
            wait_for(self._ready, timeout=timeout, interval=0.3, what="the system's readiness (every /readyz)")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"rehab up exited during start-up:\n{self.console()[-3000:]}")
        # The gateway's /readyz speaks of the gateway only; each service answers its own.
        return all(answers_200(f"http://127.0.0.1:{port}/readyz") for name, port in self.ports.items() if name != "nats")

    def console(self) -> str:
        return self._console.read_text(errors="replace") if self._console.exists() else ""

    def pids(self) -> dict[str, int]:
        """The supervisor and each process it runs, by name."""
        assert self.process is not None
        found = {"supervisor": self.process.pid}
        for pid, command in children_of(self.process.pid).items():
            for name in PROCESSES:
                if (name == "nats" and "nats-server" in command) or command.endswith(f"-m {name}") \
                        or command.endswith(f"-m services.{name}"):
                    found[name] = pid
        return found

    def stop(self) -> None:
        """SIGTERM, as an operator would; a kill only if it does not stop in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
