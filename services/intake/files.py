"""What a document is, judged by its bytes, and the same bytes without what would betray the person.

A file's name and the type its sender declared say nothing we may believe: a document is a PDF, a JPEG, a PNG or
UTF-8 text only when its bytes parse as one (anything else is refused). A phone photo carries where it was taken
(EXIF GPS), on which camera and when, and often a thumbnail; a PNG carries text chunks; a PDF its author, its
software and an XMP packet. All of that goes before the bytes are stored:

- JPEG: segments are removed without decoding the image (its pixels stay exactly as they were): every APPn segment
  but JFIF (APP0, without its thumbnail), the ICC colour profile (APP2 `ICC_PROFILE`, kept when it begins like one:
  it holds no person) and Adobe's colour transform (APP14, needed to decode, nothing after its fields); comments (COM);
  anything after the end of the image (a second, "multi-picture" image with its own EXIF). A segment of a kind no
  JPEG has, a second start of image, a line count or restart interval longer than its two bytes is refused. EXIF's
  orientation alone is written back in a minimal EXIF segment, so that the photo is not shown on its side.
- PNG: chunks are kept only from a list of those that draw the image (IHDR, PLTE, IDAT, IEND, transparency, colour
  and gamma, pixel size, animation), each of a fixed size only at that size; text (tEXt, zTXt, iTXt), eXIf, tIME,
  the palette's histogram and every private chunk go. The ICC profile (iCCP) is kept, under a fixed name.
- PDF: the document information dictionary (/Info: author, creator, producer, dates) and every XMP /Metadata stream
  (the catalogue's, the pages', the images' and any other object's) are removed, with pypdf, and so are the private
  data programs keep in it (/PieceInfo: Photoshop's copy of the original image with its EXIF, Illustrator's with the
  author's name), where an image's original lay on someone's disk (/OPI), signatures (who signed, where, when, their
  certificate), article threads' information, and every object nothing reaches any more. Every JPEG stored in it as
  it is (a /DCTDecode stream, or /DCT for short: what scanner apps and img2pdf write, a phone photo byte for byte, its
  EXIF with it, or under other filters first, /FlateDecode say) is cleaned by the same rules as a JPEG on its own,
  wherever it sits (a page, a form inside a page, a thumbnail); a JPEG 2000 one (/JPXDecode) keeps only the boxes
  that draw it (its XMP, GeoJP2 and XML boxes go). One that is not a readable JPEG has the PDF refused, and so has a
  PDF with attached files (any file, a photo as it was taken among them: found by the file specification's /EF
  whatever the attached stream says of itself), or with a photo (a JPEG filter's name), EXIF or XMP in what draws a
  page (an inline image, `BI … ID … EI`, however it is spelled or split). Annotations lose their author and dates
  (/T, /M, /CreationDate; a form field keeps its name), and the file its active content: scripts, forms' XFA,
  actions run on opening, launching or submitting (a downloaded PDF that calls home tells where the caseworker
  opened it).
- Text is kept as it is, unless it carries an image or a document (an e-mail saved with a photo attached, a web page
  or an SVG with one inline, a contact card's photo: base64 of a JPEG, PNG or PDF, a `data:image/` address, or a
  PDF behind a line of text).

The bytes arrive from someone who may have made them to exhaust a parser: images over a number of pixels, JPEGs of
too many segments or scans and PDFs over a number of objects or of decoded contents are refused before they cost
more (`TooComplex`), anything a damaged file makes Pillow or pypdf raise is a refusal, never an error, and the
cleaning itself runs in a worker process with a memory ceiling and a time limit (`cleaning`).

No I/O, no HTTP: the use case (`documents`) calls `cleaned(data)` and gets the bytes to store, or `NotAccepted`.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kit.errors import DomainError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pypdf.generic import StreamObject

PDF, JPEG, PNG, TEXT = "application/pdf", "image/jpeg", "image/png", "text/plain; charset=utf-8"
EXTENSIONS = {PDF: ".pdf", JPEG: ".jpg", PNG: ".png", TEXT: ".txt"}
NAME_ENDINGS = {JPEG: (".jpg", ".jpeg"), TEXT: (".txt", ".text")}  # the names a type is saved under as it is

# Beyond any photo or scan people send (a 108-megapixel phone photo is decoded at an eighth of its size to check it;
# a PNG, a screenshot or a scan, is decoded whole) and any PDF a programme's paperwork makes (a 500-page report holds
# some thousands of objects); what lies beyond is a file made to exhaust the parser.
MAX_JPEG_PIXELS = 150_000_000
MAX_PNG_PIXELS = 50_000_000
MAX_PDF_OBJECTS = 50_000


# Why a file is not kept (415), each with a code of its own, so that the console can say what to do about it.
UNSUPPORTED = "unsupported-document-type"  # none of the kinds kept
DAMAGED = "document-damaged"  # begins like one of them, but is damaged or cut short: save or scan it again
ENCRYPTED = "document-encrypted"  # a PDF behind a password: save it without one
CANNOT_BE_CLEANED = "document-cannot-be-cleaned"  # it carries what we cannot strip (an attachment, an inline image)
REFUSALS = (UNSUPPORTED, DAMAGED, ENCRYPTED, CANNOT_BE_CLEANED)


class NotAccepted(DomainError):
    """The bytes are not one of the kinds of document kept, or not a file of that kind we can read and clean (415)."""

    def __init__(self, detail: str = "Only PDF, JPEG, PNG and plain text (UTF-8) documents are accepted; this "
                                     "file's content is none of them.", code: str = UNSUPPORTED) -> None:
        super().__init__(detail, code=code)


def damaged(detail: str) -> NotAccepted:
    return NotAccepted(detail, DAMAGED)


class TooComplex(DomainError):
    """The file is past what a document may hold (pixels, objects, the memory or time its cleaning takes) (413)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="document-too-complex")


