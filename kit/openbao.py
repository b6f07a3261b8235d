"""Key custody in OpenBao (or Vault): every data key is wrapped and unwrapped by a Transit key over HTTP, so the
key-encryption key never exists outside OpenBao (SPEC §8, `KEY_CUSTODY=openbao`).

`TransitClient` speaks the Transit API: short, bounded calls (they run inside synchronous use cases on the event
loop), and a circuit breaker so that an OpenBao that is down costs a request nothing but an immediate
`KeysUnavailable` (503 with Retry-After). `TransitKeyring` has the public surface of `kit.crypto.Keyring`: a
`WrappedKey.kid` is the Transit key version ("v3") and its blob the Transit ciphertext ("vault:v3:…", ASCII).
New data keys come from a pool wrapped ahead of time in batches by a background thread, and unwrapped ones are kept
for a while in a bounded cache, so most requests make no round trip at all.

Keys that are derived (`derive`, `derived_keys`) come from a 32-byte root secret that the caller keeps sealed under
the same Transit key in a file (`seal_document` / `open_document`), since Transit never hands out its own key.

Nothing here logs or puts in an exception a token, a plaintext or a ciphertext.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kit import logs
from kit.crypto import DecryptionError, WrappedKey, new_data_key
from kit.errors import KeysUnavailable, Sealed

log = logs.get("rehab.openbao")

KEY_TYPE = "aes256-gcm96"
DOCUMENT_LABEL = "rehab:sealed-document:v1"
# Every call runs inside a request: a dead or stalled OpenBao must cost a bounded, short time, never a hang.
DEFAULT_TIMEOUT = httpx.Timeout(connect=0.5, read=2.0, write=2.0, pool=0.5)
# After a failure, calls fail at once for this long: a request against a dead OpenBao costs nothing.
BREAKER_SECONDS = 1.0
# OpenBao refuses a JSON body with too many strings ("high complexity"); a larger batch is sent in parts.
BATCH_ITEMS = 200


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _version_of(ciphertext: str) -> int:
    """The key version of a Transit ciphertext "vault:v3:…" (3)."""
    parts = ciphertext.split(":", 2)
    if len(parts) != 3 or parts[0] != "vault" or not parts[1].startswith("v") or not parts[1][1:].isdigit():
        raise DecryptionError("not a Transit ciphertext")
    return int(parts[1][1:])


@dataclass(frozen=True)
class KeyInfo:
    latest_version: int
    min_decryption_version: int
    min_encryption_version: int


class TransitClient:
    """The Transit API of one key, synchronous, with keep-alive and short timeouts.

    Connection errors, timeouts, 5xx (a sealed or standby-less OpenBao answers 503) and a refused token all raise
    `KeysUnavailable`; a ciphertext that does not open (tampered, another key, a version trimmed away) raises
    `kit.crypto.DecryptionError`. The token comes from `token`, or from `token_file`, read again whenever OpenBao
    refuses the one in hand (an agent sidecar or a projected token renews the file).
    """

    def __init__(self, addr: str, *, key_name: str, token: str | None = None, token_file: Path | str | None = None,
                 mount: str = "transit", timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
                 verify: bool | str = True, breaker_seconds: float = BREAKER_SECONDS,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not token and not token_file:
            raise ValueError("an OpenBao token or a token file is needed")
        self.addr = addr.rstrip("/")
        self.mount = mount.strip("/")
        self.key_name = key_name
        self._token_file = Path(token_file) if token_file else None
        self._token = token or self._read_token_file()
        self._breaker_seconds = breaker_seconds
        self._open_until = 0.0
        self._http = httpx.Client(base_url=f"{self.addr}/v1/", timeout=timeout, verify=verify, transport=transport,
                                  limits=httpx.Limits(max_connections=16, max_keepalive_connections=8,
                                                      keepalive_expiry=30.0),
                                  # The settings name OpenBao; no proxy from the environment comes between.
                                  trust_env=False)

    def __repr__(self) -> str:  # never the token
        return f"TransitClient({self.addr!r}, mount={self.mount!r}, key_name={self.key_name!r})"

    def close(self) -> None:
        self._http.close()

    # ---- transport, breaker, token -------------------------------------------------------------------------------

    def _read_token_file(self) -> str:
        assert self._token_file is not None
        try:
            token = self._token_file.read_text().strip()
        except OSError as exc:
            raise KeysUnavailable("The key service token file cannot be read.") from exc
        if not token:
            raise KeysUnavailable("The key service token file is empty.")
        return token

    def _trip(self) -> None:
        self._open_until = time.monotonic() + self._breaker_seconds

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                 accept: tuple[int, ...] = (200, 204)) -> httpx.Response:
        """One call; the response if its status is in `accept` or is a 400 (the caller reads per-item errors)."""
        if time.monotonic() < self._open_until:
            raise KeysUnavailable()
        for attempt in (1, 2):
            try:
                response = self._http.request(method, path, json=body, headers={"X-Vault-Token": self._token})
            except httpx.HTTPError as exc:
                self._trip()
                log.warning("openbao unreachable", addr=self.addr, error=type(exc).__name__)
                raise KeysUnavailable() from None
            if response.status_code == 403 and attempt == 1 and self._token_file is not None:
                fresh = self._read_token_file()
                if fresh != self._token:  # renewed by the agent since we read it: once more with the new one
                    self._token = fresh
                    continue
            break
        status = response.status_code
        if status in accept or status == 400:
            self._open_until = 0.0
            return response
        self._trip()
        if status == 403:
            log.warning("openbao refused this process's token", addr=self.addr, path=path)
            raise KeysUnavailable("The key service refuses this process's token (permission denied).")
        if status == 503:
            log.warning("openbao is sealed or not serving", addr=self.addr)
        else:
            log.warning("openbao answered with an error", addr=self.addr, path=path, status=status)
        raise KeysUnavailable()

    @staticmethod
    def _errors(response: httpx.Response) -> str:
        """The server's error messages, which name no secret (they say what failed, not with what)."""
        try:
            return "; ".join(str(e) for e in response.json().get("errors") or [])[:200]
        except ValueError:
            return ""

    def _batch(self, operation: str, items: list[dict[str, str]], field: str, extra: dict[str, Any] | None = None,
               *, undecryptable_is: type[Exception] = DecryptionError) -> list[str]:
        """A batch call (several, past BATCH_ITEMS); each result's `field`, in order. An item's error raises
        `undecryptable_is`."""
        if len(items) > BATCH_ITEMS:
            return [out for start in range(0, len(items), BATCH_ITEMS)
                    for out in self._batch(operation, items[start:start + BATCH_ITEMS], field, extra,
                                           undecryptable_is=undecryptable_is)]
        if not items:
            return []
        response = self._request("POST", f"{self.mount}/{operation}/{self.key_name}",
                                 {"batch_input": items, **(extra or {})})
        data = response.json().get("data") or {}
        results = data.get("batch_results")
        if results is None or len(results) != len(items):
            # A 400 without per-item results: the request itself was refused (no such key, for one).
            raise undecryptable_is(f"Transit {operation} refused: {self._errors(response)}")
        out = []
        for result in results:
            if result.get("error"):
                raise undecryptable_is(f"Transit {operation} failed: {str(result['error'])[:200]}")
            out.append(result[field])
        return out

    # ---- the key --------------------------------------------------------------------------------------------------

    def ensure_key(self) -> None:
        """Create the Transit key (aes256-gcm96) if it is missing and the token may; a token that may only use the
        key (403 on create) is fine as long as the key is there."""
        response = self._request("GET", f"{self.mount}/keys/{self.key_name}", accept=(200, 403, 404))
        if response.status_code == 200:
            return
        created = self._request("POST", f"{self.mount}/keys/{self.key_name}", {"type": KEY_TYPE},
                                accept=(200, 204, 403))
        if created.status_code == 403:
            # Not found, or not readable (a keyring needs to read the key's versions): either way, unusable.
            raise KeysUnavailable(f"The Transit key {self.key_name} is missing or unreadable, and this token may not "
                                  "create it.")
        if created.status_code == 400:
            raise KeysUnavailable(f"The Transit key {self.key_name} could not be created: {self._errors(created)}")

    def key_info(self) -> KeyInfo:
        response = self._request("GET", f"{self.mount}/keys/{self.key_name}")
        if response.status_code != 200:
            raise KeysUnavailable(f"The Transit key {self.key_name} cannot be read: {self._errors(response)}")
        data = response.json()["data"]
        return KeyInfo(latest_version=int(data["latest_version"]),
                       min_decryption_version=int(data["min_decryption_version"]),
                       min_encryption_version=int(data.get("min_encryption_version") or 0))

    def rotate(self) -> KeyInfo:
        """A new key version, used for every encryption from now on; the old ones still decrypt."""
        response = self._request("POST", f"{self.mount}/keys/{self.key_name}/rotate")
        if response.status_code == 400:
            raise KeysUnavailable(f"Transit rotate refused: {self._errors(response)}")
        return self.key_info()

    def trim(self, min_decryption_version: int) -> KeyInfo:
        """Forget every key version below `min_decryption_version` for good: what they encrypted never opens again.

        Transit trims only below both minimums, so both are raised first (encryption uses the latest version anyway).
        """
        info = self.key_info()
        if not 1 <= min_decryption_version <= info.latest_version:
            raise ValueError(f"version {min_decryption_version} is not between 1 and {info.latest_version}")
        config = {"min_decryption_version": min_decryption_version,
                  "min_encryption_version": max(min_decryption_version, info.min_encryption_version)}
        for path, body in ((f"keys/{self.key_name}/config", config),
                           (f"keys/{self.key_name}/trim", {"min_available_version": min_decryption_version})):
            response = self._request("POST", f"{self.mount}/{path}", body)
            if response.status_code == 400:
                raise KeysUnavailable(f"Transit {path.rsplit('/', 1)[1]} refused: {self._errors(response)}")
        return self.key_info()

    # ---- encryption -----------------------------------------------------------------------------------------------

    def encrypt_many(self, plaintexts: Sequence[bytes], *, associated_data: bytes | None = None) -> list[str]:
        """Each plaintext encrypted under the latest key version, in one call ("vault:vN:…" each)."""
        items = [{"plaintext": _b64(p)} for p in plaintexts]
        if associated_data is not None:
            for item in items:
                item["associated_data"] = _b64(associated_data)
        return self._batch("encrypt", items, "ciphertext", undecryptable_is=KeysUnavailable)

    def encrypt(self, plaintext: bytes, *, associated_data: bytes | None = None) -> str:
        return self.encrypt_many([plaintext], associated_data=associated_data)[0]

    def decrypt_many(self, ciphertexts: Sequence[str], *, associated_data: bytes | None = None) -> list[bytes]:
        items = [{"ciphertext": c} for c in ciphertexts]
        if associated_data is not None:
            for item in items:
                item["associated_data"] = _b64(associated_data)
        return [base64.b64decode(p) for p in self._batch("decrypt", items, "plaintext")]

    def decrypt(self, ciphertext: str, *, associated_data: bytes | None = None) -> bytes:
        return self.decrypt_many([ciphertext], associated_data=associated_data)[0]

    def rewrap_many(self, ciphertexts: Sequence[str]) -> list[str]:
        """The same plaintexts under the latest key version, without their leaving OpenBao. (Transit's rewrap takes
        no associated data: what was encrypted with some, `reseal_document` re-encrypts instead.)"""
        return self._batch("rewrap", [{"ciphertext": c} for c in ciphertexts], "ciphertext")


