"""The case page's documents in the console: the list, the upload form (a plain form post, and the script's
XMLHttpRequest which is answered 204), the download as an attachment, the script served under the console's CSP,
and an upload over the gateway's 1 MB body limit that passes on this route alone — for a signed-in person only: a
stranger's large body is refused before it is read. Any other form sent as multipart is answered with a page."""

from __future__ import annotations

import html
import io
import re
from collections.abc import AsyncIterator

import pytest
from PIL import ExifTags, Image

from gateway.console import i18n
from gateway.console.router import CSP, REFRESH_COOKIE, SESSION_COOKIE
from tests.console.test_console_pages import browser, sign_in
from tests.console.world import csrf_of
from tests.integration.gateway.door import STAFF_PASSWORD, Backends, Door, open_gateway

pytestmark = pytest.mark.integration

PAGE = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
async def door(backends: Backends, gateway_settings) -> AsyncIterator[Door]:
    settings = gateway_settings(backends.secrets_dir, **{f"{name}_url": url for name, url in backends.urls.items()})
    async with open_gateway(settings) as opened:
        yield opened


def gps_photo() -> bytes:
    image = Image.new("RGB", (120, 90), (200, 120, 40))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "ConsolePhone"
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (53.0, 54.0, 7.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def a_case_of(door: Door, *roles: str) -> tuple:
    user = await door.add_user(*roles)
    token = await door.bearer_for(await door.sign_in(user["username"], STAFF_PASSWORD))
    case = (await door.client.post("/api/intake/cases", json={"full_name": "Ігар Лосік"}, headers=token)).json()
    visitor = browser(door)
    assert (await sign_in(visitor, user["username"])).status_code == 303
    return visitor, case, token


async def test_upload_list_and_download_a_document_from_the_case_page(door: Door):
    visitor, case, token = await a_case_of(door, "caseworker")
    page_path = f"/console/cases/{case['id']}"
    page = await visitor.get(page_path)
    assert page.status_code == 200 and 'id="document-upload"' in page.text
    assert 'enctype="multipart/form-data"' in page.text and '<script src="/console/static/documents.js"' in page.text
    assert "<script>" not in page.text  # no inline script: the CSP allows none
    assert "script-src 'self'" in CSP and page.headers["content-security-policy"] == CSP

    posted = await visitor.post(f"{page_path}/documents", data={"csrf": csrf_of(page.text), "kind": "identity"},
                                files={"file": ("паспарт.jpg", gps_photo(), "image/jpeg")})
    assert posted.status_code == 303 and posted.headers["location"] == f"{page_path}#documents-h"
    page = await visitor.get(page_path)
    assert "паспарт.jpg" in page.text and "Identity" in page.text
    link = re.search(rf'href="({page_path}/documents/[0-9a-f-]{{36}})"', page.text).group(1)

    got = await visitor.get(link)
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["x-content-type-options"] == "nosniff"
    stored = Image.open(io.BytesIO(got.content))
    assert not stored.getexif() and b"ConsolePhone" not in got.content

    # The script's request: 204, and a file over the gateway's 1 MB default passes on this route.
    text = b"statement line\n" * 100_000  # 1.5 MB
    by_script = await visitor.post(f"{page_path}/documents", headers={"X-Console-Upload": "1"},
                                   data={"csrf": csrf_of(page.text), "kind": "legal"},
                                   files={"file": ("statement.txt", text, "text/plain")})
    assert by_script.status_code == 204, by_script.text
    listed = await door.client.get(f"/api/intake/cases/{case['id']}/documents", headers=token)
    assert [d["kind"] for d in listed.json()["items"]] == ["identity", "legal"]


async def test_a_refused_file_and_a_missing_csrf_token(door: Door):
    visitor, case, _token = await a_case_of(door, "caseworker")
    page_path = f"/console/cases/{case['id']}"
    page = await visitor.get(page_path)
    refused = await visitor.post(f"{page_path}/documents", data={"csrf": csrf_of(page.text), "kind": "other"},
                                 files={"file": ("tool.pdf", b"MZ\x90\x00" + bytes(300), "application/pdf")})
    assert refused.status_code == 415 and 'class="problem"' in refused.text
    forged = await visitor.post(f"{page_path}/documents", data={"csrf": "0" * 64, "kind": "other"},
                                files={"file": ("a.txt", b"hello", "text/plain")})
    assert forged.status_code == 403


async def test_a_file_past_what_a_document_may_hold_is_said_by_the_file_field_in_words(door: Door):
    visitor, case, _token = await a_case_of(door, "caseworker")
    page_path = f"/console/cases/{case['id']}"
    await visitor.get("/console/language/be", params={"next": "/"})
    page = await visitor.get(page_path)
    bomb = io.BytesIO()
    Image.new("1", (8000, 8000)).save(bomb, "PNG")  # 64 million pixels in a few kilobytes

    refused = await visitor.post(f"{page_path}/documents", data={"csrf": csrf_of(page.text), "kind": "medical"},
                                 files={"file": ("scan.png", bomb.getvalue(), "image/png")})

    assert refused.status_code == 413
    assert i18n.MESSAGES["be"]["problem_document_complex"] in html.unescape(refused.text)
    assert "million pixels" not in refused.text  # the service's English stays out of the page


async def test_the_script_is_served_by_the_console(door: Door):
    script = await browser(door).get("/console/static/documents.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "upload.addEventListener(\"progress\"" in script.text


async def test_documents_in_three_languages(door: Door):
    visitor, case, _ = await a_case_of(door, "caseworker")
    for language, word in (("be", "Дакументы"), ("ru", "Документы"), ("en", "Documents")):
        await visitor.get(f"/console/language/{language}")
        assert word in (await visitor.get(f"/console/cases/{case['id']}")).text


async def test_any_other_form_sent_as_multipart_is_refused_before_its_route_and_the_upload_still_works(door: Door):
    visitor, case, token = await a_case_of(door, "caseworker")
    page_path = f"/console/cases/{case['id']}"
    page = await visitor.get(page_path)
    need = {"csrf": csrf_of(page.text), "category": "medical", "urgency": "high", "notes": "inhaler"}
    as_multipart = {"attached": ("note.txt", b"hello", "text/plain")}  # what makes httpx send multipart/form-data

    by_browser = await visitor.post(f"{page_path}/needs", data=need, files=as_multipart, headers=PAGE)
    by_script = await visitor.post(f"{page_path}/needs", data=need, files=as_multipart)
    new_case = await visitor.post("/console/cases", data={"csrf": need["csrf"], "full_name": "Ян Шыла"},
                                  files=as_multipart, headers=PAGE)

    # No page of the console sends one (only a tampered page would): refused by kit.http's guard for every route
    # but an upload's, so that a form's fields never reach a route unread by it.
    for refused in (by_browser, by_script, new_case):
        assert refused.status_code == 415 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/multipart-not-here")
    needs = await door.client.get(f"/api/intake/cases/{case['id']}/needs", headers=token)
    assert needs.status_code == 200 and needs.json()["items"] == []  # nothing was done
    sent = await visitor.post(f"{page_path}/documents", data={"csrf": csrf_of(page.text), "kind": "identity"},
                              files={"file": ("паспарт.jpg", gps_photo(), "image/jpeg")})
    assert sent.status_code == 303 and sent.headers["location"] == f"{page_path}#documents-h"


@pytest.mark.parametrize("cookies", [{SESSION_COOKIE: "not-a-session"},
                                     {SESSION_COOKIE: "not-a-session", REFRESH_COOKIE: "not-a-refresh-token"}])
async def test_a_stranger_s_large_upload_is_refused_before_its_body_is_read(door: Door, cookies: dict[str, str]):
    _visitor, case, _token = await a_case_of(door, "caseworker")
    pulled = 0

    async def two_megabytes() -> AsyncIterator[bytes]:  # over the 1 MB of other routes, under this route's 20 MB
        nonlocal pulled
        for piece in (b'--edge\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n',
                      *[b"x" * 65536] * 32, b"\r\n--edge--\r\n"):
            pulled += len(piece)
            yield piece

    refused = await browser(door).post(
        f"/console/cases/{case['id']}/documents", content=two_megabytes(),
        headers={"Content-Type": "multipart/form-data; boundary=edge",
                 "Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())})

    assert refused.status_code == 303 and refused.headers["location"].startswith("/")  # to sign in, as any stranger
    assert pulled == 0


async def test_a_file_name_too_long_to_send_is_said_in_words_not_as_a_broken_form(door: Door):
    """An outside review's find: a 5,000-character file name was answered "malformed multipart"."""
    visitor, case, token = await a_case_of(door, "caseworker")
    page_path = f"/console/cases/{case['id']}"
    await visitor.get("/console/language/be", params={"next": "/"})
    page = await visitor.get(page_path)
    refused = await visitor.post(f"{page_path}/documents", data={"csrf": csrf_of(page.text), "kind": "medical"},
                                 files={"file": ("л" * 2600 + ".pdf", b"%PDF-1.4 hello", "application/pdf")},
                                 headers=PAGE)
    assert refused.status_code == 400 and refused.headers["content-type"].startswith("text/html")
    assert i18n.MESSAGES["be"]["problem_file_name_long"] in html.unescape(refused.text), refused.text[-3000:]
    assert "malformed" not in refused.text and "4 KiB" not in refused.text
    listed = await door.client.get(f"/api/intake/cases/{case['id']}/documents", headers=token)
    assert listed.json()["items"] == []
