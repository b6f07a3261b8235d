"""A payment's reference is the bank's or cash book's, and bank references often carry the payee's name
("KAVALEU.ANASTASIA" is a valid one): it is sealed under the case's data key, bound to the payment, so that no row or
database file holds it in clear and the case's erasure takes it (SPEC §7.1, §7.6). A payment made after its case was
erased is still recorded (the money may have left the bank already) but keeps no reference. Through the real funds
service on the run's database (PostgreSQL when REHAB_TEST_POSTGRES_URL names one); the migration's downgrade on the
books' database."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from sqlalchemy import inspect, select, text, update
from sqlalchemy.exc import DBAPIError

from kit import crypto, db, migrations
from services.funds import service
from services.funds.main import SPEC, create_app
from services.funds.models import CaseKey, Payment
from tests.integration.funds.conftest import Books, Desk
from tests.integration.funds.test_funds_donors import holds_in_clear
from tests.support.apps import running
from tests.support.polling import wait_for

pytestmark = pytest.mark.integration

NAMED = "KAVALEU.ANASTASIA"  # a reference the pattern lets through, naming a person
BEFORE = "d4e8a2c6f1b3"  # the revision before references were sealed


async def approved(desk: Desk, grant: dict) -> dict:
    asked = await desk.requested(desk.open_case(), grant)
    assert (await desk.act(asked["id"], "approve")).status_code == 200
    return asked


async def shown(desk: Desk, disbursement_id: str, grant_id: str) -> tuple[str | None, list[str | None]]:
    """The payment's reference as finance reads one disbursement, and as the list of the grant's shows it."""
    one = await desk.client.get(f"/api/funds/disbursements/{disbursement_id}", headers=desk.finance)
    listed = await desk.client.get("/api/funds/disbursements", params={"grant_id": grant_id}, headers=desk.finance)
    assert one.status_code == 200 and listed.status_code == 200, (one.text, listed.text)
    return one.json()["payment"]["reference"], [d["payment"]["reference"] for d in listed.json()["items"]
                                               if d["id"] == disbursement_id]


def payment_row(desk: Desk, disbursement_id: str) -> dict:
    (row,) = [r for r in desk.rows(Payment.__table__) if r["disbursement_id"] == disbursement_id]
    return row


async def test_a_reference_is_shown_to_finance_lies_nowhere_in_clear_and_goes_with_the_case(desk: Desk):
    grant = await desk.create_grant()
    aid = await approved(desk, grant)

    paid = await desk.pay(aid["id"], reference=NAMED)
    assert paid.status_code == 200, paid.text
    assert paid.json()["payment"]["reference"] == NAMED
    # finance reads it in one disbursement (an audited read); a list, read unaudited, never opens it
    assert await shown(desk, aid["id"], grant["id"]) == (NAMED, [None])
    caseworker_reads = await desk.client.get(f"/api/funds/disbursements/{aid['id']}", headers=desk.caseworker)
    assert caseworker_reads.status_code == 200 and caseworker_reads.json()["payment"]["reference"] is None
    assert desk.audit_actions(aid["id"]).count("payee.read") + desk.audit_actions(aid["id"]).count(
        "disbursement.read") >= 2

    row = payment_row(desk, aid["id"])
    assert row["reference"] == "" and row["reference_sealed"] is not None
    assert holds_in_clear(desk, NAMED) == []
    assert holds_in_clear(desk, "ANASTASIA") == []

    desk.erase_case(aid["case_id"])
    assert await shown(desk, aid["id"], grant["id"]) == (None, [None])
    row = payment_row(desk, aid["id"])  # append-only: the seal stays, with no key left to open it
    assert row["reference"] == "" and row["reference_sealed"] is not None
    with db.transaction(desk.runtime.session_factory) as session:
        assert session.get(CaseKey, aid["case_id"]) is None
        for left in session.execute(select(CaseKey)).scalars():
            key = desk.runtime.keyring.unwrap(crypto.WrappedKey(left.kid, left.wrapped))
            with pytest.raises(crypto.DecryptionError):
                crypto.open_sealed(key, row["reference_sealed"], crypto.aad("payments", "reference", row["id"]))
    assert holds_in_clear(desk, NAMED) == []


async def test_a_reference_opens_only_for_its_own_payment(desk: Desk):
    """Bound by its AAD to the payment's id: a seal copied onto another payment of the same case does not open."""
    grant = await desk.create_grant()
    aid = await approved(desk, grant)
    assert (await desk.pay(aid["id"], reference=NAMED)).status_code == 200
    row = payment_row(desk, aid["id"])
    with db.transaction(desk.runtime.session_factory) as session:
        key = service._case_key(session, desk.runtime, aid["case_id"], create=False)
        assert key is not None
        assert crypto.open_sealed(key, row["reference_sealed"],
                                  crypto.aad("payments", "reference", row["id"])).decode() == NAMED
        with pytest.raises(crypto.DecryptionError):
            crypto.open_sealed(key, row["reference_sealed"], crypto.aad("payments", "reference", str(uuid.uuid4())))
        with pytest.raises(crypto.DecryptionError):
            crypto.open_sealed(key, row["reference_sealed"], crypto.aad("payments", "fx_source", row["id"]))


