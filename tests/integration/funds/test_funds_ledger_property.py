"""Property: whatever sequence of request / approve / reject / void / pay happens — paid in the grant's currency or
in another one worth less (the rest released) or more (the extra approved) —, after every step the grant's ledger
balances (budget = available + committed + paid, nothing negative) and agrees with a simple model of what each
disbursement's state and amount should be."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from kit import db
from services.funds import domain, ledger, money
from services.funds.models import PaymentCreate

pytestmark = pytest.mark.integration

# Budgets in cents, often small enough that approvals run short.
budgets = st.one_of(st.sampled_from([10_000, 30_000, 50_000]), st.integers(min_value=1, max_value=100_000))

# A step is (action, aimed, number): a request for `number` cents, or an action on a disbursement, either aimed at
# one whose state allows it (so that histories that move money happen often) or picked blindly by `number` (so that
# refused transitions happen too).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.just(False),
                  st.one_of(st.integers(min_value=1, max_value=30_000), st.sampled_from([10_000, 20_000, 25_000]))),
        st.tuples(st.sampled_from(["approve", "approve", "approve-own", "reject", "void", "pay", "pay", "pay-fx"]),
                  st.booleans(), st.integers(0, 50)),
    ),
    min_size=4, max_size=14,
)


def expected(action: str, status: str, amount: int, available: int, number: int = 0) -> str:
    """What the model says an action on a disbursement in `status` must end in."""
    if action == "approve-own":
        return "four-eyes" if status == "requested" else _refusal(status, "approve")
    allowed, target = domain.TRANSITIONS[action.removesuffix("-fx")]
    if status not in allowed:
        return _refusal(status, action.removesuffix("-fx"))
    if action == "approve" and amount > available:
        return "grant-funds-short"
    delta = fx_delta(amount, number) if action == "pay-fx" else 0
    if abs(delta) * 100 > amount * domain.FX_DIFFERENCE_MAX_PERCENT:  # more than a rate's drift, either way: a new
        return "fx-release-too-large" if delta < 0 else "fx-extra-too-large"  # decision, not the payer's alone
    if action == "pay-fx" and fx_delta(amount, number) > available:
        return "grant-funds-short"
    return target.value


def fx_delta(amount: int, number: int) -> int:
    """What a payment in another currency is worth beyond (or short of) the approved `amount`, in cents: from
    −25 to +25, never leaving less than one cent."""
    return max(number - 25, 1 - amount)


def in_zloty(amount: int, number: int) -> PaymentCreate:
    """A payment in PLN at 4 PLN per EUR worth `amount` + fx_delta cents, settling the difference as it must."""
    delta = fx_delta(amount, number)
    return PaymentCreate(method="bank_transfer", reference="PLN-1", difference=(
        "release" if delta < 0 else "approve" if delta > 0 else None), paid={
        "currency": "PLN", "amount": money.format_amount((amount + delta) * 4, "PLN"), "fx_rate": "4",
        "fx_source": "NBP"})


def _refusal(status: str, action: str) -> str:
    return "already-paid" if status == "paid" else "invalid-transition"


# One database serves every example (each uses its own grant), hence the function-scoped fixture is fine. No
# shrinking: each example runs dozens of transactions, so shrinking a failure could take minutes; the report shows
# the whole failing sequence instead.
@settings(max_examples=60, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(budget=budgets, steps=steps)
def test_the_ledger_balances_after_every_step(books, budget, steps):
    grant = books.grant(amount=money.format_amount(budget, "EUR"))
    case_id = books.case()
    model: dict[str, list] = {}   # disbursement id → [status, amount]
    order: list[str] = []
    for action, aimed, number in steps:
        available = budget - sum(a for s, a in model.values() if s in ("approved", "paid"))
        if action == "request":
            disbursement = books.request(case_id, grant, amount=money.format_amount(number, "EUR"))
            model[disbursement] = ["requested", number]
            order.append(disbursement)
        elif order:
            allowed = domain.TRANSITIONS[action.removesuffix("-own").removesuffix("-fx")][0]
            # aimed: at an approved one when the action allows it, since that is where money moves
            candidates = [] if not aimed else (
                [d for d in order if model[d][0] == "approved" and "approved" in allowed]
                or [d for d in order if model[d][0] in allowed])
            disbursement = (candidates or order)[number % len(candidates or order)]
            status, amount = model[disbursement]
            actor = "caseworker-olga" if action == "approve-own" else "finance-boris"
            if action == "pay-fx":
                outcome = books.act("pay", disbursement, actor=actor, payment=in_zloty(amount, number))
            else:
                outcome = books.act(action.removesuffix("-own"), disbursement, actor=actor)
            assert outcome == expected(action, status, amount, available, number), (action, status, amount, available)
            if outcome in ("approved", "rejected", "voided", "paid"):
                model[disbursement][0] = outcome
            if outcome == "paid" and action == "pay-fx":  # the grant paid what the payment was worth
                model[disbursement][1] = amount + fx_delta(amount, number)
        with db.transaction(books.runtime.session_factory) as session:
            held = ledger.balances(session, grant.id)
        assert domain.ledger_breaks(budget=budget, balances=held) == []
        assert held["committed"] == sum(a for s, a in model.values() if s == "approved")
        assert held["paid"] == sum(a for s, a in model.values() if s == "paid")
    assert all(not result.breaks for result in books.check())