@dataclass(frozen=True)
class Cleaned:
    content_type: str
    data: bytes


def cleaned(data: bytes, max_bytes: int | None = None) -> Cleaned:
    """The document's type judged by its content, and its bytes without metadata; `NotAccepted` otherwise, and
    `TooComplex` when the cleaned bytes come to more than `max_bytes` (a PDF written again can grow)."""
    if data.startswith(b"\xff\xd8\xff"):
        result = Cleaned(JPEG, _checked_image(strip_jpeg(data), "JPEG"))
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        result = Cleaned(PNG, _checked_image(strip_png(data), "PNG"))
    elif data.startswith(b"%PDF-"):
        result = Cleaned(PDF, strip_pdf(data))
    elif _is_text(data):
        result = Cleaned(TEXT, _checked_text(data))
    else:
        raise NotAccepted()
    if max_bytes is not None and len(result.data) > max_bytes:
        raise TooComplex(f"Cleaned, this document would be {len(result.data)} bytes; a document may be {max_bytes} "
                         f"bytes at most.")
    return result


# ---- text ----------------------------------------------------------------------------------------------------------

# Control characters a text file does not hold (tab, line feed, form feed and carriage return it may): a binary
# file that happens to be valid UTF-8 (a program, an archive) always holds some, NUL first of all.
_BINARY = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _is_text(data: bytes) -> bool:
    if not data or _BINARY.search(data):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# A file written as text that carries another: an e-mail saved with a photo attached, a web page or an SVG with one
# inline, a contact card's PHOTO (each in base64, which starts so for a JPEG, a PNG, a PDF), or a PDF behind a line.
_CARRIED_FILE = re.compile(rb"/9j/|iVBORw0KGgo|JVBERi0|data:image/|%PDF-")


def _checked_text(data: bytes) -> bytes:
    """Text is kept as it is, unless it carries a photo or a document, which would keep its metadata with it."""
    if _CARRIED_FILE.search(data):
        raise NotAccepted("A text file that carries an image or a document (an e-mail with an attachment, a web page "
                          "with a picture in it) is not accepted: send the picture or the document itself.",
                          CANNOT_BE_CLEANED)
    return data


# ---- JPEG ----------------------------------------------------------------------------------------------------------

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_APP0, _APP2, _APP14, _APP15, _COM = 0xE0, 0xE2, 0xEE, 0xEF, 0xFE
_DNL, _DRI = 0xDC, 0xDD
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length
# What says how to decode the image (ITU T.81 table B.1): frames SOF0–SOF15 (but C4, C8, CC), Huffman (DHT) and
# arithmetic (DAC) tables, quantisation tables (DQT), restart interval (DRI), line count (DNL), expansion (EXP), scans.
_CODING = {*range(0xC0, 0xD0), 0xDA, 0xDB, 0xDC, 0xDD, 0xDF} - {0xC8}
_JFIF_HEADER = 12  # "JFIF\0", version, units, densities; then the thumbnail's size (written back 0 × 0) and pixels
_ADOBE_HEADER = 12  # "Adobe", version, two flag words, the colour transform
# A photo has tens of segments and up to about ten scans (progressive); many more is a file made to be slow to read.
MAX_JPEG_SEGMENTS = 2_000
MAX_JPEG_SCANS = 64
_ORIENTATION_TAG = 0x0112


