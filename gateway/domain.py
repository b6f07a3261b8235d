"""The gateway's rules, with no I/O: the password policy, the sign-in slow-down and lockout, who keeps admin rights."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MIN_PASSWORD_LENGTH = 12
# Long enough for any passphrase; short enough that nobody makes the hasher chew on a megabyte.
MAX_PASSWORD_LENGTH = 256


def password_weakness(password: str, *, username: str) -> str | None:
    """Why `password` is not acceptable for `username`, in words the person choosing it understands; None if it is."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The password must be at least {MIN_PASSWORD_LENGTH} characters long."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The password must be at most {MAX_PASSWORD_LENGTH} characters long."
    if len({_character_class(c) for c in password}) < 2:
        return "The password must mix at least two kinds of characters (lower case, upper case, digits, others)."
    if password.strip().casefold() == username.strip().casefold():
        return "The password must not be the user name."
    return None


def _character_class(c: str) -> str:
    if c.islower():
        return "lower"
    if c.isupper():
        return "upper"
    if c.isdigit():
        return "digit"
    return "other"


def normalise_roles(roles: list[str]) -> list[str]:
    return sorted(set(roles))


@dataclass(frozen=True)
class LockoutPolicy:
    """After each failed sign-in an account waits longer before the next try; after `lock_after` failures in a row
    it is locked for `lock_seconds`. A success starts the count again."""

    backoff_seconds: float
    lock_after: int
    lock_seconds: int

    def wait_after(self, failures: int) -> timedelta:
        """How long the account refuses every sign-in after its `failures`-th failure in a row."""
        if failures <= 0:
            return timedelta(0)
        if failures >= self.lock_after:
            return timedelta(seconds=self.lock_seconds)
        return timedelta(seconds=min(self.backoff_seconds * 2 ** (failures - 1), self.lock_seconds))

    def locks(self, failures: int) -> bool:
        return failures >= self.lock_after


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and locked_until > now


def removes_last_admin(*, enabled_admin_ids: set[str], user_id: str) -> bool:
    """Disabling this user would leave nobody able to manage users."""
    return enabled_admin_ids == {user_id}
