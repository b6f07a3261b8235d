"""What finance sees of a disbursement before asking for its payee: the case's reference, the purpose, and the payee
masked (the kind of account and its last four characters); the payee itself is a read of its own, audited as
`payee.read`, while a masked read is audited as `disbursement.read`."""

from __future__ import annotations

import pytest

from services.funds import domain

pytestmark = pytest.mark.integration


async def test_a_masked_read_shows_the_accounts_kind_and_ending_and_the_full_read_is_audited_as_a_payee_read(
        desk, names):
    grant = await desk.create_grant()
    case_id = desk.open_case()
    payee = {"name": names[0], "account": "LT60 1010 0123 4567 8901"}
    created = await desk.requested(case_id, grant, payee=payee, purpose="rent for March")

    masked = await desk.client.get(f"/api/funds/disbursements/{created['id']}", params={"payee": "masked"},
                                   headers=desk.finance)
    full = await desk.client.get(f"/api/funds/disbursements/{created['id']}", headers=desk.finance)

    assert masked.status_code == 200, masked.text
    shown = masked.json()
    assert shown["payee"] is None and shown["payee_masked"] == {"kind": "iban", "ending": "8901"}
    assert shown["purpose"] == "rent for March" and shown["case_reference"].startswith("BY-2026-")
    assert names[0] not in masked.text and "LT60" not in masked.text
    assert full.json()["payee"] == payee and full.json()["payee_masked"] == shown["payee_masked"]
    assert desk.audit_actions(created["id"]) == ["disbursement.request", "disbursement.read", "payee.read"]


async def test_a_caseworker_sees_no_payee_masked_or_not_and_a_request_without_a_payee_has_none(desk, names):
    grant = await desk.create_grant()
    case_id = desk.open_case()
    with_payee = await desk.requested(case_id, grant, payee={"name": names[1], "account": "4111 1111 1111 1234"})
    without = await desk.requested(case_id, grant)

    for_caseworker = await desk.client.get(f"/api/funds/disbursements/{with_payee['id']}",
                                           params={"payee": "masked"}, headers=desk.caseworker)
    none_to_mask = await desk.client.get(f"/api/funds/disbursements/{without['id']}", params={"payee": "masked"},
                                         headers=desk.finance)
    card = await desk.client.get(f"/api/funds/disbursements/{with_payee['id']}", params={"payee": "masked"},
                                 headers=desk.finance)
    odd = await desk.client.get(f"/api/funds/disbursements/{with_payee['id']}", params={"payee": "everything"},
                                headers=desk.finance)

    assert for_caseworker.json()["payee"] is None and for_caseworker.json()["payee_masked"] is None
    assert none_to_mask.json()["payee"] is None and none_to_mask.json()["payee_masked"] is None
    assert card.json()["payee_masked"] == {"kind": "card", "ending": "1234"}
    assert odd.status_code == 422


async def test_lists_and_answers_to_changes_carry_the_case_reference(desk):
    grant = await desk.create_grant()
    case_id = desk.open_case()
    created = await desk.requested(case_id, grant)
    approved = await desk.act(created["id"], "approve")
    listed = await desk.client.get("/api/funds/disbursements", params={"status": "approved"}, headers=desk.finance)

    reference = created["case_reference"]
    assert reference and reference.startswith("BY-2026-")
    assert approved.json()["case_reference"] == reference
    assert [(d["id"], d["case_reference"]) for d in listed.json()["items"]] == [(created["id"], reference)]


@pytest.mark.parametrize(("account", "masked"), [
    ("LT60 1010 0123 4567 8901", ("iban", "8901")),
    ("de89-3704-0044-0532-0130-00", ("iban", "3000")),
    ("4111111111111234", ("card", "1234")),
    ("+375 29 743 19 58", ("phone", "1958")),
    ("ACC 778 221 003", ("account", "1003")),
    ("LT01", ("account", "")),  # too short to show any of it
    ("1234567", ("account", "")),
])
def test_an_account_is_masked_to_its_kind_and_last_four_characters(account, masked):
    assert domain.masked_account(account) == masked