def _kept_segment(marker: int, payload: bytes) -> bytes | None:
    """The segment's payload as it is kept, None when it goes (`NotAccepted` for a kind no JPEG holds)."""
    if marker == _COM:
        return None
    if _APP0 <= marker <= _APP15:
        # JFIF without its thumbnail (nor its extension, JFXX: a thumbnail that may be a JPEG with its own EXIF), the
        # ICC profile without its dates and device (`scrubbed_icc`), Adobe's colour transform without anything after it.
        if marker == _APP0 and payload.startswith(b"JFIF\0") and len(payload) >= _JFIF_HEADER + 2:
            return payload[:_JFIF_HEADER] + b"\0\0"
        if marker == _APP2 and payload.startswith(b"ICC_PROFILE\0") and _is_icc_piece(payload[12:]):
            if payload[12] == 1:  # the first piece holds the profile's header (and, when alone, all of it)
                return payload[:14] + scrubbed_icc(payload[14:], whole=payload[13] == 1)
            return payload
        if marker == _APP14 and payload.startswith(b"Adobe") and len(payload) >= _ADOBE_HEADER:
            return payload[:_ADOBE_HEADER]
        return None
    if marker in _CODING:
        if marker in (_DNL, _DRI) and len(payload) != 2:  # a line count, a restart interval: two bytes each
            raise damaged("The JPEG image is damaged.")
        return payload
    raise damaged("The JPEG image holds a segment of a kind no JPEG image has.")


def _is_icc_piece(piece: bytes) -> bool:
    """A piece of an ICC profile as APP2 carries it (its number, how many, then the profile's bytes): the first
    begins like a profile does (its size, then `acsp` at byte 36 of the profile)."""
    if len(piece) < 3 or not 1 <= piece[0] <= piece[1]:
        return False
    profile = piece[2:]
    return piece[0] > 1 or (len(profile) >= 40 and profile[36:40] == b"acsp")


def strip_jpeg(data: bytes) -> bytes:
    """The JPEG's segments without metadata (see the module's docstring), its entropy-coded data untouched."""
    if not data.startswith(b"\xff\xd8"):
        raise damaged("The JPEG image is damaged.")
    out = bytearray(b"\xff\xd8")
    orientation = 1
    pos, size = 2, len(data)
    segments = scans = 0
    while True:
        marker, pos = _next_marker(data, pos)
        if marker == _EOI:
            break
        if marker == _SOI:  # a second start inside the first: what follows would be read as a segment of it
            raise damaged("The JPEG image is damaged.")
        if marker in _STANDALONE:
            out += bytes((0xFF, marker))
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise TooComplex(f"The JPEG image has more than {MAX_JPEG_SEGMENTS} segments; a photo has tens.")
        if pos + 2 > size:
            raise damaged("The JPEG image is cut short.")
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if length < 2 or pos + length > size:
            raise damaged("The JPEG image is damaged.")
        payload = data[pos + 2:pos + length]
        if marker == 0xE1 and payload.startswith(b"Exif\0\0"):
            orientation = _exif_orientation(payload[6:]) or orientation
        kept = _kept_segment(marker, payload)
        if kept is not None:
            out += bytes((0xFF, marker)) + struct.pack(">H", len(kept) + 2) + kept
        pos += length
        if marker == _SOS:  # the scan's entropy-coded data runs to the next marker that is not RSTn or stuffing
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise TooComplex(f"The JPEG image has more than {MAX_JPEG_SCANS} scans; a photo has at most tens.")
            end = _scan_end(data, pos)
            out += data[pos:end]
            pos = end
    out += b"\xff\xd9"  # and nothing after it
    if orientation != 1:
        out[2:2] = _orientation_segment(orientation)
    return bytes(out)


def _next_marker(data: bytes, pos: int) -> tuple[int, int]:
    if pos + 1 >= len(data) or data[pos] != 0xFF:
        raise damaged("The JPEG image is damaged.")
    while pos < len(data) and data[pos] == 0xFF:  # fill bytes
        pos += 1
    if pos >= len(data):
        raise damaged("The JPEG image is cut short.")
    return data[pos], pos + 1


def _scan_end(data: bytes, pos: int) -> int:
    size = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= size:
            raise damaged("The JPEG image is cut short.")
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos += 1 if following == 0xFF else 2
            continue
        return pos


def _exif_orientation(tiff: bytes) -> int | None:
    """EXIF's orientation (1–8) from IFD0, or None where it is absent or unreadable."""
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
        for i in range(count):
            entry = tiff[ifd + 2 + 12 * i:ifd + 14 + 12 * i]
            tag, kind, _n = struct.unpack(order + "HHI", entry[:8])
            if tag == _ORIENTATION_TAG and kind == 3:
                value = struct.unpack(order + "H", entry[8:10])[0]
                return value if 1 <= value <= 8 else None
    except (KeyError, struct.error, IndexError):
        return None
    return None


