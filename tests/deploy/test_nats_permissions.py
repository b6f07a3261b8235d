"""The NATS configurations of the deployment, run: a real nats-server with the compose config, one with the
production Helm values' users and TLS, and the embedded one `rehab up` starts (its config written from
kit.nats_auth, nkeys instead of passwords), each driven by the kit's own bus logged in as each service.

What it proves: every service can do everything kit.bus does (provision streams, create its durable consumers,
publish through the outbox relay, pull, ack) with only its own user; nobody gets in without a password (or its
nkey); and a service can not publish another service's events, read another service's consumer, listen to rehab.>
directly or delete a stream.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import re
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Column, MetaData, String, Table, insert, select

from kit import checkpoints, db, nats_auth
from kit.bus import Bus, BusOptions, Subscription
from kit.events import Envelope, record_event
from kit.secrets import NATS_SEED_FILES, ensure_secrets
from kit.tables import KitTables
from ops.settings import SupervisorSettings
from ops.system import nats_spec
from tests.deploy.facts import NATS_CONF, NATS_PROCESSES, NATS_VALUES, PROCESSES, SAMPLE_SUBJECT, expected_permissions
from tests.support.nats import free_port, nats_server_binary

pytestmark = pytest.mark.integration

PASSWORDS = {name: secrets.token_hex(16) for name in (*nats_auth.PROCESSES, "ops")}


def password_env() -> dict[str, str]:
    return {f"NATS_{name.upper()}_PASSWORD": value for name, value in PASSWORDS.items()}


class Server:
    """A nats-server run from a config file, with the passwords in its environment as in the deployments; or, with
    `seeds`, the embedded one of `rehab up` (`argv` from ops.system.nats_spec), whose users log in with nkeys."""

    def __init__(self, conf: Path, port: int, *, scheme: str = "nats", argv: list[str] | None = None,
                 seeds: Path | None = None) -> None:
        self.conf = conf
        self.port = port
        self.scheme = scheme
        self.argv = argv or [nats_server_binary(), "-c", str(conf)]
        self.seeds = seeds
        self.proc: subprocess.Popen | None = None

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password if password is not None else PASSWORDS[user]}@" if user else ""
        return f"{self.scheme}://{auth}127.0.0.1:{self.port}"

    def login(self, user: str) -> tuple[str, dict[str, str]]:
        """The URL and the `nats.connect` options that log in as `user`."""
        if self.seeds is not None:
            return self.url(), {"nkeys_seed": str(self.seeds / NATS_SEED_FILES[user])}
        return self.url(user), {}

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env={**os.environ, **password_env()},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def compose_conf(tmp: Path, port: int) -> Path:
    """deploy/nats/nats-server.conf as it is, but listening on free local ports and storing under tmp."""
    text = NATS_CONF.read_text()
    replacements = {
        "listen: 0.0.0.0:4222": f"listen: 127.0.0.1:{port}",
        "http: 0.0.0.0:8222": f"http: 127.0.0.1:{free_port()}",
        "store_dir: /data": f'store_dir: "{tmp / "js"}"',
    }
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp / "compose-nats.conf"
    path.write_text(text)
    return path


def make_certificate(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1, like cert-manager's for the Service name."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rehab-nats-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nats")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("nats"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp / "ca.crt", tmp / "tls.crt", tmp / "tls.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def helm_conf(tmp: Path, port: int, cert: Path, key: Path) -> Path:
    """A server config from the production Helm values: their `config.merge` (users, permissions, limits) and the
    client-port TLS the chart renders from `config.nats.tls`. `<< X >>` is unquoted, as the chart does."""
    values = yaml.safe_load(NATS_VALUES.read_text())
    assert values["config"]["nats"]["tls"]["enabled"] is True
    merged = json.dumps(values["config"]["merge"], indent=2)
    merged = re.sub(r'"<< (.+?) >>"', r"\1", merged)
    text = "\n".join([
        f"listen: 127.0.0.1:{port}",
        f'tls {{ cert_file: "{cert}", key_file: "{key}" }}',
        f'jetstream {{ store_dir: "{tmp / "js"}" }}',
        merged[1:-1],  # the top-level keys of the merge block
    ])
    path = tmp / "helm-nats.conf"
    path.write_text(text)
    return path


def embedded_server(tmp_path: Path, port: int) -> Server:
    """The NATS `rehab up` starts: its secrets made as `rehab up` makes them, its command line and config from
    ops.system.nats_spec (the config written from kit.nats_auth, only public keys in it)."""
    secrets_dir = tmp_path / "secrets"
    ensure_secrets(secrets_dir)
    settings = SupervisorSettings(state_dir=tmp_path, secrets_dir=secrets_dir, nats_port=port,
                                  nats_monitor_port=free_port())
    spec = nats_spec(settings, tmp_path)
    return Server(tmp_path / "nats.conf", port, argv=list(spec.argv), seeds=secrets_dir)


@pytest.fixture(params=["compose", "helm-tls", "embedded"])
def server(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    port = free_port()
    if request.param == "compose":
        srv = Server(compose_conf(tmp_path, port), port)
    elif request.param == "embedded":
        srv = embedded_server(tmp_path, port)
    else:
        ca, cert, key = make_certificate(tmp_path)
        # What the production overlay sets for the services: trust the NATS CA (ssl.create_default_context).
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        srv = Server(helm_conf(tmp_path, port, cert, key), port, scheme="tls")
    srv.start()
    yield srv
    srv.stop()


def test_the_compose_config_is_valid_and_needs_every_password(tmp_path):
    conf = compose_conf(tmp_path, free_port())
    ok = subprocess.run([nats_server_binary(), "-c", str(conf), "-t"], env={**os.environ, **password_env()},
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    for missing in password_env():
        env = {k: v for k, v in {**os.environ, **password_env()}.items() if k != missing}
        refused = subprocess.run([nats_server_binary(), "-c", str(conf), "-t"], env=env, capture_output=True, text=True)
        assert refused.returncode != 0 and missing in refused.stdout + refused.stderr


def embedded_conf_users(text: str) -> dict[str, dict[str, set[str]]]:
    """The user blocks of the embedded server's config, by nkey: the quoted subjects of each allow-list."""
    users: dict[str, dict[str, set[str]]] = {}
    for block in text.split("nkey: ")[1:]:
        key = re.match(r'"(U[A-Z2-7]+)"', block).group(1)
        publish_part, _, subscribe_part = block.partition("subscribe:")
        users[key] = {"publish": set(re.findall(r'"([^"]+)"', publish_part)) - {key},
                      "subscribe": set(re.findall(r'"([^"]+)"', subscribe_part))}
    return users


