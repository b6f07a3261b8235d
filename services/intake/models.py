"""Intake's tables and the shapes its API reads and writes.

Tables hold personal data only as ciphertexts sealed with the case's own data key (see `protection.py`); the API
shapes hold plaintext and never meet the database directly. Its own registry keeps these tables apart from other
services' tables in one Python process.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field as PydanticField, StringConstraints, ValidationInfo, field_validator
from pydantic import model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import JSON, Column, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kit.crypto import WrappedKeyColumns
from kit.problems import StrictModel, pattern_in_words
from kit.tables import KitTables
from kit.text import Said
from services.intake.domain import (
    CATEGORIES, RELEASE_BEFORE_BIRTH, RELEASE_BEFORE_BIRTH_SAID, CaseStatus, Category, NeedStatus, Urgency,
)

ConsentMethod = Literal["verbal", "written"]


class IntakeTable(SQLModel, registry=registry()):
    pass


kit_tables = KitTables(IntakeTable.metadata)


def _sealed(column: str) -> Any:
    return Field(default=None, sa_column=Column(column, LargeBinary, nullable=True))


def _case_fk() -> Any:
    return Field(sa_column=Column("case_id", String(36), ForeignKey("cases.id"), nullable=False, index=True))


# ---- tables -----------------------------------------------------------------------------------------------------

class Case(IntakeTable, table=True):
    """A person's case. Only reference, status, country and dates are in clear; everything else is sealed."""

    __tablename__ = "cases"
    # The case list's order (newest first, the id breaking ties) and its cursor, with or without a status: one
    # range of one index each, read no further than the page.
    __table_args__ = (Index("ix_cases_opened_at_id", "opened_at", "id"),
                      Index("ix_cases_status_opened_at_id", "status", "opened_at", "id"))

    id: str = Field(primary_key=True, max_length=36)
    reference: str = Field(unique=True, max_length=20)
    status: str = Field(max_length=16)
    country: str | None = Field(default=None, max_length=2)
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    erased_at: datetime | None = None
    # The case kept when this one was marked a duplicate of it (status `duplicate`).
    duplicate_of: str | None = Field(default=None, sa_column=Column("duplicate_of", String(36), nullable=True))
    version: int = 1  # domain.FIRST_VERSION, bumped by every change of the case itself; the ETag is derived from it
    full_name_sealed: bytes | None = _sealed("full_name_sealed")
    other_names_sealed: bytes | None = _sealed("other_names_sealed")
    date_of_birth_sealed: bytes | None = _sealed("date_of_birth_sealed")
    contact_sealed: bytes | None = _sealed("contact_sealed")
    city_sealed: bytes | None = _sealed("city_sealed")
    languages_sealed: bytes | None = _sealed("languages_sealed")
    release_date_sealed: bytes | None = _sealed("release_date_sealed")
    facility_sealed: bytes | None = _sealed("facility_sealed")
    articles_sealed: bytes | None = _sealed("articles_sealed")
    safety_notes_sealed: bytes | None = _sealed("safety_notes_sealed")


class CaseKey(IntakeTable, table=True):
    """The case's data key, wrapped by a key-encryption key kept outside the database. Deleting it erases the case."""

    __tablename__ = "case_keys"

    case_id: str = Field(sa_column=Column("case_id", String(36), ForeignKey("cases.id"), primary_key=True))
    kid: str = Field(max_length=32, index=True)
    wrapped: bytes = Field(sa_column=Column("wrapped", LargeBinary, nullable=False))
    created_at: datetime
    rewrapped_at: datetime | None = None


# Every wrapped data key intake stores, in one place: `rehab keys rotate` re-wraps these, `keys status` and
# `keys retire` count them (kit.crypto.rewrap_table, count_by_kek).
WRAPPED_KEYS = [WrappedKeyColumns(CaseKey.__table__, "kid", "wrapped", stamped_column="rewrapped_at")]


