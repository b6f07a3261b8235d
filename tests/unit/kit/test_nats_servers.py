"""A NATS cluster named in one setting: `REHAB_NATS_URL` with several servers, comma-separated (kit.settings)."""

from __future__ import annotations

import pytest

from kit.settings import ServiceSettings, nats_servers


def test_one_url_or_several() -> None:
    assert nats_servers("nats://127.0.0.1:14222") == ["nats://127.0.0.1:14222"]
    assert nats_servers("nats://a:4222, nats://b:4222,,nats://c:4222 ") == \
        ["nats://a:4222", "nats://b:4222", "nats://c:4222"]


def test_nothing_named_is_refused() -> None:
    with pytest.raises(ValueError):
        nats_servers(" , ")


def test_a_service_takes_the_list_and_the_stream_replicas_from_its_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHAB_NATS_URL", "nats://a:4222,nats://b:4222,nats://c:4222")
    monkeypatch.setenv("REHAB_STREAM_REPLICAS", "3")
    settings = ServiceSettings()
    assert nats_servers(settings.nats_url) == ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
    assert settings.stream_replicas == 3