def _orientation_segment(orientation: int) -> bytes:
    """A minimal APP1 EXIF segment holding only the orientation: IFD0 with one entry, no next IFD."""
    tiff = b"MM\0*" + struct.pack(">I", 8) + struct.pack(">H", 1) + struct.pack(
        ">HHIHH", _ORIENTATION_TAG, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


# ---- PNG -----------------------------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEPT = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"pHYs",
             b"bKGD", b"cICP", b"mDCV", b"cLLI", b"acTL", b"fcTL", b"fdAT"}
# The chunks of a size fixed by the PNG standard (sBIT and bKGD: one of a few): an encoder writes nothing after their
# fields, so bytes there are something else carried along.
_PNG_SIZES = {b"IHDR": {13}, b"IEND": {0}, b"gAMA": {4}, b"cHRM": {32}, b"sRGB": {1}, b"pHYs": {9}, b"cICP": {4},
              b"cLLI": {8}, b"mDCV": {24}, b"acTL": {8}, b"fcTL": {26}, b"sBIT": {1, 2, 3, 4}, b"bKGD": {1, 2, 6}}
_ICC_NAME = b"ICC profile"  # what iCCP's profile name, free text the writer chose, becomes


def strip_png(data: bytes) -> bytes:
    """The PNG's chunks that draw the image, each copied whole (its CRC with it); nothing after IEND."""
    out = bytearray(_PNG_SIGNATURE)
    pos, size = len(_PNG_SIGNATURE), len(data)
    while True:
        if pos + 12 > size:
            raise damaged("The PNG image is cut short.")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > size:
            raise damaged("The PNG image is cut short.")
        if kind in _PNG_SIZES and length not in _PNG_SIZES[kind]:
            raise damaged("The PNG image is damaged.")
        if kind == b"iCCP":
            out += _renamed_profile(data[pos + 8:pos + 8 + length])
        elif kind in _PNG_KEPT:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)


def _renamed_profile(payload: bytes) -> bytes:
    """The iCCP chunk with its profile under a fixed name, and without its dates and device (`scrubbed_icc`)."""
    name_end = payload.find(b"\0")
    if not 0 < name_end < 80 or len(payload) < name_end + 2 or payload[name_end + 1] != 0:  # 0: zlib, the only method
        raise damaged("The PNG image is damaged.")
    inflate = zlib.decompressobj()
    try:
        profile = inflate.decompress(payload[name_end + 2:], MAX_ICC_BYTES + 1)
    except zlib.error:
        raise damaged("The PNG image's colour profile is damaged.") from None
    if len(profile) > MAX_ICC_BYTES or inflate.unconsumed_tail:
        raise TooComplex(f"The PNG image's colour profile is larger than {MAX_ICC_BYTES // 2**20} MiB.")
    body = b"iCCP" + _ICC_NAME + b"\0\0" + zlib.compress(scrubbed_icc(profile, whole=True))
    return struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))


# ---- ICC colour profiles (in a JPEG's APP2, a PNG's iCCP) ------------------------------------------------------------

# A profile made when the photo was taken or exported (not a camera maker's fixed one) says when, in its header's
# date (ICC.1 §7.2.8, bytes 24–35) and in a calibration date tag ('calt'). Both are written as zero; so is the
# profile ID (bytes 84–99, an MD5 over the header with the date in it), which zero declares "not computed". A profile
# also names the device and who made it: the header's platform, device maker and model, and creator (bytes 40–43,
# 48–55, 80–83), and the maker's and model's words and the copyright ('dmnd', 'dmdd', 'cprt': "Apple Inc.", a
# phone's model). Those are zeroed too: an empty text of each type ('desc', 'text') is zeros after its type; a 'mluc'
# keeps its record size.
_ICC_DATE = slice(24, 36)
_ICC_PLATFORM = slice(40, 44)
_ICC_DEVICE = slice(48, 56)
_ICC_CREATOR = slice(80, 84)
_ICC_PROFILE_ID = slice(84, 100)
_ICC_HEADER = 128
_ICC_WORDS_OF_WHO = frozenset({b"dmnd", b"dmdd", b"cprt"})
MAX_ICC_BYTES = 4 * 2**20  # a colour profile is kilobytes; a few large ones (CMYK printing) some hundreds


