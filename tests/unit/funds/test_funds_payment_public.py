"""How a payment's reference is shown: a sealed one as opened under the case's key (null once the case was erased),
one kept by a payment made after its case's erasure not at all, and one stored in clear before references were sealed
as it was."""

from datetime import UTC, datetime

from services.funds.models import Disbursement, Payment, PaymentPublic

NAMED = "KAVALEU.ANASTASIA"


def disbursement() -> Disbursement:
    return Disbursement(id="d-1", case_id="c-1", grant_id="g-1", category="medical", amount_minor=10000,
                        currency="EUR", status="paid", requested_by="caseworker-olga",
                        requested_at=datetime.now(UTC))


def payment(**fields: object) -> Payment:
    return Payment(id="p-1", disbursement_id="d-1", transfer_id="t-1", method="bank_transfer", paid_by="finance-anna",
                   paid_at=datetime.now(UTC), **fields)


def test_a_sealed_reference_is_shown_as_opened_and_null_when_it_cannot_be():
    sealed = payment(reference="", reference_sealed=b"sealed")
    assert PaymentPublic.of(sealed, disbursement(), {"reference": NAMED}).reference == NAMED
    assert PaymentPublic.of(sealed, disbursement(), {}).reference is None  # the case was erased
    assert PaymentPublic.of(sealed, disbursement()).reference is None


def test_a_payment_made_after_its_case_was_erased_shows_no_reference():
    assert PaymentPublic.of(payment(reference=""), disbursement()).reference is None


def test_a_reference_kept_in_clear_before_is_shown_as_before():
    assert PaymentPublic.of(payment(reference="TX-2026-001"), disbursement()).reference == "TX-2026-001"
