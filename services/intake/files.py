"""What a document is, judged by its bytes, and the same bytes without what would betray the person.

A file's name and the type its sender declared say nothing we may believe: a document is a PDF, a JPEG, a PNG or
UTF-8 text only when its bytes parse as one (anything else is refused). A phone photo carries where it was taken
(EXIF GPS), on which camera and when, and often a thumbnail; a PNG carries text chunks; a PDF its author, its
software and an XMP packet. All of that goes before the bytes are stored:

- JPEG: segments are removed without decoding the image (its pixels stay exactly as they were): every APPn segment
  but JFIF (APP0), the ICC colour profile (APP2 `ICC_PROFILE`, kept: it holds no person) and Adobe's colour transform
  (APP14, needed to decode); comments (COM); anything after the end of the image (a second, "multi-picture" image
  with its own EXIF). EXIF's orientation alone is written back in a minimal EXIF segment, so that the photo is not
  shown on its side.
- PNG: chunks are kept only from a list of those that draw the image (IHDR, PLTE, IDAT, IEND, transparency, colour
  and gamma, pixel size, animation); text (tEXt, zTXt, iTXt), eXIf, tIME and every private chunk go. The ICC
  profile (iCCP) is kept.
- PDF: the document information dictionary (/Info: author, creator, producer, dates) and every XMP /Metadata stream
  (the catalogue's, the pages', the images' and any other object's) are removed, with pypdf. Every JPEG stored in
  it as it is (a /DCTDecode stream: what scanner apps and img2pdf write, a phone photo byte for byte, its EXIF with
  it, or under other filters first, /FlateDecode say) is cleaned as a JPEG on its own is, wherever it sits (a page,
  a form inside a page, a thumbnail); one that is not a readable JPEG has the PDF refused, and so has a PDF with
  attached files (any file, a photo as it was taken among them).

No I/O, no HTTP: the use case (`documents`) calls `cleaned(data)` and gets the bytes to store, or `NotAccepted`.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kit.errors import DomainError

if TYPE_CHECKING:
    from pypdf.generic import StreamObject

PDF, JPEG, PNG, TEXT = "application/pdf", "image/jpeg", "image/png", "text/plain; charset=utf-8"
EXTENSIONS = {PDF: ".pdf", JPEG: ".jpg", PNG: ".png", TEXT: ".txt"}


class NotAccepted(DomainError):
    """The bytes are not one of the kinds of document kept (415)."""

    def __init__(self, detail: str = "Only PDF, JPEG, PNG and plain text (UTF-8) documents are accepted; this "
                                     "file's content is none of them.") -> None:
        super().__init__(detail, code="unsupported-document-type")


@dataclass(frozen=True)
class Cleaned:
    content_type: str
    data: bytes


def cleaned(data: bytes) -> Cleaned:
    """The document's type judged by its content, and its bytes without metadata; `NotAccepted` otherwise."""
    if data.startswith(b"\xff\xd8\xff"):
        return Cleaned(JPEG, _checked_image(strip_jpeg(data), "JPEG"))
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Cleaned(PNG, _checked_image(strip_png(data), "PNG"))
    if data.startswith(b"%PDF-"):
        return Cleaned(PDF, strip_pdf(data))
    if _is_text(data):
        return Cleaned(TEXT, data)
    raise NotAccepted()


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


# ---- JPEG ----------------------------------------------------------------------------------------------------------

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_APP0, _APP2, _APP14, _APP15, _COM = 0xE0, 0xE2, 0xEE, 0xEF, 0xFE
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length
_ORIENTATION_TAG = 0x0112


def _kept_segment(marker: int, payload: bytes) -> bool:
    if marker == _COM:
        return False
    if _APP0 <= marker <= _APP15:
        if marker == _APP0:
            return payload.startswith(b"JFIF\0") or payload.startswith(b"JFXX\0")
        if marker == _APP2:
            return payload.startswith(b"ICC_PROFILE\0")
        return marker == _APP14 and payload.startswith(b"Adobe")
    return True


def strip_jpeg(data: bytes) -> bytes:
    """The JPEG's segments without metadata (see the module's docstring), its entropy-coded data untouched."""
    out = bytearray(b"\xff\xd8")
    orientation = 1
    pos, size = 2, len(data)
    while True:
        marker, pos = _next_marker(data, pos)
        if marker == _EOI:
            break
        if marker in _STANDALONE:
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > size:
            raise NotAccepted("The JPEG image is cut short.")
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if length < 2 or pos + length > size:
            raise NotAccepted("The JPEG image is damaged.")
        payload = data[pos + 2:pos + length]
        if marker == 0xE1 and payload.startswith(b"Exif\0\0"):
            orientation = _exif_orientation(payload[6:]) or orientation
        if _kept_segment(marker, payload):
            out += bytes((0xFF, marker)) + data[pos:pos + length]
        pos += length
        if marker == _SOS:  # the scan's entropy-coded data runs to the next marker that is not RSTn or stuffing
            end = _scan_end(data, pos)
            out += data[pos:end]
            pos = end
    out += b"\xff\xd9"  # and nothing after it
    if orientation != 1:
        out[2:2] = _orientation_segment(orientation)
    return bytes(out)