def scrubbed_icc(profile: bytes, *, whole: bool) -> bytes:
    """The profile (or the first piece of one, `whole=False`) with its dates, ID, device and maker zeroed; colours
    are untouched. Too short to hold a header: as it is (a reader takes it for no profile)."""
    if len(profile) < _ICC_HEADER:
        return profile
    out = bytearray(profile)
    for field in (_ICC_DATE, _ICC_PLATFORM, _ICC_DEVICE, _ICC_CREATOR, _ICC_PROFILE_ID):
        out[field] = bytes(field.stop - field.start)
    if whole:
        count = int.from_bytes(out[128:132], "big")
        for entry in range(min(count, (len(out) - 132) // 12)):
            signature, offset, size = struct.unpack(">4sII", out[132 + entry * 12:144 + entry * 12])
            # dateTimeType: 'dtim', 4 bytes reserved, then the 12 bytes of the date
            if signature == b"calt" and size >= 20 and offset + 20 <= len(out) and out[offset:offset + 4] == b"dtim":
                out[offset + 8:offset + 20] = bytes(12)
            elif signature in _ICC_WORDS_OF_WHO and size > 16 and offset + size <= len(out):
                # Its type kept, its words gone; a 'mluc' keeps its record size (12), with no record.
                kept = 16 if out[offset:offset + 4] == b"mluc" else 8
                out[offset + 8:offset + 12] = bytes(4)
                out[offset + kept:offset + size] = bytes(size - kept)
    return bytes(out)


# ---- both images ---------------------------------------------------------------------------------------------------

def _checked_image(data: bytes, name: str) -> bytes:
    """The cleaned image decodes: a file that only begins like an image is not one. Its size is read from its header
    first: one past the pixels allowed is refused undecoded, and a JPEG is decoded at an eighth of its size (which
    reads every bit of it all the same)."""
    from PIL import Image

    most = MAX_JPEG_PIXELS if name == "JPEG" else MAX_PNG_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit is ours, below
            image = Image.open(io.BytesIO(data))
        with image:
            if image.format != name:
                raise NotAccepted()
            width, height = image.size
            if width * height > most:
                raise TooComplex(f"The {name} image is {width}×{height} pixels; at most {most // 1_000_000} million "
                                 f"pixels are accepted.")
            if name == "JPEG":
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
    except Image.DecompressionBombError:  # Pillow's own ceiling, above ours: the header says more than it holds
        raise TooComplex(f"The {name} image is larger than {most // 1_000_000} million pixels.") from None
    except (NotAccepted, TooComplex, MemoryError):
        raise
    except Exception:  # noqa: BLE001 - whatever else a damaged file makes Pillow raise (IndexError, …)
        raise damaged(f"The file begins like a {name} image but is not a readable one.") from None
    return data


# ---- PDF -----------------------------------------------------------------------------------------------------------

# Filter names as a PDF may abbreviate them (ISO 32000 §8.9.7, which some writers use outside inline images too).
_FILTER_NAMES = {"/DCT": "/DCTDecode", "/Fl": "/FlateDecode", "/AHx": "/ASCIIHexDecode", "/A85": "/ASCII85Decode",
                 "/LZW": "/LZWDecode", "/RL": "/RunLengthDecode", "/CCF": "/CCITTFaxDecode"}
# What carries another file inside a PDF: a file specification's /EF, and the annotations that play or attach one.
_CARRYING_ANNOTATIONS = {"/FileAttachment", "/RichMedia", "/Sound", "/Movie", "/Screen", "/3D"}
# Actions that run something, play something (a rendition may carry its own script), reach out or send the form:
# emptied (a viewer ignores an empty action). A thread action may name another file.
_ACTIVE_ACTIONS = {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/RichMediaExecute", "/GoToR", "/GoToE",
                   "/Rendition", "/Sound", "/Movie", "/GoTo3DView", "/Thread"}
# A link (a /URI action) is kept where it names a web page or an address to write to: one to a file share
# (file://host/share: a click on Windows sends the office's address and a password hash there), a script
# (javascript:) or anything relative (resolved against a base the document names) is emptied, as the base is dropped.
_KEPT_LINK_SCHEMES = ("http://", "https://", "mailto:")
# Keys of any dictionary that hold metadata, another program's private copy of the work (Photoshop's and
# Illustrator's /PieceInfo: the original image with its EXIF, the author's name), where the original lay on someone's
# disk (/OPI), web-capture data, forms' scripts (/XFA) and the document's scripts and actions.
_DROPPED_KEYS = ("/Metadata", "/PieceInfo", "/LastModified", "/OPI", "/SpiderInfo", "/XFA", "/AA", "/OpenAction",
                 "/JavaScript", "/JS")  # /JS: a script, in whatever dictionary carries one
# Streams kept as their bytes are (no text in them to look through), besides images: font programs.
_FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")
# In the drawing of a page or anything else drawn: the name of a JPEG or JPEG 2000 filter is only ever an inline
# image's (`BI … /F /DCT ID <a photo's file> EI`); EXIF and XMP have no business there at all.
_HIDDEN_IN_DRAWING = re.compile(rb"/(?:DCT|DCTDecode|JPX|JPXDecode)(?![^\x00\t\n\x0c\r /\[\]<>(){}%])"
                                rb"|Exif\x00\x00|<x:xmpmeta|<\?xpacket")
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
# What decoding the streams of one PDF may come to, all of them together: a few hundred kilobytes can inflate to
# gigabytes; a document of 20 MiB holding more than this is not one people send.
MAX_PDF_DECODED_BYTES = 256 * 1024 * 1024


def strip_pdf(data: bytes) -> bytes:
    """The PDF written again without its information dictionary, metadata, its images' metadata, its annotations'
    authors and dates, signatures' signers, private data of the programs that made it, and its active content; and
    without any object nothing reaches any more (see the module's docstring)."""
    from pypdf import PdfReader, PdfWriter

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise NotAccepted("Encrypted PDF documents are not accepted: save it without a password first.",
                              ENCRYPTED)
        objects = sum(len(numbers) for numbers in reader.xref.values()) + len(reader.xref_objStm)
        if objects > MAX_PDF_OBJECTS:
            raise TooComplex(f"The PDF holds {objects} objects; at most {MAX_PDF_OBJECTS} are accepted.")
        writer = PdfWriter(clone_from=reader)
        writer.metadata = None  # the /Info dictionary, gone from the trailer
        # The file identifier: many programs make it from the file's path, time and metadata, so the original's
        # would let a guess at what was removed be checked. A new one, random (ISO 32000 §14.4).
        writer._ID = None
        writer.generate_file_identifiers()
        # First what each object says of itself and holds written inside it; then what nothing reaches any more goes
        # (the removed metadata, private data and scripts, and anything only they pointed at); then the streams left.
        for obj in writer._objects:
            for dictionary in _dictionaries_in(obj):
                _strip_dictionary(dictionary)
        _drop_unreachable(writer)
        _strip_streams(writer)
        out = io.BytesIO()
        writer.write(out)
    except (NotAccepted, TooComplex, MemoryError):
        raise
    except Exception:  # noqa: BLE001 - whatever else a damaged file makes pypdf raise (NotImplementedError, …)
        raise damaged("The file begins like a PDF but is not a readable one.") from None
    return out.getvalue()


def _attachments_refused() -> NotAccepted:
    # An attachment is a file of any kind, a phone photo as it was taken among them: not cleaned here.
    return NotAccepted("PDF documents with attached files are not accepted: save or print it without its "
                       "attachments first.", CANNOT_BE_CLEANED)


def _dictionaries_in(obj: object) -> list[dict]:
    """The dictionaries of one object: itself if it is one, and every one written inside it (an annotation's action,
    a name tree's file specifications), not those it points to (objects of their own, each visited in turn)."""
    from pypdf.generic import DictionaryObject

    return [part for part in _written_in(obj) if isinstance(part, DictionaryObject)]


def _written_in(obj: object) -> list[object]:
    """One object and every dictionary and array written inside it, without following its references."""
    from pypdf.generic import ArrayObject, DictionaryObject

    found: list[object] = []
    pending = [obj]
    while pending:
        item = pending.pop()
        if isinstance(item, DictionaryObject):
            found.append(item)
            pending.extend(item.values())
        elif isinstance(item, ArrayObject):
            found.append(item)
            pending.extend(item)
    return found


def _resolved(value: object) -> object:
    return value.get_object() if hasattr(value, "get_object") else value


def _strip_dictionary(obj: dict) -> None:
    """One dictionary's metadata, author and dates, attachments and active content."""
    from pypdf.generic import NameObject

    subtype, kind = _resolved(obj.get("/Subtype")), _resolved(obj.get("/Type"))
    if "/EF" in obj or kind == "/EmbeddedFile" or subtype in _CARRYING_ANNOTATIONS:
        raise _attachments_refused()
    for key in _DROPPED_KEYS:
        obj.pop(NameObject(key), None)
    action = _resolved(obj.get("/S"))
    if action in _ACTIVE_ACTIONS or (action == "/URI" and not _kept_link(obj.get("/URI"))) or kind == "/Sig" \
            or "/ByteRange" in obj:
        obj.clear()  # an action that runs something; a signature: the signer's name, place, time and certificate
    elif kind == "/Page":
        obj.pop(NameObject("/B"), None)  # article beads, which lead to the threads' information (author, dates)
    elif kind == "/Catalog":
        obj.pop(NameObject("/Threads"), None)
        obj.pop(NameObject("/URI"), None)  # the base every relative link is resolved against
    elif subtype is not None and ("/Rect" in obj or "/IRT" in obj or "/Popup" in obj or "/RC" in obj):
        # An annotation (a reply too): when, and who wrote it (the name of their account); a form field's /T is its
        # name.
        form_field = subtype == "/Widget" or "/FT" in obj
        for key in ("/M", "/CreationDate") if form_field else ("/T", "/M", "/CreationDate"):
            obj.pop(NameObject(key), None)


def _kept_link(target: object) -> bool:
    """Whether a link's target is a web page or a mail address (what a reader's click may open)."""
    target = _resolved(target)
    written = target.decode("latin-1") if isinstance(target, bytes) else str(target or "")
    return written.lstrip("\x00\t\n\x0c\r ").lower().startswith(_KEPT_LINK_SCHEMES)


def _drop_unreachable(writer: object) -> None:
    """Forget every object the catalogue no longer leads to, even one that points at itself or at another such (what
    pypdf's own pruning, by references alone, would keep)."""
    from pypdf.generic import ArrayObject, IndirectObject

    objects = writer._objects  # type: ignore[attr-defined]
    reached: set[int] = set()
    pending = [writer.root_object.indirect_reference.idnum]  # type: ignore[attr-defined]
    identifier = getattr(getattr(writer, "_ID", None), "indirect_reference", None)
    if identifier is not None:
        pending.append(identifier.idnum)
    while pending:
        number = pending.pop()
        if number in reached or not 0 < number <= len(objects) or objects[number - 1] is None:
            continue
        reached.add(number)
        for part in _written_in(objects[number - 1]):
            values = part if isinstance(part, ArrayObject) else part.values()
            pending.extend(value.idnum for value in values if isinstance(value, IndirectObject))
    for number in range(1, len(objects) + 1):
        if number not in reached:
            objects[number - 1] = None


def _strip_streams(writer: object) -> None:
    """Every stream left: images lose their metadata; anything else but pixels, font programs and colour profiles
    (what a page draws above all) is refused when it holds an inline photo, EXIF or XMP."""
    from pypdf.generic import StreamObject

    everything = writer._objects  # type: ignore[attr-defined]
    kept_as_they_are, drawn = _data_streams(everything)
    decoded = 0
    for stream in (obj for obj in everything if isinstance(obj, StreamObject)):
        filters = _filters(stream)
        if filters[-1:] == ["/DCTDecode"]:
            decoded += _strip_image_stream(stream, filters, strip_jpeg, "JPEG")
        elif filters[-1:] == ["/JPXDecode"]:
            decoded += _strip_image_stream(stream, filters, strip_jp2, "JPEG 2000")
        elif id(stream) in drawn or not (id(stream) in kept_as_they_are
                                         or _resolved(stream.get("/Subtype")) == "/Image"):
            content = stream.get_data()
            decoded += len(content)
            if _HIDDEN_IN_DRAWING.search(_NAME_ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), content)):
                raise NotAccepted("PDF documents with a photo or metadata hidden in what a page draws (an inline "
                                  "image, say) are not accepted: print it to PDF again first.", CANNOT_BE_CLEANED)
        if decoded > MAX_PDF_DECODED_BYTES:
            raise TooComplex(f"The PDF's contents come to more than {MAX_PDF_DECODED_BYTES // 2**20} MiB once "
                             f"decompressed.")


