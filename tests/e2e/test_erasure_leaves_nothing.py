"""Erasure as a caseworker meets it (SPEC §4 `DELETE /cases/{id}`, §7.6; issue #17): `rehab up` as processes, only the
gateway's public paths, and then the disk itself.

A person's case is filled with everything a caseworker records — names in Cyrillic and Latin, a phone, a Telegram
handle, safety notes, a need, consent, a note, a task, a statement and a phone photo — and erased. Afterwards the API
gives none of it back, a search by any form of the name finds nothing, intake's database holds no row about the case
but its reference and who held it, and no file under the state folder (databases with their -wal and -shm, the NATS
store, the logs) holds a needle: not the words, not their ciphertexts, not the wrapped key, not a blind-index term.
The folder is searched twice: while the system runs (what a thief copying it live would take) and after SIGTERM.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import ExifTags, Image
from sqlalchemy import Connection, inspect, text

from kit.db import is_sqlite, make_engine
from tests.support.system import ADMIN_PASSWORD, STAFF_PASSWORD, Client, System, sign_in

pytestmark = pytest.mark.e2e

# One person, written the ways a caseworker meets them: each form is indexed, and each is searched for afterwards.
NAME = "Пранцішак Жыгімонцевіч"
NAME_FORMS = [NAME, "Prantsishak Zhyhimontsevich", "Франциск Жигимонцевич", "Pranciszak Żygimoncewicz"]
SURNAMES = ["Жыгімонцевіч", "Zhyhimontsevich", "Жигимонцевич", "Żygimoncewicz"]
PHONE = "+375 29 731-54-82"
TELEGRAM = "@zhyhimont_q7x"
SAFETY_NOTE = "Sleeps at the Kvitnevaya-Aptechka flat; never call after nine"
NEED_NOTE = "Dentures lost at Hlybokaye-Qorvid colony"
NOTE_TEXT = "Says the Vusnadzor-Plumtree officer still phones his mother"
TASK_TITLE = "Find the Trambalinka-Oxbow lawyer for the appeal"
STATEMENT_NAME = f"заява {SURNAMES[0]}.txt"
PHOTO_NAME = f"пашпарт-{SURNAMES[1]}.jpg"
CAMERA_NEEDLE = "Jaskolka-Quenfone"  # in the photo's EXIF: removed before storing, so never on the disk at all
# Why another caseworker opened the case (break-glass): sealed under the case's key, shown on its timeline.
REASON = "Замяняю Casey: Plaskavitsa-Wrenfold called about his hearing"
WORDS = [*NAME_FORMS, *SURNAMES, PHONE, TELEGRAM, SAFETY_NOTE, NEED_NOTE, NOTE_TEXT, TASK_TITLE, STATEMENT_NAME,
         PHOTO_NAME, CAMERA_NEEDLE, REASON]
KEPT_NAME = "Ядвіга Карчэўская"  # another person's case: still found, still whole

# Intake's tables that keep a row about an erased case: the case itself (reference, status) and who held it (staff,
# not the person). Every other table with a `case_id` must hold nothing of it.
KEPT_TABLES = {"cases", "case_assignees"}


def statement() -> bytes:
    """A statement of about 600 kB: several sealed pieces, each larger than a database page."""
    lines = [f"{i:05d} Я, {NAME} ({NAME_FORMS[1]}), тэл. {PHONE}, Telegram {TELEGRAM}. {SAFETY_NOTE}.\n"
             for i in range(5000)]
    return "".join(lines).encode()


def phone_photo() -> bytes:
    """A noisy JPEG (its compressed bytes do not repeat) with the camera and where it was taken in its EXIF."""
    noise = random.Random(17)
    image = Image.new("RGB", (400, 300))
    image.putdata([(noise.randrange(256), noise.randrange(256), noise.randrange(256)) for _ in range(400 * 300)])
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = CAMERA_NEEDLE
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (53.0, 54.0, 7.0),
                                  ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (27.0, 33.0, 41.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def test_erasure_leaves_nothing_of_the_person_in_the_api_the_database_or_the_state_folder(system: System) -> None:
    admin = sign_in(system.url, grant_type="password", username="admin", password=ADMIN_PASSWORD)
    for username in ("casey", "dana"):
        made = admin.post("/api/admin/users", json={"username": username, "password": STAFF_PASSWORD,
                                                    "roles": ["caseworker"]})
        assert made.status_code == 201, made.text
    casey = sign_in(system.url, grant_type="password", username="casey", password=STAFF_PASSWORD)
    dana = sign_in(system.url, grant_type="password", username="dana", password=STAFF_PASSWORD)

    kept = casey.post("/api/intake/cases", json={"full_name": KEPT_NAME})
    assert kept.status_code == 201, kept.text
    case = casey.post("/api/intake/cases", headers={"Idempotency-Key": "erasure-e2e-1"}, json={
        "full_name": NAME, "other_names": NAME_FORMS[1:], "date_of_birth": "1979-02-14", "country": "LT",
        "city": "Vilnius", "contact": {"phone": PHONE, "telegram": TELEGRAM}, "safety_notes": SAFETY_NOTE})
    assert case.status_code == 201, case.text
    case_id = case.json()["id"]
    cases = f"/api/intake/cases/{case_id}"

    need = casey.post(f"{cases}/needs", json={"category": "medical", "urgency": "high", "notes": NEED_NOTE})
    assert need.status_code == 201, need.text
    consent = casey.put(f"{cases}/consent", json={"categories": ["medical"], "share_contact": True,
                                                  "share_health": False, "method": "written", "expires_on": None})
    assert consent.status_code == 200, consent.text
    note = casey.post(f"{cases}/notes", json={"text": NOTE_TEXT})
    assert note.status_code == 201, note.text
    task = casey.post(f"{cases}/tasks", json={"title": TASK_TITLE, "due_on": datetime.now(UTC).date().isoformat()})
    assert task.status_code == 201, task.text
    documents = []
    for filename, data, declared in [(STATEMENT_NAME, statement(), "text/plain"),
                                     (PHOTO_NAME, phone_photo(), "image/jpeg")]:
        added = casey.post(f"{cases}/documents", files={"file": (filename, data, declared)}, data={"kind": "legal"},
                           timeout=60)
        assert added.status_code == 201, added.text
        documents.append(added.json()["id"])
    stored_photo = casey.get(f"/api/intake/documents/{documents[1]}/content")
    assert stored_photo.status_code == 200 and CAMERA_NEEDLE.encode() not in stored_photo.content
    opened = dana.get(cases, headers={"Access-Reason": REASON.encode()})  # the header's bytes, as UTF-8
    assert opened.status_code == 200, opened.text

    # The controls: every form of the name finds the case, and the lists show what was recorded.
    for query in [*NAME_FORMS, *SURNAMES]:
        assert case_id in found_by(casey, query), query
    assert [n["text"] for n in casey.get(f"{cases}/notes").json()["items"]] == [NOTE_TEXT]
    assert [t["title"] for t in casey.get(f"{cases}/tasks").json()["items"]] == [TASK_TITLE]
    assert len(casey.get(f"{cases}/documents").json()["items"]) == 2
    assert REASON in [e["details"].get("reason") for e in casey.get(f"{cases}/timeline").json()["items"]]
    # What the database holds of the person, to look for afterwards: every ciphertext, the wrapped key, the terms.
    sealed, terms = stored_traces(system, case_id)
    before = rows_about(system, case_id)
    assert before["document_chunks"] > 2  # the statement is in several pieces
    assert before["idempotency_keys"] == 1 and before["break_glass_openings"] == 1
    assert before["case_name_terms"] == len(terms) > 4 and len(sealed) > 10
    ciphertexts = ciphertext_windows(sealed)
    if is_sqlite(system.database_url("intake")):  # the search sees them where they are: every one is found now
        seen = files_holding(system.state, ciphertexts, pattern="intake.db*")
        assert {what.split(" at ")[0] for _, what in seen} == {f"ciphertext {n}" for n in range(len(sealed))}

    erased = casey.delete(cases)
    assert erased.status_code == 200, erased.text
    assert erased.json() == {"id": case_id, "reference": case.json()["reference"], "status": "erased"}

    # The API gives nothing back: the case is its reference and status, its lists are empty, its things are gone.
    assert casey.get(cases).json() == erased.json()
    for listed in ("needs", "notes", "tasks", "documents"):
        answer = casey.get(f"{cases}/{listed}")
        assert answer.status_code == 200 and answer.json()["items"] == [], (listed, answer.text)
    consent_now = casey.get(f"{cases}/consent").json()
    assert consent_now["current"] is None and consent_now["history"] == []
    timeline = str(casey.get(f"{cases}/timeline").json()["items"])
    assert not any(thing in timeline for thing in (note.json()["id"], task.json()["id"], *documents, REASON))
    for document_id in documents:
        download = casey.get(f"/api/intake/documents/{document_id}/content")
        assert download.status_code == 404, download.text
        assert download.headers["content-type"] == "application/problem+json"
    assert casey.post(f"/api/intake/tasks/{task.json()['id']}/done").status_code == 404
    assert casey.get("/api/intake/tasks").json()["items"] == []
    refused = casey.post(f"{cases}/notes", json={"text": "after the erasure"})
    assert refused.status_code == 409 and refused.json()["type"].endswith("/case-erased")

    # No form of the name finds anything any more; the other person is still found.
    for query in [*NAME_FORMS, *SURNAMES]:
        assert found_by(casey, query) == [], query
    assert found_by(casey, KEPT_NAME) == [kept.json()["id"]]

    # Intake's database: no row about the case but the case's own (no personal field left) and its assignees.
    left = rows_about(system, case_id)
    assert {table: count for table, count in left.items() if count and table not in KEPT_TABLES} == {}, left
    assert left["document_chunks"] == 0 and left["case_name_terms"] == 0 and left["idempotency_keys"] == 0
    assert personal_columns_left(system, case_id) == {}

    needles = {**words_and_photo(stored_photo.content), **ciphertexts}
    # A blind-index term is 8 hex digits: looked for where the index lives (intake's database, its -wal and -shm),
    # not among the thousands of ids and hashes of the other files, where one would turn up by chance.
    index_terms = {term.encode(): f"blind-index term {term}" for term in terms}
    if is_sqlite(system.database_url("intake")):
        assert (system.state / "intake.db").is_file()
    # While the system runs (a copy taken live holds the write-ahead logs as they are), and after SIGTERM. Beside the
    # state folder: the supervisor's own output.
    for moment in ("running", "stopped"):
        if moment == "stopped":
            assert system.stop() == 0
        assert files_holding(system.state.parent, needles) == [], moment
        assert files_holding(system.state, index_terms, pattern="intake.db*") == [], moment


# ---- helpers ----------------------------------------------------------------------------------------------------

def found_by(caseworker: Client, query: str) -> list[str]:
    answer = caseworker.post("/api/intake/cases/search", json={"q": query})
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


@contextmanager
def intake_database(system: System) -> Iterator[tuple[Connection, list[str]]]:
    """A read-only connection to intake's database (on SQLite a snapshot that never takes the write lock), and the
    names of its tables that have a `case_id` column."""
    engine = make_engine(system.database_url("intake"), pool_size=1)
    try:
        with engine.connect().execution_options(read_only=True) as conn:
            schema = inspect(conn)
            yield conn, [name for name in schema.get_table_names()
                         if "case_id" in {column["name"] for column in schema.get_columns(name)}]
    finally:
        engine.dispose()


def rows_about(system: System, case_id: str) -> dict[str, int]:
    """How many rows of each of intake's tables are about the case (by `case_id`, or `subject_id` for the stored
    Idempotency-Key answers), read straight from the database."""
    with intake_database(system) as (conn, tables):
        counts = {table: conn.execute(text(f'SELECT count(*) FROM "{table}" WHERE case_id = :id'),
                                      {"id": case_id}).scalar_one() for table in tables}
        counts["cases"] = conn.execute(text("SELECT count(*) FROM cases WHERE id = :id"), {"id": case_id}).scalar_one()
        counts["idempotency_keys"] = conn.execute(text("SELECT count(*) FROM idempotency_keys WHERE subject_id = :id"),
                                                  {"id": case_id}).scalar_one()
    return counts


def stored_traces(system: System, case_id: str) -> tuple[list[bytes], list[str]]:
    """Every non-empty binary value stored in a row about the case (its sealed fields, pieces, wrapped key, stored
    answer), and its blind-index terms."""
    sealed: list[bytes] = []
    with intake_database(system) as (conn, tables):
        for table, column in [*((t, "case_id") for t in tables), ("cases", "id"), ("idempotency_keys", "subject_id")]:
            for row in conn.execute(text(f'SELECT * FROM "{table}" WHERE {column} = :id'), {"id": case_id}):
                sealed += [bytes(value) for value in row if isinstance(value, bytes | memoryview) and value]
        terms = list(conn.execute(text("SELECT term FROM case_name_terms WHERE case_id = :id"),
                                  {"id": case_id}).scalars())
    return sealed, terms


def personal_columns_left(system: System, case_id: str) -> dict[str, object]:
    """The erased case's columns that still hold something besides its id, reference, status and dates."""
    with intake_database(system) as (conn, _tables):
        row = conn.execute(text("SELECT * FROM cases WHERE id = :id"), {"id": case_id}).mappings().one()
    kept = {"id", "reference", "status", "opened_at", "updated_at", "closed_at", "erased_at", "version"}
    return {column: value for column, value in row.items() if column not in kept and value is not None}


