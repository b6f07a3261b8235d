"""The rules of partners' webhooks, with no I/O: what is sent, when a failed delivery is tried again, and which
URLs and addresses a delivery may go to (SPEC §4, Standard Webhooks). Tested as tables in tests/unit/referrals.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from standardwebhooks import Webhook as StandardWebhook

from kit.errors import Invalid
from services.referrals.domain import Status


class WebhookEvent(StrEnum):
    """What a partner may subscribe to. The body says only which referral and its state: the partner fetches the
    rest (the packet, a message) through the API, with its own credentials."""

    SENT = "referral.sent"
    CANCELLED = "referral.cancelled"
    MESSAGE = "referral.message"


# The lifecycle steps a partner is told of: the ones it did not take itself.
EVENT_OF_STATUS = {Status.SENT: WebhookEvent.SENT, Status.CANCELLED: WebhookEvent.CANCELLED}


class DeliveryState(StrEnum):
    PENDING = "pending"      # waiting for its first attempt or its next retry
    DELIVERED = "delivered"  # a receiver answered 2xx
    DEAD = "dead"            # still failing after the retry window: a dead letter, kept for admins to see
    DROPPED = "dropped"      # its webhook was removed before it could be delivered


SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of 256 random bits."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def body(event: WebhookEvent | str, referral_id: str, status: Status | str, at: datetime) -> bytes:
    """The one body a delivery sends, on every attempt: ids and a state, nothing about the person."""
    stamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": str(event), "timestamp": stamp,
                       "data": {"referral_id": referral_id, "status": str(status)}},
                      separators=(",", ":")).encode()


# ---- retries ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with full jitter: the n-th wait (n = failures so far) is a random time between `base`
    and min(`cap`, `base` × 2^(n-1)). A delivery that fails once `window` has passed since it was written is dead:
    so it is tried for at least `window`, however the dice fell."""

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(hours=3)
    window: timedelta = timedelta(hours=24)

    def ceiling(self, failures: int) -> timedelta:
        """The longest wait after `failures` failed attempts (≥ 1)."""
        exponent = max(failures, 1) - 1
        return self.cap if exponent >= 40 else min(self.cap, self.base * 2**exponent)

    def wait(self, failures: int, draw: Callable[[], float] = random.random) -> timedelta:
        """The wait before the next attempt: full jitter under the ceiling, never below `base`."""
        return max(self.base, self.ceiling(failures) * draw())

    def next_attempt(self, *, created_at: datetime, now: datetime, failures: int,
                     draw: Callable[[], float] = random.random) -> datetime | None:
        """When to try again after the `failures`-th failed attempt ending at `now`; None: dead (the window is over)."""
        if now - created_at >= self.window:
            return None
        return now + self.wait(failures, draw)


# ---- where a delivery may go -----------------------------------------------------------------------------------


class TargetRefused(Invalid):
    """A webhook URL, or the addresses its host resolves to, that deliveries may not go to (422)."""

    def __init__(self, detail: str, *, code: str = "webhook-target-refused", reason: str = "refused") -> None:
        super().__init__(detail, code=code)
        self.reason = reason


