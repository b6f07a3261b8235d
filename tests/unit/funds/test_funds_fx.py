"""Paying in another currency than the grant's: the rate as written, the exact conversion rounded half to even into the
grant's minor unit (yen without one, Bahraini dinar with three), and how a payment worth less or more than the approval
settles it, always leaving budget = available + committed + paid."""

import pytest

from kit.errors import Conflict, Refused
from services.funds import domain
from services.funds.domain import Account, Move
from services.funds.money import MoneyError, check_rate, convert, parse_amount


@pytest.mark.parametrize(("paid", "paid_currency", "rate", "into", "worth"), [
    ("1290.00", "PLN", "4.3000", "EUR", 30000),    # exactly the approved 300.00 EUR
    ("1289.99", "PLN", "4.3000", "EUR", 30000),    # 299.99767… → 300.00
    ("1000.00", "GEL", "2.9", "EUR", 34483),       # 344.827… → 344.83
    ("300.00", "EUR", "0.0062", "JPY", 48387),     # a yen grant paid in euros: 48387.09… yen → 48387, no minor unit
    ("333.33", "EUR", "0.0062", "JPY", 53763),     # 53762.90… → 53763
    ("100.00", "EUR", "2.4", "BHD", 41667),        # a dinar grant: 41.6666… → 41.667, three minor digits
    ("1.00", "EUR", "3", "BHD", 333),              # 0.3333… → 0.333
    ("150000", "JPY", "161.25", "EUR", 93023),     # yen paid, euros converted: 930.232… → 930.23
    ("1.000", "BHD", "0.4", "EUR", 250),           # 2.50 EUR
])
def test_a_payment_converts_exactly_into_the_grants_minor_units(paid, paid_currency, rate, into, worth):
    assert convert(parse_amount(paid, paid_currency), paid_currency, rate, into) == worth


@pytest.mark.parametrize(("paid_minor", "rate", "worth"), [
    (125, "100", 1),   # 0.0125 EUR = 1.25 cents → 1 (to even), not 2
    (135, "100", 1),   # 1.35 cents → 1 (not a tie)
    (150, "100", 2),   # 1.5 cents → 2 (to even)
    (250, "100", 2),   # 2.5 cents → 2 (to even), not 3
    (350, "100", 4),   # 3.5 cents → 4 (to even)
])
def test_ties_round_half_to_even(paid_minor, rate, worth):
    assert convert(paid_minor, "PLN", rate, "EUR") == worth


def test_a_yen_tie_rounds_to_an_even_yen_and_a_dinar_tie_to_an_even_fils():
    assert convert(parse_amount("0.05", "EUR"), "EUR", "0.1", "JPY") == 0        # 0.5 yen → 0
    assert convert(parse_amount("0.15", "EUR"), "EUR", "0.1", "JPY") == 2        # 1.5 yen → 2
    assert convert(parse_amount("0.05", "EUR"), "EUR", "100", "BHD") == 0        # 0.0005 BHD → 0.000
    assert convert(parse_amount("0.15", "EUR"), "EUR", "100", "BHD") == 2        # 0.0015 BHD → 0.002


@pytest.mark.parametrize("rate", ["4.3000", "0.3761", "161.25", "1", "0.0000000001", "1234567890"])
def test_a_rate_is_kept_exactly_as_written(rate):
    assert check_rate(rate) == rate


@pytest.mark.parametrize(("rate", "says"), [
    ("0", "greater than zero"), ("0.0000", "greater than zero"), ("-4.3", "positive decimal"),
    ("4,3", "positive decimal"), ("4.", "positive decimal"), (".5", "positive decimal"), ("1e3", "positive decimal"),
    ("04.3", "positive decimal"), ("12345678901", "significant digits"), ("4.30000000001", "significant digits"),
])
def test_a_rate_that_is_not_one_is_refused(rate, says):
    with pytest.raises(MoneyError, match=says):
        check_rate(rate)


def _settle(approved: int, converted: int, decision=None, *, payer="finance-boris", requester="caseworker-olga",
            available=10_000) -> domain.Settlement:
    return domain.settle_payment(approved_minor=approved, converted_minor=converted, currency="EUR", decision=decision,
                                 payer=payer, requester=requester, available_minor=available)


def test_worth_exactly_the_approval_posts_it_and_needs_no_decision():
    assert _settle(30000, 30000) == domain.Settlement(posted=30000)
    assert _settle(30000, 30000, "release").decision is None  # nothing to decide: the word changes nothing


