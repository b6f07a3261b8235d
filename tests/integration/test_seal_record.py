"""The seal state recorded on NATS (kit.control), on a real server: the operator's `rehab seal` / `rehab unseal`
record what they send even where no gateway has made the stream CONTROL yet, and a process reads the newest back."""

from __future__ import annotations

import nats
import pytest

from kit import control, nats_auth
from kit.control import ControlListener, Verifier, sign_command
from tests.support.nats import patient_jetstream
from tests.unit.kit.test_control_commands import FakeCustody

pytestmark = pytest.mark.integration


async def test_a_command_is_recorded_without_a_stream_made_beforehand_and_the_newest_is_read_back(nats_url: str):
    operator = nats_auth.new_seed()
    listener = ControlListener("intake", FakeCustody(), Verifier({nats_auth.public_key(operator): "ops"}),
                               instance="host:1")
    nc = await nats.connect(nats_url, connect_timeout=3)
    try:
        await listener.read_record(nc.jetstream(timeout=3))
        assert listener.recorded is None  # nothing recorded, no stream: nothing to do

        await control.record_command(nc, sign_command(operator, "seal"))  # the stream made on the way
        await listener.read_record(nc.jetstream(timeout=3))
        listener.seal_if_marked()
        assert listener.recorded == "seal" and listener.custody.sealed

        await control.record_command(nc, sign_command(operator, "unseal"))
        await listener.read_record(nc.jetstream(timeout=3))
        assert listener.recorded == "unseal"  # the newest only: one message kept
        info = await patient_jetstream(nc).stream_info(control.STATE_STREAM)
        assert info.state.messages == 1 and info.config.allow_direct
    finally:
        await nc.close()


async def test_a_process_whose_nats_refuses_connections_does_not_wait_to_serve(tmp_path):
    """The API keeps working with NATS down (SPEC §5): the look at the seal state ends with the first refusal."""
    import time

    from kit.bus import Bus

    bus = Bus(service="intake", url="nats://127.0.0.1:1", uow=None, tables=None)  # nothing listens on port 1
    listener = ControlListener("intake", FakeCustody(), Verifier({}), state_dir=tmp_path, instance="host:2")
    await bus.start()
    try:
        started = time.monotonic()
        await control.look_before_serving(listener, bus, wait=30.0)
        assert time.monotonic() - started < 5.0 and not listener.custody.sealed
        control.mark_sealed(tmp_path)
        await control.look_before_serving(listener, bus, wait=30.0)
        assert listener.custody.sealed  # NATS away: the mark alone still seals it before it serves
    finally:
        await bus.stop()