class CaseNameTerm(IntakeTable, table=True):
    """Blind-index terms of a case's names: keyed HMACs, for duplicates and search without decrypting.

    `opened_at` is the case's own (it never changes), copied here so that the index `(kind, term, opened_at,
    case_id)` gives a term's cases newest first, in the order and with the cursor of the case list: a search reads
    one page of index entries, however many people share a name."""

    __tablename__ = "case_name_terms"
    __table_args__ = (Index("ix_case_name_terms_search", "kind", "term", "opened_at", "case_id"),)

    case_id: str = Field(sa_column=Column("case_id", String(36), ForeignKey("cases.id"), primary_key=True))
    kind: str = Field(primary_key=True, max_length=16)
    term: str = Field(primary_key=True, max_length=64)
    opened_at: datetime


class NameIndexPending(IntakeTable, table=True):
    """A part of the name index that cases opened before it existed do not have yet (`rehab names reindex` builds
    it and deletes the row); searches do not rely on that part meanwhile."""

    __tablename__ = "name_index_pending"

    part: str = Field(primary_key=True, max_length=32)
    since: datetime


class ReferenceCounter(IntakeTable, table=True):
    """The last reference number given out in a year; incremented in the transaction that opens a case."""

    __tablename__ = "reference_counters"

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last_number: int


class Need(IntakeTable, table=True):
    __tablename__ = "needs"

    id: str = Field(primary_key=True, max_length=36)
    case_id: str = _case_fk()
    category: str = Field(max_length=20)
    urgency: str = Field(max_length=10)
    notes_sealed: bytes | None = _sealed("notes_sealed")
    created_at: datetime
    created_by: str = Field(max_length=200)
    status: str = Field(default="open", max_length=16, sa_column_kwargs={"server_default": "open"})
    status_changed_at: datetime | None = None
    status_changed_by: str | None = Field(default=None, max_length=100)  # a staff handle


class Consent(IntakeTable, table=True):
    """The consent in force for a case (one row per case); every version is also kept in `consent_history`."""

    __tablename__ = "consents"

    case_id: str = Field(sa_column=Column("case_id", String(36), ForeignKey("cases.id"), primary_key=True))
    categories: list[str] = Field(sa_column=Column("categories", JSON, nullable=False))
    share_contact: bool
    share_health: bool
    method: str = Field(max_length=10)
    expires_on: date | None = None
    recorded_at: datetime
    recorded_by: str = Field(max_length=200)


class ConsentRecord(IntakeTable, table=True):
    __tablename__ = "consent_history"

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = _case_fk()
    categories: list[str] = Field(sa_column=Column("categories", JSON, nullable=False))
    share_contact: bool
    share_health: bool
    method: str = Field(max_length=10)
    expires_on: date | None = None
    recorded_at: datetime
    recorded_by: str = Field(max_length=200)


