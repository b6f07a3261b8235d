"""Access tokens: issued by the gateway, verified by every process (defence in depth).

RFC 9068-style JWT access tokens signed with Ed25519 (EdDSA). Verification pins the algorithm, and checks the
signature, `exp`, `iat`, `iss` and `aud`; `alg: none` and HMAC-with-the-public-key confusion are refused because
only EdDSA is accepted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Annotated

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request

from kit.errors import RefusalEntry, Refused
from kit.problems import Problem

ALGORITHM = "EdDSA"
STAFF_ROLES = frozenset({"admin", "caseworker", "supervisor", "finance", "auditor", "coordinator"})
PARTNER_ROLE = "partner"  # a partner organisation's API client
PARTNER_STAFF_ROLE = "partner_staff"  # a person at a partner organisation
# Either acts for exactly one partner organisation (`partner_id`) and holds no other role.
PARTNER_ROLES = frozenset({PARTNER_ROLE, PARTNER_STAFF_ROLE})


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the verified token says."""

    sub: str
    roles: frozenset[str]
    partner_id: str | None = None
    jti: str | None = None
    claims: dict = field(default_factory=dict, compare=False, hash=False)

    def has_any(self, roles: set[str] | frozenset[str]) -> bool:
        return bool(self.roles & set(roles))

    @property
    def enrolling(self) -> bool:
        """A token that opens only the second factor's enrolment (the user must have one and has not yet)."""
        return self.claims.get("scope") == ENROLMENT_SCOPE


ENROLMENT_SCOPE = "mfa_enrol"


def enrolment_required() -> Problem:
    # Said for both of its causes: someone with a factor whose password another person set (an admin, a reset, the
    # upgrade that brought that rule) is told to choose a password, not to set up the factor they have.
    return Problem(403, "This token opens only /auth/me, /auth/password and /auth/mfa/…: choose your own password "
                        "(POST /auth/password) where GET /auth/me says `must_choose_password`, else set up a second "
                        "factor; then sign in again.", kind="mfa-enrolment-required")