# ---- small documents sealed under the Transit key ---------------------------------------------------------------


def seal_document(client: TransitClient, document: bytes, *, label: str = DOCUMENT_LABEL) -> str:
    """`document` encrypted by the Transit key, bound to `label` (associated data): a data-key ciphertext does not
    open as a document, nor a document under another label. For the root secret a `TransitKeyring` derives from,
    kept in a file."""
    return client.encrypt(document, associated_data=label.encode())


def open_document(client: TransitClient, sealed: str, *, label: str = DOCUMENT_LABEL) -> bytes:
    return client.decrypt(sealed.strip(), associated_data=label.encode())


def reseal_document(client: TransitClient, sealed: str, *, label: str = DOCUMENT_LABEL) -> str:
    """The document under the latest key version (after a rotation, before old versions are trimmed)."""
    return seal_document(client, open_document(client, sealed, label=label), label=label)


# ---- the keyring --------------------------------------------------------------------------------------------------


class TransitKeyring:
    """`kit.crypto.Keyring`'s surface, with the KEK in OpenBao: kids are Transit key versions ("v3").

    - `new_wrapped_data_key()` takes from a pool of data keys wrapped in batches by a background thread, refilled
      when it runs low; an empty pool means one direct call.
    - `unwrap()` keeps what it unwrapped for `cache_ttl` seconds, at most `cache_max_entries` keys (least recently
      used go first), keyed by the ciphertext.
    - `derive()` derives from `root_secret` (32 bytes, kept sealed by the caller with `seal_document`).
    - `forget()` drops the pool, the cache and the root (`rehab seal`): afterwards everything raises `Sealed` until
      `unseal(root_secret)`.
    - The key's versions are asked of OpenBao at most every `info_ttl` seconds, so a rotation made by another
      process (`rehab keys rotate`) is seen that soon, and pooled keys of an older version are then dropped.
    """

    def __init__(self, client: TransitClient, root_secret: bytes, *, pool_size: int = 64, pool_low_water: int = 16,
                 cache_max_entries: int = 4096, cache_ttl: float = 300.0, info_ttl: float = 5.0,
                 background: bool = True) -> None:
        if len(root_secret) != 32:
            raise ValueError("the root secret is not 256 bits")
        self.client = client
        self.pool_size = pool_size
        self.pool_low_water = min(pool_low_water, pool_size)
        self.cache_max_entries = cache_max_entries
        self.cache_ttl = cache_ttl
        self.info_ttl = info_ttl
        self._root: bytes | None = root_secret
        self._lock = threading.Lock()
        self._pool: deque[tuple[bytes, WrappedKey]] = deque()
        self._cache: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()
        self._derived: dict[str, bytes] = {}
        self._info: KeyInfo | None = None
        self._info_at = 0.0
        self._refill_wanted = threading.Event()
        self._closed = threading.Event()
        self._filler: threading.Thread | None = None
        if background and pool_size > 0:
            self._filler = threading.Thread(target=self._fill_forever, name="openbao-pool", daemon=True)
            self._filler.start()
            self._refill_wanted.set()

    def close(self) -> None:
        """Stop the pool's thread (the client stays the caller's)."""
        self._closed.set()
        self._refill_wanted.set()
        if self._filler is not None:
            self._filler.join(timeout=5)

    # ---- seal ----------------------------------------------------------------------------------------------------

    @property
    def sealed(self) -> bool:
        return self._root is None

    def forget(self) -> None:
        """Drop every key this process holds: the pool, the cache, the derived keys and the root."""
        with self._lock:
            self._root = None
            self._pool.clear()
            self._cache.clear()
            self._derived.clear()

    def unseal(self, root_secret: bytes) -> None:
        if len(root_secret) != 32:
            raise ValueError("the root secret is not 256 bits")
        with self._lock:
            self._root = root_secret
        self._refill_wanted.set()

    def _check_unsealed(self) -> None:
        if self._root is None:
            raise Sealed()

    # ---- versions -------------------------------------------------------------------------------------------------

    def _key_info(self, *, fresh: bool = False) -> KeyInfo:
        """The key's versions, asked again after `info_ttl`; while OpenBao is away, the last ones known do."""
        now = time.monotonic()
        if fresh or self._info is None or now - self._info_at >= self.info_ttl:
            try:
                info = self.client.key_info()
            except KeysUnavailable:
                if self._info is None or fresh:
                    raise
                return self._info
            self._note_info(info)
        assert self._info is not None
        return self._info

    def _note_info(self, info: KeyInfo) -> None:
        with self._lock:
            self._info, self._info_at = info, time.monotonic()
            # Keys wrapped under an older version would outlive a rotation (and block retiring that version).
            while self._pool and _kid_number(self._pool[0][1].kid) < info.latest_version:
                self._pool.popleft()

    def _note_version(self, version: int) -> None:
        """An encryption came back under `version`: newer than we knew means someone rotated."""
        info = self._info
        if info is None or version > info.latest_version:
            try:
                self._key_info(fresh=True)
            except KeysUnavailable:  # the wrap itself succeeded; the versions are asked again later
                pass

    @property
    def active(self) -> str:
        return f"v{self._key_info().latest_version}"

    @property
    def kids(self) -> list[str]:
        """Every version that still decrypts, the active one first."""
        info = self._key_info()
        older = range(info.latest_version - 1, max(info.min_decryption_version, 1) - 1, -1)
        return [f"v{info.latest_version}", *(f"v{n}" for n in older)]

    def rotate(self) -> str:
        """A new Transit key version, active at once; the old ones still unwrap until retired."""
        self._check_unsealed()
        self._note_info(self.client.rotate())
        self._refill_wanted.set()
        return self.active

    def retire(self, kid: str) -> None:
        """Trim `kid` and every older version out of Transit for good (Transit only forgets from the oldest up):
        whatever they wrapped never opens again, anywhere. The caller checks first that nothing does. Never the
        active one."""
        number = _kid_number(kid)
        info = self._key_info(fresh=True)
        if number >= info.latest_version:
            raise ValueError(f"{kid} is the active key-encryption key")
        if number < info.min_decryption_version:
            raise KeyError(kid)
        self._note_info(self.client.trim(number + 1))

    # ---- data keys ------------------------------------------------------------------------------------------------

    def wrap(self, data_key: bytes) -> WrappedKey:
        return self.wrap_many([data_key])[0]

    def wrap_many(self, data_keys: Sequence[bytes]) -> list[WrappedKey]:
        self._check_unsealed()
        wrapped = [WrappedKey(f"v{_version_of(c)}", c.encode()) for c in self.client.encrypt_many(data_keys)]
        if wrapped:
            self._note_version(max(_kid_number(w.kid) for w in wrapped))
        return wrapped

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        self._check_unsealed()
        ciphertext = self._ciphertext(wrapped)  # checked even on a cache hit: a row whose kid lies never opens
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(wrapped.blob)
            if hit is not None and hit[1] > now:
                self._cache.move_to_end(wrapped.blob)
                return hit[0]
        data_key = self.client.decrypt(ciphertext)
        self._remember(wrapped.blob, data_key)
        return data_key

    def unwrap_many(self, wrapped: Iterable[WrappedKey]) -> list[bytes]:
        """Several at once: what the cache lacks in one call."""
        self._check_unsealed()
        items = list(wrapped)
        ciphertexts = {w.blob: self._ciphertext(w) for w in items}
        now = time.monotonic()
        found: dict[bytes, bytes] = {}
        with self._lock:
            for w in items:
                hit = self._cache.get(w.blob)
                if hit is not None and hit[1] > now:
                    found[w.blob] = hit[0]
        missing = list(dict.fromkeys(w.blob for w in items if w.blob not in found))
        if missing:
            opened = self.client.decrypt_many([ciphertexts[b] for b in missing])
            for blob, data_key in zip(missing, opened, strict=True):
                found[blob] = data_key
                self._remember(blob, data_key)
        return [found[w.blob] for w in items]

    @staticmethod
    def _ciphertext(wrapped: WrappedKey) -> str:
        try:
            ciphertext = wrapped.blob.decode("ascii")
        except UnicodeDecodeError:
            raise DecryptionError("not a Transit ciphertext") from None
        if f"v{_version_of(ciphertext)}" != wrapped.kid:
            raise DecryptionError(f"the wrapped key's version is not {wrapped.kid}")
        return ciphertext

    def _remember(self, blob: bytes, data_key: bytes) -> None:
        if self.cache_max_entries <= 0 or self.cache_ttl <= 0:
            return
        with self._lock:
            if self._root is None:  # forgotten meanwhile: keep nothing
                return
            self._cache[blob] = (data_key, time.monotonic() + self.cache_ttl)
            self._cache.move_to_end(blob)
            while len(self._cache) > self.cache_max_entries:
                self._cache.popitem(last=False)

    def rewrap(self, wrapped: WrappedKey) -> WrappedKey:
        """The same data key under the active version (for rotation), re-encrypted inside OpenBao."""
        return self.rewrap_many([wrapped])[0]

    def rewrap_many(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey]:
        self._check_unsealed()
        active = self.active
        stale = [w for w in wrapped if w.kid != active]
        fresh = iter(self.client.rewrap_many([self._ciphertext(w) for w in stale]))
        out = []
        for w in wrapped:
            if w.kid == active:
                out.append(w)
            else:
                ciphertext = next(fresh)
                out.append(WrappedKey(f"v{_version_of(ciphertext)}", ciphertext.encode()))
        return out

    def new_wrapped_data_key(self) -> tuple[bytes, WrappedKey]:
        """A fresh data key and it wrapped under the active version: from the pool, or one call when it is empty."""
        self._check_unsealed()
        if self._filler is None:
            self._key_info()  # without the thread, see a rotation made elsewhere within `info_ttl` here
        with self._lock:
            taken = self._pool.popleft() if self._pool else None
            low = len(self._pool) < self.pool_low_water
        if low:
            self._refill_wanted.set()
        if taken is None:
            data_key = new_data_key()
            taken = data_key, self.wrap(data_key)
        # The record it seals is often read back at once (the answer to its creation): no round trip for that.
        self._remember(taken[1].blob, taken[0])
        return taken

    @property
    def pooled(self) -> int:
        return len(self._pool)

    @property
    def cached(self) -> int:
        return len(self._cache)

    def fill_pool(self) -> int:
        """Wrap fresh keys in one batch until the pool is full; how many were added. The background thread calls
        this; a test or a start-up may too."""
        if self._root is None:
            return 0
        wanted = self.pool_size - len(self._pool)
        if wanted <= 0:
            return 0
        keys = [new_data_key() for _ in range(wanted)]
        wrapped = self.wrap_many(keys)
        with self._lock:
            if self._root is None:
                return 0
            latest = self._info.latest_version if self._info else 0
            added = [(k, w) for k, w in zip(keys, wrapped, strict=True) if _kid_number(w.kid) >= latest]
            self._pool.extend(added)
        return len(added)

    def _fill_forever(self) -> None:
        """Refill the pool when asked, and look at the key's versions every `info_ttl` seconds, so that a rotation
        made elsewhere is seen without a request paying a round trip for it."""
        while not self._closed.is_set():
            self._refill_wanted.wait(timeout=self.info_ttl)
            self._refill_wanted.clear()
            if self._closed.is_set():
                return
            try:
                self._key_info()
                self.fill_pool()
            except (KeysUnavailable, Sealed):
                # OpenBao away: requests find the pool empty and get their own 503; try again a little later.
                self._closed.wait(BREAKER_SECONDS)
                self._refill_wanted.set()
            except Exception:  # noqa: BLE001 - the thread must live on; the next wake tries again
                log.exception("refilling the data key pool failed")
                self._closed.wait(BREAKER_SECONDS)

    # ---- derived keys ---------------------------------------------------------------------------------------------

    def derive(self, purpose: str, kid: str | None = None) -> bytes:
        """A key for one purpose, derived from the root secret. The same whatever Transit version is active (`kid`
        is accepted for the `Keyring` surface): a rotation of the Transit key does not change it."""
        root = self._root
        if root is None:
            raise Sealed()
        return HKDF(SHA256(), 32, salt=None, info=f"rehab:{purpose}".encode()).derive(root)

    def derived_keys(self, purpose: str) -> list[bytes]:
        """The purpose's keys, newest first: one, since they do not depend on the Transit version."""
        with self._lock:
            key = self._derived.get(purpose)
        if key is None:
            key = self.derive(purpose)
            with self._lock:
                if self._root is not None:
                    self._derived[purpose] = key
        return [key]


def _kid_number(kid: str) -> int:
    if not (kid.startswith("v") and kid[1:].isdigit()):
        raise KeyError(kid)
    return int(kid[1:])
