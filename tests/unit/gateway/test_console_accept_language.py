"""The console's first visit follows the browser's `Accept-Language` (issue #19): the best offered language by its
q-value, a regional tag counting for its language, partner languages only where they are offered, else English; a
language chosen with the switcher (its cookie) wins."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from gateway.console import i18n
from gateway.console.router import LANGUAGE_COOKIE, language_of


@pytest.mark.parametrize(("header", "expected"), [
    ("ru-RU,ru;q=0.9", "ru"),
    ("be", "be"),
    ("be-BY", "be"),
    ("BE-by;q=0.8", "be"),
    ("en-GB,en;q=0.9", "en"),
    ("de-DE,de;q=0.9,ru;q=0.8,en;q=0.7", "ru"),  # German is not offered: the next best
    ("en;q=0.5,be;q=0.9", "be"),  # by q-value, not by order
    ("ru;q=0.7,be;q=0.7", "ru"),  # equal: the header's order
    ("be;q=0,ru;q=0.1", "ru"),  # q=0: not acceptable at all
    ("ru;q=nonsense,be;q=0.5", "be"),  # an unreadable q counts for nothing
    ("ru;q=2,be;q=0.5", "be"),  # nor one out of range
    (" ru-RU ; q=0.9 , be ; q=0.4 ", "ru"),  # whitespace around the parts
    ("*", "en"),
    ("de,fr", "en"),
    ("", "en"),
    (None, "en"),
    (",,;q=,", "en"),
])
def test_the_best_staff_language_of_an_accept_language_header(header, expected):
    assert i18n.negotiated(header, i18n.STAFF_LANGUAGES) == expected


@pytest.mark.parametrize(("header", "everyone", "staff"), [
    ("pl", "pl", "en"),
    ("pl-PL,pl;q=0.9,ru;q=0.5", "pl", "ru"),  # staff pages: the best of be/ru/en the header names
    ("lt-LT,lt;q=0.9,en;q=0.8", "lt", "en"),
    ("lt;q=0.4,be;q=0.6", "be", "be"),
])
def test_polish_and_lithuanian_only_where_they_are_offered(header, everyone, staff):
    assert i18n.negotiated(header, i18n.LANGUAGES) == everyone
    assert i18n.negotiated(header, i18n.STAFF_LANGUAGES) == staff


def a_request(accept_language: str | None, cookie: str | None = None) -> Request:
    headers = []
    if accept_language is not None:
        headers.append((b"accept-language", accept_language.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{LANGUAGE_COOKIE}={cookie}".encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "query_string": b""})


def test_the_language_chosen_with_the_switcher_wins_over_the_header():
    assert language_of(a_request("ru-RU,ru;q=0.9")) == "ru"
    assert language_of(a_request("ru-RU,ru;q=0.9", cookie="be")) == "be"
    assert language_of(a_request("be", cookie="en")) == "en"
    assert language_of(a_request("ru", cookie="xx")) == "ru"  # not a language of ours: as if none was chosen
    assert language_of(a_request(None)) == "en"
    assert language_of(a_request("pl-PL"), i18n.STAFF_LANGUAGES) == "en"
    assert language_of(a_request("pl-PL")) == "pl"
