"""Argon2id hashing for staff passwords and client secrets, off the event loop and a few at a time."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.config import GatewaySettings
from kit.errors import Unavailable


class Busy(Unavailable):
    """More sign-ins are already waiting for the hasher than it clears in a moment: this one is refused at once."""

    retry_after = 2  # about what the slots clear of the default line (REHAB_PASSWORD_CHECKS_WAITING)

    def __init__(self) -> None:
        super().__init__("The sign-in service is busy: try again in a moment.", code="sign-in-busy")


class Hasher:
    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int, concurrency: int,
                 waiting: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)
        # Each hash takes tens of MiB and a good part of a core: a burst of sign-ins queues here instead.
        self._slots = asyncio.Semaphore(concurrency)
        # ...but only so far: a line without end (many addresses, each within its own rate) made everyone in it wait
        # a minute, and a one-time code typed meanwhile expire (`admitted`).
        self._admitting = concurrency + waiting
        self._admitted = 0
        # Checked when there is no real hash (unknown user, locked account), so those answers take as long as others.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(24))

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Hasher:
        return cls(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib,
                   parallelism=settings.argon2_parallelism, concurrency=settings.concurrent_password_checks,
                   waiting=settings.password_checks_waiting)

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """A place in line for a sign-in's checks, or `Busy` at once when the slots are taken and `waiting` others
        are in line already. Taken before the sign-in is counted against its user name, so that being refused
        here counts against nobody."""
        if self.full():
            raise Busy()
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    def full(self) -> bool:
        """Whether `admitted` would refuse a sign-in now: asked before an address's sign-in is spent, too."""
        return self._admitted >= self._admitting

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def matches(self, stored_hash: str | None, secret: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._decoy, secret) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)

    async def hash_async(self, secret: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self.hash, secret)

    async def matches_async(self, stored_hash: str | None, secret: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self.matches, stored_hash, secret)
