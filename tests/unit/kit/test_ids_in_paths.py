"""kit.http reads an id in a path in either letter case (RFC 9562 §4), as a body's ids are read: a partner's system
that writes GUIDs in upper case finds its own referral instead of a "not addressed to you" 404."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request

from kit import http

ID = "06438ba6-6da1-404b-9fcb-740d1325d473"


async def test_an_id_in_a_path_is_read_in_lower_case_and_nothing_else_in_the_path_changes():
    app = FastAPI()
    http.install(app, service="test", max_body_bytes=1000)

    @app.get("/{rest:path}")
    async def echo(rest: str, request: Request) -> dict:
        return {"path": request.url.path, "raw": request.scope.get("raw_path", b"").decode()}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for sent, read in [
            (f"/api/partner/referrals/{ID.upper()}", f"/api/partner/referrals/{ID}"),
            (f"/Referrals/{ID.upper()}/Messages", f"/Referrals/{ID}/Messages"),  # only the id
            (f"/x/{ID.upper()}X", f"/x/{ID.upper()}X"),  # no id: a segment longer than one
            (f"/x/A{ID.upper()}", f"/x/A{ID.upper()}"),
            (f"/x/{ID}", f"/x/{ID}"),
        ]:
            answer = (await client.get(sent)).json()
            assert (answer["path"], answer["raw"]) == (read, read), sent
