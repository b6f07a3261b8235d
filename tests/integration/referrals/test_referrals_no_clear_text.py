"""What a referral holds about a person never appears in clear: not in any file the service or NATS writes (the
database, its write-ahead log, the stream store, the logs), not in any database row, not in any event. And a
destroyed packet key is gone from the database files too, not only from its row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from services.referrals.models import Referral
from tests.conftest import EXTERNAL_PG
from tests.integration.referrals.desk import open_desk, people

pytestmark = pytest.mark.integration

PERSON = people()[4]
SECRETS = {
    "name": f"{PERSON['belarusian']} Q7xNameMarker",
    "note": "Q7xNoteMarker: lives with her sister near the station",
    "phone": "+375 29 Q7xPhoneMarker",
    "health": "Q7xHealthMarker: untreated fracture from detention",
    "reason": "Q7xReasonMarker: the patient asked for a female doctor",
    "outcome": "Q7xOutcomeMarker: fracture set, follow-up in May",
}


def forms(value: str) -> list[bytes]:
    """The ways a value could be written down: UTF-8, and JSON with \\u escapes."""
    return [value.encode(), json.dumps(value).encode()[1:-1]]


NEEDLES = [needle for value in SECRETS.values() for needle in forms(value)] + [PERSON["belarusian"].encode()]


def files_holding(root: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            found += [f"{path.relative_to(root)}: {needle[:20]!r}" for needle in needles if needle in content]
    return found


def rows_holding(desk, needles: list[bytes]) -> list[str]:
    """Every value of every row of every table of the service's database, whatever the database is."""
    found = []
    metadata = MetaData()
    metadata.reflect(desk.runtime.engine)
    with desk.runtime.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    found += [f"{table.name}: {needle[:20]!r}" for needle in needles if needle in raw]
    return found


async def test_the_packet_never_appears_in_clear_anywhere(tmp_path, referrals_settings, token_issuer):
    referrals_settings.log_level = "DEBUG"
    log_file = tmp_path / "referrals.log"
    with log_file.open("w") as log_to:
        async with open_desk(referrals_settings, token_issuer, log_to=log_to) as desk:
            partner = await desk.add_partner("medical")
            case = await desk.open_case(categories=["medical"])
            packet = {"display_name": SECRETS["name"], "language": "be", "note": SECRETS["note"],
                      "contact": SECRETS["phone"], "health_summary": SECRETS["health"]}
            completed = await desk.sent_referral(case, partner, packet=packet)
            declined = await desk.sent_referral(case, partner, packet=packet)
            refused = await desk.refer(case, partner, packet={**packet, "nickname": SECRETS["name"]})
            assert refused.status_code == 422 and SECRETS["name"] not in refused.text  # not echoed back

            # Everyone who may read it does, so every path that decrypts runs.
            staff_view = await desk.client.get(f"/api/referrals/referrals/{completed}", headers=desk.caseworker())
            assert staff_view.json()["packet"]["note"] == SECRETS["note"]
            listed = await desk.client.get("/api/partner/referrals", headers=desk.partner(partner))
            assert SECRETS["health"] in listed.text
            for step, body in (("accept", None), ("start", None), ("complete", {"outcome": SECRETS["outcome"]})):
                assert (await desk.partner_step(partner, completed, step, body)).status_code == 200
            assert (await desk.partner_step(partner, declined, "decline", {"reason": SECRETS["reason"]})).status_code == 200
            read_back = await desk.client.get(f"/api/referrals/referrals/{completed}", headers=desk.caseworker())
            assert read_back.json()["outcome"] == SECRETS["outcome"]

            events = await desk.published()
            assert len(events) == 6  # sent ×2, accepted, started, completed, declined
            assert not [e.id for e in events for needle in NEEDLES if needle in e.to_bytes()]
            assert not rows_holding(desk, NEEDLES)
            assert not files_holding(tmp_path, NEEDLES)  # the live database, its -wal, the NATS store, the log

            # Erasure: the keys go, and with them every trace in the database files.
            with desk.session() as session:
                keys = [k for r in session.exec(select(Referral)).scalars() for k in (r.packet_key, r.reply_key) if k]
            assert len(keys) == 4
            await desk.erase_case(case)
            await desk.acknowledged()
            assert not rows_holding(desk, keys)
            if not EXTERNAL_PG:  # on PostgreSQL old row versions last until VACUUM: the KEK is the wall there
                assert not files_holding(tmp_path, keys), "a destroyed key is still in the database files"
    assert not files_holding(tmp_path, NEEDLES)  # after shutdown: the database checkpointed, the log complete
    assert log_file.stat().st_size > 0 and b"referral packet destroyed" in log_file.read_bytes()

    control = tmp_path / "control.bin"  # the search does find what is there
    control.write_bytes(b"..." + NEEDLES[0] + b"...")
    found = files_holding(tmp_path, NEEDLES)
    assert found and all(hit.startswith("control.bin: ") for hit in found)