def test_worth_less_is_refused_until_the_rest_is_released():
    with pytest.raises(Conflict) as refused:
        _settle(30000, 29750)
    assert refused.value.code == "fx-difference"
    assert refused.value.extra == {"currency": "EUR", "approved_amount": "300.00", "converted_amount": "297.50",
                                   "difference": "2.50", "decision_needed": "release"}
    assert "297.50 EUR" in refused.value.detail and "2.50 EUR less" in refused.value.detail
    with pytest.raises(Conflict):
        _settle(30000, 29750, "approve")  # the wrong decision is no decision
    settled = _settle(30000, 29750, "release")
    assert (settled.posted, settled.released, settled.extra, settled.difference) == (29750, 250, 0, -250)


def test_worth_more_needs_the_extra_approved_by_someone_else_from_money_available():
    with pytest.raises(Conflict) as refused:
        _settle(30000, 30310, "release")
    assert refused.value.extra["decision_needed"] == "approve" and refused.value.extra["difference"] == "3.10"
    with pytest.raises(Refused) as own:
        _settle(30000, 30310, "approve", payer="finance-anna", requester="finance-anna")
    assert own.value.code == "four-eyes"
    with pytest.raises(Conflict) as short:
        _settle(30000, 30310, "approve", available=309)
    assert short.value.code == "grant-funds-short"
    settled = _settle(30000, 30310, "approve", available=310)
    assert (settled.posted, settled.released, settled.extra, settled.difference) == (30000, 0, 310, 310)


def test_a_payer_alone_approves_at_most_a_tenth_more_than_was_approved():
    """10.00 approved, paid as 5,000.00 at a rate the payer typed: one person would have decided 4,990.00 that nobody
    asked for. A tenth more (a rate that moved) is the payer's to approve; beyond it, aid is asked for again."""
    assert _settle(1000, 1100, "approve").extra == 100
    with pytest.raises(Conflict) as refused:
        _settle(1000, 1101, "approve")
    assert refused.value.code == "fx-extra-too-large" and refused.value.extra["most"] == "1.00"
    with pytest.raises(Conflict) as abused:
        _settle(1000, 500000, "approve", available=10**9)
    assert abused.value.code == "fx-extra-too-large" and "requested and approved again" in abused.value.detail


def test_a_payer_alone_gives_back_at_most_a_tenth_of_what_was_approved():
    """An outside review's find: 100.00 approved, 1,290 PLN left the bank, recorded at a rate twice the real one as
    worth 50.00, the other 50.00 given back to the grant by the payer alone, to be approved and spent again. A tenth
    less (a rate that moved) is the payer's to release; beyond it, refused whatever the decision, before one is
    asked for: the aid is voided and asked for again for what is paid."""
    assert _settle(10000, 9000, "release").released == 1000
    for decision in (None, "release", "approve"):
        with pytest.raises(Conflict) as refused:
            _settle(10000, 8999, decision)
        assert refused.value.code == "fx-release-too-large"
        assert refused.value.extra == {"currency": "EUR", "approved_amount": "100.00", "converted_amount": "89.99",
                                       "difference": "10.01", "most": "10.00"}
        assert "give back at most 10%" in refused.value.detail and "void this aid" in refused.value.detail
    with pytest.raises(Conflict) as halved:
        _settle(10000, 5000)
    assert halved.value.code == "fx-release-too-large"


@pytest.mark.parametrize(("approved", "converted", "decision"), [
    (30000, 30000, None), (30000, 27000, "release"), (30000, 29999, "release"), (30000, 30001, "approve"),
    (30000, 33000, "approve"),
])
def test_every_settlement_keeps_the_ledger_equation(approved, converted, decision):
    """Budget 1000.00, 300.00 approved (committed), then paid: committed empties, paid grows by what it was worth."""
    debits = {a: 0 for a in Account}
    credits = {a: 0 for a in Account}

    def move(kind: Move, amount: int) -> None:
        debit, credit = domain.MOVES[kind]
        debits[debit] += amount
        credits[credit] += amount

    move(Move.FUND, 100000)
    move(Move.RESERVE, approved)
    settled = _settle(approved, converted, decision, available=100000 - approved)
    move(Move.POST, settled.posted)
    if settled.released:
        move(Move.FX_RELEASE, settled.released)
    if settled.extra:
        move(Move.FX_EXTRA, settled.extra)
    balances = {a.value: domain.balance(a, debits=debits[a], credits=credits[a]) for a in Account}
    assert domain.ledger_breaks(budget=100000, balances=balances) == []
    assert (balances["committed"], balances["paid"]) == (0, converted)
    assert settled.posted + settled.released == approved and settled.posted + settled.extra == converted
