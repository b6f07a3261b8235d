"""SPEC §7.9: a photo inside a PDF, put there byte for byte as scanner apps and img2pdf do (a /DCTDecode image
XObject), loses where and when it was taken like a photo on its own does; the PDF stays one, the image decodes."""

from __future__ import annotations

import io
import random
import zlib

import pytest
from PIL import ExifTags, Image
from pypdf import PdfReader

from services.intake.files import NotAccepted, cleaned, strip_pdf
from tests.support.pdfs import pdf_of, stream

TAKEN = "2024:01:02 03:04:05"  # DateTimeOriginal: when the photo was taken
CHANGED = "2024:01:02 06:07:08"  # DateTime
CAMERA = "Hiddenvale-Phone"


def photo_with_exif() -> bytes:
    """A noisy JPEG (its compressed bytes hold no date by chance) carrying the camera, the times and GPS."""
    rng = random.Random(7)
    image = Image.new("RGB", (48, 32))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(48 * 32)])
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = CAMERA
    exif[ExifTags.Base.DateTime] = CHANGED
    exif[ExifTags.IFD.Exif] = {ExifTags.Base.DateTimeOriginal: TAKEN}
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (53.0, 54.0, 7.0),
                                  ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (27.0, 33.0, 41.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90, comment=b"taken at the border")
    return out.getvalue()


def jpeg_image(jpeg: bytes, *, filters: bytes = b"/DCTDecode", extra: bytes = b"") -> bytes:
    """An image XObject whose data is the JPEG file as it is, as img2pdf writes one."""
    return stream(b"/Type /XObject /Subtype /Image /Width 48 /Height 32 /ColorSpace /DeviceRGB /BitsPerComponent 8 "
                  b"/Filter " + filters + b" " + extra, jpeg)


CATALOGUE, ONE_PAGE = b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
DRAW_IM0 = stream(b"", b"q 48 0 0 32 0 0 cm /Im0 Do Q")


def img2pdf_like(jpeg: bytes) -> bytes:
    return pdf_of(CATALOGUE, ONE_PAGE,
                  b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 48 32] /Resources << /XObject << /Im0 4 0 R >> >> "
                  b"/Contents 5 0 R >>",
                  jpeg_image(jpeg), DRAW_IM0)


def assert_nothing_of_the_photo_left(pdf: bytes) -> None:
    for trace in (b"Exif", TAKEN.encode(), CHANGED.encode(), CAMERA.encode(), b"border", b"<x:xmpmeta"):
        assert trace not in pdf, trace


def decoded(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    image.load()
    return image


def test_a_photo_embedded_as_img2pdf_does_loses_its_exif_and_keeps_its_pixels():
    photo = photo_with_exif()
    original = img2pdf_like(photo)
    assert b"Exif" in original and TAKEN.encode() in original  # the control: the PDF carries the photo's EXIF

    stored = cleaned(original)

    assert stored.content_type == "application/pdf"
    assert_nothing_of_the_photo_left(stored.data)
    reader = PdfReader(io.BytesIO(stored.data), strict=True)  # strict: a stream's /Length that is wrong is an error
    assert len(reader.pages) == 1
    image = reader.pages[0]["/Resources"]["/XObject"]["/Im0"]
    assert image["/Filter"] == "/DCTDecode" and image.get_data().endswith(b"\xff\xd9")
    stripped = decoded(image.get_data())
    assert not stripped.getexif() and "comment" not in stripped.info
    assert stripped.tobytes() == decoded(photo).tobytes()  # segments removed, the image not encoded again
    assert reader.pages[0].images[0].image.size == (48, 32)  # pypdf finds and decodes it as well


def test_a_photo_only_reachable_through_a_form_or_a_thumbnail_loses_its_exif_too():
    photo = photo_with_exif()
    xmp = stream(b"/Type /Metadata /Subtype /XML", b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + TAKEN.encode()
                 + b"</x:xmpmeta>")
    original = pdf_of(
        CATALOGUE, ONE_PAGE,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 48 32] /Resources << /XObject << /Fm0 4 0 R >> >> "
        b"/Contents 5 0 R /Thumb 8 0 R >>",
        stream(b"/Type /XObject /Subtype /Form /BBox [0 0 48 32] /Resources << /XObject << /Im0 6 0 R >> >>",
               b"q 48 0 0 32 0 0 cm /Im0 Do Q"),
        stream(b"", b"/Fm0 Do"),
        jpeg_image(photo, filters=b"[/DCTDecode]", extra=b"/Metadata 7 0 R"),  # a list of one filter, its own XMP
        xmp,
        jpeg_image(photo, filters=b"9 0 R"),  # the thumbnail, its filter's name in an object of its own
        b"/DCTDecode",
    )
    assert original.count(b"Exif") == 2

    stored = strip_pdf(original)

    assert_nothing_of_the_photo_left(stored)
    page = PdfReader(io.BytesIO(stored), strict=True).pages[0]
    in_the_form = page["/Resources"]["/XObject"]["/Fm0"]["/Resources"]["/XObject"]["/Im0"]
    assert "/Metadata" not in in_the_form
    for image in (in_the_form, page["/Thumb"]):
        assert decoded(image.get_data()).tobytes() == decoded(photo).tobytes()


