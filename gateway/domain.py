"""The gateway's rules, with no I/O: the password policy, the sign-in slow-down and lockout, who keeps admin rights."""

from __future__ import annotations

from collections.abc import Callable

import gzip
import hashlib
import hmac
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

MIN_PASSWORD_LENGTH = 12
# Long enough for any passphrase; short enough that nobody makes the hasher chew on a megabyte.
MAX_PASSWORD_LENGTH = 256
# The 20,000 passwords seen most often in breaches (Royce Williams' list, as Django ships it), one per line, lower
# case. NIST SP 800-63B §5.1.1.2: refuse what attackers try first, instead of composition rules that push people to
# "Password1!".
BREACHED_PASSWORDS = Path(__file__).parent / "data" / "common-passwords.txt.gz"


def password_weakness(password: str, *, username: str) -> str | None:
    """Why `password` is not acceptable for `username`, in words the person choosing it understands; None if it is."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The password must be at least {MIN_PASSWORD_LENGTH} characters long."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The password must be at most {MAX_PASSWORD_LENGTH} characters long."
    folded = password.strip().casefold()
    if folded == username.strip().casefold():
        return "The password must not be the user name."
    if folded in breached_passwords():
        return "This password is on a list of passwords leaked in breaches, which attackers try first; choose another."
    if repetitive_or_sequential(folded):
        return "The password must not be one character or a short group repeated, or a run such as 123456 or abcdef."
    return None


# The longest group of characters whose repetition makes a password refused: "abcabcabcabc" is, "Rock-Rock-Rock" is
# not (a word of four or more repeated is a passphrase of sorts, and the breached list holds the common ones).
REPEATED_GROUP_MAX = 3


def repetitive_or_sequential(folded: str) -> bool:
    """NIST SP 800-63B §5.1.1.2 names them beside breached passwords: one character or a group of up to three over
    and over ("aaaaaaaaaaaa", "ababababab12" is not: the whole password must be the repetition), or a run where each
    character follows the one before by the same step ("123456789012", digits going round after 9; "zyxwvutsrqpo")."""
    for size in range(1, REPEATED_GROUP_MAX + 1):
        if len(folded) >= 2 * size and (folded[:size] * (len(folded) // size + 1))[:len(folded)] == folded:
            return True
    steps = {_step(before, after) for before, after in zip(folded, folded[1:])}
    return len(steps) == 1 and steps <= {1, -1}


def _step(before: str, after: str) -> int | None:
    """+1 or -1 when `after` follows or precedes `before` (digits go round: 9 then 0), else None."""
    if before.isdigit() and after.isdigit() and before.isascii() and after.isascii():
        return {1: 1, 9: -1}.get((int(after) - int(before)) % 10)
    difference = ord(after) - ord(before)
    return difference if difference in (1, -1) and before.isalpha() and after.isalpha() else None


@cache
def breached_passwords() -> frozenset[str]:
    with gzip.open(BREACHED_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip().casefold() for line in lines if line.strip())


def normalise_roles(roles: list[str]) -> list[str]:
    return sorted(set(roles))


def roles_refusal(roles: list[str], *, partner_id: str | None) -> str | None:
    """Why these roles cannot be held together (SPEC §2), or None: `admin` alone (who manages accounts holds no
    other power); `partner_staff` alone and bound to one partner; a partner id for nobody else."""
    held = set(roles)
    if "admin" in held and len(held) > 1:
        return "The admin role is never combined with another role."
    if "partner_staff" in held:
        if len(held) > 1:
            return "A partner's staff member holds the partner_staff role alone."
        if not partner_id:
            return "A partner's staff member needs the partner_id of their organisation."
    elif partner_id:
        return "Only a partner's staff member (partner_staff) is bound to a partner."
    return None


def needs_approval(*, enabled_admins: int) -> bool:
    """With two or more admins, one admin's grant takes effect only when another approves it; a lone admin's takes
    effect at once (nobody else could check it, and the console says so)."""
    return enabled_admins >= 2


@dataclass(frozen=True)
class SignInPolicy:
    """Failed password sign-ins slow a user name down *from the address they came from*, growing with each failure,
    and after `lock_after` failures in a row lock it there for `lock_seconds`: someone guessing elsewhere cannot
    lock the owner out. Failures from all addresses together count towards a much higher ceiling,
    `lock_everywhere_after`, which locks the name everywhere (a guessing campaign spread over many addresses) for
    `lock_seconds` after the failure that reached it; the owner's right password with their second factor still
    passes that lock. An address's count is forgotten `forget_after_seconds` after it started; a success clears it.
    The count everywhere forgets its failures one by one (`decayed`), so that a campaign's failures stop counting
    over that time, and anyone can lock a name only by going on failing."""

    backoff_seconds: float
    lock_after: int
    lock_seconds: int
    lock_everywhere_after: int
    forget_after_seconds: int
    # The second factor's own count: wrong (or missing) one-time codes sent with the *right* password, from every
    # address together. Only someone who has the password sends one, so from the `lock_codes_after`-th on, each
    # locks the name's sign-in for `lock_seconds`, the owner's right code included (an address count alone let
    # many addresses guess a six-digit code); it forgets one as the count everywhere does (`decayed`).
    lock_codes_after: int = 10

    def wait_after(self, failures: int) -> timedelta:
        """How long a user name waits, from one address, after its `failures`-th failure in a row there."""
        if failures <= 0:
            return timedelta(0)
        if failures >= self.lock_after:
            return timedelta(seconds=self.lock_seconds)
        return timedelta(seconds=min(self.backoff_seconds * 2 ** (failures - 1), self.lock_seconds))

    def wait_after_wrong_codes(self, failures: int) -> timedelta:
        return timedelta(seconds=self.lock_seconds) if failures >= self.lock_codes_after else timedelta(0)

    def wait_everywhere_after(self, failures: int) -> timedelta:
        return timedelta(seconds=self.lock_seconds) if failures >= self.lock_everywhere_after else timedelta(0)

    def decayed(self, failures: int, since: datetime, now: datetime) -> tuple[int, datetime]:
        """The count everywhere at `now`, of `failures` counted from `since`, and the time it now counts from: one
        failure is forgotten every `forget_after_seconds / lock_everywhere_after` (29 minutes by default), so a
        count that locks is forgotten within `forget_after_seconds`. Kept whole for that long instead, one more
        failure every `lock_seconds` kept the name locked all day."""
        every = timedelta(seconds=self.forget_after_seconds / self.lock_everywhere_after)
        forgotten = min(failures, int((now - since) / every))
        if forgotten == failures:
            return 0, now
        return failures - forgotten, since + forgotten * every


def key_for(secret: bytes, purpose: str) -> bytes:
    """A key for one use only, from another secret of the gateway's (its audit key: it has no KEK); knowing it tells
    nothing of that secret or of the keys of other uses."""
    return hmac.new(secret, f"rehab {purpose}".encode(), hashlib.sha256).digest()


class ThrottleKeys:
    """Names for the sign-in throttle's rows that reveal neither a user name nor an address: a row is kept for any
    name typed (a password typed into the name field included), so it is named by a keyed hash only."""

    def __init__(self, secret: bytes | Callable[[], bytes]) -> None:
        # A function when the secret is in the gateway's sealable custody (kit.custody): asked for on each use.
        self._secret_source = secret if callable(secret) else (lambda: secret)

    @classmethod
    def derived_from(cls, key: bytes | Callable[[], bytes]) -> ThrottleKeys:
        """From another secret of the gateway's, for this use only (knowing these names tells nothing of it)."""
        source = key if callable(key) else (lambda: key)
        return cls(lambda: key_for(source(), "sign-in throttle names"))

    def everywhere(self, username: str) -> str:
        return self._name(b"user", username.strip().casefold())

    def here(self, username: str, address: str) -> str:
        return self._name(b"user+address", username.strip().casefold(), address)

    def codes(self, username: str) -> str:
        """The row of wrong one-time codes sent with the right password (SignInPolicy.lock_codes_after)."""
        return self._name(b"user+codes", username.strip().casefold())

    def _name(self, *parts: bytes | str) -> str:
        message = b"\0".join(p if isinstance(p, bytes) else p.encode() for p in parts)
        return hmac.new(self._secret_source(), message, hashlib.sha256).hexdigest()


def counted_address(host: str) -> str:
    """A client's address as sign-in throttles and budgets count it: an IPv4 address as it is, an IPv6 address as
    its /64 (a home or a host is given a whole /64: counted address by address, it could try as many times as it
    has addresses), an IPv4 address written in IPv6 as the IPv4 address."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and not address.is_loopback:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network((address, 64), strict=False))
    return host


def seconds_left(until: datetime | None, now: datetime) -> int:
    """Whole seconds until `until` (at least 1 while it is ahead), 0 once it has passed."""
    if until is None or until <= now:
        return 0
    return max(1, math.ceil((until - now).total_seconds()))


def removes_last_admin(*, enabled_admin_ids: set[str], user_id: str) -> bool:
    """Disabling this user would leave nobody able to manage users."""
    return enabled_admin_ids == {user_id}