def _data_streams(everything: list) -> tuple[set[int], set[int]]:
    """The streams (by identity) that hold data to keep as it is, found by what points at them (font programs, ICC
    profiles), and those that certainly draw (pages' contents, Type 3 glyphs, annotations' appearances), whatever
    they say of themselves."""
    from pypdf.generic import ArrayObject, DictionaryObject, StreamObject

    as_they_are: set[int] = set()
    drawn: set[int] = set()

    def streams_in(value: object) -> list[int]:
        value = _resolved(value)
        if isinstance(value, ArrayObject):
            return [id(_resolved(item)) for item in value]
        if isinstance(value, DictionaryObject) and not isinstance(value, StreamObject):  # /AP's, /CharProcs' streams
            return [found for item in value.values() for found in streams_in(item)]
        return [id(value)]

    for part in (part for obj in everything for part in _written_in(obj)):
        if isinstance(part, ArrayObject):
            if len(part) == 2 and _resolved(part[0]) == "/ICCBased":
                as_they_are.add(id(_resolved(part[1])))
            continue
        for key in _FONT_FILES + ("/DestOutputProfile",):
            if key in part:
                as_they_are.add(id(_resolved(part[key])))
        for key in ("/CharProcs", "/AP"):
            if key in part:
                drawn.update(streams_in(part[key]))
        if _resolved(part.get("/Type")) == "/Page" and "/Contents" in part:
            drawn.update(streams_in(part["/Contents"]))
    return as_they_are, drawn