def test_the_embedded_config_holds_public_keys_and_the_deployments_permissions(tmp_path):
    server = embedded_server(tmp_path, free_port())
    text = server.conf.read_text()
    assert server.conf.stat().st_mode & 0o777 == 0o600
    users = embedded_conf_users(text)
    keys = {}
    for user in nats_auth.USERS:
        seed_file = tmp_path / "secrets" / NATS_SEED_FILES[user]
        assert seed_file.stat().st_mode & 0o777 == 0o600
        seed = seed_file.read_bytes().strip()
        assert seed.startswith(b"SU") and seed.decode() not in text
        keys[user] = nats_auth.public_key(seed)
    assert set(users) == set(keys.values()), "one user per process and the operator, each by its own key"
    assert len(set(keys.values())) == len(keys)
    for service in NATS_PROCESSES:
        assert users[keys[service.name]] == dict(zip(("publish", "subscribe"), expected_permissions(service.name)))
    assert users[keys["ops"]] == {"publish": set(), "subscribe": set()}  # the operator: no limits
    # Nothing secret in it: no seed of any kind (S…), no password, and nobody let in without a key.
    assert re.search(r"\bS[A-Z][A-Z2-7]{50,}", text) is None
    assert "password" not in text and "no_auth_user" not in text
    ok = subprocess.run([*server.argv, "-t"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


async def connect(url: str, errors: list[str] | None = None, **options: str) -> nats.NATS:
    async def on_error(exc: Exception) -> None:
        if errors is not None:
            errors.append(str(exc).lower())

    return await nats.connect(url, allow_reconnect=False, connect_timeout=3, error_cb=on_error, **options)


async def login(server: Server, user: str, errors: list[str] | None = None) -> nats.NATS:
    url, options = server.login(user)
    return await connect(url, errors, **options)


async def test_nobody_connects_without_the_right_password(server, tmp_path):
    strangers: list[tuple[str, dict[str, str]]] = [
        (server.url(), {}), (server.url("intake", "wrong"), {}), (server.url("nobody", "x"), {})]
    if server.seeds is not None:
        # A key the server does not know; and the deployments' passwords mean nothing to it.
        (tmp_path / "stranger.nk").write_bytes(nats_auth.new_seed())
        strangers += [(server.url(), {"nkeys_seed": str(tmp_path / "stranger.nk")}), (server.url("intake"), {})]
    for url, options in strangers:
        with pytest.raises((nats.errors.Error, OSError, asyncio.TimeoutError)):
            nc = await connect(url, **options)
            await nc.close()
    nc = await login(server, "intake")
    assert nc.is_connected
    if server.scheme == "tls":
        assert nc._server_info.get("tls_required") is True
    await nc.close()


def bare_bus(service: str, js) -> Bus:  # noqa: ANN001
    """kit.bus's stream and consumer provisioning, on an already connected JetStream context."""
    bus = Bus(service=service, url="", uow=None, tables=None)  # type: ignore[arg-type]
    bus.js = js
    return bus


def subscriptions_of(service: str, handlers: dict[str, object] | None = None) -> list[Subscription]:
    return [
        Subscription(producer=producer, durable=durable, handlers={SAMPLE_SUBJECT[producer]: handlers or None})
        for producer, durable in PROCESSES[service].consumes.items()
    ]


@pytest.mark.parametrize("service", [p.name for p in NATS_PROCESSES])
async def test_each_service_can_do_what_the_bus_does_and_nothing_more(server, service):
    # Every stream exists first, as after all services (and the gateway) started once.
    ops = await login(server, "ops")
    for producer in NATS_PROCESSES:
        await bare_bus(producer.name, ops.jetstream(timeout=3)).ensure_stream(producer.name)

    errors: list[str] = []
    nc = await login(server, service, errors)
    js = nc.jetstream(timeout=2)
    bus = bare_bus(service, js)
    try:
        await bus.ensure_stream(service)
        for sub in subscriptions_of(service):
            await bus.ensure_consumer(sub)
            await bus.ensure_consumer(sub)  # again: the config check path (consumer_info) works too
        ack = await js.publish(SAMPLE_SUBJECT[service], b"{}", headers={"Nats-Msg-Id": str(uuid.uuid4())})
        assert ack.stream == service.upper()
        # Its own audit checkpoints (kit.checkpoints): the stream AUDIT provisioned, published, read back with a
        # direct get of its own subject.
        await checkpoints.ensure_stream(js)
        ack = await js.publish(checkpoints.subject(service), b'{"probe": true}', stream=checkpoints.STREAM)
        assert ack.stream == checkpoints.STREAM
        assert (await checkpoints.newest(js, service)) == {"probe": True}
        assert errors == []

        others = [p.name for p in NATS_PROCESSES if p.name != service]
        for other in others:
            errors.clear()
            with pytest.raises((nats.errors.TimeoutError, asyncio.TimeoutError)):
                await js.publish(SAMPLE_SUBJECT[other], b"{}", timeout=0.25)
            assert any("permissions violation" in e for e in errors), f"{service} published {other}'s event"
            errors.clear()
            with pytest.raises((nats.errors.TimeoutError, asyncio.TimeoutError)):
                await js.publish(checkpoints.subject(other), b"{}", timeout=0.25)
            assert any("permissions violation" in e for e in errors), f"{service} published {other}'s checkpoint"
        forbidden_requests = [f"$JS.API.STREAM.DELETE.{service.upper()}", f"$JS.API.STREAM.PURGE.{service.upper()}",
                              "$JS.API.STREAM.DELETE.AUDIT", "$JS.API.STREAM.PURGE.AUDIT",
                              "$JS.API.STREAM.MSG.DELETE.AUDIT", "$JS.API.STREAM.MSG.GET.AUDIT",
                              "$JS.API.DIRECT.GET.AUDIT",
                              *(f"$JS.API.DIRECT.GET.AUDIT.{checkpoints.subject(other)}" for other in others),
                              f"$JS.API.CONSUMER.DURABLE.CREATE.{service.upper()}.snoop"]
        for other in others:
            for producer, durable in PROCESSES[other].consumes.items():
                forbidden_requests += [f"$JS.API.CONSUMER.INFO.{producer.upper()}.{durable}",
                                       f"$JS.API.CONSUMER.MSG.NEXT.{producer.upper()}.{durable}"]
        for producer in PROCESSES[service].consumes:
            forbidden_requests += [f"$JS.API.CONSUMER.DURABLE.CREATE.{producer.upper()}.snoop",
                                   f"$JS.API.STREAM.MSG.GET.{producer.upper()}"]
        for subject in forbidden_requests:
            errors.clear()
            with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError, asyncio.TimeoutError)):
                await nc.request(subject, b"{}", timeout=0.25)
            assert any("permissions violation" in e for e in errors), subject
        errors.clear()
        await nc.subscribe("rehab.>")
        await nc.flush()
        await asyncio.sleep(0.2)
        assert any("permissions violation" in e for e in errors), "listened to every event directly"
    finally:
        await nc.close()
        await ops.close()


