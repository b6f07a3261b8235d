"""Every page of the console is a page the language links and `back_to` may lead back to (`KNOWN_PAGES`): one left
out sent its visitor elsewhere when they changed language (finance's cost estimates went to the grants)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.routing import APIRoute

from gateway import console
from gateway.console.router import known_page

# Not pages to come back to: downloads, the language switch itself, static files, and a search's answer (its page
# is the one above it).
NOT_PAGES = ("/console/static/", "/console/language/", "/favicon.ico", "/documents/", ".csv", "/search")
REDIRECTS = {"/console"}  # the console's address typed bare: sent on to `/`, never a page of its own


def console_pages() -> set[str]:
    routers = [value for value in vars(console).values() if isinstance(value, APIRouter)]
    return {route.path for router in routers for route in router.routes
            if isinstance(route, APIRoute) and "GET" in route.methods
            and not any(part in route.path for part in NOT_PAGES) and route.path not in REDIRECTS}


def test_every_page_of_the_console_comes_back_to_itself() -> None:
    pages = console_pages()
    assert {"/", "/console/cases", "/console/estimates", "/console/partner"} <= pages
    some_id = str(uuid.uuid4())
    for path in sorted(pages):
        filled = path.replace("{client_id}", "pc_" + "0" * 24)
        while "{" in filled:
            start = filled.index("{")
            filled = filled[:start] + some_id + filled[filled.index("}", start) + 1:]
        assert known_page(filled) == filled, path