MAX_URL_LENGTH = 2048


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart: where to connect (after the addresses are checked) and what to ask for."""

    scheme: str
    host: str               # a host name in ASCII (IDNA), or an IP address without brackets
    port: int
    path: str               # path and query, as the request line carries them
    literal: bool           # the host is an IP address: nothing to resolve

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def pinned_url(self, address: str) -> str:
        """The URL with its host replaced by the checked address, so nothing resolves the name a second time."""
        host = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse_target(url: str, *, allow_private: bool) -> Target:
    """Take a webhook URL apart, or refuse it: https only (http too when private targets are allowed), a host, no
    user name or password, no fragment. An IP address as the host is checked here; a name, once resolved."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"The webhook URL is longer than {MAX_URL_LENGTH} characters.", code="webhook-url-invalid")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url.strip()):
        # urlsplit drops tabs and line breaks silently: what is stored and shown would not be where deliveries go
        raise TargetRefused("The webhook URL must not hold spaces or control characters (encode them as %20 etc.).",
                            code="webhook-url-invalid")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise TargetRefused("The webhook URL cannot be read.", code="webhook-url-invalid") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme.lower() not in schemes:
        # The same kind either way (a client checks it); the words say what this installation takes.
        detail = ("The webhook URL must use http or https (http is taken only where private targets are allowed, "
                  "for development)." if allow_private else
                  "The webhook URL must use https: deliveries are never sent in clear.")
        raise TargetRefused(detail, code="webhook-https-required", reason="scheme")
    if not parts.hostname:
        raise TargetRefused("The webhook URL has no host.", code="webhook-url-invalid")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("The webhook URL must not carry a user name or password: deliveries are signed.",
                            code="webhook-url-invalid")
    if parts.fragment:
        raise TargetRefused("The webhook URL must not have a fragment (#…).", code="webhook-url-invalid")
    scheme = parts.scheme.lower()
    host = parts.hostname.rstrip(".")
    literal = _ip(host)
    if literal is None:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise TargetRefused("The webhook URL's host is not a valid name.", code="webhook-url-invalid") from None
    else:
        host = str(literal)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    target = Target(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), path=path,
                    literal=literal is not None)
    if literal is not None:
        check_addresses([host], allow_private=allow_private)
    return target


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# 64:ff9b::/96 (RFC 6052) carries an IPv4 address in its last 32 bits, which a NAT64 gateway connects to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Special-purpose blocks some Python versions call global (their flags follow the IANA registries as each release
# read them): site-local IPv6, IETF protocol assignments, the 6to4 relay anycast, benchmarking, the old class E.
# None is a partner's public server; some still route inside an organisation's network.
_SPECIAL_PURPOSE = tuple(ipaddress.ip_network(block) for block in (
    "fec0::/10", "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "240.0.0.0/4", "100::/64", "2001::/23",
))


def refused_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a delivery may not connect to this address (loopback, private, link-local, multicast, reserved,
    unspecified, or otherwise not public), or None for a public one. An IPv6 address that carries an IPv4 one
    (IPv4-mapped, NAT64, 6to4, Teredo) is judged by that too."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "link-local"
        # Where the connection really goes: the IPv4 address an IPv4-mapped or NAT64 address stands for.
        stands_for = ip.ipv4_mapped or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if stands_for is not None:
            return refused_address(stands_for)
        for inner in (ip.sixtofour, *(ip.teredo or ())):
            if inner is not None and (reason := refused_address(inner)):
                return reason
    for reason, applies in (("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
                            ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
                            ("reserved", ip.is_reserved), ("private", ip.is_private)):
        if applies:
            return reason
    if not ip.is_global or any(ip in block for block in _SPECIAL_PURPOSE if block.version == ip.version):
        return "not public"
    return None


def check_addresses(addresses: Iterable[str], *, allow_private: bool) -> None:
    """Refuse when any address the host has is one deliveries may not reach (one bad answer is enough: the next
    lookup may return it first)."""
    found = list(addresses)
    if not found:
        raise TargetRefused("The webhook's host has no address.", reason="unresolved")
    if allow_private:
        return
    for address in found:
        reason = refused_address(address)
        if reason:
            kind = "a special-purpose range" if reason == "not public" else reason
            raise TargetRefused(f"The webhook's host has an address that is not public ({kind}): webhooks go only "
                                f"to public addresses.",
                                reason=reason)


# ---- signing (Standard Webhooks) -------------------------------------------------------------------------------

USER_AGENT = "rehab-support-webhooks/1"


def signed_headers(delivery_id: str, payload: str, secrets: Iterable[str], signed_at: int) -> dict[str, str]:
    """The headers of one attempt: `webhook-id` (the delivery's, the same on every retry), `webhook-timestamp`
    (this attempt's, in seconds) and `webhook-signature`, one `v1,<base64 HMAC-SHA256>` per secret in force,
    space-separated (the current secret first; the previous one too during a rotation)."""
    moment = datetime.fromtimestamp(signed_at, UTC)
    signatures = " ".join(StandardWebhook(secret).sign(delivery_id, moment, payload) for secret in secrets)
    return {"webhook-id": delivery_id, "webhook-timestamp": str(signed_at), "webhook-signature": signatures,
            "content-type": "application/json", "user-agent": USER_AGENT}
