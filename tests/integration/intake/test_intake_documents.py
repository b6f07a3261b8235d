"""SPEC §4 documents: judged by content, cleaned of metadata before they are stored, sealed in pieces under the
case's key, read back streamed as attachments, need-to-know like every route of a case, gone with the case."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import ExifTags, Image, PngImagePlugin
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DecodedStreamObject, NameObject
from sqlalchemy import func, select

from kit.db import is_sqlite
from services.intake.documents import CHUNK_BYTES, MAX_DOCUMENT_BYTES
from services.intake.models import Document, DocumentChunk
from tests.integration.test_slow_body import over_http
from tests.support.pdfs import pdf_of, stream

pytestmark = pytest.mark.integration

CASES = "/api/intake/cases"
NEEDLE = "Zyxwvutneedle"  # in a document's bytes and in its file name: never on disk in clear, gone after erasure
TAKEN = "2026:11:02 21:22:23"  # when the phone photo was taken (EXIF DateTimeOriginal)


def phone_photo(*, orientation: int | None = None) -> tuple[bytes, Image.Image]:
    """A JPEG as a phone writes it: camera make and model, the time, and where it was taken (GPS)."""
    image = Image.new("RGB", (320, 240))
    image.putdata([((x * 7) % 256, (y * 5) % 256, (x + y) % 256) for y in range(240) for x in range(320)])
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "NeedlePhone"
    exif[ExifTags.Base.Model] = f"Model {NEEDLE}"
    exif[ExifTags.Base.DateTime] = "2026:11:03 10:11:12"
    exif[ExifTags.IFD.Exif] = {ExifTags.Base.DateTimeOriginal: TAKEN}
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (53.0, 54.0, 7.0),
                                  ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (27.0, 33.0, 41.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=92, comment=b"taken at the border")
    return out.getvalue(), Image.open(io.BytesIO(out.getvalue()))


def pdf_with_metadata() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.add_metadata({"/Author": f"Author {NEEDLE}", "/Creator": "Scanner app", "/Title": "Release certificate"})
    xmp = DecodedStreamObject()
    xmp.set_data(f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>Xmp {NEEDLE}</dc:creator></x:xmpmeta>'.encode())
    xmp[NameObject("/Type")], xmp[NameObject("/Subtype")] = NameObject("/Metadata"), NameObject("/XML")
    writer._root_object[NameObject("/Metadata")] = writer._add_object(xmp)
    out = io.BytesIO()
    writer.write(out)
    assert NEEDLE.encode() in out.getvalue()
    return out.getvalue()


def pdf_of_photo(jpeg: bytes, width: int, height: int) -> bytes:
    """A PDF of one page showing the photo, its JPEG file copied in as it is (/DCTDecode), as img2pdf writes one."""
    draw = b"q %d 0 0 %d 0 0 cm /Im0 Do Q" % (width, height)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /XObject << /Im0 4 0 R >> >> "
        b"/Contents 5 0 R >>" % (width, height),
        stream(b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 "
               b"/Filter /DCTDecode" % (width, height), jpeg),
        stream(b"", draw),
    ]
    return pdf_of(*objects)


async def upload(intake, case_id: str, name: str, data: bytes, *, kind: str = "identity",  # noqa: ANN001
                 declared: str = "application/octet-stream", headers: dict | None = None):
    return await intake.client.post(f"{CASES}/{case_id}/documents", files={"file": (name, data, declared)},
                                    data={"kind": kind}, headers=headers or intake.caseworker)


async def download(intake, document_id: str, headers: dict | None = None):  # noqa: ANN001
    return await intake.client.get(f"/api/intake/documents/{document_id}/content", headers=headers or intake.caseworker)


async def test_a_phone_photo_loses_its_location_and_camera_and_keeps_its_pixels(intake):
    case = await intake.create()
    photo, original = phone_photo()
    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the control: the photo says where it was taken
    added = await upload(intake, case["id"], "IMG_0042.jpg", photo, declared="image/jpeg")
    assert added.status_code == 201, added.text
    body = added.json()
    assert set(body) >= {"id", "kind", "filename", "content_type", "size", "sha256"}
    assert (body["kind"], body["filename"], body["content_type"]) == ("identity", "IMG_0042.jpg", "image/jpeg")

    got = await download(intake, body["id"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert hashlib.sha256(got.content).hexdigest() == body["sha256"] and len(got.content) == body["size"]
    stored = Image.open(io.BytesIO(got.content))
    assert not stored.getexif() and not stored.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert "exif" not in stored.info and "comment" not in stored.info and "xmp" not in stored.info
    assert b"NeedlePhone" not in got.content and b"border" not in got.content
    assert stored.size == original.size
    assert stored.tobytes() == original.tobytes()  # the same pixels: segments removed, nothing decoded again


async def test_a_photo_keeps_only_its_orientation(intake):
    case = await intake.create()
    photo, _ = phone_photo(orientation=6)
    added = await upload(intake, case["id"], "portrait.jpg", photo)
    stored = Image.open(io.BytesIO((await download(intake, added.json()["id"])).content))
    assert dict(stored.getexif()) == {ExifTags.Base.Orientation: 6}


async def test_a_png_loses_its_text_chunks(intake):
    case = await intake.create()
    image = Image.new("RGBA", (40, 30), (1, 2, 3, 200))
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", f"Author {NEEDLE}")
    info.add_text("Comment", "zipped " + NEEDLE * 20, zip=True)
    info.add_itxt("Description", f"Апісанне {NEEDLE}")
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    added = await upload(intake, case["id"], "scan.png", out.getvalue(), kind="medical")
    assert added.status_code == 201 and added.json()["content_type"] == "image/png"
    got = (await download(intake, added.json()["id"])).content
    for chunk in (b"tEXt", b"zTXt", b"iTXt"):
        assert chunk not in got
    stored = Image.open(io.BytesIO(got))
    assert stored.text == {} and stored.tobytes() == image.tobytes()


async def test_a_pdf_loses_its_author_and_xmp(intake):
    case = await intake.create()
    added = await upload(intake, case["id"], "release.pdf", pdf_with_metadata(), kind="release")
    assert added.status_code == 201, added.text
    got = (await download(intake, added.json()["id"])).content
    assert NEEDLE.encode() not in got and b"Scanner app" not in got
    reader = PdfReader(io.BytesIO(got))
    assert reader.metadata is None and reader.xmp_metadata is None and len(reader.pages) == 1
    assert added.json()["content_type"] == "application/pdf"


async def test_a_photo_inside_a_pdf_loses_where_and_when_it_was_taken(intake):
    case = await intake.create()
    photo, original = phone_photo()
    pdf = pdf_of_photo(photo, *original.size)
    assert b"Exif" in pdf and TAKEN.encode() in pdf  # the control: the scan carries the photo's EXIF byte for byte
    added = await upload(intake, case["id"], "scan.pdf", pdf, kind="release", declared="application/pdf")
    assert added.status_code == 201, added.text
    assert added.json()["content_type"] == "application/pdf"

    got = (await download(intake, added.json()["id"])).content
    assert hashlib.sha256(got).hexdigest() == added.json()["sha256"]  # what came back is what was stored
    for trace in (b"Exif", TAKEN.encode(), b"2026:11:03 10:11:12", b"NeedlePhone", NEEDLE.encode(), b"border"):
        assert trace not in got, trace
    reader = PdfReader(io.BytesIO(got))
    assert len(reader.pages) == 1
    stored = Image.open(io.BytesIO(reader.pages[0]["/Resources"]["/XObject"]["/Im0"].get_data()))
    assert not stored.getexif() and stored.size == original.size
    assert stored.tobytes() == original.tobytes()  # the same pixels: segments removed, nothing decoded again


async def test_plain_text_is_kept_as_it_is(intake):
    case = await intake.create()
    text = "Нататкі: вызвалены 3 лістапада.\nNotes: released on 3 November.\n".encode()
    added = await upload(intake, case["id"], "нататкі.txt", text, kind="other", declared="application/pdf")
    assert added.status_code == 201 and added.json()["content_type"] == "text/plain; charset=utf-8"
    got = await download(intake, added.json()["id"])
    assert got.content == text and added.json()["sha256"] == hashlib.sha256(text).hexdigest()
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''%D0%BD%D0%B0" in disposition
    assert got.headers["x-content-type-options"] == "nosniff"


async def test_a_program_renamed_pdf_is_refused_by_its_content(intake):
    case = await intake.create()
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(range(256)) * 8
    refused = await upload(intake, case["id"], "invoice.pdf", exe, declared="application/pdf")
    assert refused.status_code == 415 and refused.headers["content-type"] == "application/problem+json"
    fake_pdf = await upload(intake, case["id"], "x.pdf", b"%PDF-1.7\n this is no PDF at all")
    assert fake_pdf.status_code == 415
    bad_kind = await upload(intake, case["id"], "a.txt", b"hello", kind="selfie")
    assert bad_kind.status_code == 422
    empty = await upload(intake, case["id"], "scan.pdf", b"")
    assert empty.status_code == 422 and empty.json()["type"].endswith("/document-empty")
    # Sent as the file itself, or as JSON: said to be multipart, not "send JSON" or "takes no body".
    for media, body in (("application/pdf", b"%PDF-1.7\n"), ("application/json", b'{"kind": "other"}')):
        wrong = await intake.client.post(f"{CASES}/{case['id']}/documents", content=body,
                                         headers={**intake.caseworker, "Content-Type": media})
        assert wrong.status_code == 415 and wrong.json()["type"].endswith("/multipart-expected"), media
        assert "multipart/form-data" in wrong.json()["detail"]
    # Two documents in one form, or a part the route does not take: refused, not the first kept and the rest dropped.
    for files, data in (({"file": ("a.txt", b"one"), "file2": ("b.txt", b"two")}, {"kind": "other"}),
                        ({"file": ("a.txt", b"one")}, {"kind": "other", "note": "x"})):
        extra = await intake.client.post(f"{CASES}/{case['id']}/documents", files=files, data=data,
                                         headers=intake.caseworker)
        assert extra.status_code == 422 and extra.json()["type"].endswith("/document-part-unknown"), extra.text
    listed = await intake.client.get(f"{CASES}/{case['id']}/documents", headers=intake.caseworker)
    assert listed.json()["items"] == []


async def test_more_than_20_mib_is_413_and_refused_as_it_streams(intake):
    case = await intake.create()
    big = b"a" * (21 * 1000 * 1000)  # 21 MB, over 20 MiB
    refused = await upload(intake, case["id"], "big.txt", big)
    assert refused.status_code == 413 and refused.headers["content-type"] == "application/problem+json"
    # Just over the document's limit, under the route's body limit: the reader refuses it.
    just_over = await upload(intake, case["id"], "big.txt", b"a" * (MAX_DOCUMENT_BYTES + 1))
    assert just_over.status_code == 413 and just_over.json()["type"].endswith("/content-too-large")

    sent = 0

    async def two_gigabytes() -> AsyncIterator[bytes]:  # no Content-Length: the limit is counted as it streams
        nonlocal sent
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.txt\"\r\n\r\n"
        for _ in range(2 * 1024):
            sent += 1024 * 1024
            yield b"a" * (1024 * 1024)

    streamed = await intake.client.post(f"{CASES}/{case['id']}/documents", content=two_gigabytes(),
                                        headers={**intake.caseworker,
                                                 "Content-Type": "multipart/form-data; boundary=b"})
    assert streamed.status_code == 413 and sent < 30 * 1024 * 1024
    assert (await intake.client.get(f"{CASES}/{case['id']}/documents", headers=intake.caseworker)).json()["items"] == []


async def test_a_document_of_many_pieces_streams_back_whole(intake):
    case = await intake.create()
    data = (f"line {NEEDLE}\n" * 60_000).encode()  # ~1.2 MB: five pieces
    added = await upload(intake, case["id"], "long.txt", data)
    document_id = added.json()["id"]
    with intake.engine.connect() as conn:
        pieces = conn.execute(select(func.count()).select_from(DocumentChunk).where(
            DocumentChunk.document_id == document_id)).scalar_one()
    assert pieces == -(-len(data) // CHUNK_BYTES) > 1
    async with intake.client.stream("GET", f"/api/intake/documents/{document_id}/content",
                                    headers=intake.caseworker) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(data))
        assert response.headers["content-disposition"] == \
            "attachment; filename=\"long.txt\"; filename*=UTF-8''long.txt"
        received = b"".join([part async for part in response.aiter_bytes()])
    assert received == data


async def test_a_download_under_way_stops_when_the_keys_are_sealed(intake):
    """SPEC §8: within 2 s of a seal nothing needs a key any more — a slow download of a passport scan begun before
    the raid is cut short, not decrypted to its end with the key it opened. Over real HTTP, read slowly, with a
    document larger than what the sockets between can hold."""
    case = await intake.create()
    data = (f"line {NEEDLE}\n" * 900_000).encode()  # ~17 MB: more than loopback's buffers
    document_id = (await upload(intake, case["id"], "long.txt", data)).json()["id"]
    received = 0
    async with over_http(intake.app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        async with client.stream("GET", f"/api/intake/documents/{document_id}/content",
                                 headers=intake.caseworker) as response:
            assert response.status_code == 200
            pieces = response.aiter_raw()
            received += len(await anext(pieces))
            intake.runtime.keyring.seal()
            try:
                with pytest.raises(httpx.RemoteProtocolError):
                    async for piece in pieces:
                        received += len(piece)
                        await asyncio.sleep(0.01)
            finally:
                intake.runtime.keyring.unseal()
    assert 0 < received < len(data)


async def test_documents_are_need_to_know_and_listed_by_page(intake):
    case = await intake.create()
    ids = [(await upload(intake, case["id"], f"n{i}.txt", f"note {i}".encode(), kind="legal")).json()["id"]
           for i in range(3)]
    first = await intake.client.get(f"{CASES}/{case['id']}/documents?limit=2", headers=intake.caseworker)
    page = first.json()
    assert [d["id"] for d in page["items"]] == ids[:2] and page["next_cursor"]
    rest = await intake.client.get(f"{CASES}/{case['id']}/documents",
                                   params={"limit": 2, "cursor": page["next_cursor"]}, headers=intake.caseworker)
    assert [d["filename"] for d in rest.json()["items"]] == ["n2.txt"]

    stranger = intake.as_("caseworker", sub="caseworker-2")
    answers = [await upload(intake, case["id"], "x.txt", b"x", headers=stranger),
               await intake.client.get(f"{CASES}/{case['id']}/documents", headers=stranger),
               await download(intake, ids[0], headers=stranger)]
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert all(a.json()["type"].endswith("/need-to-know") for a in answers)
    glass = {**stranger, "Access-Reason": "The person called the hotline about this case"}
    assert (await download(intake, ids[0], headers=glass)).content == b"note 0"
    assert (await download(intake, "00000000-0000-0000-0000-000000000000")).status_code == 404


async def test_the_timeline_and_audit_say_a_document_came_never_its_name(intake):
    case = await intake.create()
    await upload(intake, case["id"], f"{NEEDLE}.txt", b"hello", kind="medical")
    timeline = (await intake.client.get(f"{CASES}/{case['id']}/timeline", headers=intake.caseworker)).json()
    [entry] = [e for e in timeline["items"] if e["kind"] == "document.added"]
    assert entry["details"]["kind"] == "medical" and NEEDLE not in str(entry)
    audit = await intake.client.get("/api/intake/audit", params={"target_id": case["id"]}, headers=intake.auditor)
    assert "document.add" in [e["action"] for e in audit.json()["items"]] and NEEDLE not in audit.text


async def test_erasure_takes_the_documents_and_their_pieces(intake, intake_settings):
    case = await intake.create()
    kept = await intake.create(full_name="Іван Другі")  # another case's document stays
    photo, _ = phone_photo()
    await upload(intake, case["id"], f"{NEEDLE}-passport.jpg", photo)
    await upload(intake, case["id"], f"{NEEDLE}.txt", f"secret {NEEDLE} text".encode() * 20_000)
    other = await upload(intake, kept["id"], "other.txt", b"other case")
    with intake.engine.connect() as conn:
        sealed = [row.data_sealed for row in conn.execute(
            select(DocumentChunk.data_sealed).where(DocumentChunk.case_id == case["id"]))]
    assert len(sealed) > 2

    erased = await intake.client.delete(f"{CASES}/{case['id']}", headers=intake.caseworker)
    assert erased.status_code == 200, erased.text
    with intake.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Document).where(
            Document.case_id == case["id"])).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(DocumentChunk).where(
            DocumentChunk.case_id == case["id"])).scalar_one() == 0
    assert (await download(intake, other.json()["id"])).content == b"other case"
    if is_sqlite(intake.engine):
        files = [p for p in intake_settings.state_dir.parent.rglob("*") if p.is_file()]
        assert any(p.suffix == ".db" for p in files)
        for path in files:
            raw = path.read_bytes()
            assert NEEDLE.encode() not in raw, path.name
            assert not any(blob[:64] in raw for blob in sealed), path.name


async def test_an_upload_retried_with_its_key_adds_one_document_and_another_file_under_it_is_422(intake):
    """SPEC §4: an Idempotency-Key is honoured on any POST that sends one. An upload's multipart boundary differs on
    every send, so the request is known by its kind, file name and file: the retry answers the first answer again."""
    case = await intake.create()
    text = "Нататкі: вызвалены 3 лістапада.\n".encode()
    keyed = {**intake.caseworker, "Idempotency-Key": "upload-once"}
    first = await upload(intake, case["id"], "нататкі.txt", text, kind="other", headers=keyed)
    again = await upload(intake, case["id"], "нататкі.txt", text, kind="other", headers=keyed)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    listed = await intake.client.get(f"{CASES}/{case['id']}/documents", headers=intake.caseworker)
    assert [d["id"] for d in listed.json()["items"]] == [first.json()["id"]]

    other = await upload(intake, case["id"], "нататкі.txt", text + b"more\n", kind="other", headers=keyed)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")


async def test_a_body_past_the_upload_route_s_limit_is_told_in_mib_as_every_problem_is_written(intake):
    """An outside review's find: "The request body exceeds 21037056 bytes.", with spaces after its separators."""
    case = await intake.create()

    refused = await upload(intake, case["id"], "big.txt", b"a" * 22_000_000)

    assert refused.status_code == 413 and refused.json()["type"].endswith("/content-too-large")
    assert refused.json()["detail"] == "A document may be at most 20 MiB (with its form around it)."
    assert b", " not in refused.content and b'": ' not in refused.content  # the problem writer's compact JSON