class ServiceNode:
    """One service's worth of kit: a SQLite database with the kit tables and a log of applied events, and a bus
    logged in to NATS as that service's user, with that service's real durable consumers."""

    def __init__(self, service: str, url: str, db_path: Path, seed: Path | None = None) -> None:
        self.service = service
        metadata = MetaData()
        self.tables = KitTables(metadata)
        self.applied_table = Table("applied", metadata, Column("event_id", String(36), primary_key=True),
                                   Column("subject", String(200)), Column("consumer", String(100)))
        self.engine = db.make_engine(f"sqlite:///{db_path}")
        metadata.create_all(self.engine)
        self.factory = db.make_session_factory(self.engine)
        self.uow = db.UnitOfWork(self.engine, self.factory)
        subs = [
            Subscription(producer=producer, durable=durable,
                         handlers={SAMPLE_SUBJECT[producer]: self._handler(durable)})
            for producer, durable in PROCESSES[service].consumes.items()
        ]
        self.bus = Bus(service=service, url=url, uow=self.uow, tables=self.tables,
                       subscriptions=subs, options=BusOptions(ack_wait=5, relay_poll_seconds=0.2,
                                                              idle_fetches_before_check=2),
                       nkey_seed_file=seed)

    def _handler(self, durable: str):  # noqa: ANN202
        def apply(session, event: Envelope) -> None:  # noqa: ANN001
            session.execute(insert(self.applied_table).values(event_id=f"{durable}:{event.id}", subject=event.type,
                                                              consumer=durable))
        return apply

    def emit(self) -> str:
        with db.transaction(self.factory) as session:
            envelope = record_event(session, self.tables, source=f"/{self.service}", type=SAMPLE_SUBJECT[self.service],
                                    subject=str(uuid.uuid4()), data={"probe": True})
        self.bus.wake()
        return envelope.id

    def applied(self) -> set[tuple[str, str]]:
        with db.transaction(self.factory) as session:
            return {(r.consumer, r.subject) for r in session.execute(select(self.applied_table))}


