"""Sealed key custody under `rehab up` (SPEC §8, issue #16): the keyrings exist only as keys.sealed, encrypted under
a passphrase typed on the terminal; `rehab up` hands it to each process through a pipe, never its environment, its
arguments or a file. A copy of the whole state folder then holds neither a key nor a name. A process that dies is
restarted sealed (the supervisor keeps no passphrase) until `rehab unseal` hands one over again."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from kit.keyfiles import SEALED_KEYS_FILE, read_sealed_file
from tests.support.system import ADMIN_PASSWORD, PROCESSES, STAFF_PASSWORD, System, eventually, sign_in

pytestmark = pytest.mark.integration
PASSPHRASE = "correct horse battery staple 2026"
NEEDLE = "Зьміцер Сілачаў-Печатка"
NOTE_NEEDLE = "hides at Vitebsk-77 safe flat"


@pytest.fixture
def sealed_system(tmp_path: Path):  # noqa: ANN201
    system = System(tmp_path, env={"REHAB_KEY_CUSTODY": "sealed"})
    try:
        system.start_on_terminal(PASSPHRASE, typed=2)  # a new installation: asked twice
        yield system
    finally:
        system.cleanup()


def _every_key(secrets: Path) -> list[bytes]:
    """Every key of every process's keyring, opened with the passphrase as only its holder could."""
    found = []
    for sealed in secrets.glob(f"*/{SEALED_KEYS_FILE}"):
        bundle, _ = read_sealed_file(sealed, passphrase=PASSPHRASE)
        found += [base64.b64decode(v) for v in bundle.get("kek", {}).get("keys", {}).values()]
        for name, value in bundle["secrets"].items():
            if name in ("audit_signing", "token_signing"):  # Ed25519 PEM: the raw key and the PEM's own body
                pem = base64.b64decode(value)
                private = serialization.load_pem_private_key(pem, password=None)
                found.append(private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                   serialization.NoEncryption()))
                found.append(b"".join(pem.splitlines()[1:-1]))
            else:
                found.append(base64.b64decode(value))
    return found


def test_a_copy_of_the_state_folder_under_sealed_custody_yields_no_key_and_no_name(sealed_system: System,
                                                                                     tmp_path: Path) -> None:
    system = sealed_system
    admin = sign_in(system.url, grant_type="password", username="admin", password=ADMIN_PASSWORD)
    made = admin.post("/api/admin/users", json={"username": "casey", "password": STAFF_PASSWORD,
                                                "roles": ["caseworker"]})
    assert made.status_code == 201, made.text
    casey = sign_in(system.url, grant_type="password", username="casey", password=STAFF_PASSWORD)
    case = casey.post("/api/intake/cases", json={"full_name": NEEDLE, "safety_notes": NOTE_NEEDLE},
                      headers={"Idempotency-Key": "sealed-custody-1"})
    assert case.status_code == 201, case.text
    read = casey.get(f"/api/intake/cases/{case.json()['id']}")
    assert read.status_code == 200 and read.json()["full_name"] == NEEDLE  # the keys opened through the pipe

    # The passphrase is in no process's environment or arguments.
    for name in PROCESSES:
        pid = system.pid(name)
        for view in ("environ", "cmdline"):
            assert PASSPHRASE.encode() not in Path(f"/proc/{pid}/{view}").read_bytes(), (name, view)

    # The whole state folder, as a thief copies it (the system running: write-ahead logs and all).
    copy = tmp_path / "stolen"
    _copy_as_it_is(system.state, copy)
    secrets = copy / "secrets"
    for name in ("intake", "referrals", "funds", "reports", "gateway"):
        assert (secrets / name / SEALED_KEYS_FILE).is_file()
        for clear in ("kek.json", "blind_index.key", "audit.key", "audit_signing.pem", "token_signing.pem"):
            assert not (secrets / name / clear).exists(), f"{name}/{clear} in clear"
    keys = _every_key(secrets)
    # Per service: a KEK, a blind-index and an audit key, and the audit signing key (raw, and its PEM body); the
    # gateway's audit key, audit signing key and token signing key; reports' audit key and audit signing key (it
    # holds no data, so no KEK and no blind-index key).
    assert len(keys) == 3 * (3 + 2) + 1 + 2 + 2 + 1 + 2
    needles = [NEEDLE.encode(), NOTE_NEEDLE.encode(), PASSPHRASE.encode()]
    needles += [form for key in keys for form in (key, base64.b64encode(key), key.hex().encode()) if len(key) >= 32]
    for path in copy.rglob("*"):
        if path.is_file() and path.name != SEALED_KEYS_FILE:
            content = path.read_bytes()
            for needle in needles:
                assert needle not in content, f"{path.relative_to(copy)} holds a key or a name"


