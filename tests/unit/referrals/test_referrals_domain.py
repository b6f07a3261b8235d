"""The rules of referrals as tables: the lifecycle, consent, money, overdue. No I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kit.projection import later_state
from services.funds import money as funds_money
from services.referrals import domain
from services.referrals.domain import Action, CaseStatus, CaseView, PacketContents, Status
from services.referrals.models import CompleteBody, Packet, PartnerUpdate, ReferralCreate

TODAY = date(2026, 11, 23)

# ---- the lifecycle: every (state, action) pair ---------------------------------------------------------------

LEGAL = {
    (Status.SENT, Action.ACCEPT): Status.ACCEPTED,
    (Status.SENT, Action.DECLINE): Status.DECLINED,
    (Status.SENT, Action.CANCEL): Status.CANCELLED,
    (Status.ACCEPTED, Action.START): Status.IN_PROGRESS,
    (Status.ACCEPTED, Action.CANCEL): Status.CANCELLED,
    (Status.IN_PROGRESS, Action.COMPLETE): Status.COMPLETED,
    (Status.IN_PROGRESS, Action.CANCEL): Status.CANCELLED,
}
ALL_PAIRS = [(state, action) for state in Status for action in Action]


def test_the_table_covers_every_state_and_action():
    assert len(ALL_PAIRS) == 30 and set(LEGAL) < set(ALL_PAIRS)


@pytest.mark.parametrize(("state", "action"), ALL_PAIRS, ids=[f"{s}-{a}" for s, a in ALL_PAIRS])
def test_every_state_and_action(state: Status, action: Action):
    if (state, action) in LEGAL:
        assert domain.next_status(state, action) == LEGAL[(state, action)]
    else:
        with pytest.raises(domain.IllegalTransition):
            domain.next_status(state, action)


def test_finished_referrals_are_final_and_every_state_has_its_event():
    for final in (Status.DECLINED, Status.COMPLETED, Status.CANCELLED):
        assert not any((final, action) in domain.TRANSITIONS for action in Action)
    assert {domain.EVENT_OF[s] for s in Status} == {"sent", "accepted", "declined", "started", "completed", "cancelled"}


# ---- consent -------------------------------------------------------------------------------------------------

GIVEN = CaseView(status=CaseStatus.OPEN, consent_recorded=True, categories=frozenset({"medical", "legal"}),
                 share_contact=True, share_health=True, expires_on=TODAY + timedelta(days=30))
BARE = PacketContents(has_contact=False, has_health=False)
WITH_CONTACT = PacketContents(has_contact=True, has_health=False)
WITH_HEALTH = PacketContents(has_contact=False, has_health=True)

SEND_RULES = [
    # (case, category, packet, refusal kind or None)
    (GIVEN, "medical", PacketContents(True, True), None),
    (None, "medical", BARE, "case-unknown"),
    (CaseView(status=CaseStatus.CLOSED, consent_recorded=True, categories=frozenset({"medical"})), "medical", BARE, "case-closed"),
    (CaseView(status=CaseStatus.ERASED), "medical", BARE, "case-erased"),
    (CaseView(status=CaseStatus.OPEN), "medical", BARE, "consent-missing"),
    (CaseView(status=CaseStatus.OPEN, consent_recorded=True, categories=frozenset()), "medical", BARE, "consent-missing"),
    (CaseView(status=CaseStatus.OPEN, consent_recorded=True, categories=frozenset({"medical"}),
              expires_on=TODAY - timedelta(days=1)), "medical", BARE, "consent-expired"),
    (CaseView(status=CaseStatus.OPEN, consent_recorded=True, categories=frozenset({"medical"}), expires_on=TODAY),
     "medical", BARE, None),  # valid through its last day
    (GIVEN, "housing", BARE, "consent-category"),
    (CaseView(status=CaseStatus.OPEN, consent_recorded=True, categories=frozenset({"medical"}), share_health=True),
     "medical", WITH_CONTACT, "consent-contact"),
    (CaseView(status=CaseStatus.OPEN, consent_recorded=True, categories=frozenset({"medical"}), share_contact=True),
     "medical", WITH_HEALTH, "consent-health"),
    (CaseView(status=CaseStatus.OPEN, consent_recorded=True, categories=frozenset({"medical"})), "medical", BARE, None),
]


@pytest.mark.parametrize(("case", "category", "packet", "kind"), SEND_RULES)
def test_consent_rules_for_sending(case, category, packet, kind):
    refusal = domain.refusal_to_send(case, category, packet, TODAY)
    assert (refusal.kind if refusal else None) == kind
    if refusal:
        assert refusal.detail and "{" not in refusal.detail


WITHDRAWAL_RULES = [
    # what happened to the case → why the packet must go (None: it stays)
    (GIVEN, WITH_CONTACT, None),
    (CaseView(status=CaseStatus.CLOSED, consent_recorded=True, categories=frozenset({"medical"}), share_contact=True),
     WITH_CONTACT, None),  # closing a case withdraws nothing
    (CaseView(status=CaseStatus.ERASED), BARE, "case-erased"),
    (CaseView(status=CaseStatus.OPEN, consent_recorded=True, categories=frozenset()), BARE, "consent-missing"),
    (CaseView(status=CaseStatus.OPEN, consent_recorded=True, categories=frozenset({"legal"})), BARE, "consent-category"),
    (CaseView(status=CaseStatus.OPEN, consent_recorded=True, categories=frozenset({"medical"}), share_health=True),
     WITH_CONTACT, "consent-contact"),
    (CaseView(status=CaseStatus.OPEN, consent_recorded=True, categories=frozenset({"medical"}), share_contact=True),
     WITH_HEALTH, "consent-health"),
    (CaseView(status=CaseStatus.OPEN, consent_recorded=True, categories=frozenset({"medical"}),
              expires_on=TODAY - timedelta(days=1)), BARE, "consent-expired"),
]


@pytest.mark.parametrize(("case", "packet", "reason"), WITHDRAWAL_RULES)
def test_when_a_stored_packet_must_be_destroyed(case, packet, reason):
    assert domain.packet_withdrawal(case, "medical", packet, TODAY) == reason


@pytest.mark.parametrize(("current", "incoming", "result"), [
    (None, "closed", "closed"), ("open", "closed", "closed"), ("closed", "open", "closed"),
    ("erased", "open", "erased"), ("erased", "closed", "erased"), ("closed", "erased", "erased"),
])
def test_a_case_never_moves_back_whatever_order_events_come_in(current, incoming, result):
    assert later_state(domain.CASE_ORDER, current, incoming) == result


# ---- the packet ----------------------------------------------------------------------------------------------


def test_a_packet_says_what_it_holds_and_blank_parts_hold_nothing():
    packet = Packet(display_name="  Сяргей Марозаў ", note="  ", contact=" ", health_summary="")
    assert packet.display_name == "Сяргей Марозаў"
    assert packet.contents() == PacketContents(has_contact=False, has_health=False)
    full = Packet(display_name="Siarhei Marozau", contact="Telegram @s", health_summary="asthma")
    assert full.contents() == PacketContents(has_contact=True, has_health=True)


@pytest.mark.parametrize("body", [
    {"display_name": ""},
    {"display_name": "   "},
    {"display_name": "A", "unexpected": 1},
    {"display_name": "A", "contact": {"phone": "1"}},
    {"display_name": "A", "contact": "x" * 501},
])
def test_a_packet_needs_a_name_and_refuses_unknown_fields(body):
    with pytest.raises(ValidationError):
        Packet.model_validate(body)


def test_a_referral_names_its_case_and_partner_by_uuid():
    ok = ReferralCreate.model_validate({"case_id": "6F1C2D0E-8B2A-4C55-9E7B-0A1B2C3D4E5F",
                                        "partner_id": "6f1c2d0e-8b2a-4c55-9e7b-0a1b2c3d4e60",
                                        "need_category": "medical", "packet": {"display_name": "A"}})
    assert ok.case_id == "6f1c2d0e-8b2a-4c55-9e7b-0a1b2c3d4e5f"
    with pytest.raises(ValidationError):
        ReferralCreate.model_validate({"case_id": "42", "partner_id": ok.partner_id, "need_category": "medical",
                                       "packet": {"display_name": "A"}})


def test_a_partner_update_cannot_empty_a_required_field_or_change_the_category():
    assert PartnerUpdate.model_validate({"capacity_note": None}).capacity_note is None
    for body in ({"name": None}, {"active": None}, {"category": "legal"}):
        with pytest.raises(ValidationError):
            PartnerUpdate.model_validate(body)


# ---- money ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("120.00", "EUR", 12000), ("0.05", "USD", 5), ("5000", "JPY", 5000),
    ("1.250", "KWD", 1250), ("99999.99", "PLN", 9999999), ("999999999999.99", "EUR", 99999999999999),
])
def test_money_in_minor_units(amount, currency, minor):
    assert domain.parse_money(amount, currency) == minor
    assert domain.format_money(minor, currency) == amount


@pytest.mark.parametrize(("amount", "currency"), [
    ("120", "EUR"), ("120.0", "EUR"), ("120.000", "EUR"), ("-1.00", "EUR"), ("1e3", "EUR"), (" 1.00", "EUR"),
    ("01.00", "EUR"), ("5000.00", "JPY"), ("1.25", "KWD"), ("1.00", "eur"), ("1.00", "EURO"), ("1.00", ""),
    ("10000000000000.00", "EUR"),
])
def test_money_that_is_not_a_decimal_string_with_the_currency_digits_is_refused(amount, currency):
    with pytest.raises(domain.InvalidMoney):
        domain.parse_money(amount, currency)


# A completed referral's cost estimate is paid by funds: one funds cannot take as money would be shown to staff here
# and skipped there, so referrals refuses it up front, each time saying which rule it breaks.
@pytest.mark.parametrize(("amount", "currency", "says"), [
    ("120.00\n", "EUR", "exactly 2 digits after the point"), ("120.00", "EUR\n", "one funds pays in"),
    ("120.00", "ABC", "one funds pays in"), ("120.00", "XAF", "one funds pays in"),
    ("120.00", "JPY", "a whole number"), ("120.00", "KWD", "exactly 3 digits"), ("١٢٠.٠٠", "EUR", "exactly 2"),
    ("0.00", "EUR", "greater than zero"), ("0", "JPY", "greater than zero"),
    ("-5.00", "PLN", "greater than zero"), ("-5", "JPY", "greater than zero"),  # the sign, not the digits (a review)
    ("1000000000000.00", "EUR", "at most 12 digits before the decimal point"),
])
def test_money_funds_could_not_pay_is_refused_in_words(amount, currency, says):
    with pytest.raises(domain.InvalidMoney, match=says):
        domain.parse_money(amount, currency)


@settings(max_examples=400, deadline=None)
@given(amount=st.one_of(st.from_regex(r"[0-9]{1,14}(\.[0-9]{0,4})?\n?", fullmatch=True), st.text(max_size=16)),
       currency=st.one_of(st.sampled_from(sorted(funds_money.MINOR_DIGITS)), st.sampled_from(["XAF", "ABC", "eur"]),
                          st.text(max_size=4)))
@example(amount="120.00\n", currency="EUR")
@example(amount="120.00", currency="EUR\n")
@example(amount="120.00", currency="ABC")
@example(amount="120.00", currency="JPY")
def test_referrals_take_exactly_the_cost_estimates_funds_can_pay(amount, currency):
    """Funds parses the estimate of a `referral.completed` event with its own money rules and skips what they refuse:
    what referrals takes, funds takes as the same minor units, and what funds would skip referrals refuses."""
    try:
        paid = funds_money.parse_amount(amount, currency)
    except funds_money.MoneyError:
        with pytest.raises(domain.InvalidMoney):
            domain.parse_money(amount, currency)
    else:
        assert domain.parse_money(amount, currency) == paid
        assert domain.format_money(paid, currency) == amount


def test_an_estimate_stored_before_in_a_currency_funds_does_not_hold_is_still_shown_as_it_was_taken():
    assert (domain.format_money(5000, "KRW"), domain.format_money(1250, "OMR"), domain.format_money(12000, "ABC")) == (
        "5000", "1.250", "120.00")


def test_a_cost_estimate_funds_could_not_pay_is_refused_in_the_body():
    for cost in ({"amount": "120.00", "currency": "EUR\n"}, {"amount": "120.00", "currency": "ABC"},
                 {"amount": "120.00\n", "currency": "EUR"}, {"amount": "120.00", "currency": "JPY"}):
        with pytest.raises(ValidationError) as refused:
            CompleteBody.model_validate({"outcome": "done", "cost_estimate": cost})
        assert refused.value.errors()[0]["loc"] == ("cost_estimate",), cost


def test_a_cost_estimate_as_a_json_number_is_refused():
    with pytest.raises(ValidationError):
        CompleteBody.model_validate_json('{"outcome": "done", "cost_estimate": {"amount": 120.00, "currency": "EUR"}}')
    with pytest.raises(ValidationError):
        CompleteBody.model_validate_json('{"outcome": "done", "cost_estimate": {"amount": "120", "currency": "EUR"}}')
    body = CompleteBody.model_validate_json('{"outcome": "done", "cost_estimate": {"amount": "120.00", "currency": "EUR"}}')
    assert body.cost_estimate is not None and body.cost_estimate.minor_units() == 12000


# ---- overdue -------------------------------------------------------------------------------------------------


def test_only_a_sent_referral_left_longer_than_the_threshold_is_overdue():
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    after = timedelta(hours=72)
    assert domain.is_overdue(Status.SENT, now - timedelta(hours=73), now, after)
    assert not domain.is_overdue(Status.SENT, now - timedelta(hours=71), now, after)
    assert not domain.is_overdue(Status.ACCEPTED, now - timedelta(hours=500), now, after)


# ---- settings ------------------------------------------------------------------------------------------------


def test_settings_come_from_the_referrals_variables(monkeypatch):
    from services.referrals.config import ReferralsSettings

    defaults = ReferralsSettings()
    assert (defaults.port, defaults.overdue_after_hours) == (8102, 72)
    assert defaults.db_url.endswith("/referrals.db")
    monkeypatch.setenv("REHAB_REFERRALS_PORT", "9102")
    monkeypatch.setenv("REHAB_REFERRALS_DATABASE_URL", "postgresql+psycopg://db/referrals")
    monkeypatch.setenv("REHAB_REFERRALS_OVERDUE_AFTER_HOURS", "24")
    configured = ReferralsSettings()
    assert (configured.port, configured.db_url, configured.overdue_after_hours) == (
        9102, "postgresql+psycopg://db/referrals", 24)
