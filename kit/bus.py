"""The event bus on NATS JetStream: stream provisioning, the outbox relay, inbox consumers and dead letters.

Delivery guarantees, in order of the path an event takes:
1. a service writes its change and an outbox row in one transaction (`kit.events.record_event`);
2. the relay publishes outbox rows in commit order with `Nats-Msg-Id` = event id and marks a row sent only
   after the PubAck, so a crash in between republishes and the stream answers "duplicate";
3. a consumer applies an event and records its id in the inbox in one transaction, and acks only after commit,
   so a redelivered event finds its id and changes nothing;
4. an event that keeps failing is parked in `dead_letters` after `max_deliver` tries and terminated, so it does
   not block the events behind it; one that fails for want of the system (keys sealed, the database away) is held
   and tried again until it passes, never parked (`waits_for_the_system`).

With NATS down the API keeps working: rows wait in the outbox and go out when NATS returns.

Every write of the bus (inbox rows with their handlers' effects, relay marks, delivery attempts, dead letters) is a
unit of the process's unit of work (`kit.db.UnitOfWork`), committed with the requests' work, one fsync for all, off
the event loop; its reads of the outbox see committed rows only (`UnitOfWork.read`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from sqlalchemy import Connection, Select, bindparam, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from kit import context, logs, metrics, tracing
from kit.db import DATABASE_UNAVAILABLE, UnitOfWork, is_sqlite
from kit.events import Envelope
from kit.errors import Unavailable
from kit.settings import nats_servers
from kit.tables import KitTables

log = logs.get("bus")

Handler = Callable[[Session, Envelope], None]

# Which advisory lock a relay holds on PostgreSQL so that of several replicas only one publishes at a time.
_RELAY_LOCK_BASE = 0x5EB1A0


def relay_lock_key(service: str) -> int:
    """The PostgreSQL advisory lock whose holder is the one replica of `service` that publishes its outbox."""
    return _RELAY_LOCK_BASE + sum(service.encode())


def stream_name(service: str) -> str:
    return service.upper()


def stream_subjects(service: str) -> list[str]:
    return [f"rehab.{service}.>"]


@dataclass
class Subscription:
    """A durable pull consumer on another service's stream, with one handler per subject."""

    producer: str
    durable: str
    handlers: dict[str, Handler]

    @property
    def stream(self) -> str:
        return stream_name(self.producer)


def waits_for_the_system(error: BaseException) -> bool:
    """Whether a handler failed for want of something outside the event (keys sealed or out of reach, the database
    gone or locked): tried again until it passes, never counted towards parking."""
    return isinstance(error, (Unavailable, *DATABASE_UNAVAILABLE)) or (
        isinstance(error, DBAPIError) and bool(error.connection_invalidated))


@dataclass
class BusOptions:
    max_deliver: int = 5
    ack_wait: float = 30.0
    stream_max_bytes: int = 1 << 30
    stream_replicas: int = 1
    relay_batch: int = 200
    relay_poll_seconds: float = 1.0
    publish_timeout: float = 2.0  # for the PubAcks of one relay batch
    fetch_batch: int = 64
    idle_fetches_before_check: int = 5