class TimelineEntry(IntakeTable, table=True):
    """One step of a case's story: intake's own changes and what the other services reported. Ids and categories only."""

    __tablename__ = "timeline_entries"
    __table_args__ = (Index("ix_timeline_entries_case_at", "case_id", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(sa_column=Column("case_id", String(36), ForeignKey("cases.id"), nullable=False))
    at: datetime
    kind: str = Field(max_length=40)
    source: str = Field(max_length=20)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column("details", JSON, nullable=False))


class CaseAssignee(IntakeTable, table=True):
    """A caseworker a case is assigned to (SPEC §4, need-to-know): by user id (the token's subject), with the handle
    they had when assigned (the staff directory's newer one is shown when known). `position` keeps the order given,
    the creator first. `opened_at` is the case's own, copied so that `(user_id, opened_at, case_id)` gives a
    caseworker's cases newest first, one index range per page, like the case list."""

    __tablename__ = "case_assignees"
    __table_args__ = (Index("ix_case_assignees_user_opened", "user_id", "opened_at", "case_id"),)

    case_id: str = Field(sa_column=Column("case_id", String(36), ForeignKey("cases.id"), primary_key=True))
    user_id: str = Field(primary_key=True, max_length=200)
    username: str = Field(max_length=100)
    position: int
    opened_at: datetime
    assigned_at: datetime


class StaffMember(IntakeTable, table=True):
    """The staff directory: who may be assigned a case, kept from the gateway's `rehab.gateway.user.*` events.

    Events may arrive late or out of order: `profile_at` is when the handle and roles held (every event carries
    them), `enabled_at` when `enabled` did (only creation, disabling and enabling say it); a row takes an event's
    values only where the event is newer."""

    __tablename__ = "staff"

    user_id: str = Field(primary_key=True, max_length=200)
    username: str = Field(max_length=100, index=True)
    roles: list[str] = Field(sa_column=Column("roles", JSON, nullable=False))
    partner_id: str | None = Field(default=None, max_length=36)
    enabled: bool
    profile_at: datetime
    enabled_at: datetime


class BreakGlassOpening(IntakeTable, table=True):
    """A caseworker opened a case not assigned to them, saying why (`Access-Reason`): the reason is sealed under the
    case's data key, like everything else of the case; the case's timeline points here and shows it decrypted."""

    __tablename__ = "break_glass_openings"

    id: str = Field(primary_key=True, max_length=36)
    case_id: str = _case_fk()
    user_id: str = Field(max_length=200)
    username: str = Field(max_length=100)
    at: datetime
    reason_sealed: bytes | None = _sealed("reason_sealed")


DocumentKind = Literal["identity", "medical", "legal", "release", "other"]


class Document(IntakeTable, table=True):
    """A document of a case (`documents`): its kind, type and size in clear; its file name and SHA-256 sealed under
    the case's data key (a hash in clear would let whoever holds a copy of the file prove it is here). Its bytes are
    in `document_chunks`."""

    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_case_created", "case_id", "created_at", "id"),)

    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(sa_column=Column("case_id", String(36), ForeignKey("cases.id"), nullable=False))
    kind: str = Field(max_length=16)
    content_type: str = Field(max_length=40)
    size: int
    chunks: int
    created_at: datetime
    created_by: str = Field(max_length=200)
    filename_sealed: bytes | None = _sealed("filename_sealed")
    sha256_sealed: bytes | None = _sealed("sha256_sealed")
    # Removed as added in error (`documents.remove_document`): its pieces, name and hash are gone; who, when and why
    # (one of `REMOVAL_REASONS`, never typed words) stay, so that the case's colleagues see something was removed.
    removed_at: datetime | None = None
    removed_by: str | None = Field(default=None, max_length=100)  # a staff handle
    removal_reason: str | None = Field(default=None, max_length=16)


class DocumentChunk(IntakeTable, table=True):
    """One piece (`documents.CHUNK_BYTES` at most) of a document's bytes, sealed under the case's data key with the
    document and the piece's number (`seq`) in its associated data: pieces cannot be swapped or moved to another document.
    `case_id` is copied here so that erasure deletes a case's pieces in one statement."""

    __tablename__ = "document_chunks"

    document_id: str = Field(sa_column=Column("document_id", String(36), ForeignKey("documents.id"),
                                              primary_key=True))
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    case_id: str = _case_fk()
    data_sealed: bytes = Field(sa_column=Column("data_sealed", LargeBinary, nullable=False))


class Note(IntakeTable, table=True):
    """A caseworker's note on a case: who wrote it and when in clear, the text sealed under the case's data key.
    `(case_id, at, id)` pages a case's notes newest first."""

    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_case_at", "case_id", "at", "id"),)

    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(sa_column=Column("case_id", String(36), ForeignKey("cases.id"), nullable=False))
    author_id: str = Field(max_length=200)
    author: str = Field(max_length=100)  # the handle the author had when writing it
    at: datetime
    text_sealed: bytes | None = _sealed("text_sealed")
    # Removed as written in error (`casework.remove_note`): the text is gone, who removed it, when and why stay.
    removed_at: datetime | None = None
    removed_by: str | None = Field(default=None, max_length=100)  # a staff handle
    removal_reason: str | None = Field(default=None, max_length=16)


class Task(IntakeTable, table=True):
    """Something to do for a case by a date, given to one of its assignees; the title sealed under the case's key.
    `(assignee_id, status, due_on, id)` is "my open tasks, soonest first" as one index range; `(case_id, due_on,
    id)` a case's tasks."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_assignee_status_due", "assignee_id", "status", "due_on", "id"),
                      Index("ix_tasks_case_due", "case_id", "due_on", "id"))

    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(sa_column=Column("case_id", String(36), ForeignKey("cases.id"), nullable=False))
    title_sealed: bytes | None = _sealed("title_sealed")
    due_on: date
    assignee_id: str = Field(max_length=200)
    assignee: str = Field(max_length=100)  # the handle the assignee had when given the task
    status: str = Field(max_length=16)  # open, done, cancelled
    created_at: datetime
    created_by: str = Field(max_length=200)
    done_at: datetime | None = None
    done_by: str | None = Field(default=None, max_length=200)
    cancelled_at: datetime | None = None
    cancelled_by: str | None = Field(default=None, max_length=200)
    # Bumped by every change of its title, due date or assignee: the task's ETag is derived from it (If-Match).
    version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


# ---- API shapes ---------------------------------------------------------------------------------------------------

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Said]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
# The patterns fields take, each with what a 422 says it takes: never the pattern itself (kit.problems).
COUNTRY = pattern_in_words(r"^[A-Za-z]{2}$", "must be an ISO 3166 country code of 2 letters, such as PL")
PHONE = pattern_in_words(r"^[0-9+()\- .]*$", "may hold only digits, spaces and + ( ) - .")
EMAIL = pattern_in_words(r"^[^@\s]+@[^@\s]+$", "must be an e-mail address, such as name@example.org")
CountryCode = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=COUNTRY)]
Language = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=35)]
Article = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]

EARLIEST_DATE = date(1900, 1, 1)


class Contact(StrictModel):
    """How to reach the person; every channel optional."""

    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40, pattern=PHONE)] | None = None
    telegram: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    signal: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL)] | None = None


def _past_birth_date(value: date | None) -> date | None:
    if value is not None and not (EARLIEST_DATE <= value <= datetime.now(UTC).date()):
        raise ValueError("the date of birth must be a past date after 1900")
    return value


class _PersonalFields(StrictModel):
    other_names: list[ShortText] = PydanticField(default_factory=list, max_length=20)
    date_of_birth: date | None = None
    contact: Contact | None = None
    country: CountryCode | None = None
    city: ShortText | None = None
    languages: list[Language] = PydanticField(default_factory=list, max_length=20)
    release_date: date | None = None
    facility: ShortText | None = None
    articles: list[Article] = PydanticField(default_factory=list, max_length=30)
    safety_notes: LongText | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _born_in_the_past(cls, value: date | None) -> date | None:
        return _past_birth_date(value)

    @field_validator("release_date")
    @classmethod
    def _plausible_release(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is not None and value < EARLIEST_DATE:
            raise ValueError("the release date must be after 1900")
        born = info.data.get("date_of_birth")  # validated before (declared first), when given in the same body
        if value is not None and born is not None and value <= born:
            raise PydanticCustomError(RELEASE_BEFORE_BIRTH, RELEASE_BEFORE_BIRTH_SAID)
        return value


class CaseCreate(_PersonalFields):
    full_name: ShortText


class DuplicateCheck(CaseCreate):
    """A case not yet saved, in `POST /cases`' body (SPEC §4: "the same body"), so that a client checks and then
    creates with one payload; only its names and birth date are read: enough to find the same person written
    another way."""


class CaseSearch(StrictModel):
    """A search by name: in a request body, never in a URL that browsers, proxies and access logs keep.

    `cursor` is the `next_cursor` of the previous page of the same search (a position, never the name)."""

    q: ShortText = PydanticField(description="a name, in any script or spelling")
    status: CaseStatus | None = None
    limit: int = PydanticField(default=50, ge=1, le=200)
    cursor: str | None = PydanticField(default=None, max_length=200)


class CaseUpdate(_PersonalFields):
    """Fields present in the body replace the stored ones (lists and `contact` as a whole); absent ones stay."""

    full_name: ShortText | None = None
    other_names: list[ShortText] | None = PydanticField(default=None, max_length=20)  # type: ignore[assignment]
    languages: list[Language] | None = PydanticField(default=None, max_length=20)  # type: ignore[assignment]
    articles: list[Article] | None = PydanticField(default=None, max_length=30)  # type: ignore[assignment]

    @field_validator("full_name")
    @classmethod
    def _name_cannot_be_removed(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("the full name can be changed but not removed")
        return value


# The fields sealed under the case's key, each in its own column `<field>_sealed` (`sealed_column`).
PERSONAL_FIELDS = ("full_name", "other_names", "date_of_birth", "contact", "city", "languages", "release_date",
                   "facility", "articles", "safety_notes")
NAME_FIELDS = frozenset({"full_name", "other_names", "date_of_birth"})  # what the blind index of names is made of
LIST_FIELDS = frozenset({"other_names", "languages", "articles"})  # a list: cleared to [], never to null


def sealed_column(field: str) -> str:
    """The column of `cases` holding a personal field's ciphertext."""
    return f"{field}_sealed"


class CaseRef(BaseModel):
    """A possible duplicate: which case, its state and who holds it, whoever holds it (no personal data), and how
    sure: `high` when both dates of birth are known and equal, `name_only` when either is missing."""

    id: str
    reference: str
    status: CaseStatus
    assignees: list[str]
    confidence: Literal["high", "name_only"]


class CaseOutline(StrictModel):
    """A case found that is not assigned to the caller: only that it exists, its state and whom to ask."""

    id: str
    reference: str
    status: CaseStatus
    assignees: list[str]


class CaseListItem(BaseModel):
    """What a list shows: no personal data. `assignees` are usernames, the first assigned first."""

    id: str
    reference: str
    status: CaseStatus
    country: str | None
    opened_at: datetime
    assignees: list[str]


class CaseSummary(CaseListItem):
    closed_at: datetime | None
    duplicate_of: str | None = None  # the case kept, for a case marked a duplicate
    duplicate_of_reference: str | None = None  # and its reference, which people read


class DuplicateOf(StrictModel):
    """The case that is kept: this one becomes its duplicate."""

    case_id: uuid.UUID  # a case's id (its reference, BY-2026-00042, is not one: 422, not "no such case")


class NeedStatusSet(StrictModel):
    status: NeedStatus


class OpenedElsewhere(StrictModel):
    """Where a caseworker not assigned to the case opened it, stating why (`Access-Reason`)."""

    opened_in: Literal["referrals", "funds"]


class CasePublic(CaseSummary):
    updated_at: datetime
    full_name: str
    other_names: list[str]
    date_of_birth: date | None
    contact: Contact | None
    city: str | None
    languages: list[str]
    release_date: date | None
    facility: str | None
    articles: list[str]
    safety_notes: str | None


class CaseCreated(CasePublic):
    possible_duplicates: list[CaseRef]


class CaseworkerLoad(BaseModel):
    """An enabled caseworker a case can be given to, and how many open cases they hold now."""

    username: str
    open_cases: int


class AssigneeAdded(StrictModel):
    """One more caseworker to hold the case, after those who do: a staff username, an enabled caseworker."""

    username: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=100)]