def test_a_restarted_process_stays_sealed_until_rehab_unseal(sealed_system: System, tmp_path: Path) -> None:
    system = sealed_system
    admin = sign_in(system.url, grant_type="password", username="admin", password=ADMIN_PASSWORD)
    assert admin.post("/api/admin/users", json={"username": "casey", "password": STAFF_PASSWORD,
                                                "roles": ["caseworker"]}).status_code == 201
    casey = sign_in(system.url, grant_type="password", username="casey", password=STAFF_PASSWORD)
    case = casey.post("/api/intake/cases", json={"full_name": NEEDLE})
    assert case.status_code == 201, case.text
    path = f"/api/intake/cases/{case.json()['id']}"

    old = system.kill("intake")  # the supervisor restarts it, and hands it no passphrase
    eventually(lambda: _answers(system, "intake") and system.pid("intake") != old, timeout=60)
    # the gateway may still hold the dead process's "unavailable" from its last health probe for a moment
    eventually(lambda: _problem_type(casey.get(path)).endswith("/sealed"), timeout=15)
    sealed = casey.get(path)
    assert sealed.status_code == 503, sealed.text
    assert sealed.json()["type"].endswith("/sealed") and "retry-after" in sealed.headers
    assert casey.get("/api/referrals/partners").status_code == 200  # the others kept their keys

    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all\n")
    system.env["UNSEAL_PASSPHRASE_FILE"] = str(wrong)  # the operator's own shell, not the processes'
    refused = system.run_cli("unseal")
    assert refused.returncode != 0 and "does not open" in refused.stderr
    assert casey.get(path).status_code == 503

    given = tmp_path / "passphrase"
    given.write_text(PASSPHRASE + "\n")
    os.chmod(given, 0o600)
    system.env["UNSEAL_PASSPHRASE_FILE"] = str(given)
    unsealed = system.run_cli("unseal")
    assert unsealed.returncode == 0, unsealed.stderr
    eventually(lambda: casey.get(path).status_code == 200, timeout=5)
    assert casey.get(path).json()["full_name"] == NEEDLE


def _copy_as_it_is(state: Path, copy: Path) -> None:
    """Every file of a running system's folder, as a thief's copy finds it: a file gone between the listing and the
    copy (a database's rollback journal, a NATS block being compacted) is simply not in the copy, as it would not be
    in the thief's (shutil.copytree would fail the whole copy for it)."""
    for folder, _, files in os.walk(state):
        into = copy / Path(folder).relative_to(state)
        into.mkdir(parents=True, exist_ok=True)
        for name in files:
            if name.endswith(".sock"):
                continue
            try:
                shutil.copy2(Path(folder) / name, into / name)
            except FileNotFoundError:
                continue


def _problem_type(answer: httpx.Response) -> str:
    return answer.json().get("type", "") if answer.status_code >= 400 else ""


def _answers(system: System, name: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{system.ports[name]}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_installation_made_under_file_custody_moved_to_sealed_opens_its_records(tmp_path: Path) -> None:
    """The way on from refusing a custody change (kit.secrets): stopped, moved with `rehab keys move-to-sealed`, and
    started again under `sealed`, the installation opens the records its plain keys sealed, and its audit trails'
    signatures still verify; no key is left in clear."""
    system = System(tmp_path)
    try:
        system.start()
        admin = sign_in(system.url, grant_type="password", username="admin", password=ADMIN_PASSWORD)
        assert admin.post("/api/admin/users", json={"username": "casey", "password": STAFF_PASSWORD,
                                                    "roles": ["caseworker"]}).status_code == 201
        casey = sign_in(system.url, grant_type="password", username="casey", password=STAFF_PASSWORD)
        case = casey.post("/api/intake/cases", json={"full_name": NEEDLE, "safety_notes": NOTE_NEEDLE})
        assert case.status_code == 201, case.text
        assert system.stop() == 0

        given = tmp_path / "passphrase"
        given.write_text(PASSPHRASE + "\n")
        os.chmod(given, 0o600)
        system.env.update({"REHAB_KEY_CUSTODY": "sealed", "UNSEAL_PASSPHRASE_FILE": str(given)})
        moved = system.run_cli("keys", "move-to-sealed")
        assert moved.returncode == 0, moved.stderr
        system.start()

        casey = sign_in(system.url, grant_type="password", username="casey", password=STAFF_PASSWORD)
        read = casey.get(f"/api/intake/cases/{case.json()['id']}")
        assert read.status_code == 200 and read.json()["safety_notes"] == NOTE_NEEDLE
        found = casey.post("/api/intake/cases/search", json={"q": NEEDLE})  # the blind index's key moved too
        assert [hit["id"] for hit in found.json()["items"]] == [case.json()["id"]]
        verified = system.run_cli("audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        secrets = system.state / "secrets"
        for clear in ("kek.json", "blind_index.key", "audit.key", "audit_signing.pem", "token_signing.pem"):
            assert not list(secrets.glob(f"*/{clear}")), f"{clear} left in clear"
    finally:
        system.cleanup()
