"""A tiny producer and consumer built only from the kit, to prove the event backbone without any domain."""

from __future__ import annotations

import uuid

from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlmodel import Session

from kit import db
from kit.bus import Bus, BusOptions, Subscription
from kit.events import Envelope, record_event
from kit.errors import Sealed
from kit.tables import KitTables

SUBJECT = "rehab.backbone.note.created"


class Node:
    """One process's worth of kit: a database with the kit tables plus one table, its unit of work, and a bus.

    Writes go through the unit of work as a service's do (the bus's inbox, marks and dead letters too), so these
    tests prove the path production runs."""

    def __init__(self, name: str, db_url: str, nats_url: str, *, subscriptions: bool = False, max_deliver: int = 3,
                 relay_batch: int = 200) -> None:
        self.metadata = MetaData()
        self.tables = KitTables(self.metadata)
        self.notes = Table("notes", self.metadata, Column("id", String(36), primary_key=True), Column("applied", Integer))
        self.engine = db.make_engine(db_url)
        self.metadata.create_all(self.engine)  # a throwaway test database
        self.uow = db.UnitOfWork(self.engine, db.make_session_factory(self.engine))
        subs = [Subscription(producer="backbone", durable=f"{name}-backbone", handlers={SUBJECT: self.apply})] if subscriptions else []
        self.bus = Bus(service=name, url=nats_url, uow=self.uow, tables=self.tables,
                       subscriptions=subs, options=BusOptions(max_deliver=max_deliver, ack_wait=2, relay_poll_seconds=0.2,
                                                              relay_batch=relay_batch, idle_fetches_before_check=2))
        self.fail_ids: set[str] = set()
        self.sealed = False  # as `rehab seal` leaves a service: every handler that needs a key refuses
        self.sealed_refusals = 0
        self.poison_mended = False  # a new version whose handler takes what the old one refused

    async def write_note(self, *, poison: bool = False) -> str:
        """A use case's write: the change and its event in one unit of work (which wakes the relay once committed)."""
        note_id = str(uuid.uuid4())

        def write(session: Session) -> None:
            session.execute(insert(self.notes).values(id=note_id, applied=0))
            record_event(session, self.tables, source="/test/backbone", type=SUBJECT, subject=note_id,
                         data={"note_id": note_id, "poison": poison})

        await self.uow.run(write)
        return note_id

    def apply(self, session: Session, event: Envelope) -> None:
        if self.sealed:
            self.sealed_refusals += 1
            raise Sealed()
        if event.data.get("poison") and not self.poison_mended:
            raise ValueError("poison")
        note_id = event.data["note_id"]
        if session.execute(select(self.notes.c.id).where(self.notes.c.id == note_id)).first():
            session.execute(update(self.notes).where(self.notes.c.id == note_id).values(applied=self.notes.c.applied + 1))
        else:
            session.execute(insert(self.notes).values(id=note_id, applied=1))

    def applied(self) -> dict[str, int]:
        with self.uow.read() as session:
            return {r.id: r.applied for r in session.execute(select(self.notes))}

    def unpublished(self) -> int:
        with self.uow.read() as session:
            return len(session.execute(select(self.tables.outbox.c.seq).where(self.tables.outbox.c.published_at.is_(None))).all())

    def dead_letters(self) -> list:
        with self.uow.read() as session:
            return list(session.execute(select(self.tables.dead_letters)).mappings())