def session_ended() -> Problem:
    return Problem(401, "This session has ended (signed out, signed out everywhere, or the account was disabled); "
                   "sign in again.", kind="session-ended", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


_TOKENS_REMEMBERED = 10_000


class TokenVerifier:
    def __init__(self, public_key: Ed25519PublicKey, *, issuer: str, audience: str) -> None:
        self._key = public_key
        self.issuer = issuer
        self.audience = audience

    @classmethod
    def from_file(cls, path: Path, *, issuer: str, audience: str) -> TokenVerifier:
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("token public key must be Ed25519")
        return cls(key, issuer=issuer, audience=audience)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            raise Problem(401, "The access token is missing, invalid or expired.", kind="invalid-token",
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from exc
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Problem(401, "The access token carries malformed roles.", kind="invalid-token")
        partner_id = claims.get("partner_id")
        if PARTNER_ROLES & set(roles) and (not partner_id or len(roles) != 1):
            raise Problem(401, "A partner token must carry exactly one partner role and a partner id.",
                          kind="invalid-token")
        return Principal(sub=str(claims["sub"]), roles=frozenset(roles), partner_id=partner_id, jti=claims.get("jti"), claims=claims)


class VerifiedTokens:
    """TokenVerifier with a memory: a token's signature is checked once, its expiry on every use.

    The gateway and every service verify each request's token; an Ed25519 signature check costs more than the rest of
    a small request's authentication (about 5% of intake's processor time when opening cases, measured with
    py-spy), and a client sends the same token for its ten minutes. Forged or altered tokens never match a
    remembered one: the whole token string is the key."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier
        self._seen: dict[str, Principal] = {}

    def verify(self, token: str) -> Principal:
        principal = self._seen.get(token)
        if principal is not None:
            if principal.claims["exp"] > time.time():
                return principal
            del self._seen[token]
        principal = self.verifier.verify(token)  # raises a 401 problem
        if len(self._seen) >= _TOKENS_REMEMBERED:
            self._seen.clear()
        self._seen[token] = principal
        return principal


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The verification key as an RFC 8037 OKP JWK, with its RFC 7638 thumbprint as `kid`."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}


class TokenIssuer:
    def __init__(self, private_key: Ed25519PrivateKey | Callable[[], Ed25519PrivateKey], *, issuer: str,
                 audience: str, ttl_seconds: int = 600, public_key: Ed25519PublicKey | None = None) -> None:
        # A function when the key is in a sealable custody (kit.custody): asked for at each signing, so a sealed
        # gateway issues nothing; then the public half is given apart.
        self._key_source = private_key if callable(private_key) else (lambda: private_key)
        self._public = public_key or private_key.public_key()  # type: ignore[union-attr]
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self.jwk = public_jwk(self._public)  # its `kid` names the key in every token, for rotation

    @classmethod
    def from_file(cls, path: Path, *, issuer: str, audience: str, ttl_seconds: int = 600) -> TokenIssuer:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("token signing key must be Ed25519")
        return cls(key, issuer=issuer, audience=audience, ttl_seconds=ttl_seconds)

    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def issue(self, *, sub: str, roles: list[str], partner_id: str | None = None, extra: dict | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": str(uuid.uuid4()),
            "roles": sorted(roles),
            "client_id": sub,
        }
        if partner_id:
            claims["partner_id"] = partner_id
        if extra:
            claims.update(extra)
        return jwt.encode(claims, self._key_source(), algorithm=ALGORITHM, headers={"typ": "at+jwt", "kid": self.jwk["kid"]})


def bearer_token(request: Request) -> str:
    return bearer_in(request.headers.get("authorization"))


def bearer_in(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header's value; the 401 problem for any other or none."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "This path needs a bearer access token.", kind="missing-token",
                      headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """The verified caller. The verifier is put on `app.state.token_verifier` by the app factory."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = request.app.state.token_verifier.verify(bearer_token(request))
    revoked = getattr(request.app.state, "revoked_access", None)  # kit.revocation: every domain service has one
    if revoked is not None and revoked.refuses(principal):
        raise session_ended()
    if principal.enrolling:  # defence in depth: the gateway refuses these tokens on every forwarded path already
        raise enrolment_required()
    request.state.principal = principal
    return principal


ACCESS_REFUSED = "access.refused"  # the trail's word for a caller refused by role
_ASKED_LENGTH = 64  # what a trail's `target_id` holds


def role_refused(request: Request, principal: Principal, detail: str) -> Refused:
    """The 403 for a caller whose roles the route does not admit, carrying its audit entry (BACKBONE, Audit: every
    refused authorisation): who, and what they asked as the method and the route's path template
    (`GET /cases/{case_id}`), never the path or query sent, which may hold ids or whatever a caller typed. The
    gateway refuses roles first; a refusal here means a caller came past it, which the trail is to show."""
    route = request.scope.get("route")
    refused = Refused(detail, code="forbidden")
    refused.audit_entry = RefusalEntry(principal.sub, ACCESS_REFUSED, asked(request.method, getattr(route, "path", "")))
    return refused


def asked(method: str, template: str) -> str:
    """A refused request as a trail names it: the method and the route's path template, cut to what it holds."""
    return f"{method} {template}".strip()[:_ASKED_LENGTH]


def require_roles(*roles: str):
    """A dependency that lets through only callers holding one of `roles` (deny by default; refusals audited)."""
    wanted = frozenset(roles)

    async def _check(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.roles & wanted:
            raise role_refused(request, principal, "Your role does not allow this action.")
        return principal

    _check.__name__ = "require_" + "_or_".join(sorted(roles))
    _check.roles = wanted  # type: ignore[attr-defined]  # said in the OpenAPI document (kit.openapi.roles_of)
    return _check


async def require_partner(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """A partner's API client or a person on its staff, acting for its one partner organisation."""
    if not PARTNER_ROLES & principal.roles or not principal.partner_id:
        raise role_refused(request, principal, "Only a partner's API clients and staff may use this path.")
    return principal


require_partner.roles = PARTNER_ROLES  # type: ignore[attr-defined]
