"""The database's own walls around the money: migrations that match the models, transfers and payments that cannot
be edited or deleted, a second payment refused by a constraint, and `rehab ledger check` finding any break."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from kit import db, migrations
from services.funds.main import SPEC
from services.funds.models import LedgerAccount, Payment, PaymentCreate, Transfer, new_id

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def ledger_check(books) -> subprocess.CompletedProcess:
    """`rehab ledger check` as an operator runs it: the funds database named by the environment."""
    env = {**os.environ, "REHAB_FUNDS_DATABASE_URL": books.runtime.settings.db_url,
           "REHAB_STATE_DIR": str(books.runtime.settings.state_dir)}
    return subprocess.run([sys.executable, "-m", "services.funds.manage", "ledger", "check"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_migrations_match_the_models(books):
    migrations.check(books.runtime.engine, SPEC.migrations_dir)  # raises on any difference


def test_transfers_and_payments_are_append_only_and_a_second_payment_is_refused(books):
    grant = books.grant(amount="100.00")
    disbursement = books.request(books.case(), grant, amount="40.00")
    assert books.act("approve", disbursement) == "approved"
    assert books.act("pay", disbursement) == "paid"
    with db.transaction(books.runtime.session_factory) as session:
        payment = session.execute(select(Payment)).scalars().one()
        post = session.get(Transfer, payment.transfer_id)
    edits = [
        update(Transfer).where(Transfer.id == post.id).values(amount_minor=1),
        text("DELETE FROM transfers WHERE id = :id").bindparams(id=post.id),
        update(Payment).where(Payment.id == payment.id).values(reference="CHANGED"),
        update(Payment).where(Payment.id == payment.id).values(reference="", paid_by="someone-else"),  # forgets, and more
        update(Payment).where(Payment.id == payment.id).values(reference_sealed=b"another sealed text"),
        text("DELETE FROM payments WHERE id = :id").bindparams(id=payment.id),
    ]
    for edit in edits:
        with pytest.raises(DBAPIError, match="append-only"), db.transaction(books.runtime.session_factory) as session:
            session.execute(edit)
    with pytest.raises(IntegrityError), db.transaction(books.runtime.session_factory) as session:
        session.execute(insert(Payment).values(
            id=new_id(), disbursement_id=disbursement, transfer_id=post.id, method="cash", reference="AGAIN",
            paid_by="finance-anna", paid_at=payment.paid_at))
    # no account below zero, whatever the code above the database does
    with pytest.raises(IntegrityError), db.transaction(books.runtime.session_factory) as session:
        session.execute(update(LedgerAccount).where(LedgerAccount.grant_id == grant.id,
                                                    LedgerAccount.name == "available")
                        .values(debits_minor=LedgerAccount.credits_minor + 1))
    [checked] = books.check()
    assert checked.breaks == []


def test_ledger_check_passes_a_sound_ledger_and_fails_on_any_break(books):
    sound = books.grant(amount="1000.00")
    other = books.grant(amount="50000", currency="JPY")
    case_id = books.case()
    for amount, steps in (("100.00", ("approve", "pay")), ("250.00", ("approve",)), ("50.00", ("approve", "void"))):
        disbursement = books.request(case_id, sound, amount=amount)
        for step in steps:
            books.act(step, disbursement)
    ok = ledger_check(books)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"ok     {sound.code}  budget 1000.00 = available 650.00 + committed 250.00 + paid 100.00 EUR" in ok.stdout
    assert f"ok     {other.code}" in ok.stdout

    # someone edits a cached balance behind the ledger's back (the CHECK allows it: it stays non-negative)
    with db.transaction(books.runtime.session_factory) as session:
        session.execute(update(LedgerAccount).where(LedgerAccount.grant_id == sound.id,
                                                    LedgerAccount.name == "available")
                        .values(credits_minor=LedgerAccount.credits_minor + 5000))
    broken = ledger_check(books)
    assert broken.returncode == 1
    assert f"BROKEN {sound.code}" in broken.stdout and "differ from its transfers" in broken.stdout
    assert f"ok     {other.code}" in broken.stdout


def test_ledger_check_follows_payments_in_another_currency_and_fails_when_their_transfers_do_not_settle_them(books):
    grant = books.grant(amount="1000.00")
    case_id = books.case()
    for zloty, difference in (("1290.00", None), ("1279.25", "release"), ("1303.33", "approve")):
        disbursement = books.request(case_id, grant, amount="300.00")
        assert books.act("approve", disbursement) == "approved"
        assert books.act("pay", disbursement, payment=PaymentCreate(
            method="bank_transfer", reference="PLN-1", difference=difference,
            paid={"currency": "PLN", "amount": zloty, "fx_rate": "4.3000", "fx_source": "NBP"})) == "paid"
    ok = ledger_check(books)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"ok     {grant.code}  budget 1000.00 = available 99.40 + committed 0.00 + paid 900.60 EUR" in ok.stdout

    # an extra cent paid out for the last one, its cached totals kept in step: the sums balance, the payment does not
    with db.transaction(books.runtime.session_factory) as session:
        session.execute(insert(Transfer).values(
            id=new_id(), grant_id=grant.id, kind="fx_extra", debit_account="available", credit_account="paid",
            amount_minor=1, disbursement_id=disbursement, created_at=datetime.now(UTC)))
        for name, column in (("available", LedgerAccount.debits_minor), ("paid", LedgerAccount.credits_minor)):
            session.execute(update(LedgerAccount).where(LedgerAccount.grant_id == grant.id, LedgerAccount.name == name)
                            .values({column: column + 1}))
    broken = ledger_check(books)
    assert broken.returncode == 1
    assert f"BROKEN {grant.code}" in broken.stdout and "differ from the 30310 it was worth" in broken.stdout


def test_ledger_check_without_a_funds_database_says_so(tmp_path):
    env = {**os.environ, "REHAB_FUNDS_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    result = subprocess.run([sys.executable, "-m", "services.funds.manage", "ledger", "check"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "no ledger" in result.stderr
