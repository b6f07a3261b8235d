"""The route table: which public prefix goes to which service, and which roles may even try (deny by default).

This is the coarse wall. Each service checks the role again per operation, and the partner binding per record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kit.http import BodyLimit


@dataclass(frozen=True)
class Route:
    prefix: str
    backend: str
    roles: frozenset[str]

    @property
    def path(self) -> str:
        """The template the access log and metrics use for every request under this prefix."""
        return self.prefix + "/{path}"

    def covers(self, path: str) -> bool:
        return path.startswith(self.prefix + "/")


ROUTES: tuple[Route, ...] = (
    # Supervisors: the caseload and (re)assignment; intake checks which of its routes each role may use.
    Route("/api/intake", "intake", frozenset({"caseworker", "supervisor", "auditor"})),
    Route("/api/referrals", "referrals", frozenset({"admin", "caseworker", "auditor"})),
    Route("/api/partner", "referrals", frozenset({"partner", "partner_staff"})),
    Route("/api/funds", "funds", frozenset({"finance", "caseworker", "auditor"})),
    # Programme reports (SPEC §9): aggregated counts only, for coordinators and finance; auditors for its audit trail.
    Route("/api/reports", "reports", frozenset({"coordinator", "finance", "auditor"})),
)


# The routes whose body may be larger than `max_body_bytes` (1 MB): a case's document (intake refuses a file over
# 20 MiB itself, as it streams), sent through the API or from the console's upload form. Every other route, and
# every other method on these paths, keeps the gateway's own limit.
DOCUMENT_BODY_BYTES = 20 * 1024 * 1024 + 64 * 1024
UPLOADS = (
    BodyLimit("POST", re.compile(r"/api/intake/cases/[^/]+/documents"), DOCUMENT_BODY_BYTES, what="A document"),
    BodyLimit("POST", re.compile(r"/console/cases/[0-9a-fA-F-]{36}/documents"), DOCUMENT_BODY_BYTES,
              what="A document"),
)


def route_for(path: str) -> Route | None:
    return next((route for route in ROUTES if route.covers(path)), None)


# Routes a service offers to the other services only, never to the public: intake keeps a break-glass reason that
# referrals or funds were given (kit.need_to_know.ReasonKeeper). Through the gateway a caseworker could write such a
# line with a service of their choosing on it; forwarded, these paths answer 404 like any path that does not exist.
INTERNAL = (re.compile(r"/api/intake/cases/[^/]+/openings/?"),)


def is_internal(path: str) -> bool:
    return any(pattern.fullmatch(path) for pattern in INTERNAL)


def has_dot_segment(path: str) -> bool:
    """`/api/partner/../referrals/…` must not reach another prefix's routes behind the role check."""
    return any(segment in (".", "..") for segment in path.split("/"))
