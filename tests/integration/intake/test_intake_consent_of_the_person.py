"""A person takes back what they agreed to whenever they ask, and they are one person whatever number of cases they
were opened under (an outside review's find: a withdrawal on the case kept left the partner reading the packet of a
referral made from its duplicate, and a closed case refused the withdrawal outright).

- A closed case, or one marked a duplicate, takes a narrower consent or a withdrawal; never a wider one (409).
- A consent narrowed on the case kept narrows the consent of every case marked a duplicate of it, to what both
  allow, whoever holds that duplicate: in force, in its history, on its timeline naming the case kept, on the bus for
  referrals, in its audit trail under the caseworker who recorded it. A wider consent on the case kept widens nothing.
- Erasing the case kept erases its duplicates with it."""

from __future__ import annotations

import pytest

from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.integration

CASES = "/api/intake/cases"
FULL = {"categories": ["legal", "medical"], "share_contact": True, "share_health": True, "method": "written",
        "expires_on": None}
WITHDRAWN = {"categories": [], "share_contact": False, "share_health": False, "method": "verbal", "expires_on": None}


def _ala(intake: Intake) -> dict[str, str]:
    return intake.as_("caseworker", sub="caseworker-1", username="ala")


def _bo(intake: Intake) -> dict[str, str]:
    return intake.as_("caseworker", sub="caseworker-2", username="bo")


async def _case(intake: Intake, headers: dict[str, str], full_name: str, consent: dict | None = None) -> str:
    made = await intake.client.post(CASES, json={"full_name": full_name, "date_of_birth": "1988-11-20"},
                                    headers=headers)
    assert made.status_code == 201, made.text
    if consent is not None:
        recorded = await intake.client.put(f"{CASES}/{made.json()['id']}/consent", json=consent, headers=headers)
        assert recorded.status_code == 200, recorded.text
    return made.json()["id"]


