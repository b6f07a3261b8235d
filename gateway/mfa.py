"""A second factor for every person (SPEC §3): TOTP (RFC 6238: SHA-1, 6 digits, 30 s) with 10 single-use recovery
codes. A code works once: the step it belongs to must be later than the last one accepted.

Use cases of the gateway's database (functions of a session that never commit), and the rules of codes."""

from __future__ import annotations

from collections.abc import Callable

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
from sqlalchemy import delete
from sqlmodel import Session, select

from gateway.models import RecoveryCode, TotpFactor, User
from kit import crypto
from kit.errors import Conflict, Invalid

ISSUER = "Rehab Support"
STEP_SECONDS = 30
DIGITS = 6
RECOVERY_CODES = 10
# A code of the step before or after the current one is accepted too: phones' clocks drift.
DRIFT_STEPS = 1


class FactorKeys:
    """Keys for the second factor, derived from another secret of the gateway's for this use only: one seals TOTP
    secrets, one names recovery codes by keyed hash (a recovery code has 40 random bits: a plain hash of it could
    be searched offline)."""

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        # A function when the key is in the gateway's sealable custody (kit.custody): derived on each use, so a
        # seal leaves no copy here.
        self._key_source = key if callable(key) else (lambda: key)

    @property
    def sealing(self) -> bytes:
        return hmac.new(self._key_source(), b"rehab totp secrets", hashlib.sha256).digest()

    def recovery_hash(self, user_id: str, code: str) -> str:
        naming = hmac.new(self._key_source(), b"rehab recovery codes", hashlib.sha256).digest()
        normal = code.strip().lower().replace("-", "").replace(" ", "")
        return hmac.new(naming, f"{user_id}\0{normal}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str


def enrol(*, session: Session, keys: FactorKeys, user_id: str, username: str) -> Enrolment:
    """A new secret for the user; it replaces an unconfirmed one. A confirmed factor is replaced only after an
    admin's reset (an attacker with a stolen session must not swap the victim's phone for theirs)."""
    factor = session.get(TotpFactor, user_id)
    if factor is not None and factor.confirmed_at is not None:
        raise Conflict("A second factor is already set up; an admin can reset it if it is lost.",
                       code="mfa-already-enrolled")
    secret = pyotp.random_base32()
    sealed = base64.b64encode(crypto.seal(keys.sealing, secret.encode(), _aad(user_id))).decode()
    if factor is None:
        factor = TotpFactor(user_id=user_id, secret_sealed=sealed, created_at=_now())
    else:
        factor.secret_sealed, factor.created_at, factor.last_step = sealed, _now(), 0
    session.add(factor)
    return _enrolment(secret, username)


def unconfirmed(*, session: Session, keys: FactorKeys, user_id: str, username: str) -> Enrolment | None:
    """The enrolment the user has begun and not confirmed yet, to show its secret again after a mistyped code (the
    app has already saved it: a new one would make that entry useless); None when there is none."""
    factor = session.get(TotpFactor, user_id)
    if factor is None or factor.confirmed_at is not None:
        return None
    secret = crypto.open_sealed(keys.sealing, base64.b64decode(factor.secret_sealed), _aad(user_id)).decode()
    return _enrolment(secret, username)


def _enrolment(secret: str, username: str) -> Enrolment:
    """The secret as the user types it, and as the authenticator app reads it from a QR code (otpauth:// URI)."""
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=username, issuer_name=ISSUER)
    return Enrolment(secret=secret, otpauth_uri=uri)


PASSWORD_FIRST = ("Choose a password of your own first (POST /auth/password): the one you were given is known to whoever "
                  "set it.")


def confirm(*, session: Session, keys: FactorKeys, user_id: str, code: str) -> list[str]:
    """The user proves they hold the secret with a current code: the factor is in force, and these are their
    recovery codes (shown once, stored only as keyed hashes)."""
    factor = session.get(TotpFactor, user_id, with_for_update=True)
    if factor is None:
        raise Conflict("Start with enrolment: there is no second factor to confirm.", code="mfa-not-enrolling")
    if factor.confirmed_at is not None:
        raise Conflict("The second factor is already confirmed.", code="mfa-already-enrolled")
    user = session.get(User, user_id)
    if user is not None and user.must_choose_password:  # whoever set the password could otherwise enrol their own
        raise Conflict(PASSWORD_FIRST, code="password-change-required")
    if not _accept_totp(factor, keys, code):
        raise Invalid("The code is not right: type the one your app shows now.", code="mfa-code-wrong")
    factor.confirmed_at = _now()
    session.add(factor)
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(code_hash=keys.recovery_hash(user_id, c), user_id=user_id) for c in codes)
    return codes


def enrolled(*, session: Session, user_id: str) -> bool:
    factor = session.get(TotpFactor, user_id)
    return factor is not None and factor.confirmed_at is not None


TOTP, RECOVERY_CODE = "totp", "recovery-code"  # which second factor a sign-in gave (`check`)


def check(*, session: Session, keys: FactorKeys, user_id: str, code: str | None, at: float | None = None) -> str | None:
    """At sign-in: a TOTP code current `at` (the time the request arrived: it may have waited for the hasher) not
    used before (`TOTP`), or an unused recovery code, then used up (`RECOVERY_CODE`: the phone may be lost, or the
    code taken, so the caller audits it); None for neither."""
    if not code:
        return None
    factor = session.get(TotpFactor, user_id, with_for_update=True)
    if factor is None or factor.confirmed_at is None:
        return None
    if _accept_totp(factor, keys, code, at=at):
        session.add(factor)
        return TOTP
    recovery = session.get(RecoveryCode, keys.recovery_hash(user_id, code), with_for_update=True)
    if recovery is None or recovery.user_id != user_id or recovery.used_at is not None:
        return None
    recovery.used_at = _now()
    session.add(recovery)
    return RECOVERY_CODE


def reset(*, session: Session, user_id: str) -> None:
    """An admin's reset (approved where approvals apply): the user enrols again at the next sign-in."""
    session.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id))
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


def recovery_codes_left(*, session: Session, user_id: str) -> int:
    rows = session.exec(select(RecoveryCode).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)))  # type: ignore[union-attr]
    return len(list(rows))


def _accept_totp(factor: TotpFactor, keys: FactorKeys, code: str, *, at: float | None = None) -> bool:
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return False
    secret = crypto.open_sealed(keys.sealing, base64.b64decode(factor.secret_sealed), _aad(factor.user_id)).decode()
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now_step = int(time.time() if at is None else at) // STEP_SECONDS
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if step > factor.last_step and hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            factor.last_step = step
            return True
    return False


def _recovery_code() -> str:
    raw = secrets.token_hex(5)
    return f"{raw[:5]}-{raw[5:]}"


def _aad(user_id: str) -> bytes:
    return crypto.aad("totp_factors", "secret_sealed", user_id)


def _now() -> datetime:
    return datetime.now(UTC)