async def test_a_payment_whose_case_was_erased_before_is_recorded_without_its_reference(desk: Desk):
    grant = await desk.create_grant()
    aid = await approved(desk, grant)
    desk.erase_case(aid["case_id"])

    paid = await desk.pay(aid["id"], reference=NAMED)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid" and paid.json()["payment"]["reference"] is None
    assert await shown(desk, aid["id"], grant["id"]) == (None, [None])
    row = payment_row(desk, aid["id"])
    assert row["reference"] == "" and row["reference_sealed"] is None
    assert holds_in_clear(desk, NAMED) == []
    state = await desk.balanced_grant(grant["id"])
    assert (state["committed"], state["paid"]) == ("0.00", "100.00")


async def test_a_reference_kept_in_clear_before_is_sealed_once_funds_runs_and_an_erased_case_s_is_dropped(desk: Desk):
    """An upgrade's payments kept their references in clear, and an erasure left them (a reviewer found the payee's
    name in funds.db after the case was erased): funds seals them under their cases' keys once it runs, drops an
    erased case's, and an erasure now takes a clear one too."""
    grant = await desk.create_grant()
    kept, erased_before, erased_after = [await approved(desk, grant) for _ in range(3)]
    for aid in (kept, erased_before, erased_after):
        assert (await desk.pay(aid["id"], reference=NAMED)).status_code == 200
    desk.erase_case(erased_before["case_id"])

    def as_an_older_release_left_them(session):  # noqa: ANN001, ANN202
        # Past the payments' wall for a moment (it refuses this edit, as it should): the rows as they were then.
        left = update(Payment).values(reference=NAMED, reference_sealed=None)
        if session.bind.dialect.name == "postgresql":
            session.execute(text("ALTER TABLE payments DISABLE TRIGGER payments_only_forget"))
            session.execute(left)
            session.execute(text("ALTER TABLE payments ENABLE TRIGGER payments_only_forget"))
        else:
            (wall,) = session.execute(text("SELECT sql FROM sqlite_master WHERE name = 'payments_no_update'")).one()
            session.execute(text("DROP TRIGGER payments_no_update"))
            session.execute(left)
            session.execute(text(wall))

    await desk.runtime.uow.run(as_an_older_release_left_them)
    assert holds_in_clear(desk, NAMED) != []
    desk.erase_case(erased_after["case_id"])  # an erasure now takes the clear reference too
    assert payment_row(desk, erased_after["id"])["reference"] == ""

    async with running(create_app(desk.runtime.settings)):  # funds started again, as after an upgrade
        await wait_for(lambda: payment_row(desk, kept["id"])["reference_sealed"] is not None, timeout=10)
    assert holds_in_clear(desk, NAMED) == []
    assert await shown(desk, kept["id"], grant["id"]) == (NAMED, [None])  # sealed under its case's key: read as any
    assert (await shown(desk, erased_before["id"], grant["id"]))[0] is None  # its case's key is gone: nothing kept
    assert await desk.runtime.uow.run(lambda session: service.seal_older_payments(session, desk.runtime)) == 0


def test_the_downgrade_refuses_while_a_sealed_reference_exists_and_keeps_the_append_only_walls(books: Books):
    engine = books.runtime.engine
    cfg = migrations.config_for(SPEC.migrations_dir, engine.url.render_as_string(hide_password=False))

    def downgrade() -> None:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, BEFORE)

    def columns() -> set[str]:
        with engine.connect() as conn:
            return {column["name"] for column in inspect(conn).get_columns("payments")}

    downgrade()  # no payments yet: nothing to lose
    assert "reference_sealed" not in columns()
    migrations.upgrade(engine, SPEC.migrations_dir)
    assert "reference_sealed" in columns()

    grant = books.grant()
    disbursement_id = books.request(books.case(), grant)
    assert books.act("approve", disbursement_id) == "approved"
    assert books.act("pay", disbursement_id, actor="finance-anna") == "paid"
    with pytest.raises(RuntimeError, match="sealed references"):
        downgrade()
    assert "reference_sealed" in columns()
    # The upgrade added its column in place: the payments' append-only trigger still refuses an edit.
    with pytest.raises(DBAPIError, match="append-only"), db.transaction(books.runtime.session_factory) as session:
        session.execute(update(Payment).values(reference=NAMED))
