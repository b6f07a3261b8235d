"""Who may do what on NATS: one NATS user per process, allowed exactly what kit.bus does for it, and an operator.

The processes log in with NATS nkeys (Ed25519): each has a seed file of its own under the secrets folder (created
by `kit.secrets.ensure_secrets`, owner-only, never overwritten), and the server knows only the public keys, so the
server's config holds nothing secret. `rehab up` writes the embedded nats-server's config from this table
(`server_config`); tests/deploy checks that the deployment configs (deploy/nats/nats-server.conf, the production
Helm values) grant each service the same subjects, and that the services consume with exactly these durables.

Permissions of a service (the same as the deployments'):
  - it publishes events only on its own subjects, rehab.<service>.>;
  - it may create, update and look at its own stream and the streams it reads (kit.bus provisions the stream of
    every producer it consumes from, so start-up order does not matter);
  - it may create, read and pull from its own durable consumers only, and ack, nak or terminate their messages;
  - it subscribes only to reply inboxes and to the max-deliveries advisories of its own consumers;
  - it publishes its own audit checkpoints, rehab.audit.<process>.>, into the stream AUDIT, which it may create,
    update and look at, and it may read the newest message of its own checkpoint subject and no other (a direct
    get, `$JS.API.DIRECT.GET.AUDIT.<subject>`; kit.checkpoints);
  - intake alone publishes the erasure ledger, rehab.erasures.case, into the stream ERASURES (kit.erasures), which
    it may create, update and look at; no process reads it back (the operator's user does, at `rehab restore`);
  - every process listens to the operator's commands, rehab.control.> (a seal, say), which only the operator's
    user and the gateway (`POST /api/admin/seal`) may publish; and it may read the recorded seal state, the newest
    message of rehab.seal.state in the stream CONTROL (a direct get), which the same two record (the gateway makes
    the stream, and may update and look at it; kit.control).
A service can not publish another service's events, read a stream through a consumer that is not its own, delete
or purge a stream, or listen to rehab.> directly. The operator's user (`ops`) may do everything; no process is
given its seed (it is for the operator's tools: the nats CLI with `--nkey`, the fault tests).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import nkeys

# Each service → the producers it consumes from → the name of its durable consumer on that producer's stream
# (docs/events.md). The services' own subscriptions are checked against it (tests/unit/kit/test_nats_auth.py).
CONSUMES: dict[str, dict[str, str]] = {
    "intake": {"referrals": "intake-referrals", "funds": "intake-funds", "gateway": "intake-gateway"},
    "referrals": {"intake": "referrals-intake", "gateway": "referrals-gateway"},
    "funds": {"intake": "funds-intake", "referrals": "funds-referrals", "gateway": "funds-gateway"},
    "reports": {"intake": "reports-intake", "referrals": "reports-referrals", "funds": "reports-funds",
                "gateway": "reports-gateway"},
}
SERVICES: tuple[str, ...] = tuple(CONSUMES)
# Processes that publish events and consume none: the gateway (staff accounts and their sessions).
PRODUCERS_ONLY: tuple[str, ...] = ("gateway",)
# Every process that logs in to NATS, each as a user of its own.
PROCESSES: tuple[str, ...] = (*SERVICES, *PRODUCERS_ONLY)
OPERATOR = "ops"
# The stream of signed audit checkpoints (kit.checkpoints): subjects rehab.audit.<process>.…, beside the processes'
# own rehab.<process>.> (no process may be called `audit`).
AUDIT_STREAM = "AUDIT"
assert "audit" not in PROCESSES
# The erasure ledger (kit.erasures): its stream, and which process writes which subject into it (through its outbox).
ERASURES_STREAM = "ERASURES"
LEDGER_SUBJECTS: dict[str, str] = {"intake": "rehab.erasures.case"}
# The operator's commands to every process (a seal), beside the processes' own subjects.
CONTROL_SUBJECTS = "rehab.control.>"
CONTROL_PUBLISHERS: tuple[str, ...] = ("gateway",)  # and the operator's user, who may do everything
# The seal state, for processes that start after a seal (kit.control): its stream and its one subject.
CONTROL_STREAM = "CONTROL"
SEAL_STATE_SUBJECT = "rehab.seal.state"
assert not {"erasures", "control", "seal"} & set(PROCESSES)
USERS: tuple[str, ...] = (*PROCESSES, OPERATOR)


def seed_file_name(user: str) -> str:
    """The file under the secrets folder that holds `user`'s nkey seed: in the user's own folder (kit.secrets)."""
    return f"{user}/nats.nk"


def permissions(service: str) -> tuple[list[str], list[str]]:
    """The publish and subscribe allow-lists of a process's NATS user (a service, or the gateway), sorted."""
    if service not in PROCESSES:
        raise KeyError(service)
    stream = service.upper()
    consumed = CONSUMES.get(service, {})
    publish = {f"rehab.{service}.>", "$JS.API.INFO", f"rehab.audit.{service}.>",
               f"$JS.API.DIRECT.GET.{AUDIT_STREAM}.rehab.audit.{service}.checkpoint",
               f"$JS.API.DIRECT.GET.{CONTROL_STREAM}.{SEAL_STATE_SUBJECT}"}
    streams = [stream, AUDIT_STREAM, *(producer.upper() for producer in consumed)]
    if service in LEDGER_SUBJECTS:
        publish.add(LEDGER_SUBJECTS[service])
        streams.append(ERASURES_STREAM)
    if service in CONTROL_PUBLISHERS:
        publish |= {CONTROL_SUBJECTS, SEAL_STATE_SUBJECT}
        streams.append(CONTROL_STREAM)
    for s in streams:
        publish |= {f"$JS.API.STREAM.INFO.{s}", f"$JS.API.STREAM.CREATE.{s}", f"$JS.API.STREAM.UPDATE.{s}"}
    subscribe = {"_INBOX.>", CONTROL_SUBJECTS}
    for producer, durable in consumed.items():
        s = producer.upper()
        publish |= {
            f"$JS.API.CONSUMER.INFO.{s}.{durable}",
            f"$JS.API.CONSUMER.CREATE.{s}.{durable}",
            f"$JS.API.CONSUMER.CREATE.{s}.{durable}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{s}.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.{s}.{durable}",
            f"$JS.ACK.{s}.{durable}.>",
        }
        subscribe.add(f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{s}.{durable}")
    return sorted(publish), sorted(subscribe)


# ---- nkeys -------------------------------------------------------------------------------------------------------


def new_seed() -> bytes:
    """A new user nkey seed (`SU…`), as `nsc`/`nk -gen user` make them."""
    return bytes(nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER))