@dataclass
class Bus:
    """One process's connection to the event backbone. `start()` returns at once; the work runs in tasks."""

    service: str
    url: str
    uow: UnitOfWork  # the process's unit of work: every write of the bus is one of its units
    tables: KitTables
    subscriptions: list[Subscription] = field(default_factory=list)
    options: BusOptions = field(default_factory=BusOptions)
    # The nkey seed file this process logs in to NATS with (kit.nats_auth); None: only what the URL carries.
    nkey_seed_file: Path | None = None
    # Streams besides its own that this process publishes into through its outbox (intake: kit.erasures' ledger),
    # each `provision(js, replicas)`: made before the relay starts, so no outbox row meets a subject no stream takes.
    provisions: list[Callable[[JetStreamContext, int], Awaitable[None]]] = field(default_factory=list)

    nc: NATS | None = None
    js: JetStreamContext | None = None
    tried: bool = False  # the first connection attempt is over (connected or not)
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _wake: asyncio.Event | None = None
    _stopping: bool = False
    _leader_conn: object = None
    _inbox_insert: object = None
    _unsent: Select | None = None  # the relay's read, built once (`publish_pending`)
    _unsent_but_marking: Select | None = None
    _marking: set[int] = field(default_factory=set)  # outbox rows acknowledged by NATS, their mark not committed yet
    _mark_task: asyncio.Task | None = None

    def __post_init__(self) -> None:
        if self.uow is None:  # only a bus that provisions streams and nothing else (tests): no outbox to relay
            return
        self.uow.on_commit(self._wake_on_events)
        outbox = self.tables.outbox
        self._unsent = (select(outbox.c.seq, outbox.c.subject, outbox.c.envelope, outbox.c.headers, outbox.c.created_at)
                        .where(outbox.c.published_at.is_(None)).order_by(outbox.c.seq).limit(self.options.relay_batch))
        self._unsent_but_marking = self._unsent.where(outbox.c.seq.not_in(bindparam("marking", expanding=True)))

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._run(), name=f"{self.service}-bus"))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:  # (the list may grow meanwhile: `_run` adds the relay and consumers)
            # Cancelled again until it is done: a cancellation can be lost inside the NATS client while NATS is away
            # (on Python < 3.12, asyncio.wait_for swallows one that meets a refused connection attempt, and the
            # client's own retries go on for ever), and the process would never stop.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.2)
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        if self._mark_task is not None:
            await asyncio.gather(self._mark_task, return_exceptions=True)
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.drain(), timeout=3)
            except Exception:
                pass
        if self._leader_conn is not None:
            self._leader_conn.close()  # type: ignore[attr-defined]
            self._leader_conn = None

    def wake(self) -> None:
        """Tell the relay that a transaction with events just committed, so it publishes without waiting."""
        if self._wake is not None:
            self._wake.set()

    def _wake_on_events(self, session: Session) -> None:
        if session.info.pop("outbox_dirty", False):  # set by kit.events.record_event
            self.wake()

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def jetstream(self) -> JetStreamContext | None:
        """The process's JetStream context while connected, for what goes to NATS directly (kit.checkpoints)."""
        return self.js if self.connected else None

    def state(self) -> str:
        if self.nc is None:
            return "connecting"
        return "connected" if self.nc.is_connected else "disconnected"

    async def _run(self) -> None:
        await self._connect()
        await self._retry(lambda: self.ensure_stream(self.service), "provision stream")
        for provision in self.provisions:
            await self._retry(lambda: provision(self.js, self.options.stream_replicas), "provision stream")
        self._tasks.append(asyncio.create_task(self._relay_loop(), name=f"{self.service}-relay"))
        for sub in self.subscriptions:
            self._tasks.append(asyncio.create_task(self._consume_loop(sub), name=f"{self.service}-{sub.durable}"))

    async def _connect(self) -> None:
        delay = 0.2
        while not self._stopping:
            try:
                self.nc = await nats.connect(
                    nats_servers(self.url),
                    name=self.service,
                    max_reconnect_attempts=-1,  # the default gives up after 60 tries and closes for good
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    ping_interval=5,
                    max_outstanding_pings=2,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    error_cb=self._on_error,
                    **({"nkeys_seed": str(self.nkey_seed_file)} if self.nkey_seed_file is not None else {}),
                )
                self.js = self.nc.jetstream(timeout=5)
                metrics.NATS_CONNECTED.labels(self.service).set(1)
                log.info("nats connected")
                self.tried = True
                return
            except Exception as exc:
                self.tried = True
                metrics.NATS_CONNECTED.labels(self.service).set(0)
                log.warning("nats unavailable, retrying", error_type=type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _on_disconnected(self) -> None:
        metrics.NATS_CONNECTED.labels(self.service).set(0)
        log.warning("nats disconnected")

    async def _on_reconnected(self) -> None:
        metrics.NATS_CONNECTED.labels(self.service).set(1)
        log.info("nats reconnected")
        self.wake()

    async def _on_error(self, exc: Exception) -> None:
        # The first attempt to connect is over when it fails too: nats-py retries the first connection by itself
        # (max_reconnect_attempts=-1) and reports each failure here, never returning from `connect` meanwhile.
        self.tried = True
        log.debug("nats error", error_type=type(exc).__name__)

    async def _retry(self, make: Callable, what: str) -> object:
        delay = 0.2
        while True:
            try:
                return await make()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(f"could not {what}, retrying", error_type=type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # ---- streams ---------------------------------------------------------------------------------------------

    async def ensure_stream(self, producer: str) -> None:
        """Create a producer's stream, or bring its config to the wanted one. Safe to call from any process."""
        assert self.js is not None
        config = StreamConfig(
            name=stream_name(producer),
            subjects=stream_subjects(producer),
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            # A work stream refuses new messages when full instead of silently dropping old ones.
            discard=DiscardPolicy.NEW,
            max_bytes=self.options.stream_max_bytes,
            num_replicas=self.options.stream_replicas,
            duplicate_window=120,
        )
        await provision_stream(self.js, config)

    # ---- outbox relay ----------------------------------------------------------------------------------------

    async def _relay_loop(self) -> None:
        assert self._wake is not None
        delay = 0.1
        while not self._stopping:
            try:
                if not self._is_relay_leader():
                    await asyncio.sleep(2)
                    continue
                sent = await self.publish_pending()
                delay = 0.1
                if sent == 0:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=self.options.relay_poll_seconds)
                    except TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay paused", error_type=type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _is_relay_leader(self) -> bool:
        """On PostgreSQL several replicas may run; a session-level advisory lock picks the one that publishes.

        Held on a connection of its own in autocommit mode: no transaction stays open beside the lock, and nothing
        is written, so nothing here goes through the unit of work."""
        engine = self.uow.engine
        if is_sqlite(engine):
            return True
        if self._leader_conn is not None:
            try:
                self._leader_conn.execute(text("SELECT 1"))  # type: ignore[attr-defined]
                return True
            except Exception:
                # The lock went with its connection (a database restart, a terminated backend): another replica may
                # hold it by now. Let go of the dead connection and ask again, as every other replica does.
                with contextlib.suppress(Exception):
                    self._leader_conn.close()  # type: ignore[attr-defined]
                self._leader_conn = None
                log.warning("outbox relay lost its leadership with its database connection")
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": relay_lock_key(self.service)}).scalar()
        except Exception:
            conn.close()
            raise
        if got:
            self._leader_conn = conn
            log.info("outbox relay leads: this replica publishes")
            return True
        conn.close()
        return False

    async def publish_pending(self) -> int:
        """Publish unpublished outbox rows in commit order; stop at the first failure so order is kept.

        The batch goes out with every PubAck awaited together (one round trip for the batch, not one per row):
        the messages are written to the connection in order, and a row is marked sent only if it and every row
        before it were acknowledged. A failure part-way leaves the rest unmarked; the rows after it that did get
        through are sent again later and answered `duplicate` (same Nats-Msg-Id).
        """
        # Committed rows only, never those of a shared transaction in progress. The relay reads after every commit:
        # building this statement, an ORM session around it and a count of the backlog were over half of its time
        # at 100 new cases/s, hence a statement built once, a bare connection, and a count only when needed.
        # Rows acknowledged already, their mark committing, are left out: not sent twice.
        with self.uow.read_connection() as conn:
            if self._marking:
                rows = conn.execute(self._unsent_but_marking, {"marking": sorted(self._marking)}).all()
            else:
                rows = conn.execute(self._unsent).all()
            self._report_backlog(conn, rows)
        if not rows:
            return 0
        if self.js is None or not self.connected:
            raise ConnectionError("nats not connected")
        done: list[int] = []
        failure: Exception | None = None
        acks: list[asyncio.Future] = []
        try:
            for row in rows:
                with tracing.publishing(self.service, row.subject, json.loads(row.headers)) as headers:
                    acks.append(await self.js.publish_async(row.subject, row.envelope.encode(), headers=headers))
        except Exception as exc:
            failure = exc
        if acks:
            await asyncio.wait(acks, timeout=self.options.publish_timeout)
        for row, ack in zip(rows, acks):
            if not ack.done() or ack.cancelled() or ack.exception() is not None:
                # A timeout does not mean "not stored": the retry reuses Nats-Msg-Id.
                failure = failure or (ack.exception() if ack.done() and not ack.cancelled() else None) \
                    or TimeoutError("no PubAck in time")
                break
            done.append(row.seq)
            metrics.EVENTS_PUBLISHED.labels(self.service).inc()
            if ack.result().duplicate:
                metrics.EVENTS_DUPLICATE_PUBACK.labels(self.service).inc()
        for ack in acks:
            if not ack.done():
                ack.cancel()
        if done:
            await self._mark_sent(done)
        if failure is not None:
            failed_seq, outbox = rows[len(done)].seq, self.tables.outbox
            await self.uow.run(lambda session: session.execute(
                update(outbox).where(outbox.c.seq == failed_seq).values(attempts=outbox.c.attempts + 1)))
            raise failure
        return len(done)

    async def _mark_sent(self, seqs: list[int]) -> None:
        """Mark acknowledged rows sent, as a unit of work. The relay does not wait for that mark's COMMIT: it
        goes on publishing what was committed meanwhile (an event committed during a mark no longer waits a whole
        group commit to be sent). One mark is in flight at a time; its rows are left out of the reads until it is
        committed, so none is published twice because of it. A mark that fails leaves its rows unmarked: they are
        sent again and answered `duplicate` (same Nats-Msg-Id), as after a crash between PubAck and mark."""
        outbox = self.tables.outbox
        now = datetime.now(UTC)

        def mark(session: Session) -> object:
            return session.execute(update(outbox).where(outbox.c.seq.in_(seqs)).values(published_at=now))

        if self._mark_task is not None:
            await asyncio.gather(self._mark_task, return_exceptions=True)
        self._marking.update(seqs)

        async def marking() -> None:
            try:
                await self.uow.run(mark)
            except Exception as exc:
                log.warning("outbox rows not marked sent, they will be sent again", error_type=type(exc).__name__,
                            rows=len(seqs))
            finally:
                self._marking.difference_update(seqs)

        self._mark_task = asyncio.create_task(marking(), name=f"{self.service}-relay-mark")

    def _report_backlog(self, conn: Connection, rows: list) -> None:
        if not rows:
            metrics.OUTBOX_BACKLOG.labels(self.service).set(0)
            metrics.OUTBOX_OLDEST_AGE.labels(self.service).set(0)
            return
        # The backlog is what waits to be sent: rows whose mark is committing were sent already, as an empty read says.
        if len(rows) < self.options.relay_batch:  # every unsent row is in hand: nothing more to count
            backlog = len(rows)
        else:
            unmarked = conn.execute(select(func.count()).select_from(self.tables.outbox).where(
                self.tables.outbox.c.published_at.is_(None))).scalar_one()
            backlog = max(unmarked - len(self._marking), 0)  # a mark may commit between the two: never below 0
        oldest = rows[0].created_at
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        metrics.OUTBOX_BACKLOG.labels(self.service).set(backlog)
        metrics.OUTBOX_OLDEST_AGE.labels(self.service).set((datetime.now(UTC) - oldest).total_seconds())

    # ---- consumers -------------------------------------------------------------------------------------------

    def consumer_config(self, sub: Subscription) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=sub.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subjects=sorted(sub.handlers),
            ack_wait=self.options.ack_wait,
            max_deliver=self.options.max_deliver,
            max_ack_pending=1000,
        )

    async def ensure_consumer(self, sub: Subscription) -> None:
        """Create the durable consumer, or update it: `pull_subscribe` alone would silently keep an old config."""
        assert self.js is not None
        await self.ensure_stream(sub.producer)
        wanted = self.consumer_config(sub)
        try:
            info = await self.js.consumer_info(sub.stream, sub.durable)
        except nats.js.errors.NotFoundError:
            await self.js.add_consumer(sub.stream, wanted)
            return
        live = info.config
        if (
            sorted(live.filter_subjects or ([live.filter_subject] if live.filter_subject else [])) != wanted.filter_subjects
            or live.max_deliver != wanted.max_deliver
            or abs((live.ack_wait or 0) - wanted.ack_wait) > 0.001
        ):
            await self.js.add_consumer(sub.stream, wanted)  # same durable name: the server updates it
            log.info("consumer config updated", consumer=sub.durable)

    async def _consume_loop(self, sub: Subscription) -> None:
        while not self._stopping:
            try:
                await self._consume(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer restarting", consumer=sub.durable, error_type=type(exc).__name__)
                await asyncio.sleep(1)

    async def _consume(self, sub: Subscription) -> None:
        assert self.js is not None
        await self.ensure_consumer(sub)
        psub = await self.js.pull_subscribe_bind(durable=sub.durable, stream=sub.stream)
        idle = 0
        try:
            while not self._stopping:
                try:
                    msgs = await psub.fetch(batch=self.options.fetch_batch, timeout=1)
                except (nats.errors.TimeoutError, TimeoutError):
                    # Nothing to fetch is normal. But after a server restart a pull subscription can go silent
                    # while messages wait: look at the consumer, and rebuild the subscription if so.
                    idle += 1
                    if idle >= self.options.idle_fetches_before_check:
                        idle = 0
                        info = await self.js.consumer_info(sub.stream, sub.durable)
                        metrics.CONSUMER_LAG.labels(self.service, sub.durable).set(info.num_pending or 0)
                        if (info.num_pending or 0) > 0 or (info.num_ack_pending or 0) > 0:
                            return  # the outer loop re-binds
                    continue
                idle = 0
                # Handled side by side: their inbox transactions land in one shared commit (one fsync for the
                # batch), applied in the order fetched; each message is acked or nak'd once its own outcome is known.
                await asyncio.gather(*(self._handle(sub, msg) for msg in msgs))
        finally:
            try:
                await psub.unsubscribe()
            except Exception:
                pass

    async def _handle(self, sub: Subscription, msg: Msg) -> None:
        deliveries = msg.metadata.num_delivered or 1
        try:
            envelope = Envelope.from_bytes(msg.data)
        except Exception as exc:
            await self._park(sub, msg, event_id=msg.headers.get("Nats-Msg-Id", "?") if msg.headers else "?", error=exc)
            return
        handler = sub.handlers.get(msg.subject)
        token = context.set_request_id(envelope.requestid)
        held = 0
        try:
            while True:
                try:
                    with tracing.consuming(self.service, sub.durable, msg.subject, msg.headers, envelope.traceparent):
                        applied = await self.uow.run(
                            lambda session: self._apply(session, sub, envelope, handler, msg.subject))
                    break
                except Exception as exc:
                    if not waits_for_the_system(exc):
                        raise
                    # The keys sealed, the key service or the database away: not this event's fault, and an event
                    # parked for it would never be applied (an erasure among them). Held, the server told it is in
                    # progress so it is not sent again, and tried again until it goes through.
                    if self._stopping:
                        return  # unacknowledged: sent again after the restart
                    held += 1
                    if held == 1 or held % 20 == 0:
                        log.warning("event held until the system can apply it", consumer=sub.durable,
                                    event_id=envelope.id, tries=held, error_type=type(exc).__name__)
                    try:
                        await msg.in_progress()
                    except Exception:
                        return  # the connection went: the server sends it again, and it is tried then
                    await asyncio.sleep(min(0.5 * 2 ** min(held - 1, 5), self.options.ack_wait / 3))
        except Exception as exc:
            if deliveries >= self.options.max_deliver:
                await self._park(sub, msg, event_id=envelope.id, error=exc)
            else:
                log.warning(
                    "event handler failed, will retry",
                    consumer=sub.durable, event_id=envelope.id, deliveries=deliveries, error_type=type(exc).__name__,
                )
                await msg.nak(delay=min(0.5 * 2 ** (deliveries - 1), 30))
            return
        finally:
            context.reset_request_id(token)
        await msg.ack_sync()
        if applied:
            metrics.EVENTS_CONSUMED.labels(self.service, sub.durable).inc()
        else:
            metrics.EVENTS_REDELIVERED_IGNORED.labels(self.service, sub.durable).inc()

    def _apply(self, session: Session, sub: Subscription, envelope: Envelope, handler: Handler | None,
               subject: str) -> bool:
        """Apply an event once, as a unit of work: its inbox row and its effect commit together. False when it was
        applied before.

        The inbox row is written first, so a conflict there means "already applied" (a redelivery, or another
        replica at the same moment), while a conflict raised by the handler's own writes is a failure to retry.
        """
        if self._inbox_insert is None:
            self._inbox_insert = insert(self.tables.inbox)  # built once; its compiled form is cached
        try:
            # On the session's connection (inside the unit's transaction): the ORM's execute path costs more
            # than this one-row insert itself.
            session.connection().execute(self._inbox_insert, {
                "consumer": sub.durable, "event_id": envelope.id, "subject": subject, "applied_at": datetime.now(UTC),
            })
        except IntegrityError:
            session.rollback()
            return False
        if handler is not None:
            handler(session, envelope)
        return True

    async def _park(self, sub: Subscription, msg: Msg, *, event_id: str, error: Exception) -> None:
        await self.uow.run(lambda session: session.execute(
            insert(self.tables.dead_letters).values(
                consumer=sub.durable,
                event_id=event_id,
                subject=msg.subject,
                payload=msg.data.decode(errors="replace"),
                error=type(error).__name__,
                deliveries=msg.metadata.num_delivered or 1,
                parked_at=datetime.now(UTC),
            )
        ))
        metrics.DEAD_LETTERS.labels(self.service, sub.durable).inc()
        log.error("event parked in dead letters", consumer=sub.durable, event_id=event_id, error_type=type(error).__name__)
        await msg.term()


async def provision_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create a stream, or bring its config to the wanted one: every stream of the system (a producer's events,
    AUDIT, ERASURES), safe to call from any process or replica at once."""
    try:
        await js.stream_info(config.name)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(config)
            log.info("stream created", stream=config.name)
            return
        except nats.js.errors.BadRequestError:
            pass  # another process created it a moment ago
    await js.update_stream(config)