async def test_events_flow_between_all_services_with_their_own_users(server, tmp_path):
    def node(name: str) -> ServiceNode:
        url, options = server.login(name)
        seed = Path(options["nkeys_seed"]) if "nkeys_seed" in options else None
        return ServiceNode(name, url, tmp_path / f"{name}.db", seed)

    nodes = {p.name: node(p.name) for p in NATS_PROCESSES}
    for node in nodes.values():
        await node.bus.start()
    try:
        for node in nodes.values():
            node.emit()
        expected = {
            name: {(durable, SAMPLE_SUBJECT[producer]) for producer, durable in PROCESSES[name].consumes.items()}
            for name in nodes
        }
        deadline = time.monotonic() + 30
        while any(nodes[n].applied() != expected[n] for n in nodes):
            assert time.monotonic() < deadline, {n: nodes[n].applied() for n in nodes}
            await asyncio.sleep(0.1)
        # Applied is not enough: each consumer must also have acked (its user may publish the ack), so nothing is
        # pending or waiting for redelivery.
        ops = await login(server, "ops")
        try:
            js = ops.jetstream(timeout=3)
            for process in NATS_PROCESSES:
                for producer, durable in process.consumes.items():
                    while True:
                        info = await js.consumer_info(producer.upper(), durable)
                        if info.num_ack_pending == 0 and info.num_pending == 0 and info.delivered.consumer_seq >= 1:
                            break
                        assert time.monotonic() < deadline, f"{durable}: {info}"
                        await asyncio.sleep(0.1)
                    assert info.num_redelivered == 0, durable
        finally:
            await ops.close()
    finally:
        for node in nodes.values():
            await node.bus.stop()
            node.engine.dispose()
