"""The rules of money without I/O: the state machine, four-eyes, what an approval needs, the ledger's equation,
and which donor-report cells stay hidden."""

from datetime import date

import pytest

from kit.errors import DomainError, Refused
from kit.need_to_know import Access
from kit.problems import as_problem
from services.funds import domain
from services.funds.domain import Status
from kit.spreadsheet import spreadsheet_safe

GRANT = domain.GrantTerms(code="G-1", currency="EUR", starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31),
                          categories=("medical", "housing"))
OK = {"grant": GRANT, "category": "medical", "amount_minor": 100_00, "currency": "EUR", "available_minor": 100_00,
      "case_status": "open", "today": date(2026, 6, 1)}


@pytest.mark.parametrize(("current", "action", "target"), [
    ("requested", "approve", "approved"),
    ("requested", "reject", "rejected"),
    ("requested", "void", "voided"),
    ("approved", "pay", "paid"),
    ("approved", "reject", "rejected"),
    ("approved", "void", "voided"),
])
def test_allowed_transitions(current, action, target):
    assert domain.next_status(current, action) == target


@pytest.mark.parametrize(("current", "action", "kind"), [
    ("requested", "pay", "invalid-transition"),      # never paid without approval
    ("approved", "approve", "invalid-transition"),
    ("paid", "pay", "already-paid"),
    ("paid", "void", "already-paid"),               # void only before paid
    ("paid", "reject", "already-paid"),
    ("rejected", "approve", "invalid-transition"),
    ("voided", "pay", "invalid-transition"),
])
def test_refused_transitions_are_409_saying_why(current, action, kind):
    with pytest.raises(DomainError) as refused:
        domain.next_status(current, action)
    assert as_problem(refused.value).status == 409
    assert refused.value.code == kind


def test_only_an_approved_amount_is_released():
    assert domain.releases_commitment("approved", "void")
    assert domain.releases_commitment("approved", "reject")
    assert not domain.releases_commitment("requested", "void")
    assert not domain.releases_commitment("approved", "pay")


def test_four_eyes():
    domain.check_four_eyes(requester="anna", approver="boris")
    with pytest.raises(DomainError) as refused:
        domain.check_four_eyes(requester="anna", approver="anna")
    assert (as_problem(refused.value).status, refused.value.code) == (403, "four-eyes")


def test_an_approval_meeting_every_rule_passes():
    domain.check_approval(**OK)
    domain.check_approval(**{**OK, "today": date(2026, 1, 1)})   # the period includes both ends
    domain.check_approval(**{**OK, "today": date(2026, 12, 31)})


@pytest.mark.parametrize(("change", "kind"), [
    ({"available_minor": 99_99}, "grant-funds-short"),
    ({"today": date(2025, 12, 31)}, "grant-period"),
    ({"today": date(2027, 1, 1)}, "grant-period"),
    ({"category": "legal"}, "grant-category"),
    ({"currency": "USD"}, "currency-mismatch"),
    ({"case_status": "closed"}, "case-closed"),
    ({"case_status": "erased"}, "case-erased"),
    ({"case_status": None}, "case-unknown"),
])
def test_each_approval_rule_is_refused_by_name(change, kind):
    with pytest.raises(DomainError) as refused:
        domain.check_approval(**{**OK, **change})
    assert (as_problem(refused.value).status, refused.value.code) == (409, kind)


def test_funds_short_says_how_much_is_available():
    with pytest.raises(DomainError) as refused:
        domain.check_approval(**{**OK, "available_minor": 42_50})
    assert "42.50 EUR available" in refused.value.detail and "100.00 EUR" in refused.value.detail


def test_the_ledger_equation_and_its_breaks():
    good = {"funding": 1000, "available": 600, "committed": 300, "paid": 100}
    assert domain.ledger_breaks(budget=1000, balances=good) == []
    assert domain.ledger_breaks(budget=1000, balances={**good, "paid": 200})  # money from nowhere
    negative = domain.ledger_breaks(budget=1000, balances={**good, "available": -100, "committed": 1000})
    assert any("available is negative" in b for b in negative)
    assert domain.ledger_breaks(budget=1000, balances={**good, "funding": 900})