class AssigneesSet(StrictModel):
    """Who the case is assigned to from now on: staff usernames, each an enabled caseworker; at least one."""

    usernames: list[Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1,
                                                     max_length=100)]] = PydanticField(min_length=1, max_length=20)

    @field_validator("usernames")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))  # the order given, each handle once


class DuplicatesFound(BaseModel):
    possible_duplicates: list[CaseRef]


class ErasedCase(BaseModel):
    """All that is left of an erased case."""

    id: str
    reference: str
    status: Literal["erased"]


class NeedCreate(StrictModel):
    category: Category
    urgency: Urgency
    notes: LongText | None = None


class NeedPublic(BaseModel):
    id: str
    case_id: str
    category: Category
    urgency: Urgency
    notes: str | None
    created_at: datetime
    created_by: str
    status: NeedStatus = "open"
    status_changed_at: datetime | None = None
    status_changed_by: str | None = None


class ConsentSet(StrictModel):
    """What may be shared with which kinds of partner; an empty `categories` list withdraws consent."""

    categories: list[Category] = PydanticField(max_length=len(CATEGORIES))
    share_contact: bool
    share_health: bool
    method: ConsentMethod
    expires_on: date | None = None

    @field_validator("categories")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @field_validator("expires_on")
    @classmethod
    def _not_already_expired(cls, value: date | None) -> date | None:
        if value is not None and value < datetime.now(UTC).date():
            raise ValueError("a consent cannot be recorded as already expired")
        return value


