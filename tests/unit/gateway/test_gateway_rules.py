"""The gateway's rules without I/O: password policy, sign-in slow-down and lockout, the route table's coarse wall."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain import LockoutPolicy, is_locked, password_weakness, removes_last_admin
from gateway.routing import ROUTES, has_dot_segment, route_for


@pytest.mark.parametrize("password", [
    "Short-1",  # too short
    "alllowercaseletters",  # one kind of character
    "123456789012345",  # one kind of character
    "Сяргей.Марозаў",  # the user name itself, in any case
    "x" * 257 + "Y1",  # longer than anyone needs
])
def test_weak_passwords_are_refused_with_a_reason(password: str):
    assert password_weakness(password, username="сяргей.марозаў")


@pytest.mark.parametrize("password", ["Staff-passphrase-2026", "correct horse battery staple", "Кацярына1988год"])
def test_reasonable_passwords_pass(password: str):
    assert password_weakness(password, username="katsiaryna") is None


def test_failures_wait_longer_each_time_then_lock():
    policy = LockoutPolicy(backoff_seconds=1, lock_after=5, lock_seconds=900)

    waits = [policy.wait_after(n).total_seconds() for n in range(1, 7)]

    assert waits == [1, 2, 4, 8, 900, 900]
    assert not policy.locks(4) and policy.locks(5)
    assert policy.wait_after(0) == timedelta(0)


def test_a_lock_holds_until_its_time():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    assert is_locked(now + timedelta(seconds=1), now)
    assert not is_locked(now, now) and not is_locked(None, now)


def test_only_the_last_enabled_admin_is_kept():
    assert removes_last_admin(enabled_admin_ids={"a"}, user_id="a")
    assert not removes_last_admin(enabled_admin_ids={"a", "b"}, user_id="a")
    assert not removes_last_admin(enabled_admin_ids={"a"}, user_id="c")


@pytest.mark.parametrize(("path", "backend", "roles"), [
    ("/api/intake/cases", "intake", {"caseworker", "auditor"}),
    ("/api/referrals/partners", "referrals", {"admin", "caseworker", "auditor"}),
    ("/api/partner/referrals/1", "referrals", {"partner"}),
    ("/api/funds/grants", "funds", {"finance", "caseworker", "auditor"}),
])
def test_each_prefix_goes_to_its_service_for_its_roles_only(path: str, backend: str, roles: set[str]):
    route = route_for(path)

    assert route is not None and route.backend == backend and route.roles == roles


def test_partners_reach_only_the_partner_api_and_staff_never_do():
    for route in ROUTES:
        assert ("partner" in route.roles) == (route.prefix == "/api/partner")
    assert route_for("/api/partner/referrals").roles == {"partner"}


@pytest.mark.parametrize("path", ["/api/admin/users", "/api/intakes/cases", "/api/intake", "/auth/me", "/"])
def test_everything_else_is_not_forwarded(path: str):
    assert route_for(path) is None


def test_dot_segments_are_caught():
    assert has_dot_segment("/api/partner/../intake/cases")
    assert has_dot_segment("/api/partner/./referrals")
    assert not has_dot_segment("/api/partner/referrals/a..b")
