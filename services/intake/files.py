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
  it as it is (a /DCTDecode stream, or /DCT for short: what scanner apps and img2pdf write, a phone photo byte for
  byte, its EXIF with it, or under other filters first, /FlateDecode say) is cleaned as a JPEG on its own is,
  wherever it sits (a page, a form inside a page, a thumbnail); a JPEG 2000 one (/JPXDecode) keeps only the boxes
  that draw it (its XMP, GeoJP2 and XML boxes go). One that is not a readable JPEG has the PDF refused, and so has a
  PDF with attached files (any file, a photo as it was taken among them: found by the file specification's /EF
  whatever the attached stream says of itself), or with a JPEG drawn inline in a page's content (`BI … ID … EI`).
  Annotations lose their author and dates (/T, /M, /CreationDate; a form field keeps its name), and the file its
  active content: scripts, actions run on opening, launching or submitting (a downloaded PDF that calls home tells
  where the caseworker opened it).

The bytes arrive from someone who may have made them to exhaust a parser: images over a number of pixels and PDFs over
a number of objects are refused before they are decoded (`TooComplex`), and the cleaning itself runs in a worker
process with a memory ceiling and a time limit (`cleaning`).

No I/O, no HTTP: the use case (`documents`) calls `cleaned(data)` and gets the bytes to store, or `NotAccepted`.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
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


class NotAccepted(DomainError):
    """The bytes are not one of the kinds of document kept (415)."""

    def __init__(self, detail: str = "Only PDF, JPEG, PNG and plain text (UTF-8) documents are accepted; this "
                                     "file's content is none of them.") -> None:
        super().__init__(detail, code="unsupported-document-type")


class TooComplex(DomainError):
    """The file is past what a document may hold (pixels, objects, the memory or time its cleaning takes) (413)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="document-too-complex")


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
            # JFIF only: its extension (JFXX) holds a thumbnail, which may be a JPEG with an EXIF of its own
            return payload.startswith(b"JFIF\0")
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
    """The cleaned image decodes: a file that only begins like an image is not one. Its size is read from its header
    first: one past the pixels allowed is refused undecoded, and a JPEG is decoded at an eighth of its size (which
    reads every bit of it all the same)."""
    from PIL import Image, UnidentifiedImageError

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
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise NotAccepted(f"The file begins like a {name} image but is not a readable one.") from None
    return data


# ---- PDF -----------------------------------------------------------------------------------------------------------

# Filter names as a PDF may abbreviate them (ISO 32000 §8.9.7, which some writers use outside inline images too).
_FILTER_NAMES = {"/DCT": "/DCTDecode", "/Fl": "/FlateDecode", "/AHx": "/ASCIIHexDecode", "/A85": "/ASCII85Decode",
                 "/LZW": "/LZWDecode", "/RL": "/RunLengthDecode", "/CCF": "/CCITTFaxDecode"}
# What carries another file inside a PDF: a file specification's /EF, and the annotations that play or attach one.
_CARRYING_ANNOTATIONS = {"/FileAttachment", "/RichMedia", "/Sound", "/Movie", "/Screen", "/3D"}
# Actions that run something, reach out or send the form: emptied (a viewer ignores an empty action).
_ACTIVE_ACTIONS = {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/RichMediaExecute", "/GoToR", "/GoToE"}
_INLINE_IMAGE = re.compile(rb"(?:^|[\s\]>)}])BI[\s/]")


def strip_pdf(data: bytes) -> bytes:
    """The PDF written again without its information dictionary, XMP metadata streams, its images' metadata, its
    annotations' authors and dates and its active content (see the module's docstring)."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PyPdfError
    from pypdf.generic import NameObject, StreamObject

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise NotAccepted("Encrypted PDF documents are not accepted: save it without a password first.")
        objects = sum(len(numbers) for numbers in reader.xref.values()) + len(reader.xref_objStm)
        if objects > MAX_PDF_OBJECTS:
            raise TooComplex(f"The PDF holds {objects} objects; at most {MAX_PDF_OBJECTS} are accepted.")
        writer = PdfWriter(clone_from=reader)
        writer.metadata = None  # the /Info dictionary, gone from the trailer
        drawn = _content_streams(writer)
        # Every object the file will hold, not only what the pages' resources name: a photo can as well sit in a
        # form drawn by a page, a thumbnail, an annotation's appearance or a pattern, and XMP hang on any of them.
        for number, obj in enumerate(writer._objects, start=1):
            for dictionary in _dictionaries_in(obj):  # the object's own and those written inside it
                _strip_dictionary(dictionary, NameObject)
            if not isinstance(obj, StreamObject):
                continue
            if obj.get("/Type") == "/EmbeddedFile":
                raise _attachments_refused()
            filters = _filters(obj)
            if filters[-1:] == ["/DCTDecode"]:
                _strip_image_stream(obj, filters, strip_jpeg, "JPEG")
            elif filters[-1:] == ["/JPXDecode"]:
                _strip_image_stream(obj, filters, strip_jp2, "JPEG 2000")
            elif number in drawn and _draws_inline_photo(obj, writer):
                raise NotAccepted("PDF documents with a photo drawn inline in a page are not accepted: print it to "
                                  "PDF again first.")
        # The objects cloned from the reader are all written unless dropped: the old /Info and XMP would still be
        # in the file, only no longer pointed at.
        writer.compress_identical_objects(remove_duplicates=False, remove_unreferenced=True)
        out = io.BytesIO()
        writer.write(out)
    except (NotAccepted, TooComplex):
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError):
        raise NotAccepted("The file begins like a PDF but is not a readable one.") from None
    return out.getvalue()