def test_images_in_other_filters_are_left_as_they_are():
    pixels = bytes(range(48)) * 32 * 3
    flate = zlib.compress(pixels)
    original = pdf_of(CATALOGUE, ONE_PAGE,
                      b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 48 32] /Resources << /XObject << /Im0 4 0 R >> "
                      b">> /Contents 5 0 R >>",
                      stream(b"/Type /XObject /Subtype /Image /Width 48 /Height 32 /ColorSpace /DeviceRGB "
                             b"/BitsPerComponent 8 /Filter /FlateDecode", flate),
                      DRAW_IM0)
    image = PdfReader(io.BytesIO(strip_pdf(original))).pages[0]["/Resources"]["/XObject"]["/Im0"]
    assert image.get_data() == pixels


@pytest.mark.parametrize("not_a_jpeg", [b"not a JPEG at all", photo_with_exif()[:600]], ids=["garbage", "cut-short"])
def test_a_pdf_whose_jpeg_cannot_be_cleaned_is_refused(not_a_jpeg):
    with pytest.raises(NotAccepted, match="JPEG image that is damaged"):
        strip_pdf(img2pdf_like(not_a_jpeg))


def test_a_photo_under_another_filter_first_is_cleaned_too_and_left_a_plain_jpeg():
    jpeg = photo_with_exif()
    pdf = pdf_of(CATALOGUE, ONE_PAGE,
                 b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 48 32] /Resources << /XObject << /Im0 4 0 R >> >> "
                 b"/Contents 5 0 R >>",
                 jpeg_image(zlib.compress(jpeg), filters=b"[/FlateDecode /DCTDecode]"), DRAW_IM0)

    stored = strip_pdf(pdf)

    assert_nothing_of_the_photo_left(stored)  # now stored without the compression that hid it from a byte search
    image = PdfReader(io.BytesIO(stored)).pages[0]["/Resources"]["/XObject"]["/Im0"].get_object()
    assert image["/Filter"] == "/DCTDecode" and image.get_data().startswith(b"\xff\xd8")
    assert decoded(image.get_data()).tobytes() == decoded(jpeg).tobytes()  # the same pixels


def test_a_pdf_with_an_attached_file_is_refused():
    photo = photo_with_exif()
    attached = pdf_of(b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(photo.jpg) 4 0 R] >> >> >>",
                      b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                      b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 48 32] >>",
                      b"<< /Type /Filespec /F (photo.jpg) /EF << /F 5 0 R >> >>",
                      stream(b"/Type /EmbeddedFile /Subtype /image#2Fjpeg", photo))

    with pytest.raises(NotAccepted, match="attached files"):
        strip_pdf(attached)
