"""PDF files written byte by byte, as the tools that make them do (img2pdf, scanner apps): objects in order and a
classic cross-reference table, so a test controls exactly what the file holds."""

from __future__ import annotations


def stream(dictionary: bytes, data: bytes) -> bytes:
    """A stream object's body: its dictionary (without /Length, added here) and its data as given."""
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def pdf_of(*objects: bytes) -> bytes:
    """A PDF of the numbered objects (1 the catalogue, 2 the pages) with a classic cross-reference table."""
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
