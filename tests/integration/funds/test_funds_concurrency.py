"""Two replicas of funds on one database are the real threat: here many threads, each with its own session and
connection, approve and pay at once (on SQLite and, with REHAB_TEST_POSTGRES_URL, on PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from kit import db
from services.funds.models import Payment, Transfer

pytestmark = pytest.mark.integration

WORKERS = 12


def test_fifty_concurrent_approvals_from_many_sessions_never_overspend(books):
    grant = books.grant(amount="2000.00")                  # room for exactly 20 of 100.00
    case_id = books.case()
    requests = [books.request(case_id, grant, amount="100.00") for _ in range(50)]
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = Counter(pool.map(lambda d: books.act("approve", d), requests))
    assert outcomes == {"approved": 20, "grant-funds-short": 30}
    [checked] = books.check()
    assert checked.breaks == []
    assert (checked.balances["available"], checked.balances["committed"]) == (0, 2000_00)


def test_ten_concurrent_payments_of_one_disbursement_pay_it_once(books):
    grant = books.grant(amount="500.00")
    disbursement = books.request(books.case(), grant, amount="300.00")
    assert books.act("approve", disbursement) == "approved"
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = Counter(pool.map(lambda _: books.act("pay", disbursement, actor="finance-anna"), range(10)))
    assert outcomes == {"paid": 1, "already-paid": 9}
    with db.transaction(books.runtime.session_factory) as session:
        assert session.execute(select(func.count()).select_from(Payment)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(Transfer)
                               .where(Transfer.kind == "post")).scalar_one() == 1
    [checked] = books.check()
    assert checked.breaks == [] and checked.balances["paid"] == 300_00


def test_approvals_racing_voids_and_payments_keep_the_ledger_whole(books):
    grant = books.grant(amount="1000.00")
    case_id = books.case()
    requests = [books.request(case_id, grant, amount="100.00") for _ in range(15)]
    actions = [(action, d) for d in requests for action in ("approve", "void", "pay")]
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda job: books.act(*job), actions))
    [checked] = books.check()
    assert checked.breaks == []
    assert sum(checked.balances[a] for a in ("available", "committed", "paid")) == 1000_00
