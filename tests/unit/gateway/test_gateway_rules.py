"""The gateway's rules without I/O: password policy, sign-in slow-down and lockout, the route table's coarse wall."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain import (
    SignInPolicy,
    ThrottleKeys,
    breached_passwords,
    counted_address,
    password_weakness,
    removes_last_admin,
    seconds_left,
)
from gateway.routing import ROUTES, has_dot_segment, route_for


@pytest.mark.parametrize("password", [
    "Short-1",  # too short
    "Сяргей.Марозаў",  # the user name itself, in any case
    "x" * 257 + "Y1",  # longer than anyone needs
    "1q2w3e4r5t6y",  "PASSWORD1234", "qwertyuiop123",  # on the breached-passwords list, in any case
    "aaaaaaaaaaaaaaaa", "abcabcabcabc", "ЯЯЯЯЯЯЯЯЯЯЯЯ",  # one character or a short group repeated
    "123456789012", "987654321098", "ABCDEFGHIJKLM", "абвгдежзийкл",  # a run (digits go round)
])
def test_weak_passwords_are_refused_with_a_reason(password: str):
    assert password_weakness(password, username="сяргей.марозаў")


@pytest.mark.parametrize("password", [
    "Staff-passphrase-2026", "correct horse battery staple", "Кацярына1988год",
    "alllowercaseletters",  # one kind of character is fine (NIST 800-63B: no composition rules)
    "Rock-Rock-Rock", "ababababab12", "1234567890ab",  # a longer group repeated; a run with something after it
])
def test_reasonable_passwords_pass(password: str):
    assert password_weakness(password, username="katsiaryna") is None


def test_every_refusal_of_a_password_is_said_in_the_consoles_words_in_each_staff_language():
    from gateway.console.i18n import MESSAGES
    from gateway.console.router import WEAK_PASSWORD_WORDS

    refusals = {password_weakness(password, username="katsiaryna.mar")
                for password in ("Short-1", "x" * 257, "Katsiaryna.Mar", "qwertyuiop123", "aaaaaaaaaaaa",
                                 "123456789012")}
    assert None not in refusals and len(refusals) == 5
    for refusal in refusals:
        assert all(WEAK_PASSWORD_WORDS[refusal] in MESSAGES[language] for language in ("en", "be", "ru")), refusal


def test_the_breached_list_is_shipped_and_long():
    assert len(breached_passwords()) > 10_000 and "qwertyuiop123" in breached_passwords()


POLICY = SignInPolicy(backoff_seconds=1, lock_after=5, lock_seconds=900, lock_everywhere_after=50,
                      forget_after_seconds=86400)


def test_failures_from_one_address_wait_longer_each_time_then_lock_there():
    waits = [POLICY.wait_after(n).total_seconds() for n in range(1, 7)]

    assert waits == [1, 2, 4, 8, 900, 900]
    assert POLICY.wait_after(0) == timedelta(0)


def test_only_the_ceiling_across_addresses_locks_everywhere():
    assert POLICY.wait_everywhere_after(49) == timedelta(0)
    assert POLICY.wait_everywhere_after(50) == timedelta(seconds=900)


def test_the_count_everywhere_forgets_a_failure_every_window_over_the_ceiling():
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    every = timedelta(seconds=86400 / 50)  # 28.8 minutes

    assert POLICY.decayed(50, start, start + every * 2.5) == (48, start + every * 2)  # the half-step still counts
    assert POLICY.decayed(50, start, start + timedelta(days=1)) == (0, start + timedelta(days=1))
    assert POLICY.decayed(3, start, start) == (3, start)


def test_wrong_codes_after_the_right_password_lock_from_their_own_count_on():
    assert POLICY.wait_after_wrong_codes(POLICY.lock_codes_after - 1) == timedelta(0)
    assert POLICY.wait_after_wrong_codes(POLICY.lock_codes_after) == timedelta(seconds=900)
    assert POLICY.wait_after_wrong_codes(POLICY.lock_codes_after + 5) == timedelta(seconds=900)


def test_an_ipv6_client_is_counted_by_its_64_so_its_many_addresses_are_one():
    assert counted_address("2001:db8:5:6:1:2:3:4") == counted_address("2001:db8:5:6::9") == "2001:db8:5:6::/64"
    assert counted_address("2001:db8:5:7::9") != counted_address("2001:db8:5:6::9")
    assert counted_address("203.0.113.7") == counted_address("::ffff:203.0.113.7") == "203.0.113.7"
    assert counted_address("::1") == "::1" and counted_address("testclient") == "testclient"


def test_a_wait_is_counted_in_whole_seconds_until_its_time():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    assert seconds_left(now + timedelta(seconds=1.2), now) == 2
    assert seconds_left(now + timedelta(milliseconds=1), now) == 1
    assert seconds_left(now, now) == 0 and seconds_left(None, now) == 0


def test_throttle_rows_are_named_without_the_name_or_the_address():
    keys = ThrottleKeys.derived_from(b"k" * 32)
    here = keys.here("Siarhei.Marozau", "203.0.113.7")

    assert here == keys.here(" siarhei.marozau ", "203.0.113.7")  # as the name is looked up
    assert here != keys.here("siarhei.marozau", "203.0.113.8") != keys.everywhere("siarhei.marozau")
    assert "marozau" not in here and "203" not in here
    assert ThrottleKeys.derived_from(b"j" * 32).here("siarhei.marozau", "203.0.113.7") != here
    codes = keys.codes("Siarhei.Marozau")
    assert codes == keys.codes("siarhei.marozau") and codes not in (here, keys.everywhere("siarhei.marozau"))


def test_only_the_last_enabled_admin_is_kept():
    assert removes_last_admin(enabled_admin_ids={"a"}, user_id="a")
    assert not removes_last_admin(enabled_admin_ids={"a", "b"}, user_id="a")
    assert not removes_last_admin(enabled_admin_ids={"a"}, user_id="c")


@pytest.mark.parametrize(("path", "backend", "roles"), [
    ("/api/intake/cases", "intake", {"caseworker", "supervisor", "auditor"}),
    ("/api/referrals/partners", "referrals", {"admin", "caseworker", "auditor"}),
    ("/api/partner/referrals/1", "referrals", {"partner", "partner_staff"}),
    ("/api/funds/grants", "funds", {"finance", "caseworker", "auditor"}),
])
def test_each_prefix_goes_to_its_service_for_its_roles_only(path: str, backend: str, roles: set[str]):
    route = route_for(path)

    assert route is not None and route.backend == backend and route.roles == roles


def test_partners_reach_only_the_partner_api_and_staff_never_do():
    for route in ROUTES:
        assert ("partner" in route.roles) == ("partner_staff" in route.roles) == (route.prefix == "/api/partner")
    assert route_for("/api/partner/referrals").roles == {"partner", "partner_staff"}


@pytest.mark.parametrize("path", ["/api/admin/users", "/api/intakes/cases", "/api/intake", "/auth/me", "/"])
def test_everything_else_is_not_forwarded(path: str):
    assert route_for(path) is None


def test_dot_segments_are_caught():
    assert has_dot_segment("/api/partner/../intake/cases")
    assert has_dot_segment("/api/partner/./referrals")
    assert not has_dot_segment("/api/partner/referrals/a..b")
