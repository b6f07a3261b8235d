"""An account's first password, split between two admins (SPEC §7.8: no one person gives themselves access while a
second admin exists).

An admin who creates an account types its first password; with another admin to check, the account waits for that
admin's approval. Had the first password been enough, its admin could sign in before the person, choose a password of
their own and enrol their own phone: an account for a real new hire, taken over with nobody the wiser until the
person found it set up. So the approval also makes an activation code, shown once to the approving admin: the person
needs the password from one admin and the code from the other to choose their own password (and only then to set up
a second factor, gateway.mfa). A lone admin's accounts have no code: there is nobody to split with.

The code is 12 characters of an alphabet without look-alikes (60 bits), typed with or without dashes, in any case;
only its SHA-256 is kept (like a refresh token's: a code that strong cannot be guessed from its hash), and it goes
once used. A wrong code is a failed sign-in of the account (gateway.api.choose_password): throttled like one. A code
lost before the account was set up is replaced by asking for a factor reset: the admin who approves it is shown a new
one (gateway.approvals), and that is never the admin who typed the first password (they would hold both halves); an
operator's `rehab users reset-password` on the server needs none.

A partner's API client is split the same way. The secret shown to the admin who issues it is a setup secret that gets
no token; where another admin approves the client, that admin is shown the client's activation code. The partner's
system sends both to POST /auth/clients/activate (gateway.api), which puts a secret the server makes, shown only in
that answer, in place of the setup secret: neither admin knows the secret the client works with, and neither alone
can take tokens as the partner. A lone admin's clients, and an operator's (`rehab clients add`), are activated with
the setup secret alone. A wrong secret or code there is a failed client sign-in: limited and audited like one. A code
lost before the client was activated: revoke the client and issue another (its approval shows a new code); nothing
has used the lost one's id."""

from __future__ import annotations

import hashlib
import hmac
import secrets

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I
LENGTH = 12


def new_code() -> str:
    """A code to read out or write down: `K7QM-4TZP-9HXC`."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, LENGTH, 4))


def digest(code: str) -> str:
    """What is kept of a code, as typed: dashes, spaces and letter case do not matter."""
    typed = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(typed.encode()).hexdigest()


def matches(kept: str, code: str | None) -> bool:
    return code is not None and hmac.compare_digest(kept, digest(code))