async def _consent(intake: Intake, case_id: str, headers: dict[str, str]) -> dict:
    answer = await intake.client.get(f"{CASES}/{case_id}/consent", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _consent_events(intake: Intake, case_id: str) -> list[dict]:
    return [data for data in intake.events("rehab.intake.consent.changed") if data["case_id"] == case_id]


def _problem(answer, status: int, kind: str) -> None:  # noqa: ANN001
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith(f"/{kind}") and answer.json()["detail"], answer.json()


async def test_a_closed_case_takes_a_withdrawal_or_a_narrower_consent_never_a_wider_one(intake: Intake):
    case = await _case(intake, _ala(intake), "Ганна Закрытая", {**FULL, "categories": ["medical"]})
    assert (await intake.client.post(f"{CASES}/{case}/close", headers=_ala(intake))).status_code == 200
    url = f"{CASES}/{case}/consent"

    _problem(await intake.client.put(url, json=FULL, headers=_ala(intake)), 409, "case-closed")  # legal added
    narrower = {**FULL, "categories": ["medical"], "share_health": False, "expires_on": "2099-01-01"}
    assert (await intake.client.put(url, json=narrower, headers=_ala(intake))).status_code == 200
    _problem(await intake.client.put(url, json={**narrower, "expires_on": None}, headers=_ala(intake)), 409,
             "case-closed")  # until withdrawn is longer than until 2099
    _problem(await intake.client.put(url, json={**narrower, "share_health": True}, headers=_ala(intake)), 409,
             "case-closed")
    assert (await intake.client.put(url, json=WITHDRAWN, headers=_ala(intake))).status_code == 200

    now = await _consent(intake, case, _ala(intake))
    assert now["current"]["categories"] == [] and len(now["history"]) == 3
    assert [e["categories"] for e in _consent_events(intake, case)] == [["medical"], ["medical"], []]
    # Nothing else on a closed case changed its mind: it still refuses any other change.
    _problem(await intake.client.post(f"{CASES}/{case}/notes", json={"text": "Called her"}, headers=_ala(intake)),
             409, "case-closed")


async def test_a_narrower_consent_on_the_case_kept_narrows_its_duplicates_whoever_holds_them(intake: Intake):
    kept = await _case(intake, _ala(intake), "Насця Лойка", FULL)
    twin = await _case(intake, _bo(intake), "Анастасия Лойко", FULL)  # bo's: ala cannot open it
    untouched = await _case(intake, _bo(intake), "Nastia Loika", {**FULL, "categories": ["legal"],
                                                                  "share_health": False})
    assert (await intake.client.post(f"{CASES}/{twin}/duplicate-of", json={"case_id": kept},
                                     headers=_bo(intake))).status_code == 200
    assert (await intake.client.post(f"{CASES}/{untouched}/duplicate-of", json={"case_id": kept},
                                     headers=_bo(intake))).status_code == 200
    assert (await intake.client.get(f"{CASES}/{twin}/consent", headers=_ala(intake))).status_code == 403

    # No more health summaries, and only medical help: the twin's consent narrows to what both allow; the other
    # duplicate (legal only, no health) to a withdrawal, as nothing it allowed is still allowed.
    narrowed = {**FULL, "categories": ["medical"], "share_health": False, "method": "verbal"}
    assert (await intake.client.put(f"{CASES}/{kept}/consent", json=narrowed,
                                    headers=_ala(intake))).status_code == 200
    twin_now = (await _consent(intake, twin, _bo(intake)))["current"]
    assert (twin_now["categories"], twin_now["share_contact"], twin_now["share_health"], twin_now["recorded_by"]) == (
        ["medical"], True, False, "caseworker-1")
    assert (await _consent(intake, untouched, _bo(intake)))["current"]["categories"] == []
    assert [e["categories"] for e in _consent_events(intake, twin)] == [["legal", "medical"], ["medical"]]

    timeline = (await intake.client.get(f"{CASES}/{twin}/timeline", headers=_bo(intake))).json()["items"]
    told = [e["details"] for e in timeline if e["kind"] == "consent.changed"][-1]
    kept_reference = (await intake.client.get(f"{CASES}/{kept}", headers=_ala(intake))).json()["reference"]
    assert (told["by"], told["kept_case_id"], told["kept_reference"]) == ("ala", kept, kept_reference)
    audit = (await intake.client.get("/api/intake/audit", params={"target_id": twin},
                                     headers=intake.auditor)).json()["items"]
    assert ("caseworker-1", "consent.set") in [(e["actor"], e["action"]) for e in audit]

    # A wider consent on the case kept widens nothing elsewhere: what was taken back stays taken back.
    assert (await intake.client.put(f"{CASES}/{kept}/consent", json=FULL, headers=_ala(intake))).status_code == 200
    assert (await _consent(intake, twin, _bo(intake)))["current"]["categories"] == ["medical"]
    assert len(_consent_events(intake, twin)) == 2

    # A withdrawal on the case kept is a withdrawal on each duplicate.
    assert (await intake.client.put(f"{CASES}/{kept}/consent", json=WITHDRAWN,
                                    headers=_ala(intake))).status_code == 200
    assert (await _consent(intake, twin, _bo(intake)))["current"]["categories"] == []
    assert [e["categories"] for e in _consent_events(intake, twin)][-1] == []

    # The duplicate's own caseworker may withdraw there too (a duplicate takes no wider consent).
    _problem(await intake.client.put(f"{CASES}/{twin}/consent", json=FULL, headers=_bo(intake)), 409,
             "case-duplicate")
    assert (await intake.client.put(f"{CASES}/{twin}/consent", json=WITHDRAWN,
                                    headers=_bo(intake))).status_code == 200


async def test_erasing_the_case_kept_erases_its_duplicates(intake: Intake):
    kept = await _case(intake, _ala(intake), "Сцяпан Сцёрты", FULL)
    twin = await _case(intake, _bo(intake), "Степан Стёртый", FULL)
    other = await _case(intake, _bo(intake), "Сцяпан Іншы", FULL)  # not marked: stays
    assert (await intake.client.post(f"{CASES}/{twin}/duplicate-of", json={"case_id": kept},
                                     headers=_bo(intake))).status_code == 200

    erased = await intake.client.delete(f"{CASES}/{kept}", headers=_ala(intake))
    assert erased.status_code == 200, erased.text
    twin_now = await intake.client.get(f"{CASES}/{twin}", headers=_bo(intake))
    assert twin_now.json()["status"] == "erased" and twin_now.json().get("full_name") is None, twin_now.text
    assert (await intake.client.get(f"{CASES}/{other}", headers=_bo(intake))).json()["status"] == "open"

    for subject in ("rehab.intake.case.erased", "rehab.erasures.case"):  # the erasure ledger's too
        assert sorted(data["case_id"] for data in intake.events(subject)) == sorted([kept, twin]), subject
    audit = (await intake.client.get("/api/intake/audit", params={"target_id": twin},
                                     headers=intake.auditor)).json()["items"]
    assert ("caseworker-1", "case.erase") in [(e["actor"], e["action"]) for e in audit]