def _next_marker(data: bytes, pos: int) -> tuple[int, int]:
    if pos + 1 >= len(data) or data[pos] != 0xFF:
        raise NotAccepted("The JPEG image is damaged.")
    while pos < len(data) and data[pos] == 0xFF:  # fill bytes
        pos += 1
    if pos >= len(data):
        raise NotAccepted("The JPEG image is cut short.")
    return data[pos], pos + 1


def _scan_end(data: bytes, pos: int) -> int:
    size = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= size:
            raise NotAccepted("The JPEG image is cut short.")
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
             b"bKGD", b"hIST", b"cICP", b"mDCV", b"cLLI", b"acTL", b"fcTL", b"fdAT"}


def strip_png(data: bytes) -> bytes:
    """The PNG's chunks that draw the image, each copied whole (its CRC with it); nothing after IEND."""
    out = bytearray(_PNG_SIGNATURE)
    pos, size = len(_PNG_SIGNATURE), len(data)
    while True:
        if pos + 12 > size:
            raise NotAccepted("The PNG image is cut short.")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > size:
            raise NotAccepted("The PNG image is cut short.")
        if kind in _PNG_KEPT:
            out += data[pos:end]
        pos = end
        if kind == b"IEND":
            return bytes(out)


# ---- both images ---------------------------------------------------------------------------------------------------

def _checked_image(data: bytes, name: str) -> bytes:
    """The cleaned image decodes: a file that only begins like an image is not one."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != name:
                raise NotAccepted()
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise NotAccepted(f"The file begins like a {name} image but is not a readable one.") from None
    return data


# ---- PDF -----------------------------------------------------------------------------------------------------------

def strip_pdf(data: bytes) -> bytes:
    """The PDF written again without its information dictionary, XMP metadata streams and its JPEGs' metadata."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PyPdfError
    from pypdf.generic import DictionaryObject, NameObject, StreamObject

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise NotAccepted("Encrypted PDF documents are not accepted: save it without a password first.")
        writer = PdfWriter(clone_from=reader)
        writer.metadata = None  # the /Info dictionary, gone from the trailer
        metadata = NameObject("/Metadata")
        # Every object the file will hold, not only what the pages' resources name: a photo can as well sit in a
        # form drawn by a page, a thumbnail, an annotation's appearance or a pattern, and XMP hang on any of them.
        for obj in writer._objects:
            if not isinstance(obj, DictionaryObject):
                continue
            if metadata in obj:
                del obj[metadata]
            if not isinstance(obj, StreamObject):
                continue
            if obj.get("/Type") == "/EmbeddedFile":
                # An attachment is a file of any kind, a phone photo as it was taken among them: not cleaned here.
                raise NotAccepted("PDF documents with attached files are not accepted: save or print it without its "
                                  "attachments first.")
            if _is_plain_jpeg_stream(obj):
                _strip_jpeg_stream(obj)
            elif _ends_in_jpeg(obj):
                _strip_jpeg_stream(obj, jpeg=obj.get_data())  # the other filters undone: the JPEG file itself
        # The objects cloned from the reader are all written unless dropped: the old /Info and XMP would still be
        # in the file, only no longer pointed at.
        writer.compress_identical_objects(remove_duplicates=False, remove_unreferenced=True)
        out = io.BytesIO()
        writer.write(out)
    except NotAccepted:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError):
        raise NotAccepted("The file begins like a PDF but is not a readable one.") from None
    return out.getvalue()


def _is_plain_jpeg_stream(stream: StreamObject) -> bool:
    """The stream's bytes are a JPEG file as it is: /DCTDecode its only filter (alone or a list of one)."""
    filters = stream.get("/Filter")
    filters = filters.get_object() if filters is not None else None  # the name may sit in an object of its own
    if isinstance(filters, list):
        filters = filters[0].get_object() if len(filters) == 1 else None
    return filters == "/DCTDecode"


def _ends_in_jpeg(stream: StreamObject) -> bool:
    """The stream is a JPEG file under other filters (/FlateDecode, then /DCTDecode, say): a photo all the same."""
    filters = stream.get("/Filter")
    filters = filters.get_object() if filters is not None else None
    return isinstance(filters, list) and len(filters) > 1 and filters[-1].get_object() == "/DCTDecode"


def _strip_jpeg_stream(stream: StreamObject, jpeg: bytes | None = None) -> None:
    """The JPEG in the stream without its metadata, its entropy-coded data (so its pixels) untouched; written back as
    the JPEG file alone (/DCTDecode its only filter) when it came under others (`jpeg`: the file, those undone)."""
    if jpeg is None:
        jpeg = stream._data  # the raw bytes: /DCTDecode's "decoded" data would be the same, pypdf does not decode JPEG
    else:
        from pypdf.generic import NameObject

        stream[NameObject("/Filter")] = NameObject("/DCTDecode")
        for parameters in ("/DecodeParms", "/DP"):
            stream.pop(NameObject(parameters), None)
    try:
        if not jpeg.startswith(b"\xff\xd8"):
            raise NotAccepted()
        cleaned_jpeg = strip_jpeg(jpeg)
    except NotAccepted:
        # Left as it is, the image would keep whatever it carries: a PDF we cannot clean is not stored.
        raise NotAccepted("The PDF holds a JPEG image that is damaged, so its metadata cannot be removed.") from None
    # pypdf's set_data re-encodes, and only for /FlateDecode; the JPEG is the stream's data as it is (its /Length is
    # written from it).
    stream._data = cleaned_jpeg
    stream.decoded_self = None