def _filters(stream: StreamObject) -> list[str]:
    """The stream's filters in order, full names (an abbreviation or a name in an object of its own resolved)."""
    filters = _resolved(stream.get("/Filter"))
    listed = list(filters) if isinstance(filters, list) else [filters] if filters is not None else []
    return [_FILTER_NAMES.get(str(_resolved(f)), str(_resolved(f))) for f in listed]


def _strip_image_stream(stream: StreamObject, filters: list[str], strip: Callable[[bytes], bytes], kind: str) -> int:
    """The image in the stream without its metadata, its coded data (so its pixels) untouched; written back as the
    image file alone (its codec the only filter) when it came under others, those undone. Returns the bytes it
    decoded."""
    from pypdf.generic import NameObject

    if len(filters) == 1:
        image = stream._data  # the raw bytes: pypdf does not decode JPEG, the stream's "data" is the file
    else:
        image = stream.get_data()
        parameters = _resolved(stream.get("/DecodeParms", stream.get("/DP")))
        codec = _resolved(parameters[-1]) if isinstance(parameters, list) and parameters else None
        for key in ("/DecodeParms", "/DP"):
            stream.pop(NameObject(key), None)
        if isinstance(codec, dict) and codec:  # the codec's own parameters (a JPEG's /ColorTransform)
            stream[NameObject("/DecodeParms")] = codec
    stream[NameObject("/Filter")] = NameObject(filters[-1])
    try:
        cleaned_image = strip(image)
    except NotAccepted:
        # Left as it is, the image would keep whatever it carries: a PDF we cannot clean is not stored.
        raise damaged(f"The PDF holds a {kind} image that is damaged, so its metadata cannot be removed.") from None
    # pypdf's set_data re-encodes, and only for /FlateDecode; the image is the stream's data as it is (its /Length is
    # written from it).
    stream._data = cleaned_image
    stream.decoded_self = None
    return len(image) if len(filters) > 1 else 0