class ConsentPublic(BaseModel):
    categories: list[Category]
    share_contact: bool
    share_health: bool
    method: ConsentMethod
    expires_on: date | None
    recorded_at: datetime
    recorded_by: str


class ConsentView(BaseModel):
    """The consent in force (null before any was recorded, and once the case is erased) and every version recorded,
    oldest first; and the case's status (referrals reads it to know an erasure at once)."""

    case_id: str
    case_status: str
    current: ConsentPublic | None
    history: list[ConsentPublic]


class TimelineEntryPublic(BaseModel):
    id: int
    at: datetime
    kind: str
    source: str
    details: dict[str, Any]


# Why something was removed from a case: a fixed word, never typed text (which could itself name the person it
# was about). `wrong_case`: it belongs to another person's case; `duplicate`: added twice; `mistake`: its content is
# wrong (a note typed in error, a wrong scan).
RemovalReason = Literal["wrong_case", "duplicate", "mistake"]


class Removal(StrictModel):
    """Remove a note or a document added in error, saying why."""

    reason: RemovalReason


class Removed(BaseModel):
    """What is left of a note or a document removed in error: who removed it, when, and why."""

    removed_at: datetime | None = None
    removed_by: str | None = None
    removal_reason: RemovalReason | None = None


class DocumentPublic(Removed):
    """A document as the API shows it; `sha256` is of the bytes stored (after their metadata was removed). A document
    removed in error keeps only its kind, who added it and when, and who removed it, when and why: `filename` and
    `sha256` are null and `size` 0."""

    id: str
    case_id: str
    kind: DocumentKind
    filename: str | None
    content_type: str
    size: int
    sha256: str | None
    created_at: datetime
    created_by: str


