"""Intake under `openbao` key custody (SPEC §8, issue #16), against a real OpenBao server: every data key wrapped by
intake's Transit key, the KEK never on this machine; a copy of the state folder holds no key and no name; OpenBao
stopped makes what needs a key answer 503 at once (never a 500, never a hang) and everything opens again when it
returns, without a restart."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest

from kit import openbao
from kit.custody import transit_client
from kit.keyfiles import TRANSIT_KEYS_FILE
from kit.secrets import ensure_secrets
from services.intake.config import IntakeSettings
from services.intake.main import create_app
from tests.integration.intake.conftest import Intake
from tests.support.apps import running
from tests.support.openbao import OpenBaoDev, bao_runs

pytestmark = pytest.mark.integration
NEEDLE = "Алесь Транзітаў-Schlüssel"

runs, why = bao_runs()
if not runs:
    pytest.skip(f"OpenBao cannot run here: {why}", allow_module_level=True)


@pytest.fixture
def bao(tmp_path) -> Iterator[OpenBaoDev]:
    server = OpenBaoDev(tmp_path / "bao", persistent=True)  # keeps its keys across a stop and a start
    server.start()
    yield server
    server.stop()


@pytest.fixture
def openbao_settings(tmp_path, secrets_dir, nats_url, database_url_factory, bao) -> IntakeSettings:
    own_secrets = tmp_path / "openbao-secrets"
    ensure_secrets(own_secrets, custody="openbao")  # no keyring files: intake makes keys.transit at its start
    return IntakeSettings(state_dir=tmp_path / "state", secrets_dir=own_secrets, nats_url=nats_url,
                          token_public_key_file=secrets_dir / "intake" / "token_signing.pub.pem",
                          database_url=database_url_factory("intake"), key_custody="openbao",
                          openbao_addr=bao.addr, openbao_token=bao.root_token,
                          openbao_cache_seconds=0)  # every read asks OpenBao: what the test is about


async def test_intake_under_openbao_keeps_no_key_on_disk_and_rides_out_openbao_stopping(
        openbao_settings, token_issuer, bao, tmp_path) -> None:
    app = create_app(openbao_settings)
    async with running(app) as client:
        intake = Intake(client, app, openbao_settings, token_issuer)
        case = await intake.create(full_name=NEEDLE, safety_notes="sleeps at a friend's")
        assert (await intake.read(case["id"])).json()["full_name"] == NEEDLE
        keyring = intake.runtime.keyring
        assert keyring.kind == "openbao" and keyring.active.startswith("v")

        # What is on disk: keys.transit (OpenBao ciphertext), no kek.json, and nowhere a key or the name.
        own = openbao_settings.own_secrets_path
        sealed = (own / TRANSIT_KEYS_FILE).read_text()
        assert sealed.startswith("vault:v1:") and not (own / "kek.json").exists()
        bundle = json.loads(openbao.open_document(transit_client(openbao_settings), sealed))
        keys = [base64.b64decode(bundle["root"]), *(base64.b64decode(v) for v in bundle["secrets"].values())]
        data_key = keyring.unwrap(_wrapped_key_of(intake, case["id"]))
        needles = [NEEDLE.encode(), data_key, base64.b64encode(data_key)]
        needles += [form for key in keys for form in (key, base64.b64encode(key))]
        # Everything this test's processes wrote (the database file included), but OpenBao's own storage and the
        # folder of the token keys the test signs with.
        for path in tmp_path.rglob("*"):
            if path.is_file() and path.relative_to(tmp_path).parts[0] not in ("bao", "secrets", "nats"):
                content = path.read_bytes()
                assert not any(needle in content for needle in needles), path

        # OpenBao stops: a read needs an unwrap, and is answered 503 at once.
        bao.stop()
        started = time.monotonic()
        down = await intake.read(case["id"])
        assert down.status_code == 503, down.text
        assert down.json()["type"].endswith("/keys-unavailable") and "retry-after" in down.headers
        assert time.monotonic() - started < 2
        assert NEEDLE not in down.text
        refused = await client.post("/api/intake/cases", json={"full_name": "Янка Купала"},
                                    headers=intake.caseworker)
        assert refused.status_code in (201, 503), refused.text  # a pooled data key may still serve a creation

        # It returns: the same process opens everything again.
        bao.start(mount_transit=False)
        deadline = time.monotonic() + 10
        while (answer := await intake.read(case["id"])).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert answer.status_code == 200 and answer.json()["full_name"] == NEEDLE


def _wrapped_key_of(intake: Intake, case_id: str):
    from sqlalchemy import select

    from kit.crypto import WrappedKey
    from services.intake.models import CaseKey

    table = CaseKey.__table__
    with intake.engine.connect() as conn:
        kid, blob = conn.execute(select(table.c.kid, table.c.wrapped).where(table.c.case_id == case_id)).one()
    return WrappedKey(kid, blob)