def words_and_photo(photo: bytes) -> dict[bytes, str]:
    """The words, each with what it is (as UTF-8, lower case too, and the names in UTF-16-LE), and windows of the
    stored photo's bytes (in clear on a disk, they would be a spooled upload or a cache)."""
    needles = {}
    for word in WORDS:
        needles[word.encode()] = word
        needles[word.lower().encode()] = word
    for name in [*NAME_FORMS, *SURNAMES]:
        needles[name.encode("utf-16-le")] = f"{name} (UTF-16-LE)"
    for start in range(len(photo) // 4, len(photo), len(photo) // 4):
        needles[photo[start:start + 48]] = f"the photo's bytes at {start}"
    return needles


def ciphertext_windows(sealed: list[bytes]) -> dict[bytes, str]:
    """32 bytes from the start, the middle and the end of each ciphertext: a piece of one surviving in a free page
    counts, and a value longer than a page is stored in pieces, so one window may straddle two of them."""
    windows = {}
    for number, blob in enumerate(sealed):
        for start in sorted({0, max(0, len(blob) // 2 - 16), max(0, len(blob) - 32)}):
            windows[blob[start:start + 32]] = f"ciphertext {number} at {start}"
    return windows


def files_holding(folder: Path, needles: dict[bytes, str], *, pattern: str = "*") -> list[tuple[str, str]]:
    """(file, what) for every needle found in a file under `folder` (of those matching `pattern`)."""
    found = []
    for path in sorted(folder.rglob(pattern)):
        if path.is_file():
            data = path.read_bytes()
            found += [(str(path.relative_to(folder)), what) for needle, what in needles.items() if needle in data]
    return found
