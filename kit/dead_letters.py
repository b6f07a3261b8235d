"""Dead letters, read and sent again once what made them fail is mended (`rehab dead-letters`).

An event a handler keeps refusing for a reason of its own (a bug, a payload it cannot read) is parked in the
consumer's `dead_letters` table after `max_deliver` tries and terminated on its stream (kit.bus), so the events
behind it go on. Parking must not mean losing: once a new version mends the handler, the operator sends the parked
events again. Each goes back on its own subject with a new `Nats-Msg-Id` (the stream would drop its first id as a
duplicate within its window), under the envelope it had: every consumer that applied it already finds its id in its
inbox and only acknowledges it; the one that parked it applies it now, once. A replayed event comes after events
published since: the handlers already take events late and out of order (each keeps the newest of what it is told).
A row leaves the table once the stream has stored its event; if it fails again, it is parked again as a new row.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select

from kit.tables import KitTables


@dataclass(frozen=True)
class Parked:
    """One dead letter, as an operator lists it: what failed, never the event's data."""

    id: int
    consumer: str
    event_id: str
    subject: str
    error: str
    deliveries: int
    parked_at: datetime


def parked(engine: Engine, tables: KitTables) -> list[Parked]:
    """Every dead letter in the database, oldest first."""
    letters = tables.dead_letters
    with engine.connect() as connection:
        rows = connection.execute(select(letters).order_by(letters.c.id)).mappings().all()
    return [_parked(row) for row in rows]


def _parked(row: Any) -> Parked:
    return Parked(id=row["id"], consumer=row["consumer"], event_id=row["event_id"], subject=row["subject"],
                  error=row["error"], deliveries=row["deliveries"], parked_at=row["parked_at"])


def replay_id(process: str, letter_id: int, event_id: str) -> str:
    """The `Nats-Msg-Id` a dead letter is sent again under: new for each letter, the same for the same one (sending
    it twice within the stream's duplicate window stores it once)."""
    return f"replay-{process}-{letter_id}-{event_id}"


async def replay(engine: Engine, tables: KitTables, js: Any, *, process: str,
                 ids: Collection[int] | None = None) -> list[Parked]:
    """Send these dead letters (all, when `ids` is None) back on their subjects and delete each once the stream has
    stored it; those sent. Unknown ids are ignored (the caller compares)."""
    letters = tables.dead_letters
    query = select(letters).order_by(letters.c.id)
    if ids is not None:
        query = query.where(letters.c.id.in_(sorted(ids)))
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    sent: list[Parked] = []
    for row in rows:
        await js.publish(row["subject"], row["payload"].encode(),
                         headers={"Nats-Msg-Id": replay_id(process, row["id"], row["event_id"])})
        with engine.begin() as connection:
            connection.execute(delete(letters).where(letters.c.id == row["id"]))
        sent.append(_parked(row))
    return sent
