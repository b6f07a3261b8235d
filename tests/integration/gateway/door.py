"""Helpers for the gateway tests: the gateway in-process (its lifespan included) on its own database, in front of
services that run as real processes (`python -m services.<name>`), each on its own database and the test NATS server."""

from __future__ import annotations

import csv
import importlib.util
import itertools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from gateway.config import GatewaySettings
from gateway.main import create_app
from kit.auth import TokenIssuer
from kit.secrets import TOKEN_PRIVATE_KEY_FILE, ensure_secrets
from tests.support.apps import running
from tests.support.nats import EmbeddedNats, free_port, reset_streams
from tests.support.postgres import create_database, drop_database
from tests.support.shared import NAME_VARIANTS

EXTERNAL_PG = os.environ.get("REHAB_TEST_POSTGRES_URL")
EXTERNAL_NATS = os.environ.get("REHAB_TEST_NATS_URL")
ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("intake", "referrals", "funds", "reports")
ADMIN_PASSWORD = "Gateway-admin-2026"
STAFF_PASSWORD = "Staff-passphrase-2026"
# OWASP's minimum Argon2id profile: real hashing, but a tenth of the default's time, so the suite stays quick.
CHEAP_HASHING = {"argon2_time_cost": 2, "argon2_memory_kib": 19456, "argon2_parallelism": 1}


NAMES_CSV = NAME_VARIANTS  # the team's test names, each written six ways


def names(column: str) -> list[str]:
    with NAMES_CSV.open(encoding="utf-8") as f:
        return [row[column] for row in csv.DictReader(f)]


def staff_usernames() -> list[str]:
    """User names as staff actually carry them: the Latin passport spelling of Belarusian names."""
    return [name.lower().replace(" ", ".") for name in names("latin_passport")]


def existing_services() -> list[str]:
    """The services this checkout can run: a route matrix built from them covers every service there is."""
    return [name for name in SERVICES if importlib.util.find_spec(f"services.{name}.__main__") is not None]