def _attachments_refused() -> NotAccepted:
    # An attachment is a file of any kind, a phone photo as it was taken among them: not cleaned here.
    return NotAccepted("PDF documents with attached files are not accepted: save or print it without its "
                       "attachments first.")


def _dictionaries_in(obj: object) -> list[dict]:
    """The dictionaries of one object: itself if it is one, and every one written inside it (an annotation's action,
    a name tree's file specifications), not those it points to (objects of their own, each visited in turn)."""
    from pypdf.generic import ArrayObject, DictionaryObject

    found: list[dict] = []
    pending = [obj]
    while pending:
        item = pending.pop()
        if isinstance(item, DictionaryObject):
            found.append(item)
            pending.extend(item.values())
        elif isinstance(item, ArrayObject):
            pending.extend(item)
    return found


def _strip_dictionary(obj: dict, name: type) -> None:
    """One object's metadata, author and dates, attachments and active content (any dictionary, a stream's too)."""
    if "/EF" in obj or obj.get("/Subtype") in _CARRYING_ANNOTATIONS:
        raise _attachments_refused()
    for key in ("/Metadata", "/AA", "/OpenAction", "/JavaScript"):  # /JavaScript: the document's named scripts
        obj.pop(name(key), None)
    if obj.get("/S") in _ACTIVE_ACTIONS:
        obj.clear()
    elif "/Rect" in obj and "/Subtype" in obj and obj.get("/Subtype") != "/Widget":
        # An annotation: its author (the name of the account that wrote it) and when; a form field's /T is its name.
        for key in ("/T", "/M", "/CreationDate"):
            obj.pop(name(key), None)


def _filters(stream: StreamObject) -> list[str]:
    """The stream's filters in order, full names (an abbreviation or a name in an object of its own resolved)."""
    filters = stream.get("/Filter")
    filters = filters.get_object() if filters is not None else None
    listed = list(filters) if isinstance(filters, list) else [filters] if filters is not None else []
    return [_FILTER_NAMES.get(str(f.get_object()), str(f.get_object())) for f in listed]


def _content_streams(writer: object) -> set[int]:
    """The object numbers of the streams that draw (pages' contents, forms, tiling patterns): where an inline image
    can sit."""
    from pypdf.generic import ArrayObject, IndirectObject, StreamObject

    drawn: set[int] = set()
    for page in writer.pages:  # type: ignore[attr-defined]
        contents = page.get("/Contents")
        for ref in contents if isinstance(contents, ArrayObject) else [contents]:
            if isinstance(ref, IndirectObject):
                drawn.add(ref.idnum)
    for number, obj in enumerate(writer._objects, start=1):  # type: ignore[attr-defined]
        if isinstance(obj, StreamObject) and (obj.get("/Subtype") == "/Form" or obj.get("/PatternType") == 1):
            drawn.add(number)
    return drawn


