"""The `documents` part (issue #17): a document of 5 MB uploaded and downloaded through the gateway, in MB/s, against a
plain file copy of the same bytes in the same run.

The floor is what storing a file costs on this disk at all: `shutil.copyfile` of the document to a fresh file beside
the system's databases, then `fsync`, timed in this process. An upload does much more: the gateway reads the body and
forwards it, intake parses the multipart, hands the bytes to a worker process that judges and cleans them
(`cleaning.Cleaner`, `files.cleaned`) and takes them back, seals them in 256 KiB
pieces under the case's key and commits them to its database; a download opens the case, reads and decrypts the
pieces one by one in a worker thread and streams them through the gateway. The ratio says what all that costs
against the bare write.

Two documents, made here from a seed (the same bytes in every run with the same Pillow):

- `photo`: a phone photo of a certificate, JPEG, 4:3, 12 MP at 5 MB, with the EXIF a phone writes (camera, time,
  orientation, GPS): intake removes the metadata segments and decodes the image with Pillow, at an eighth of its
  size, to check that it is one;
- `scan`: a scanned letter, a PDF of three page images (as a scanner or a phone's scanning app writes it), with an
  information dictionary: intake writes the PDF again without it (pypdf).

For each, one after another: the file copy, the uploads (after one that is not counted: it also starts intake's
cleaning workers and brings Pillow or pypdf into them) and as many downloads, each MB/s the document's size ÷ that request's time, the median counting;
then the same with 4 clients at once (4 copying threads; 4 cases, uploads spread over them), where the whole MB/s
(every byte answered ÷ the wall time) says more. All of it `--rounds` times, interleaved; of each figure the best
round counts, as elsewhere in the bench. MB is 10⁶ bytes.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import random
import shutil
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import api, report, scenarios
from bench.harness import PeakMemory, run_load
from bench.load_spec import LoadResult, LoadSpec, RequestSpec
from bench.population import People
from bench.system import ADMIN_PASSWORD, Backing, System
from services.intake import files

DOCUMENT_BYTES = 5_000_000
REPETITIONS = 10
CLIENTS = (1, 4)
PHOTO, SCAN = "photo", "scan"
KINDS = (PHOTO, SCAN)
MB = 1_000_000


# ---- the documents --------------------------------------------------------------------------------------------------

def _page(width: int, height: int, chance: random.Random, line: int) -> Any:
    """A sheet of paper with lines of words (dark bars) and the grain a camera or a scanner adds: as many JPEG bytes
    per pixel as a real photo of a page."""
    from PIL import Image, ImageDraw

    paper = Image.new("L", (width, height), 228)
    draw = ImageDraw.Draw(paper)
    margin = width // 10
    for top in range(margin, height - margin, line):
        left = margin
        while left < width - margin:
            word = chance.randrange(line // 2, line * 4)
            draw.rectangle((left, top, min(left + word, width - margin), top + line // 2),
                           fill=chance.randrange(20, 90))
            left += word + chance.randrange(line // 4, line // 2)
    grain = Image.frombytes("L", (width, height), chance.randbytes(width * height))
    return Image.blend(paper, grain, 0.18)


def _closest(encode: Callable[[int], bytes], size: int) -> bytes:
    """Of the JPEG qualities 50–98 (bisected), the encoding whose size is closest to `size`."""
    low, high, best = 50, 98, b""
    while low <= high:
        quality = (low + high) // 2
        data = encode(quality)
        if not best or abs(len(data) - size) < abs(len(best) - size):
            best = data
        if len(data) < size:
            low = quality + 1
        else:
            high = quality - 1
    return best


def phone_photo(size: int = DOCUMENT_BYTES, seed: int = 17) -> bytes:
    """A JPEG of about `size` bytes (2.4 pixels a byte: 12 MP at 5 MB), with a phone's EXIF: camera, time, a
    turned orientation (kept by intake) and where it was taken (removed)."""
    from PIL import Image

    chance = random.Random(seed)
    width = int(math.sqrt(size * 2.4 * 4 / 3))
    height = width * 3 // 4
    grey = _page(width, height, chance, max(8, height // 45))
    shade = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (grey, Image.blend(grey, shade, 0.08), Image.blend(grey, shade, 0.16)))
    exif = Image.Exif()
    exif.update({0x010F: "Apple", 0x0110: "iPhone 13", 0x0132: "2026:11:30 14:05:11", 0x0112: 6})
    exif.get_ifd(0x8825).update({1: "N", 2: (53.0, 54.0, 16.2), 3: "E", 4: (27.0, 33.0, 41.7)})
    exif_bytes = exif.tobytes()

    def encode(quality: int) -> bytes:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, exif=exif_bytes)
        return out.getvalue()

    return _closest(encode, size)


def scanned_letter(size: int = DOCUMENT_BYTES, seed: int = 18, pages: int = 3) -> bytes:
    """A PDF of about `size` bytes: `pages` A4 page images (JPEG inside), with an information dictionary."""
    chance = random.Random(seed)
    width = int(math.sqrt(size * 2.4 / pages / 1.414))
    height = int(width * 1.414)
    sheets = [_page(width, height, chance, max(8, height // 60)).convert("RGB") for _ in range(pages)]

    def encode(quality: int) -> bytes:
        out = io.BytesIO()
        sheets[0].save(out, "PDF", save_all=True, append_images=sheets[1:], resolution=300, quality=quality,
                       title="Даведка аб вызваленні", author="Scanner", creator="Canon IJ Scan Utility",
                       producer="Canon")
        return out.getvalue()

    return _closest(encode, size)


MAKERS = {PHOTO: (phone_photo, "IMG_2041.jpg", "image/jpeg", "identity"),
          SCAN: (scanned_letter, "даведка.pdf", "application/pdf", "release")}


def multipart(data: bytes, filename: str, content_type: str, kind: str) -> tuple[bytes, str]:
    """The body of an upload as a browser sends it (fields `kind` and `file`), and its Content-Type."""
    boundary = f"bench-{uuid.uuid4().hex}"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# ---- the floor ------------------------------------------------------------------------------------------------------

def copy_floor(source: Path, folder: Path, *, clients: int, copies: int) -> dict[str, Any]:
    """`copies` copies of `source` to fresh files in `folder`, each followed by an fsync, `clients` at a time: each
    copy's MB/s (the median counts) and the whole MB/s."""
    size = source.stat().st_size

    def one(_index: int) -> float:
        target = folder / f"copy-{uuid.uuid4().hex}"
        started = time.perf_counter()
        shutil.copyfile(source, target)
        descriptor = os.open(target, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        seconds = time.perf_counter() - started
        target.unlink()
        return seconds

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        times = list(pool.map(one, range(copies)))
    wall = time.perf_counter() - started
    return {"copies": copies, "median_ms": round(statistics.median(times) * 1000, 2),
            "median_mb_s": round(size / statistics.median(times) / MB, 1),
            "total_mb_s": round(size * copies / wall / MB, 1)}


# ---- the part -------------------------------------------------------------------------------------------------------

@dataclass
class Prepared:
    """A document ready to send: its bytes in a file (the floor copies it), the multipart body in another (the load
    generator sends it), and what intake made of it."""

    source: Path
    body_file: Path
    body_type: str
    figures: dict[str, Any]  # content type, bytes sent and stored, the cleaning's time


def documents(run: scenarios.Run, workdir: Path, backing_for: Callable[[], Backing],
              progress: Callable[[str], None] = lambda _message: None, *, size: int = DOCUMENT_BYTES,
              repetitions: int = REPETITIONS, clients: tuple[int, ...] = CLIENTS,
              kinds: tuple[str, ...] = KINDS) -> None:
    """Start a system, measure each kind of document at each number of clients in `rounds` interleaved rounds (the
    order of the kinds reversed every other round; of each figure the round with the most MB/s counts: other work
    on a shared machine only ever slows one down), stop it; the figures go to `run.results["documents"]`. A smoke
    test asks for a small size and few repetitions."""
    rounds = run.settings.rounds
    folder = workdir / "documents-files"
    folder.mkdir(parents=True, exist_ok=True)
    system = System(workdir / "documents", backing_for())
    measured: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    loads: list[float] = []
    try:
        system.start()
        pids = {name: pid for name, pid in system.pids().items() if name in ("gateway", "intake")}
        caseworker = api.staff(system.url, ADMIN_PASSWORD, {"casey": ["caseworker"]})["casey"]
        people = People(seed=17)
        case_ids = [caseworker.call("POST", "/api/intake/cases", json=people.case())["id"] for _ in range(max(clients))]
        prepared = {kind: _prepare(caseworker, case_ids[0], folder, kind, size) for kind in kinds}
        with PeakMemory(pids) as memory:
            for round_number in range(rounds):
                order = list(kinds) if round_number % 2 == 0 else list(reversed(kinds))
                loads.append(report.load_average())
                progress(f"documents: round {round_number + 1} of {rounds}, {size / MB:g} MB each "
                         f"(load average {loads[-1]})")
                for kind in order:
                    for level in clients:
                        for what, figures in _round(system, caseworker.auth, case_ids, prepared[kind], level,
                                                    repetitions).items():
                            measured.setdefault(kind, {}).setdefault(what, {}).setdefault(str(level), []).append(
                                figures)
        caseworker.close()
    finally:
        system.stop()
        system.backing.drop_databases()
        shutil.rmtree(folder, ignore_errors=True)
    run.results["documents"] = {
        "size_asked": size, "repetitions": repetitions, "clients": list(clients), "rounds": rounds,
        "load_by_round": loads, "memory_peak_mib": {name: round(value) for name, value in memory.peak.items()},
        "kinds": {kind: {**prepared[kind].figures, **{
            what: {level: {"best": max(results, key=lambda r: r["median_mb_s"]),
                           "rounds": [r["median_mb_s"] for r in results]}
                   for level, results in by_level.items()}
            for what, by_level in measured[kind].items()}} for kind in kinds},
    }


def _prepare(caseworker: api.Client, case_id: str, folder: Path, kind: str, size: int) -> Prepared:
    """Make the document and its upload body; time the cleaning alone; upload it once (not counted: it also brings
    Pillow or pypdf into intake) and check that a download gives back exactly what intake says it stored."""
    make, filename, content_type, document_kind = MAKERS[kind]
    data = make(size)
    source = folder / filename
    source.write_bytes(data)
    body, body_type = multipart(data, filename, content_type, document_kind)
    body_file = folder / f"{kind}.multipart"
    body_file.write_bytes(body)
    cleaning = []
    for _ in range(3):
        started = time.perf_counter()
        cleaned = files.cleaned(data)
        cleaning.append(time.perf_counter() - started)
    first = caseworker.call("POST", f"/api/intake/cases/{case_id}/documents",
                            files={"file": (filename, data, content_type)}, data={"kind": document_kind})
    stored = caseworker.http.get(f"/api/intake/documents/{first['id']}/content")
    if stored.status_code != 200 or hashlib.sha256(stored.content).hexdigest() != first["sha256"] \
            or first["content_type"] != cleaned.content_type:
        raise RuntimeError(f"the {kind} did not come back as stored: {stored.status_code}, {first}")
    return Prepared(source, body_file, body_type, {
        "content_type": cleaned.content_type, "sent_bytes": len(data), "stored_bytes": first["size"],
        "cleaning_ms": round(statistics.median(cleaning) * 1000, 1)})


def _round(system: System, auth: dict[str, str], case_ids: list[str], document: Prepared, clients: int,
           repetitions: int) -> dict[str, dict[str, Any]]:
    """The file copy, the uploads and the downloads of what was uploaded, `clients` at a time: as many of each, the
    same number for every client (at least `repetitions`)."""
    count = math.ceil(max(repetitions, clients) / clients) * clients
    floor = copy_floor(document.source, document.source.parent, clients=clients, copies=count)
    uploads = [RequestSpec(method="POST", path=f"/api/intake/cases/{case_ids[i % clients]}/documents",
                           headers={**auth, "Content-Type": document.body_type}, body_file=str(document.body_file))
               for i in range(count)]
    uploaded = _load(system, uploads, clients, collect="id")
    if not uploaded.collected:
        raise RuntimeError(f"no upload was answered 2xx: {uploaded.error_samples}")
    downloads = [scenarios._get(f"/api/intake/documents/{document_id}/content", auth)
                 for document_id in uploaded.collected]
    return {"floor": floor, "upload": _rates(uploaded, document.figures["sent_bytes"]),
            "download": _rates(_load(system, downloads, clients), document.figures["stored_bytes"])}


def _load(system: System, requests: list[RequestSpec], clients: int, **options: Any) -> LoadResult:
    """Each request once, `clients` at a time; bounded by the generator's longest run."""
    return run_load(LoadSpec(base_url=system.url, requests=requests, concurrency=clients, cycle=False,
                             duration=110, timeout=60, **options))


def _rates(result: LoadResult, size: int) -> dict[str, Any]:
    """MB/s of the median request (the document's bytes ÷ its time), and of the whole run (every 2xx answer's bytes
    ÷ the wall time)."""
    p50 = result.latency_ms.p50
    return {"median_mb_s": round(size / MB / (p50 / 1000), 1) if p50 else 0.0,
            "total_mb_s": round(size * result.ok / MB / result.seconds, 1) if result.seconds else 0.0,
            **result.model_dump(exclude={"collected"})}