class ServiceProcess:
    """`python -m services.<name>` on a port of its own; its output goes to a log file beside its state."""

    def __init__(self, name: str, *, state_dir: Path, secrets_dir: Path, nats_url: str, database_url: str,
                 port: int | None = None) -> None:
        self.name = name
        self.port = port or free_port()
        self.log_path = state_dir / f"{name}.log"
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("REHAB_")}
        self.env.update({
            "REHAB_STATE_DIR": str(state_dir), "REHAB_SECRETS_DIR": str(secrets_dir), "REHAB_NATS_URL": nats_url,
            f"REHAB_{name.upper()}_DATABASE_URL": database_url, "REHAB_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
        })
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**self.env, f"REHAB_{self.name.upper()}_PORT": str(self.port)}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", f"services.{self.name}"], env=env, cwd=ROOT,
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 60) -> None:
        """Until this service answers ready on its port. A port chosen free can be taken by another process before
        this one binds it (uvicorn binds after its startup); then the port is chosen again and the service
        restarted, rather than a test talking to whatever answers there."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, \
                f"{self.name} exited: {self.log_path.read_text(errors='replace')[-3000:]}"
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    if self._answers_as_itself():
                        return
                    self._move_to_another_port()
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not ready in {timeout}s: {self.log_path.read_text(errors='replace')[-3000:]}")

    def _answers_as_itself(self) -> bool:
        try:
            title = httpx.get(self.url + "/openapi.json", timeout=5).json().get("info", {}).get("title", "")
        except ValueError:  # not JSON: not one of ours
            return False
        return title.endswith(f"— {self.name}")

    def _move_to_another_port(self) -> None:
        self.stop()
        self.port = free_port()
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@dataclass
class Backends:
    """Services running as processes, sharing one secrets folder (so one token key) with the gateway under test."""

    root: Path
    secrets_dir: Path
    nats_url: str
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)
    nats: EmbeddedNats | None = None  # the NATS of their own, when not the shared server's

    @property
    def urls(self) -> dict[str, str]:
        return {name: process.url for name, process in self.processes.items()}

    def issuer(self, *, audience: str = "rehab-api", issuer: str = "rehab-gateway", ttl: int = 600) -> TokenIssuer:
        return TokenIssuer.from_file(self.secrets_dir / TOKEN_PRIVATE_KEY_FILE, issuer=issuer, audience=audience,
                                     ttl_seconds=ttl)

    def database(self, name: str) -> str:
        if EXTERNAL_PG:
            url = create_database(EXTERNAL_PG, f"rehab_t_{name}_{uuid.uuid4().hex[:10]}")
            self.databases.append(url)
            return url
        return f"sqlite:///{self.root / f'{name}-{uuid.uuid4().hex[:6]}.db'}"

    def add(self, name: str, *, port: int | None = None, env: dict[str, str] | None = None) -> ServiceProcess:
        """Start `name`; `env`: settings of its own (`REHAB_…`) beyond the ones every service gets."""
        process = ServiceProcess(name, state_dir=self.root, secrets_dir=self.secrets_dir, nats_url=self.nats_url,
                                 database_url=self.database(name), port=port)
        process.env.update(env or {})
        self.processes[name] = process
        process.start()
        return process

    def close(self) -> None:
        for process in self.processes.values():
            process.stop()
        for url in self.databases:
            drop_database(EXTERNAL_PG, url)


_HANDLES = itertools.count(1)  # `Door.next_username`


@dataclass
class Door:
    """A running gateway and a client for it, with short ways to become a given role."""

    client: httpx.AsyncClient
    app: FastAPI
    settings: GatewaySettings
    _admin: dict[str, str] | None = None
    _checker: dict[str, str] | None = None  # a second admin's token, once the door has made one
    _names: Iterator[str] = field(default_factory=lambda: iter(staff_usernames() * 10))

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    def next_username(self) -> str:
        """A handle no other gateway of this test process gave out: the services behind a module's gateways are
        shared, and a handle given again would find the account of an earlier test in their staff directory until
        the new account's event reached them."""
        return f"{next(self._names)}{next(_HANDLES)}"

    async def sign_in(self, username: str, password: str, *, address: str | None = None) -> httpx.Response:
        """The password grant, from the test client's address (127.0.0.1) or from `address`."""
        form = {"grant_type": "password", "username": username, "password": password}
        if address is None:
            return await self.client.post("/auth/token", data=form)
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as elsewhere:
            return await elsewhere.post("/auth/token", data=form)

    async def client_sign_in(self, client_id: str, client_secret: str) -> httpx.Response:
        return await self.client.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                           "client_secret": client_secret})

    async def bearer_for(self, answer: httpx.Response) -> dict[str, str]:
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    async def admin(self) -> dict[str, str]:
        if self._admin is None:
            self._admin = await self.bearer_for(await self.sign_in("admin", ADMIN_PASSWORD))
        return self._admin

    async def add_user(self, *roles: str, username: str | None = None, password: str = STAFF_PASSWORD,
                       partner_id: str | None = None) -> dict:
        """A new account, in force: once the door has a second admin, that admin approves what the first asks."""
        made = await self.client.post("/api/admin/users", headers=await self.admin(),
                                      json={"username": username or self.next_username(), "password": password,
                                            "roles": list(roles), "partner_id": partner_id})
        assert made.status_code == 201, made.text
        body = made.json()
        if body["status"] == "pending_approval":
            await self.approve_for(body["id"])
            body["status"] = "active"
        elif "admin" in roles and self._checker is None:
            self._checker = await self.bearer_for(await self.sign_in(body["username"], password))
        return body

    async def approve_for(self, target_id: str) -> dict:
        """The door's second admin approves the first admin's pending request about `target_id`: the approval's
        answer (an activation code in it, for a new account or client)."""
        assert self._checker is not None, "approvals need a second admin"
        pending = (await self.client.get("/api/admin/approvals", params={"status": "pending"},
                                         headers=self._checker)).json()["items"]
        (asked,) = [a for a in pending if a["target_id"] == target_id]
        answer = await self.client.post(f"/api/admin/approvals/{asked['id']}/approve", headers=self._checker)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def staff(self, *roles: str) -> dict[str, str]:
        """A new user holding `roles`, signed in."""
        user = await self.add_user(*roles)
        return await self.bearer_for(await self.sign_in(user["username"], STAFF_PASSWORD))

    async def some_partner(self) -> str:
        """A partner of the directory when referrals runs behind this gateway (the gateway refuses an id the
        directory does not hold), else any id (the gateway takes it as given while the directory cannot be asked)."""
        made = await self.client.post("/api/referrals/partners", headers=await self.admin(), json={
            "name": f"Clinic {uuid.uuid4().hex[:6]}", "category": "medical", "countries": ["LT"], "cities": ["Vilnius"],
            "languages": ["be"], "contact_email": "intake@clinic.example"})
        return made.json()["id"] if made.status_code == 201 else str(uuid.uuid4())

    async def add_client(self, partner_id: str | None = None, *, activated: bool = True) -> dict:
        """A new partner API client, approved by the door's second admin where there is one, and `activated` by its
        partner: then `client_secret` is the client's own secret, and `setup_secret` the one issued. Not activated,
        `client_secret` is the setup secret, and `activation_code` the approving admin's code (None for a lone
        admin's client)."""
        made = await self.client.post("/api/admin/clients", headers=await self.admin(),
                                      json={"partner_id": partner_id or await self.some_partner(), "name": "Clinic API"})
        assert made.status_code == 201, made.text
        issued = {**made.json(), "setup_secret": made.json()["client_secret"], "activation_code": None}
        if issued["status"] == "pending_approval":
            issued["activation_code"] = (await self.approve_for(issued["client_id"]))["activation_code"]
        if activated:
            answer = await self.activate_client(issued["client_id"], issued["setup_secret"], issued["activation_code"])
            assert answer.status_code == 200, answer.text
            issued["client_secret"] = answer.json()["client_secret"]
        return issued

    async def activate_client(self, client_id: str, setup_secret: str, code: str | None = None) -> httpx.Response:
        """The partner's system exchanges a client's setup secret (and activation code) for its own secret."""
        form = {"client_id": client_id, "client_secret": setup_secret}
        if code is not None:
            form["activation_code"] = code
        return await self.client.post("/auth/clients/activate", data=form)

    async def partner_staff(self, partner_id: str | None = None) -> dict[str, str]:
        """A new person on the staff of `partner_id` (or of a new partner), signed in."""
        user = await self.add_user("partner_staff", partner_id=partner_id or await self.some_partner())
        return await self.bearer_for(await self.sign_in(user["username"], STAFF_PASSWORD))

    async def partner(self, partner_id: str | None = None) -> dict[str, str]:
        """A new partner API client (of `partner_id`, or of a new partner), signed in."""
        issued = await self.add_client(partner_id)
        return await self.bearer_for(await self.client_sign_in(issued["client_id"], issued["client_secret"]))