def test_every_move_keeps_the_sum_of_balances():
    """Double entry: a transfer debits one account and credits another, so the balances always sum as before."""
    for debit, credit in domain.MOVES.values():
        balances = {a: 0 for a in domain.Account}
        debits = {a: 0 for a in domain.Account}
        credits = {a: 0 for a in domain.Account}
        debits[debit] += 7
        credits[credit] += 7
        signed = {a: domain.balance(a, debits=debits[a], credits=credits[a]) for a in balances}
        # the funding account is debit-normal: its balance counts with the opposite sign
        assert sum(v if a not in domain.DEBIT_NORMAL else -v for a, v in signed.items()) == 0


def people(*ids):
    return frozenset(ids)


def test_cells_below_five_people_are_hidden_and_so_is_one_more_when_alone():
    cells = {("2026-01", "medical"): people(*"abcdef"), ("2026-01", "housing"): people(*"ghijk"),
             ("2026-02", "legal"): people("x", "y")}
    hidden = domain.cells_to_suppress(cells)
    # the 2-person cell, and the smallest visible one: otherwise total - visible would reveal it
    assert hidden == {("2026-02", "legal"), ("2026-01", "housing")}


def test_hidden_cells_holding_five_people_together_need_no_extra_hiding():
    cells = {("2026-01", "medical"): people(*"abcdef"), ("2026-02", "legal"): people("a", "b", "c"),
             ("2026-03", "legal"): people("d", "e")}
    assert domain.cells_to_suppress(cells) == {("2026-02", "legal"), ("2026-03", "legal")}


def test_the_same_person_in_two_small_cells_counts_once():
    cells = {("2026-01", "medical"): people(*"abcdef"), ("2026-02", "legal"): people("a", "b"),
             ("2026-03", "legal"): people("a", "b", "c")}
    # together they hold 3 distinct people, not 5: a visible cell is hidden too
    assert domain.cells_to_suppress(cells) == set(cells)


def test_no_small_cells_hides_nothing():
    assert domain.cells_to_suppress({("2026-01", "medical"): people(*"abcde")}) == set()
    assert domain.cells_to_suppress({}) == set()


@pytest.mark.parametrize(("value", "written"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1 555", "'+1 555"), ("-A1", "'-A1"),
    ("@SUM(A1)", "'@SUM(A1)"), (" =1+1", "' =1+1"), ("\n\t=1+1", "'\n\t=1+1"),
    ("Fund for Freedom", "Fund for Freedom"), ("300.00", "300.00"), ("-2.50", "-2.50"), ("-1", "-1"), (None, ""),
    (3, 3),
])
def test_report_cells_cannot_become_spreadsheet_formulas(value, written):
    assert spreadsheet_safe(value) == written


def test_statuses_are_the_contract():
    assert {s.value for s in Status} == {"requested", "approved", "rejected", "voided", "paid"}


@pytest.mark.parametrize(("roles", "assignees", "reason", "access"), [
    ({"finance"}, set(), None, None),                                   # finance works every disbursement
    ({"caseworker", "finance"}, {"cw-2"}, None, None),
    ({"caseworker"}, {"cw-1"}, None, Access.ASSIGNED),                  # the rest is kit.need_to_know's
    ({"caseworker"}, {"cw-2"}, "Ana is away", Access.BREAK_GLASS),
])
def test_finance_works_every_disbursement_and_caseworkers_their_own_cases(roles, assignees, reason, access):
    assert domain.case_access(user="cw-1", roles=frozenset(roles), assignees=frozenset(assignees),
                              reason=reason) is access


def test_a_caseworker_is_held_to_need_to_know():
    with pytest.raises(Refused) as refused:
        domain.case_access(user="cw-1", roles=frozenset({"caseworker"}), assignees=frozenset({"cw-2"}), reason=None)
    assert (as_problem(refused.value).status, as_problem(refused.value).kind) == (403, "need-to-know")


def test_no_one_assigned_to_the_case_approves_or_pays_its_aid():
    """SPEC §2: a caseworker may not approve or pay aid, even one who also holds the finance role."""
    domain.check_not_on_the_case(actor="finance-boris", assignees={"caseworker-olga"}, doing="approved")
    with pytest.raises(Refused) as refused:
        domain.check_not_on_the_case(actor="vera", assignees={"caseworker-olga", "vera"}, doing="paid")
    assert refused.value.code == "own-case" and "its aid is paid by another member" in refused.value.detail