# ---- JPEG 2000 (in PDFs) -------------------------------------------------------------------------------------------

_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
# The boxes that draw the image (ISO 15444-1 annex I: signature, file type, header, codestream; the header's own boxes
# are kept whole); XMP and GeoJP2 (uuid), XML (GML among them), IPR and UUID info go.
_JP2_KEPT = {b"jP  ", b"ftyp", b"jp2h", b"jp2c"}
# Inside the header, what says how to draw: size, bit depths, colour, palette and its mapping, channels, resolution.
_JP2_HEADER_KEPT = {b"ihdr", b"bpcc", b"colr", b"pclr", b"cmap", b"cdef", b"res "}


def strip_jp2(data: bytes) -> bytes:
    """A JPEG 2000 image without its metadata boxes; a bare codestream (no boxes) as it is."""
    if data.startswith(b"\xff\x4f\xff\x51"):
        return data
    if not data.startswith(_JP2_SIGNATURE):
        raise damaged("The JPEG 2000 image is damaged.")
    return _jp2_boxes(data, _JP2_KEPT)


def _jp2_boxes(data: bytes, kept: set[bytes]) -> bytes:
    """The boxes of `data` whose type is in `kept`, in order (the header's own boxes filtered the same way)."""
    out, pos, size = bytearray(), 0, len(data)
    while pos < size:
        if pos + 8 > size:
            raise damaged("The JPEG 2000 image is cut short.")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if length == 1:  # the length in the 8 bytes after the type
            if pos + 16 > size:
                raise damaged("The JPEG 2000 image is cut short.")
            (length,) = struct.unpack(">Q", data[pos + 8:pos + 16])
            header = 16
        end = size if length == 0 else pos + length  # 0: the box runs to the end of the file
        if length and (length < header or end > size):
            raise damaged("The JPEG 2000 image is damaged.")
        if kind == b"jp2h":
            inner = _jp2_boxes(data[pos + header:end], _JP2_HEADER_KEPT)
            out += struct.pack(">I", 8 + len(inner)) + b"jp2h" + inner
        elif kind in kept:
            out += data[pos:end]
        pos = end
    return bytes(out)
