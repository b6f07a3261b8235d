"""`rehab keys rotate|status|retire` over the three services at once (issues #14, #16): each service has a keyring
of its own (SPEC §8); one rotation adds a KEK to each and re-wraps every data key of intake, referrals and funds
under its service's new KEK while the three apps keep running (their keyring re-reads the file), and an old KEK is
retired only once no service's data key uses it. Every record of every service still opens afterwards, and the
running processes wrap new ones under the new KEK."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from kit.crypto import Keyring, add_key_to_file
from ops import cli
from services.funds.config import FundsSettings
from services.funds.main import create_app as create_funds_app
from services.funds.models import CaseKey as FundsCaseKey
from services.intake.config import IntakeSettings
from services.intake.main import create_app as create_intake_app
from services.intake.models import CaseKey as IntakeCaseKey
from services.referrals.config import ReferralsSettings
from services.referrals.models import Referral
from tests.integration.funds.conftest import Desk as FundsDesk
from tests.integration.intake.conftest import Intake
from tests.integration.referrals.desk import open_desk
from tests.support.apps import running

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PACKET = {"display_name": "Марыя Жук", "language": "be", "health_summary": "hypertension"}
PAYEE = {"name": "Кацярына Кузняцова", "account": "LT60 1010 0123 4567 8901"}


def _env(intake: IntakeSettings, referrals: ReferralsSettings, funds: FundsSettings) -> dict[str, str]:
    return {"REHAB_STATE_DIR": str(intake.state_dir), "REHAB_SECRETS_DIR": str(intake.secrets_dir),
            "REHAB_INTAKE_DATABASE_URL": intake.database_url, "REHAB_REFERRALS_DATABASE_URL": referrals.database_url,
            "REHAB_FUNDS_DATABASE_URL": funds.database_url}


def _rehab_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`rehab …` as an operator runs it: a process configured by the environment only."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REHAB_")} | env
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], cwd=REPO, env=clean, capture_output=True,
                          text=True, timeout=180, check=False)


def _rehab(env: dict[str, str], *args: str):
    """The same command in this process (it still runs each service's `keys status` as a process of its own)."""
    return CliRunner().invoke(cli.app, list(args), env=env)


def _status(output: str) -> dict[str, dict[str, int]]:
    """`rehab keys status` read back: {process: {kid: data keys}}."""
    counts: dict[str, dict[str, int]] = {}
    process = None
    for line in output.splitlines():
        if found := re.match(r"([a-z]+): custody ", line):
            process = found[1]
            counts[process] = {}
        elif (found := re.fullmatch(r"  (k\d+): (\d+) data keys.*", line)) and process:
            counts[process][found[1]] = int(found[2])
    return counts


@pytest.mark.timeout(300)  # every service started, rotated, restarted: minutes on a busy machine
async def test_one_rotation_rewraps_every_service_and_the_old_kek_retires_only_when_unused(
        tmp_path, secrets_dir, nats_url, database_url_factory, token_issuer):
    state = tmp_path / "state"
    intake_settings = IntakeSettings(state_dir=state, secrets_dir=secrets_dir, nats_url=nats_url,
                                     database_url=database_url_factory("intake"), consumer_ack_wait_seconds=5)
    referrals_settings = ReferralsSettings(state_dir=state, secrets_dir=secrets_dir, nats_url=nats_url,
                                           database_url=database_url_factory("referrals"))
    funds_settings = FundsSettings(state_dir=state, secrets_dir=secrets_dir, nats_url=nats_url,
                                   database_url=database_url_factory("funds"))
    env = _env(intake_settings, referrals_settings, funds_settings)
    kek_paths = [intake_settings.kek_path, referrals_settings.kek_path, funds_settings.kek_path]
    kek_path = intake_settings.kek_path
    first = Keyring.from_file(kek_path).active
    # One keyring per service: three files, three different KEKs under the same first id.
    assert len(set(kek_paths)) == 3
    assert len({Keyring.from_file(path).derive("test") for path in kek_paths}) == 3

    async with AsyncExitStack() as stack:
        intake_app = create_intake_app(intake_settings)
        intake = Intake(await stack.enter_async_context(running(intake_app)), intake_app, intake_settings,
                        token_issuer)
        referrals = await stack.enter_async_context(open_desk(referrals_settings, token_issuer))
        funds_app = create_funds_app(funds_settings)
        funds = FundsDesk(await stack.enter_async_context(running(funds_app)), token_issuer, funds_app.state.runtime)

        # A record of each service, its data keys under the first KEK.
        case = await intake.create(full_name="Марыя Жук", safety_notes="lives with her sister")
        partner = await referrals.add_partner("medical")
        referred_case = await referrals.open_case(categories=["medical"])
        referral = await referrals.sent_referral(referred_case, partner, packet=PACKET)
        declined = await referrals.sent_referral(referred_case, partner, packet=PACKET)
        answer = await referrals.partner_step(partner, declined, "decline", {"reason": "no free places until May"})
        assert answer.status_code == 200, answer.text
        grant = await funds.create_grant()
        funded_case = funds.open_case()
        disbursement = await funds.requested(funded_case, grant, payee=PAYEE)

        never_active = _rehab(env, "keys", "retire", first, "--yes")
        assert never_active.exit_code == 1 and "is the active key-encryption key" in never_active.output

        # A KEK added, nothing re-wrapped yet (a rotation that stopped half-way): the first KEK still wraps data
        # keys in every service, and retiring it is refused, naming them.
        second = {add_key_to_file(path) for path in kek_paths}.pop()
        refused = _rehab(env, "keys", "retire", first, "--yes")
        assert refused.exit_code == 1, refused.output
        # funds: the case's key, and the grant's (its donor)
        assert "intake: 1" in refused.output and "referrals: 3" in refused.output and "funds: 2" in refused.output
        assert f"error: {first} was not retired" in refused.output
        assert first in Keyring.from_file(kek_path).kids

        # `rehab keys rotate` while the three apps run: one new KEK, every service re-wrapped under it.
        rotated = _rehab_process(env, "keys", "rotate", "--batch-size", "1")
        assert rotated.returncode == 0, rotated.stderr
        third = Keyring.from_file(kek_path).active
        assert third not in (first, second)
        assert {Keyring.from_file(path).active for path in kek_paths} == {third}
        for process, rewrapped in (("intake", 1), ("referrals", 3), ("funds", 2)):
            assert f"{process}: active key-encryption key: {third}; data keys re-wrapped: {rewrapped}" in rotated.stdout

        status = _rehab(env, "keys", "status")
        assert status.exit_code == 0, status.output
        assert f"intake: custody file, active key-encryption key {third}" in status.output
        assert f"{third}: 1 data keys (active)" in status.output
        assert _status(status.output) == {
            "intake": {first: 0, second: 0, third: 1}, "referrals": {first: 0, second: 0, third: 3},
            "funds": {first: 0, second: 0, third: 2}}

        retired = _rehab(env, "keys", "retire", first, "--yes")
        assert retired.exit_code == 0, retired.output
        assert all(f"{process}: retired {first}" in retired.output for process in ("intake", "referrals", "funds"))
        the_rest = _rehab(env, "keys", "retire", "--yes")  # every KEK no data key uses: the second one
        assert the_rest.exit_code == 0 and f"funds: retired {second}" in the_rest.output
        assert [Keyring.from_file(path).kids for path in kek_paths] == [[third]] * 3

        # The running processes, started under the first KEK, open every record re-wrapped under the third…
        read = await intake.read(case["id"])
        assert read.status_code == 200 and read.json()["safety_notes"] == "lives with her sister"
        packet = await referrals.client.get(f"/api/partner/referrals/{referral}", headers=referrals.partner(partner))
        assert packet.status_code == 200 and packet.json()["packet"]["display_name"] == PACKET["display_name"]
        reply = await referrals.client.get(f"/api/referrals/referrals/{declined}", headers=referrals.caseworker())
        assert reply.json()["decline_reason"] == "no free places until May"
        # declined: the packet was taken back from the partner (its reply key, opening the reason, is kept)
        assert reply.json()["packet"] is None and reply.json()["packet_withdrawn"] == "referral-declined"
        payee = await funds.client.get(f"/api/funds/disbursements/{disbursement['id']}", headers=funds.finance)
        assert payee.status_code == 200 and payee.json()["payee"] == PAYEE
        assert (await funds.grant(grant["id"]))["donor"] == grant["donor"]

        # …and wrap new ones under it, without a restart.
        later = await intake.create(full_name="Ян Жук")
        later_referral = await referrals.sent_referral(referred_case, partner, packet=PACKET)
        later_payment = await funds.requested(funds.open_case(), grant, payee=PAYEE)
        with intake.engine.connect() as conn:
            assert conn.execute(select(IntakeCaseKey.__table__.c.kid)
                                .where(IntakeCaseKey.__table__.c.case_id == later["id"])).scalar_one() == third
        with referrals.runtime.engine.connect() as conn:
            assert conn.execute(select(Referral.__table__.c.packet_kid)
                                .where(Referral.__table__.c.id == later_referral)).scalar_one() == third
        with funds.runtime.engine.connect() as conn:
            assert set(conn.execute(select(FundsCaseKey.__table__.c.kid)).scalars()) == {third}
        assert (await intake.read(later["id"])).json()["full_name"] == "Ян Жук"
        later_payee = await funds.client.get(f"/api/funds/disbursements/{later_payment['id']}", headers=funds.finance)
        assert later_payee.json()["payee"] == PAYEE


def test_keys_commands_say_in_a_line_when_a_service_has_no_database_yet(tmp_path, secrets_dir):
    env = {"REHAB_STATE_DIR": str(tmp_path / "fresh"), "REHAB_SECRETS_DIR": str(secrets_dir)}
    kek_path = secrets_dir / "intake" / "kek.json"
    before = Keyring.from_file(kek_path).active
    rotated = _rehab_process(env, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    after = Keyring.from_file(kek_path).active
    for process in ("intake", "referrals", "funds"):
        assert f"{process}: no {process} database yet under {tmp_path / 'fresh'}/: nothing to re-wrap" in rotated.stdout
    retired = _rehab(env, "keys", "retire", before, "--yes")
    assert retired.exit_code == 0 and f"intake: retired {before}" in retired.output
    assert Keyring.from_file(kek_path).kids == [after]
    assert not (tmp_path / "fresh").exists() or list((tmp_path / "fresh").rglob("*.db")) == []
