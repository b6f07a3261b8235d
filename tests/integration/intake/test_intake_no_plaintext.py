"""SPEC §7.1: no row, log line or NATS message holds a person's name, contact or notes in clear.

A case with distinctive strings goes through the whole flow (open, read, search, change, needs, consent, timeline
fed by another service's event, close, audit), with events flowing through a real NATS server; then every file
the system wrote (the database and its WAL, the NATS store, the captured logs) is read as bytes, and so is every
database row and every stream message, and none of those strings may appear in any encoding we could have used.
Positive controls (the case id, which is not personal, must be found) prove that each scan sees the data.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import nats
import pytest
from sqlalchemy import select

from kit.events import Envelope
from services.intake.config import IntakeSettings
from services.intake.main import create_app
from services.intake.models import IntakeTable, kit_tables
from tests.integration.intake.conftest import eventually
from tests.support.apps import bearer, running
from tests.support.nats import patient_jetstream

pytestmark = pytest.mark.integration

NAME = "Zzyzxia Quillfeather"
NAME_CYRILLIC = "Ззызксія Квілфезер"
PHONE = "+370 699 12377"
SECRETS = [
    NAME, NAME_CYRILLIC, "Zzyzxia", "Quillfeather", "Ззызксія", "Квілфезер", PHONE, "69912377", "@quillfeather_z",
    "zzyzxia@quill.example", "Sleeps in the Quillfeather barn", "Quillfeather insomnia", "Zzyzxville", "Vorkuta-Zz",
    "Penal colony Zz-9", "Zz-duty-night: the Quill client phoned",
]


def _encodings(text: str) -> list[bytes]:
    forms = {text, text.lower(), text.upper()}
    return [form.encode(encoding) for form in forms for encoding in ("utf-8", "utf-16-le", "utf-16-be")]


def _leaks(blob: bytes) -> list[str]:
    return [secret for secret in SECRETS if any(encoded in blob for encoded in _encodings(secret))]


async def test_no_personal_data_in_any_file_row_or_message(tmp_path, secrets_dir, token_issuer, nats_url,
                                                           database_url_factory, capsys):
    settings = IntakeSettings(state_dir=tmp_path / "state", secrets_dir=secrets_dir, nats_url=nats_url,
                              database_url=database_url_factory("intake"), log_level="DEBUG")
    app = create_app(settings)  # here, so that its logs go to the captured stdout
    # The test's own HTTP client logs each URL it calls (a search's query string included): that is this test
    # talking, not the system, so it is kept out of the logs we inspect.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    caseworker = bearer(token_issuer, "caseworker", sub="cw-7")
    async with running(app) as client:
        runtime = app.state.runtime
        body = {
            "full_name": NAME, "other_names": [NAME_CYRILLIC], "date_of_birth": "1977-07-07",
            "contact": {"phone": PHONE, "telegram": "@quillfeather_z", "email": "zzyzxia@quill.example"},
            "country": "PL", "city": "Zzyzxville", "languages": ["be"], "release_date": "2024-02-02",
            "facility": "Penal colony Zz-9", "articles": ["342"], "safety_notes": "Sleeps in the Quillfeather barn",
        }
        created = await client.post("/api/intake/cases", json=body, headers=caseworker)
        assert created.status_code == 201
        case_id = created.json()["id"]
        path = f"/api/intake/cases/{case_id}"
        twin = await client.post("/api/intake/cases", json={**body, "full_name": NAME_CYRILLIC, "other_names": []},
                                 headers=caseworker)
        assert twin.json()["possible_duplicates"] == [{"id": case_id, "reference": created.json()["reference"],
                                                       "status": "open", "assignees": ["cw-7"],
                                                       "confidence": "high"}]
        refused = await client.post("/api/intake/cases", json={**body, "alias": NAME}, headers=caseworker)
        assert refused.status_code == 422 and not _leaks(refused.content)

        read = await client.get(path, headers=caseworker)
        # A caseworker it is not assigned to opens it, saying why: the reason is sealed, like the rest of the case.
        glass = await client.get(path, headers={**bearer(token_issuer, "caseworker", sub="cw-8"),
                                                "Access-Reason": "Zz-duty-night: the Quill client phoned"})
        assert glass.status_code == 200
        found = await client.post("/api/intake/cases/search", json={"q": "квілфезер zzyzxia"}, headers=caseworker)
        assert [item["id"] for item in found.json()["items"]] == [twin.json()["id"], case_id]
        assert not _leaks(found.content)  # lists carry no personal data
        changed = await client.patch(path, json={"city": "Vorkuta-Zz"}, headers={**caseworker, "If-Match": read.headers["etag"]})
        assert changed.status_code == 200
        need = await client.post(f"{path}/needs", json={"category": "medical", "urgency": "high",
                                                       "notes": "Quillfeather insomnia"}, headers=caseworker)
        assert need.status_code == 201
        assert (await client.get(f"{path}/needs", headers=caseworker)).json()["items"][0]["notes"] == "Quillfeather insomnia"
        consent = {"categories": ["medical"], "share_contact": True, "share_health": True, "method": "written"}
        assert (await client.put(f"{path}/consent", json=consent, headers=caseworker)).status_code == 200

        # Another service reports a referral for the case, through NATS, as the referrals service would.
        nc = await nats.connect(nats_url)
        js = patient_jetstream(nc)
        event = Envelope.new(source="/rehab/referrals", type="rehab.referrals.referral.sent", subject=str(uuid.uuid4()),
                             data={"referral_id": str(uuid.uuid4()), "case_id": case_id, "partner_id": str(uuid.uuid4()),
                                   "category": "medical", "status": "sent", "cost_estimate": None,
                                   "occurred_at": datetime.now(UTC).isoformat()})
        await eventually(lambda: _published(js, event))
        timeline = lambda: client.get(f"{path}/timeline", headers=caseworker)  # noqa: E731
        await eventually(lambda: _has_kind(timeline(), "referral.sent"))
        assert (await client.post(f"{path}/close", headers=caseworker)).status_code == 200
        audit = await client.get("/api/intake/audit", params={"target_id": case_id},
                                 headers=bearer(token_issuer, "auditor"))
        assert {"case.create", "case.read", "case.break_glass", "case.update", "needs.add", "needs.read", "consent.set",
                "case.close"} <= {
            entry["action"] for entry in audit.json()["items"]}
        assert not _leaks(audit.content)

        await eventually(lambda: _all_published(runtime))
        # opened (naming its creator) ×2, needs, consent, closed
        await eventually(lambda: _stream_count(js, "INTAKE", at_least=5))
        messages = await _stream_messages(js, "INTAKE")
        database_rows = _all_rows(runtime.engine)
        await nc.close()

    (tmp_path / "captured-stdout.log").write_text(capsys.readouterr().out)

    # Every message intake published, every row of its database: the case id yes, the person no.
    assert case_id.encode() in messages and not _leaks(messages)
    assert case_id.encode() in database_rows and not _leaks(database_rows)
    # Every file under the test's folder: SQLite database, -wal and -shm, the NATS store (when embedded),
    # secrets, and the logs the service printed.
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "captured-stdout.log" and case_id.encode() in p.read_bytes() for p in files)
    nats_store = [p for p in files if "jetstream" in p.parts]
    if nats_store:
        assert any(case_id.encode() in p.read_bytes() for p in nats_store)  # the store holds the events
    leaked = {str(p.relative_to(tmp_path)): _leaks(p.read_bytes()) for p in files}
    assert {name: found for name, found in leaked.items() if found} == {}


async def _published(js, event: Envelope) -> bool:  # noqa: ANN001
    try:
        await js.publish(event.type, event.to_bytes(), headers={"Nats-Msg-Id": event.id})
        return True
    except Exception:  # the stream appears once intake's consumer has asked for it
        return False


async def _has_kind(response, kind: str) -> bool:  # noqa: ANN001
    return kind in {item["kind"] for item in (await response).json()["items"]}


def _all_published(runtime) -> bool:  # noqa: ANN001
    with runtime.engine.connect() as conn:
        return conn.execute(select(kit_tables.outbox.c.seq).where(kit_tables.outbox.c.published_at.is_(None))).first() is None


async def _stream_count(js, stream: str, *, at_least: int) -> bool:  # noqa: ANN001
    return (await js.stream_info(stream)).state.messages >= at_least


async def _stream_messages(js, stream: str) -> bytes:  # noqa: ANN001
    info = await js.stream_info(stream)
    raw = b""
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        message = await js.get_msg(stream, seq)
        raw += message.data + repr(message.headers).encode() + b"\n"
    return raw


def _all_rows(engine) -> bytes:  # noqa: ANN001
    raw = b""
    with engine.connect() as conn:
        for table in IntakeTable.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    raw += value if isinstance(value, bytes) else str(value).encode()
                    raw += b"\x1f"
    return raw