def public_key(seed: bytes) -> str:
    """The public key (`U…`) of a user nkey seed."""
    pair = nkeys.from_seed(bytearray(seed.strip()))
    try:
        return pair.public_key.decode()
    finally:
        pair.wipe()


def public_keys(secrets_dir: Path) -> dict[str, str]:
    """Every NATS user's public key, from the seed files under `secrets_dir`."""
    return {user: public_key((secrets_dir / seed_file_name(user)).read_bytes()) for user in USERS}


# ---- the server's side -------------------------------------------------------------------------------------------


def authorization_block(keys: dict[str, str]) -> str:
    """The nats-server `authorization` block: every user by public key, each process with its permissions.

    Users of the server's global account, where JetStream keeps the streams of a server started with `-js`
    (so an existing store keeps its streams). No `no_auth_user`: a connection without a known key is refused.
    """
    entries = []
    for service in PROCESSES:
        publish, subscribe = permissions(service)
        entries.append(
            f"    # {service}\n"
            f"    {{\n      nkey: {json.dumps(keys[service])}\n      permissions: {{\n"
            f"        publish: {{ allow: {_list(publish, 10)} }}\n"
            f"        subscribe: {{ allow: {_list(subscribe, 10)} }}\n"
            # A seal or unseal command (kit.control) is answered on the sender's reply subject: that one reply only.
            f"        allow_responses: true\n      }}\n    }}"
        )
    entries.append(f"    # {OPERATOR}: the operator's tools, every subject\n    {{ nkey: {json.dumps(keys[OPERATOR])} }}")
    return "authorization {\n  users: [\n" + "\n".join(entries) + "\n  ]\n}\n"


def server_config(keys: dict[str, str]) -> str:
    """The embedded nats-server's config file (ports, JetStream and its store are given on the command line)."""
    return (
        "# Written by `rehab up` at every start from kit/nats_auth.py; edits are lost. Only public keys: the seeds\n"
        "# are in the secrets folder, one file per process.\n" + authorization_block(keys)
    )


def _list(items: list[str], indent: int) -> str:
    pad = " " * indent
    return "[\n" + "".join(f"{pad}  {json.dumps(item)}\n" for item in items) + f"{pad}]"
