"""Sign-in under pressure: a flood of password checks from many addresses is refused at once past a short line
(never a minute's queue, never a failure counted against the name typed); a name locked everywhere by strangers
still lets its owner in with password and second factor, and answers everyone else as before; a campaign's failures
stop counting over time; and the throttle's rows for names typed long ago are deleted."""

from __future__ import annotations

import asyncio
import html
import re
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import event, select, update

from gateway import service
from gateway.console import i18n
from gateway.models import SignInThrottle
from tests.integration.gateway.door import ADMIN_PASSWORD, STAFF_PASSWORD, Door, open_gateway
from tests.integration.gateway.test_gateway_mfa import DEFAULT_MFA_ROLES, OWN_PASSWORD, bearer, enrolled

pytestmark = pytest.mark.integration

WRONG = "Wrong-password-123"


async def sign_in(door: Door, username: str, password: str, *, address: str,
                  otp: str | None = None) -> httpx.Response:
    form = {"grant_type": "password", "username": username, "password": password, **({"otp": otp} if otp else {})}
    transport = httpx.ASGITransport(app=door.app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as elsewhere:
        return await elsewhere.post("/auth/token", data=form)


def audited(door: Door, user_id: str) -> list[str]:
    """The gateway's audit trail about `user_id`, oldest first (an auditor's view of it)."""
    with door.runtime.uow.read() as session:
        page = door.runtime.audit.page(session, target_id=user_id, limit=200, cursor=None)
    return [entry["action"] for entry in page["items"]]


async def enrol_the_admin(door: Door) -> None:
    """The first admin with a second factor, signed in with it: with factors required, accounts are made so."""
    _app, admin_codes = await enrolled(door, "admin", ADMIN_PASSWORD)
    door._admin = bearer(await sign_in(door, "admin", ADMIN_PASSWORD, address="127.0.0.1", otp=admin_codes[0]))


async def test_a_flood_of_checks_past_a_short_line_is_refused_at_once_and_counts_against_no_one(
        gateway_settings, secrets_dir):
    # One check at a time, two waiting, each check slow enough that the flood arrives while the line is full.
    settings = gateway_settings(secrets_dir, concurrent_password_checks=1, password_checks_waiting=2,
                                argon2_time_cost=6, signin_backoff_seconds=0, lockout_after_failures=50,
                                lockout_everywhere_after_failures=100)
    async with open_gateway(settings) as door:
        user = await door.add_user("caseworker")
        answers = await asyncio.gather(*(sign_in(door, user["username"], WRONG, address=f"203.0.113.{n}")
                                         for n in range(24)))

        busy = [a for a in answers if a.status_code == 503]
        checked = [a for a in answers if a.status_code == 400]
        assert len(busy) + len(checked) == 24 and busy and len(checked) >= 3, [a.status_code for a in answers]
        for answer in busy:  # the token endpoint's own way of saying it (RFC 6749), not a wrong password
            assert answer.json()["error"] == "temporarily_unavailable"
            assert answer.json()["type"].endswith("/sign-in-busy") and int(answer.headers["retry-after"]) >= 1
            assert answer.headers["cache-control"] == "no-store"
        # Only the checked tries count against the name: as failures in the trail, and towards its waits.
        assert audited(door, user["id"]).count("signin.failed") == len(checked)
        assert (await sign_in(door, user["username"], STAFF_PASSWORD, address="203.0.113.0")).status_code == 200


async def test_a_busy_refusal_spends_none_of_the_address_s_sign_ins(gateway_settings, secrets_dir):
    """People behind one address (an office, a shelter's network) share its sign-ins a minute: a refusal for a full
    line checked nothing, and took one of them all the same."""
    settings = gateway_settings(secrets_dir, concurrent_password_checks=1, password_checks_waiting=0,
                                argon2_time_cost=8, signin_rate_limit="3/minute", signin_backoff_seconds=0)
    async with open_gateway(settings) as door:
        user = await door.add_user("caseworker")
        holding = asyncio.create_task(sign_in(door, user["username"], WRONG, address="203.0.113.9"))
        for _ in range(500):
            if door.runtime.hasher.full():
                break
            await asyncio.sleep(0.005)
        refused = [await sign_in(door, user["username"], STAFF_PASSWORD, address="192.0.2.7") for _ in range(4)]
        assert (await holding).status_code == 400
        assert [answer.status_code for answer in refused] == [503] * 4
        assert (await sign_in(door, user["username"], STAFF_PASSWORD, address="192.0.2.7")).status_code == 200


async def test_the_owner_passes_a_lock_everywhere_with_password_and_code_and_nobody_else_learns_anything(
        gateway_settings, secrets_dir):
    settings = gateway_settings(secrets_dir, mfa_required_roles=DEFAULT_MFA_ROLES, signin_backoff_seconds=0,
                                lockout_after_failures=5, lockout_everywhere_after_failures=4)
    async with open_gateway(settings) as door:
        await enrol_the_admin(door)
        user = await door.add_user("caseworker")
        app, _codes = await enrolled(door, user["username"])
        for n in range(4):  # strangers who know only the name lock it everywhere
            assert (await sign_in(door, user["username"], WRONG, address=f"198.51.100.{n}")).status_code == 400
        code = app.at(time.time() + 30)  # the next step's code: the current one was spent on the enrolment

        wrong_password = await sign_in(door, user["username"], WRONG, address="192.0.2.1", otp=code)
        wrong_code = await sign_in(door, user["username"], OWN_PASSWORD, address="192.0.2.1", otp="000000")
        no_code = await sign_in(door, user["username"], OWN_PASSWORD, address="192.0.2.1")
        owner = await sign_in(door, user["username"], OWN_PASSWORD, address="192.0.2.1", otp=code)

        for refused in (wrong_password, wrong_code, no_code):  # the lock's answer, whatever was right
            assert refused.status_code == 429 and refused.json() == wrong_password.json()
            assert refused.json()["type"].endswith("/sign-in-throttled")
            assert 850 <= int(refused.headers["retry-after"]) <= 900
        assert owner.status_code == 200 and owner.json().get("refresh_token"), owner.text
        actions = audited(door, user["id"])
        assert actions.count("user.locked_everywhere") == 1 and actions[-1] == "signin.ok"
        assert actions.count("signin.throttled") == 3  # the owner's name's three refused tries, as before
        # Still locked for password-only guesses, and the tries at the lock met this address's waits as any.
        assert (await sign_in(door, user["username"], OWN_PASSWORD, address="192.0.2.2")).status_code == 429


async def test_wrong_codes_with_the_right_password_lock_the_code_from_every_address(gateway_settings, secrets_dir):
    """Whoever sends the right password with wrong one-time codes knows the password: counted per address only,
    many addresses guessed a six-digit code (about 3 in a million a try) as long as they liked. From the
    `lockout_codes_after_failures`-th, no code is checked for the lock's while, the right one included; the admins
    see it in the audit trail, and an admin's unlock (after a password reset, say) lifts it."""
    settings = gateway_settings(secrets_dir, mfa_required_roles=DEFAULT_MFA_ROLES, signin_backoff_seconds=0,
                                lockout_after_failures=5, lockout_everywhere_after_failures=50,
                                lockout_codes_after_failures=3)
    async with open_gateway(settings) as door:
        await enrol_the_admin(door)
        user = await door.add_user("caseworker")
        app, _codes = await enrolled(door, user["username"])
        code = app.at(time.time() + 30)  # the next step's code: the current one was spent on the enrolment

        guesses = [await sign_in(door, user["username"], OWN_PASSWORD, address=f"2001:db8:{n}::1", otp="000000")
                   for n in range(3)]  # three addresses, one guess each: no address's own wait is reached
        owner = await sign_in(door, user["username"], OWN_PASSWORD, address="192.0.2.1", otp=code)
        stranger = await sign_in(door, user["username"], WRONG, address="192.0.2.9", otp=code)

        assert [guess.status_code for guess in guesses] == [400] * 3
        assert owner.status_code == 429 and 850 <= int(owner.headers["retry-after"]) <= 900
        assert owner.json()["type"].endswith("/sign-in-throttled")
        assert stranger.status_code == 400  # the code's lock is told only to whoever has the password
        assert audited(door, user["id"]).count("user.codes_locked") == 1

        await door.runtime.uow.run(lambda session: service.unlock_user(  # as `rehab users unlock` does
            session=session, audit=door.runtime.audit, user_id=user["id"], actor="operator",
            keys=door.runtime.throttle_keys))
        again = await sign_in(door, user["username"], OWN_PASSWORD, address="192.0.2.1", otp=code)
        assert again.status_code == 200 and again.json().get("refresh_token"), again.text


async def test_a_right_code_clears_the_count_of_wrong_ones(gateway_settings, secrets_dir):
    settings = gateway_settings(secrets_dir, mfa_required_roles=DEFAULT_MFA_ROLES, signin_backoff_seconds=0,
                                lockout_codes_after_failures=3)
    async with open_gateway(settings) as door:
        await enrol_the_admin(door)
        user = await door.add_user("caseworker")
        app, recovery_codes = await enrolled(door, user["username"])
        # Two typos, then a right code, twice over (the next step's code, then a recovery code: a code is used once,
        # and the current one was spent on the enrolment): never three wrong in a row.
        for right_code in (app.at(time.time() + 30), recovery_codes[0]):
            for n in range(2):
                typo = await sign_in(door, user["username"], OWN_PASSWORD, address=f"192.0.2.{n}", otp="000000")
                assert typo.status_code == 400
            right = await sign_in(door, user["username"], OWN_PASSWORD, address="192.0.2.5", otp=right_code)
            assert right.status_code == 200, right.text
        assert "user.codes_locked" not in audited(door, user["id"])


async def test_an_unknown_name_costs_the_same_work_as_a_wrong_password_so_its_time_tells_nothing(
        gateway_settings, secrets_dir):
    """The answers are the same whether the name exists (SPEC); so is the work: a wrong password's sign-in wrote its
    audit entry in a second transaction after the check, which an unknown name's did not (one commit, waiting for
    the disk, fewer), and timing told the two apart."""
    settings = gateway_settings(secrets_dir, signin_backoff_seconds=0)
    async with open_gateway(settings) as door:
        user = await door.add_user("caseworker")
        commits: list[str] = []
        event.listen(door.runtime.engine, "commit", lambda _conn: commits.append("commit"))

        def commits_of(answer: httpx.Response) -> int:
            assert answer.status_code == 400, answer.text
            counted = len(commits)
            commits.clear()
            return counted

        known = commits_of(await sign_in(door, user["username"], WRONG, address="192.0.2.1"))
        unknown = commits_of(await sign_in(door, "nobody.here", WRONG, address="192.0.2.2"))

        assert known == unknown == 2
        with door.runtime.uow.read() as session:
            trail = door.runtime.audit.page(session, target_id=None, limit=500, cursor=None)
        actions = [entry["action"] for entry in trail["items"]]
        assert actions[-2:] == ["signin.failed", "signin.failed"]  # each audited, as before


async def test_a_password_change_tries_no_password_while_the_name_is_locked_everywhere(gateway_settings, secrets_dir):
    """The form to change one's password asks no second factor: a stolen token must not guess the current password
    from address after address past the lock a campaign against the name set."""
    settings = gateway_settings(secrets_dir, signin_backoff_seconds=0, lockout_everywhere_after_failures=3)
    async with open_gateway(settings) as door:
        user = await door.add_user("caseworker")
        token = bearer(await sign_in(door, user["username"], STAFF_PASSWORD, address="192.0.2.1"))
        for n in range(3):
            assert (await sign_in(door, user["username"], WRONG, address=f"198.51.100.{n}")).status_code == 400

        change = await door.client.post("/auth/password", headers=token, json={
            "current_password": STAFF_PASSWORD, "new_password": "a new kettle on Zybitskaya street"})

        assert change.status_code == 429 and int(change.headers["retry-after"]) > 0, change.text
        assert change.json()["type"].endswith("/sign-in-throttled")
        # Not changed: the old password still signs in once the lock is lifted.
        await door.runtime.uow.run(lambda session: service.unlock_user(
            session=session, audit=door.runtime.audit, user_id=user["id"], actor="operator",
            keys=door.runtime.throttle_keys))
        assert (await sign_in(door, user["username"], STAFF_PASSWORD, address="192.0.2.1")).status_code == 200


async def test_a_campaigns_failures_stop_counting_over_time(gateway_settings, secrets_dir):
    # Four failures lock everywhere; a day's window forgets one every six hours.
    settings = gateway_settings(secrets_dir, signin_backoff_seconds=0, lockout_after_failures=5,
                                lockout_everywhere_after_failures=4, signin_failures_kept_seconds=86400)
    async with open_gateway(settings) as door:
        user = await door.add_user("caseworker")
        for n in range(4):
            assert (await sign_in(door, user["username"], WRONG, address=f"198.51.100.{n}")).status_code == 400
        assert (await sign_in(door, user["username"], STAFF_PASSWORD, address="192.0.2.1")).status_code == 429

        # Thirteen hours on: the lock is long over, and two of the four failures are forgotten.
        everywhere = door.runtime.throttle_keys.everywhere(user["username"])
        earlier = service.now_utc() - timedelta(hours=13)
        await door.runtime.uow.run(lambda session: session.execute(
            update(SignInThrottle).where(SignInThrottle.key == everywhere)
            .values(counting_since=earlier, wait_until=earlier)))

        # One typo no longer locks the name everywhere again (it would with the four still counted).
        assert (await sign_in(door, user["username"], WRONG, address="192.0.2.1")).status_code == 400
        assert (await sign_in(door, user["username"], STAFF_PASSWORD, address="192.0.2.2")).status_code == 200


async def test_the_rows_of_names_typed_long_ago_are_deleted(gateway_settings, secrets_dir):
    settings = gateway_settings(secrets_dir, signin_failures_kept_seconds=3600)
    async with open_gateway(settings) as door:
        keys = door.runtime.throttle_keys
        await sign_in(door, "typed.once", WRONG, address="198.51.100.7")
        old = [keys.here("typed.once", "198.51.100.7"), keys.everywhere("typed.once")]
        long_ago = service.now_utc() - timedelta(hours=2)
        await door.runtime.uow.run(lambda session: session.execute(
            update(SignInThrottle).values(counting_since=long_ago, wait_until=long_ago)))

        await sign_in(door, "typed.later", WRONG, address="198.51.100.8")

        with door.runtime.uow.read() as session:
            kept = set(session.execute(select(SignInThrottle.key)).scalars())
        assert not kept & set(old)
        assert keys.everywhere("typed.later") in kept


async def test_the_console_s_sign_in_says_the_line_is_full_in_words_not_that_the_password_is_wrong(
        gateway_settings, secrets_dir):
    settings = gateway_settings(secrets_dir, concurrent_password_checks=1, password_checks_waiting=0)
    async with open_gateway(settings) as door:
        user = await door.add_user("caseworker")
        page = await door.client.get("/", headers={"Accept-Language": "be"})
        pre_session = re.search(r'name="pre_session" value="([^"]+)"', page.text).group(1)
        async with door.runtime.hasher.admitted():  # someone else's sign-in holds the only place
            answer = await door.client.post("/console/sign-in", headers={"Accept-Language": "be"}, data={
                "pre_session": pre_session, "username": user["username"], "password": STAFF_PASSWORD})
        assert answer.status_code == 503 and int(answer.headers["retry-after"]) >= 1
        said = html.unescape(answer.text)
        assert i18n.MESSAGES["be"]["sign_in_busy"] in said and i18n.MESSAGES["be"]["bad_credentials"] not in said
        assert user["username"] in said  # the name typed stays in its field
        assert "signin.failed" not in audited(door, user["id"])