@asynccontextmanager
async def open_gateway(settings: GatewaySettings) -> AsyncIterator[Door]:
    app = create_app(settings)
    async with running(app) as client:
        yield Door(client=client, app=app, settings=settings)


@contextmanager
def backends_running(root: Path, names: list[str], env: dict[str, dict[str, str]] | None = None, *,
                     own_nats: bool = False) -> Iterator[Backends]:
    """Start `names` as processes (side by side), wait until each is ready; stop them all afterwards. `env`: a
    service's own settings, by its name. `own_nats`: a NATS of their own even beside a shared server (a test that
    stops it)."""
    secrets_dir = root / "secrets"
    ensure_secrets(secrets_dir)
    nats: EmbeddedNats | None = None
    if EXTERNAL_NATS and not own_nats:
        # A fresh start on the shared server, as the `nats_url` fixture does (in a thread: a test may hold a loop).
        with ThreadPoolExecutor(1) as worker:
            worker.submit(reset_streams, EXTERNAL_NATS).result()
        nats_url = EXTERNAL_NATS
    else:
        nats = EmbeddedNats(root / "nats")
        nats.start()
        nats_url = nats.url
    backends = Backends(root=root, secrets_dir=secrets_dir, nats_url=nats_url, nats=nats)
    try:
        # Referrals and funds hand intake a break-glass reason (kit.need_to_know.ReasonKeeper): intake first, on the
        # port it ends up with, then the others side by side. Intake tells referrals of a narrowed consent at once
        # (services/intake/referrals_told): referrals' port is chosen before intake starts.
        intake_url: dict[str, str] = {}
        referrals_port = free_port() if "referrals" in names else None
        if "intake" in names:
            told = {"REHAB_REFERRALS_URL": f"http://127.0.0.1:{referrals_port}" if referrals_port else ""}
            backends.add("intake", env={**told, **(env or {}).get("intake", {})}).wait_ready()
            intake_url["REHAB_INTAKE_URL"] = backends.processes["intake"].url
        for name in names:
            if name != "intake":
                backends.add(name, port=referrals_port if name == "referrals" else None,
                             env={**intake_url, **(env or {}).get(name, {})})
        for process in backends.processes.values():
            process.wait_ready()
        yield backends
    finally:
        backends.close()
        if nats:
            nats.stop()
