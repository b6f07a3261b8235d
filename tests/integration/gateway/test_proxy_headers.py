"""SPEC §3: proxy headers are believed only from configured proxy addresses, never by default.

The gateway runs as `rehab up` runs it, `python -m gateway` (kit.service.serve: uvicorn with uvloop and httptools),
so uvicorn's own proxy-header handling is what is tested, not a test client's idea of the peer address. The sign-in
limit counts per client address: a caller who could choose that address with `X-Forwarded-For` would have no limit.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.integration.gateway.door import ADMIN_PASSWORD, ROOT, SERVICES
from tests.support.nats import free_port

pytestmark = pytest.mark.integration

LIMIT = 10  # per hour, so no window boundary falls inside a test that takes a second
TRIES = LIMIT + 5


@contextmanager
def gateway_process(tmp_path: Path, secrets_dir: Path, **extra_env: str) -> Iterator[tuple[str, Path]]:
    """`python -m gateway` on a free port with its own SQLite state; yields its URL and the file it prints to."""
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("REHAB_") and key != "FORWARDED_ALLOW_IPS"}
    env.update({
        "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
        "REHAB_STATE_DIR": str(tmp_path / "state"), "REHAB_SECRETS_DIR": str(secrets_dir),
        "REHAB_GATEWAY_PORT": str(port), "REHAB_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "REHAB_SIGNIN_RATE_LIMIT": f"{LIMIT}/hour",
        # OWASP's minimum Argon2id profile: every failed sign-in still hashes, quickly.
        "REHAB_ARGON2_TIME_COST": "2", "REHAB_ARGON2_MEMORY_KIB": "19456", "REHAB_ARGON2_PARALLELISM": "1",
        **{f"REHAB_{name.upper()}_URL": f"http://127.0.0.1:{free_port()}" for name in SERVICES},  # nothing there
        **extra_env,
    })
    output = tmp_path / "gateway.out"
    with output.open("ab") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "gateway"], env=env, cwd=tmp_path, stdout=sink,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"the gateway exited: {output.read_text(errors='replace')[-3000:]}"
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the gateway did not start: {output.read_text(errors='replace')}"
            time.sleep(0.05)
        yield url, output
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def failed_sign_ins(client: httpx.Client, forwarded_for: list[str | None]) -> list[int]:
    """One failed password sign-in per entry, each for a different user name (so no per-user wait interferes),
    each claiming to come from that address."""
    statuses = []
    for i, address in enumerate(forwarded_for):
        headers = {"X-Forwarded-For": address} if address else {}
        answer = client.post("/auth/token", headers=headers, data={
            "grant_type": "password", "username": f"nobody-{time.monotonic_ns()}-{i}", "password": "wrong-guess"})
        assert answer.status_code in (400, 429), answer.text
        if answer.status_code == 429:
            assert int(answer.headers["retry-after"]) >= 1
        statuses.append(answer.status_code)
    return statuses


def rotating(count: int, first: int = 1) -> list[str | None]:
    return [f"198.51.100.{first + i}" for i in range(count)]


@pytest.mark.parametrize("uvicorn_env", [{}, {"FORWARDED_ALLOW_IPS": "*"}], ids=["plain", "uvicorn-variable-set"])
def test_a_rotating_x_forwarded_for_does_not_escape_the_sign_in_limit(tmp_path, secrets_dir, uvicorn_env):
    """From 127.0.0.1 (where uvicorn believes proxy headers by default, and from anywhere with its
    FORWARDED_ALLOW_IPS variable at `*`): a new X-Forwarded-For on every guess changes nothing."""
    with gateway_process(tmp_path, secrets_dir, **uvicorn_env) as (url, output), \
            httpx.Client(base_url=url, timeout=10) as client:
        statuses = failed_sign_ins(client, rotating(TRIES))
        # uvicorn's own warning for a malformed request, which its default logging would print as plain text.
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as raw:
            raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            raw.recv(1024)
    assert statuses == [400] * LIMIT + [429] * (TRIES - LIMIT), statuses
    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines, "the gateway printed nothing"
    records = [json.loads(line) for line in lines]  # every line is one JSON object, whoever logged it
    assert any(r.get("logger") == "uvicorn.error" and r["level"] == "warning" for r in records), lines


def test_x_forwarded_for_is_believed_from_a_trusted_proxy(tmp_path, secrets_dir):
    """REHAB_TRUSTED_PROXIES names the proxy: then each forwarded address has a limit of its own, and the proxy's
    own address keeps its own budget."""
    with gateway_process(tmp_path, secrets_dir, REHAB_TRUSTED_PROXIES="127.0.0.1") as (url, _output), \
            httpx.Client(base_url=url, timeout=10) as client:
        assert failed_sign_ins(client, rotating(TRIES)) == [400] * TRIES  # TRIES different clients
        one_client = failed_sign_ins(client, ["203.0.113.7"] * (LIMIT + 1))
        assert one_client == [400] * LIMIT + [429]
        # The right-most address that is not a trusted proxy counts: a client cannot prepend its way out.
        assert failed_sign_ins(client, ["192.0.2.1, 203.0.113.7"]) == [429]
        assert failed_sign_ins(client, [None]) == [400]  # the proxy itself was never counted
