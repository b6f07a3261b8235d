"""The event backbone against a real nats-server and a real database: nothing lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from prometheus_client import REGISTRY

from kit.events import Envelope
from tests.support.backbone import SUBJECT, Node
from tests.support.nats import patient_jetstream
from tests.support.polling import wait_for

pytestmark = pytest.mark.integration




async def wait_until_drained(url: str, durable: str, *, delivered: int, timeout: float = 20) -> None:
    """Until the consumer has been handed at least `delivered` messages and acked every one of them."""
    nc = await nats.connect(url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            info = await patient_jetstream(nc).consumer_info("BACKBONE", durable)
            if info.num_ack_pending == 0 and info.num_pending == 0 and info.delivered.consumer_seq >= delivered:
                return
            assert time.monotonic() < deadline, f"consumer not drained: {info.delivered}, pending {info.num_pending}"
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def stream_count(url: str, stream: str = "BACKBONE") -> int:
    nc = await nats.connect(url)
    info = await patient_jetstream(nc).stream_info(stream)
    await nc.close()
    return info.state.messages


def outbox_backlog() -> float | None:
    return REGISTRY.get_sample_value("rehab_outbox_backlog", {"service": "backbone"})


# A relay batch of 2 reads fewer rows than wait, and counts them; one of 200 has every waiting row in hand.
@pytest.mark.parametrize("relay_batch", [2, 200])
async def test_event_written_while_nats_is_down_is_delivered_once_when_it_returns(embedded_nats, database_url_factory,
                                                                                  relay_batch):
    producer = Node("backbone", database_url_factory("producer"), embedded_nats.url, relay_batch=relay_batch)
    consumer = Node("mirror", database_url_factory("consumer"), embedded_nats.url, subscriptions=True)
    await producer.bus.start()
    await consumer.bus.start()
    try:
        first = await producer.write_note()
        await wait_for(lambda: consumer.applied().get(first) == 1)

        embedded_nats.kill()
        down_ids = [await producer.write_note() for _ in range(5)]  # the API keeps working: commits succeed
        await asyncio.sleep(0.5)
        assert producer.unpublished() == 5
        await wait_for(lambda: outbox_backlog() == 5)  # what the relay reports while it cannot send

        embedded_nats.start()
        await wait_for(lambda: all(consumer.applied().get(i) == 1 for i in down_ids), timeout=30)
        await wait_for(lambda: producer.unpublished() == 0)
        await wait_for(lambda: outbox_backlog() == 0)
        assert await stream_count(embedded_nats.url) == 6
        assert set(consumer.applied().values()) == {1}
    finally:
        await producer.bus.stop()
        await consumer.bus.stop()


async def test_a_relay_that_republishes_after_a_crash_is_deduplicated(nats_url, database_url_factory):
    producer = Node("backbone", database_url_factory("producer"), nats_url)
    await producer.bus.start()
    try:
        await producer.write_note()
        await wait_for(lambda: producer.unpublished() == 0)
        # A crash between the PubAck and marking the row sent: the row is published again on restart.
        with producer.engine.begin() as conn:
            conn.execute(producer.tables.outbox.update().values(published_at=None))
        producer.bus.wake()
        await wait_for(lambda: producer.unpublished() == 0)
        assert await stream_count(nats_url) == 1
    finally:
        await producer.bus.stop()


async def test_a_redelivered_event_changes_nothing(nats_url, database_url_factory):
    producer = Node("backbone", database_url_factory("producer"), nats_url)
    consumer = Node("mirror", database_url_factory("consumer"), nats_url, subscriptions=True)
    await producer.bus.start()
    await consumer.bus.start()
    try:
        note = await producer.write_note()
        await wait_for(lambda: consumer.applied().get(note) == 1)
        with producer.engine.connect() as conn:
            raw = conn.execute(producer.tables.outbox.select()).mappings().one()["envelope"]
        # The same event again, ten times, past the stream's duplicate window (a new Nats-Msg-Id each time).
        nc = await nats.connect(nats_url)
        js = patient_jetstream(nc)
        for i in range(10):
            await js.publish(SUBJECT, raw.encode(), headers={"Nats-Msg-Id": f"replay-{i}"})
        await nc.close()
        await wait_until_drained(nats_url, "mirror-backbone", delivered=11)
        assert consumer.applied()[note] == 1
        assert Envelope.model_validate_json(raw).id
    finally:
        await producer.bus.stop()
        await consumer.bus.stop()


async def test_a_consumer_killed_before_ack_gets_the_event_again_and_applies_it_once(nats_url, database_url_factory):
    producer = Node("backbone", database_url_factory("producer"), nats_url)
    consumer_db = database_url_factory("consumer")
    consumer = Node("mirror", consumer_db, nats_url, subscriptions=True)

    # The consumer commits the effect, then "dies" before its ack reaches the server.
    async def never_ack(self, timeout: float = 1.0):  # noqa: ANN001, ANN202
        raise ConnectionError("killed before ack")

    from nats.aio.msg import Msg

    original = Msg.ack_sync
    Msg.ack_sync = never_ack
    await producer.bus.start()
    await consumer.bus.start()
    try:
        note = await producer.write_note()
        await wait_for(lambda: consumer.applied().get(note) == 1)
        await consumer.bus.stop()
    finally:
        Msg.ack_sync = original

    revived = Node("mirror", consumer_db, nats_url, subscriptions=True)
    await revived.bus.start()
    try:
        # ack_wait is 2 s: the server redelivers, the inbox recognises the event, the consumer acks it now.
        await wait_until_drained(nats_url, "mirror-backbone", delivered=2)
        assert revived.applied()[note] == 1
    finally:
        await revived.bus.stop()
        await producer.bus.stop()


async def test_a_poison_event_is_parked_and_the_next_one_is_processed(nats_url, database_url_factory):
    producer = Node("backbone", database_url_factory("producer"), nats_url)
    consumer = Node("mirror", database_url_factory("consumer"), nats_url, subscriptions=True, max_deliver=3)
    await producer.bus.start()
    await consumer.bus.start()
    try:
        poison = await producer.write_note(poison=True)
        good = await producer.write_note()
        await wait_for(lambda: consumer.applied().get(good) == 1)
        parked = await wait_for(consumer.dead_letters, timeout=20)
        assert parked[0]["event_id"] and parked[0]["deliveries"] == 3
        assert poison not in consumer.applied()
    finally:
        await producer.bus.stop()
        await consumer.bus.stop()


async def test_a_parked_event_replayed_once_its_handler_is_mended_is_applied_once(nats_url, database_url_factory):
    """`rehab dead-letters replay`: the parked event goes back on its subject under a new message id; the consumer
    that parked it applies it once; a second consumer that had applied it only acknowledges it; sent twice (the
    operator typing the command again), it is stored once."""
    from kit import dead_letters

    producer = Node("backbone", database_url_factory("producer"), nats_url)
    consumer = Node("mirror", database_url_factory("consumer"), nats_url, subscriptions=True, max_deliver=2)
    other = Node("other", database_url_factory("other"), nats_url, subscriptions=True)
    other.poison_mended = True  # a consumer whose handler took the event the first time
    for node in (producer, consumer, other):
        await node.bus.start()
    try:
        poison = await producer.write_note(poison=True)
        (letter,) = await wait_for(consumer.dead_letters, timeout=20)
        await wait_for(lambda: other.applied().get(poison) == 1)
        listed = dead_letters.parked(consumer.engine, consumer.tables)
        assert [(p.id, p.event_id, p.subject, p.error) for p in listed] == [
            (letter["id"], letter["event_id"], SUBJECT, "ValueError")]

        consumer.poison_mended = True  # the new version is running
        nc = await nats.connect(nats_url)
        try:
            sent = await dead_letters.replay(consumer.engine, consumer.tables, patient_jetstream(nc), process="mirror")
            assert [p.id for p in sent] == [letter["id"]] and consumer.dead_letters() == []
            again = await patient_jetstream(nc).publish(SUBJECT, letter["payload"].encode(), headers={
                "Nats-Msg-Id": dead_letters.replay_id("mirror", letter["id"], letter["event_id"])})
            assert again.duplicate  # the same letter sent twice is stored once
        finally:
            await nc.close()
        await wait_for(lambda: consumer.applied().get(poison) == 1)
        await wait_until_drained(nats_url, "other-backbone", delivered=2)
        await wait_until_drained(nats_url, "mirror-backbone", delivered=3)  # two refusals, then the replay
        assert consumer.applied()[poison] == 1 and other.applied()[poison] == 1 and consumer.dead_letters() == []
    finally:
        for node in (producer, consumer, other):
            await node.bus.stop()


async def test_an_event_that_fails_for_want_of_keys_is_held_not_parked_and_applied_once_unsealed(
        nats_url, database_url_factory):
    """An erasure that comes while the keys are sealed must still be applied: refused far more often than
    `max_deliver` (3 here) and for longer than the ack wait (2 s), it is neither parked nor applied, then applied
    once when the keys are back."""
    producer = Node("backbone", database_url_factory("producer"), nats_url)
    consumer = Node("mirror", database_url_factory("consumer"), nats_url, subscriptions=True, max_deliver=3)
    consumer.sealed = True
    await producer.bus.start()
    await consumer.bus.start()
    try:
        held = await producer.write_note()
        await wait_for(lambda: consumer.sealed_refusals >= 5, timeout=30)  # 0.5 + 0.5 + 0.66 + 0.66 s apart
        assert consumer.dead_letters() == [] and held not in consumer.applied()
        consumer.sealed = False
        await wait_for(lambda: consumer.applied().get(held) == 1)
        assert consumer.dead_letters() == []
    finally:
        await producer.bus.stop()
        await consumer.bus.stop()


async def test_a_failed_puback_marks_nothing_after_it_and_every_event_is_stored_once(
        nats_url, database_url_factory, monkeypatch):
    """The first of three events is stored by NATS but its PubAck comes back a failure (the relay cannot tell that
    from a lost message): the three are sent again from it, in order, the stream answers "duplicate", and each
    is stored and applied once; the failed row counts one attempt."""
    from nats.js import JetStreamContext

    publish, failures = JetStreamContext.publish_async, [1]

    async def first_answer_lost(self, subject, payload, headers=None):  # noqa: ANN001, ANN202
        answer = await publish(self, subject, payload, headers=headers)
        if not failures:
            return answer
        failures.pop()
        lost = asyncio.get_running_loop().create_future()
        answer.add_done_callback(lambda _: lost.set_exception(nats.errors.TimeoutError()))
        return lost

    producer = Node("backbone", database_url_factory("producer"), nats_url)
    consumer = Node("mirror", database_url_factory("consumer"), nats_url, subscriptions=True)
    notes = [await producer.write_note() for _ in range(3)]  # committed before the relay starts: one batch
    monkeypatch.setattr(JetStreamContext, "publish_async", first_answer_lost)
    await producer.bus.start()
    await consumer.bus.start()
    try:
        await wait_for(lambda: producer.unpublished() == 0)
        with producer.engine.connect() as conn:
            attempts = [row.attempts for row in conn.execute(
                producer.tables.outbox.select().order_by(producer.tables.outbox.c.seq))]
        assert attempts == [1, 0, 0]
        await wait_for(lambda: consumer.applied() == {note: 1 for note in notes})
        assert await stream_count(nats_url) == 3
    finally:
        await producer.bus.stop()
        await consumer.bus.stop()
