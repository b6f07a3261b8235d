"""The seal state recorded on NATS (kit.control), on a real server: the operator's `rehab seal` / `rehab unseal`
record what they send even where no gateway has made the stream CONTROL yet, and a process reads the newest back."""

from __future__ import annotations

import nats
import pytest

from kit import control, nats_auth
from kit.control import ControlListener, Verifier, sign_command
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
        info = await nc.jetstream().stream_info(control.STATE_STREAM)
        assert info.state.messages == 1 and info.config.allow_direct
    finally:
        await nc.close()