NoteText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), Said]
TaskTitle = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), Said]
TaskStatus = Literal["open", "done", "cancelled"]


class NoteCreate(StrictModel):
    text: NoteText


class NotePublic(Removed):
    """A note; one removed in error has no text (null), and says who removed it, when and why."""

    id: str
    author: str
    at: datetime
    text: str | None


class TaskCreate(StrictModel):
    """A task for one of the case's assignees (by handle; the caller when absent), due on a date."""

    title: TaskTitle
    due_on: date
    assignee: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1,
                                               max_length=100)] | None = None

    @field_validator("due_on")
    @classmethod
    def _plausible_date(cls, value: date) -> date:
        if value < EARLIEST_DATE:
            raise ValueError("the due date must be after 1900")
        return value


class TaskChange(StrictModel):
    """A task's title, due date or assignee (one of the case's caseworkers, by handle) changed; what is absent stays.
    At least one is given, none as null."""

    title: TaskTitle | None = None
    due_on: date | None = None
    assignee: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1,
                                               max_length=100)] | None = None

    @field_validator("due_on")
    @classmethod
    def _plausible_date(cls, value: date | None) -> date | None:
        if value is not None and value < EARLIEST_DATE:
            raise ValueError("the due date must be after 1900")
        return value

    @model_validator(mode="after")
    def _something_and_nothing_null(self) -> TaskChange:
        if not self.model_fields_set:
            raise ValueError("give the title, the due date or the assignee to change")
        if any(getattr(self, field) is None for field in self.model_fields_set):
            raise ValueError("a task's title, due date and assignee can be changed but not removed")
        return self


class TaskPublic(BaseModel):
    """A task; `etag` names this version of it (its If-Match when it is changed)."""

    id: str
    case_id: str
    title: str
    due_on: date
    assignee: str
    status: TaskStatus
    etag: str


class MyTask(TaskPublic):
    """One of the caller's tasks, with the reference of its case."""

    reference: str