def _draws_inline_photo(stream: StreamObject, writer: object) -> bool:
    """An inline image (`BI … ID … EI`) in a JPEG or JPEG 2000 is a photo's file in the page's own drawing; one in
    raw pixels carries nothing else."""
    from pypdf.generic import ContentStream

    if not _INLINE_IMAGE.search(stream.get_data()):
        return False
    for operands, operator in ContentStream(stream, writer).operations:
        if operator == b"INLINE IMAGE":
            settings = operands["settings"]
            filters = settings.get("/F", settings.get("/Filter"))
            named = list(filters) if isinstance(filters, list) else [filters] if filters is not None else []
            if {_FILTER_NAMES.get(str(f), str(f)) for f in named} & {"/DCTDecode", "/JPXDecode"}:
                return True
    return False


def _strip_image_stream(stream: StreamObject, filters: list[str], strip: Callable[[bytes], bytes], kind: str) -> None:
    """The image in the stream without its metadata, its coded data (so its pixels) untouched; written back as the
    image file alone (its codec the only filter) when it came under others, those undone."""
    from pypdf.generic import NameObject

    if len(filters) == 1:
        image = stream._data  # the raw bytes: pypdf does not decode JPEG, the stream's "data" is the file
    else:
        image = stream.get_data()
        parameters = stream.get("/DecodeParms", stream.get("/DP"))
        codec = parameters[-1] if isinstance(parameters, list) and parameters else None
        for key in ("/DecodeParms", "/DP"):
            stream.pop(NameObject(key), None)
        if codec is not None and codec.get_object():  # the codec's own parameters (a JPEG's /ColorTransform)
            stream[NameObject("/DecodeParms")] = codec
    stream[NameObject("/Filter")] = NameObject(filters[-1])
    try:
        cleaned_image = strip(image)
    except NotAccepted:
        # Left as it is, the image would keep whatever it carries: a PDF we cannot clean is not stored.
        raise NotAccepted(f"The PDF holds a {kind} image that is damaged, so its metadata cannot be removed.") from None
    # pypdf's set_data re-encodes, and only for /FlateDecode; the image is the stream's data as it is (its /Length is
    # written from it).
    stream._data = cleaned_image
    stream.decoded_self = None


# ---- JPEG 2000 (in PDFs) -------------------------------------------------------------------------------------------

_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
# The boxes that draw the image (ISO 15444-1 annex I: signature, file type, header, codestream; the header's own boxes
# are kept whole); XMP and GeoJP2 (uuid), XML (GML among them), IPR and UUID info go.
_JP2_KEPT = {b"jP  ", b"ftyp", b"jp2h", b"jp2c"}


def strip_jp2(data: bytes) -> bytes:
    """A JPEG 2000 image without its metadata boxes; a bare codestream (no boxes) as it is."""
    if data.startswith(b"\xff\x4f\xff\x51"):
        return data
    if not data.startswith(_JP2_SIGNATURE):
        raise NotAccepted("The JPEG 2000 image is damaged.")
    out, pos, size = bytearray(), 0, len(data)
    while pos < size:
        if pos + 8 > size:
            raise NotAccepted("The JPEG 2000 image is cut short.")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if length == 1:  # the length in the 8 bytes after the type
            if pos + 16 > size:
                raise NotAccepted("The JPEG 2000 image is cut short.")
            (length,) = struct.unpack(">Q", data[pos + 8:pos + 16])
            header = 16
        end = size if length == 0 else pos + length  # 0: the box runs to the end of the file
        if length and (length < header or end > size):
            raise NotAccepted("The JPEG 2000 image is damaged.")
        if kind in _JP2_KEPT:
            out += data[pos:end]
        pos = end
    return bytes(out)
