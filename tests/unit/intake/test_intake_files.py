"""SPEC §7.9: a photo inside a PDF, put there byte for byte as scanner apps and img2pdf do (a /DCTDecode image
XObject), loses where and when it was taken like a photo on its own does; the PDF stays one, the image decodes."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import ExifTags, Image
from pypdf import PdfReader, PdfWriter

from services.intake import cleaning, files
from services.intake.files import (
    MAX_PDF_OBJECTS,
    MAX_PNG_PIXELS,
    NotAccepted,
    TooComplex,
    cleaned,
    strip_jp2,
    strip_jpeg,
    strip_pdf,
)
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


# ---- what a reviewer made to keep a photo's place past the cleaning ------------------------------------------------

PAGE_DRAWING_IM0 = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 48 32] /Resources << /XObject << /Im0 4 0 R >> >> "
                    b"/Contents 5 0 R >>")


def test_a_photo_under_the_short_name_of_its_filter_is_cleaned_too():
    stored = strip_pdf(pdf_of(CATALOGUE, ONE_PAGE, PAGE_DRAWING_IM0, jpeg_image(photo_with_exif(), filters=b"/DCT"),
                              DRAW_IM0))

    assert_nothing_of_the_photo_left(stored)
    image = PdfReader(io.BytesIO(stored)).pages[0]["/Resources"]["/XObject"]["/Im0"]
    assert image["/Filter"] == "/DCTDecode" and decoded(image.get_data()).size == (48, 32)


def test_an_attachment_is_refused_whatever_its_stream_says_of_itself():
    # the file specification written inside the name tree, no /Type anywhere
    attached = pdf_of(b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(photo.jpg) "
                      b"<< /F (photo.jpg) /EF << /F 4 0 R >> >>] >> >> >>", ONE_PAGE,
                      b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 48 32] >>",
                      stream(b"", photo_with_exif()))  # the attached photo's stream, no /Type /EmbeddedFile

    with pytest.raises(NotAccepted, match="attached files"):
        strip_pdf(attached)


@pytest.mark.parametrize("filters", [b"/DCT", b"[/AHx /DCT]", b"/JPXDecode"])
def test_a_photo_drawn_inline_in_a_page_is_refused(filters):
    photo = photo_with_exif()
    data = photo.hex().encode() + b">" if b"AHx" in filters else photo
    drawing = b"q 48 0 0 32 0 0 cm\nBI /W 48 /H 32 /CS /RGB /BPC 8 /F " + filters + b" ID\n" + data + b"\nEI\nQ\n"
    pdf = pdf_of(CATALOGUE, ONE_PAGE, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 48 32] /Contents 4 0 R >>",
                 stream(b"/Filter /FlateDecode", zlib.compress(drawing)))

    with pytest.raises(NotAccepted, match="hidden in what a page draws"):
        strip_pdf(pdf)


def test_raw_pixels_drawn_inline_are_kept():
    drawing = b"q 2 0 0 2 0 0 cm\nBI /W 2 /H 2 /CS /G /BPC 8 ID\n\x00\xff\xff\x00\nEI\nQ\n"
    pdf = pdf_of(CATALOGUE, ONE_PAGE, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 2 2] /Contents 4 0 R >>",
                 stream(b"", drawing))

    assert b"BI /W 2" in PdfReader(io.BytesIO(strip_pdf(pdf))).pages[0].get_contents().get_data()


def test_annotations_lose_their_author_and_dates_and_the_file_its_scripts():
    pdf = pdf_of(b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (app.launchURL('https://x')) >> "
                 b"/Names << /JavaScript << /Names [(a) << /S /JavaScript /JS (this.print()) >>] >> >> /AcroForm "
                 b"<< /Fields [5 0 R] >> >>", ONE_PAGE,
                 b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 48 32] /Annots [4 0 R 5 0 R 6 0 R] >>",
                 b"<< /Type /Annot /Subtype /Text /Rect [0 0 9 9] /T (Hanna Zhuk) /M (D:20261102212223) "
                 b"/CreationDate (D:20261102212223) /Contents (see page 2) >>",
                 b"<< /Type /Annot /Subtype /Widget /FT /Tx /Rect [0 0 9 9] /T (surname) /V (x) "
                 b"/AA << /K << /S /JavaScript /JS (calc()) >> >> >>",
                 b"<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A << /S /Launch /F (cmd.exe) >> >>")

    stored = strip_pdf(pdf)

    for trace in (b"Hanna Zhuk", b"20261102", b"JavaScript", b"launchURL", b"this.print", b"calc()", b"cmd.exe"):
        assert trace not in stored, trace
    reader = PdfReader(io.BytesIO(stored))
    note, field, _link = (a.get_object() for a in reader.pages[0]["/Annots"])
    assert note["/Contents"] == "see page 2" and field["/T"] == "surname"  # what it says, and a field's name, kept


def test_a_link_is_kept_to_a_web_page_and_emptied_to_a_file_share_a_script_or_a_relative_place():
    """A scan sent by an adversary ("click to see page 2") with a link to file://host/share would send the office's
    address and a password hash there from a Windows reader; the base URI relative links resolve against goes too."""
    links = [b"(https://clinic.example/form)", b"(mailto:help@clinic.example)", b"(file://evil.example/share/x)",
             b"(javascript:app.alert(1))", b"(  JavaScript:x)", b"(page2.html)", b"(smb://evil.example/x)"]
    annotations = [b"<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A << /S /URI /URI " + link + b" >> >>"
                   for link in links]
    refs = b" ".join(b"%d 0 R" % (4 + n) for n in range(len(links)))
    pdf = pdf_of(b"<< /Type /Catalog /Pages 2 0 R /URI << /Base (http://evil.example/base/) >> >>", ONE_PAGE,
                 b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 48 32] /Annots [" + refs + b"] >>", *annotations)

    stored = strip_pdf(pdf)

    reader = PdfReader(io.BytesIO(stored))
    kept = [str(a.get_object()["/A"].get("/URI", "")) for a in reader.pages[0]["/Annots"]]
    assert kept == ["https://clinic.example/form", "mailto:help@clinic.example", "", "", "", "", ""]
    assert "/URI" not in reader.trailer["/Root"] and b"evil.example" not in stored


def test_a_rendition_s_script_and_any_other_script_go_and_the_file_gets_a_new_identifier():
    """A link over the whole page with a /Rendition action and its own /JS ran a script on the first click."""
    pdf = pdf_of(b"<< /Type /Catalog /Pages 2 0 R >>", ONE_PAGE,
                 b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 48 32] /Annots [4 0 R 5 0 R] >>",
                 b"<< /Type /Annot /Subtype /Link /Rect [0 0 48 32] /A << /S /Rendition /OP 0 "
                 b"/JS (app.launchURL('https://evil.example/a')) >> >>",
                 b"<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A << /S /Thread /F (other.pdf) /D 0 >> >>")
    pdf = pdf.replace(b"trailer\n<<", b"trailer\n<< /ID [<00112233445566778899aabbccddeeff> "
                                      b"<00112233445566778899aabbccddeeff>]")

    stored = strip_pdf(pdf)

    assert b"launchURL" not in stored and b"evil.example" not in stored and b"other.pdf" not in stored
    reader = PdfReader(io.BytesIO(stored))
    assert reader.trailer["/ID"][0].original_bytes != bytes.fromhex("00112233445566778899aabbccddeeff")


def jp2_with_geo() -> bytes:
    """A JPEG 2000 file in boxes, as a GIS tool writes one: signature, file type, header, a GeoJP2 uuid box, an XML box
    of GML, the codestream."""
    def box(kind: bytes, payload: bytes) -> bytes:
        return (8 + len(payload)).to_bytes(4, "big") + kind + payload

    return (b"\x00\x00\x00\x0cjP  \r\n\x87\n" + box(b"ftyp", b"jp2 \x00\x00\x00\x00jp2 ")
            + box(b"jp2h", box(b"ihdr", b"\x00" * 14)) + box(b"uuid", b"\xb1\x4b\xf8\xbd" * 4 + b"GeoTIFF 53.9N 27.5E")
            + box(b"xml ", b"<gml:pos>53.9 27.5</gml:pos>") + box(b"jp2c", b"\xff\x4f\xff\x51 codestream"))


def test_a_jpeg_2000_image_keeps_only_the_boxes_that_draw_it():
    pdf = pdf_of(CATALOGUE, ONE_PAGE, PAGE_DRAWING_IM0,
                 stream(b"/Type /XObject /Subtype /Image /Width 48 /Height 32 /Filter /JPXDecode", jp2_with_geo()),
                 DRAW_IM0)

    stored = strip_pdf(pdf)

    assert b"53.9" not in stored and b"GeoTIFF" not in stored
    image = PdfReader(io.BytesIO(stored)).pages[0]["/Resources"]["/XObject"]["/Im0"]
    assert image._data.endswith(b"jp2c\xff\x4f\xff\x51 codestream") and b"jp2h" in image._data


def test_an_image_past_its_pixels_is_refused_before_it_is_decoded():
    side = int(MAX_PNG_PIXELS ** 0.5) + 10
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG")  # a few kilobytes that would be 200 MB as RGBA
    with pytest.raises(TooComplex, match="million pixels"):
        cleaned(out.getvalue())


def test_a_pdf_of_more_objects_than_a_document_holds_is_refused_before_it_is_read():
    many = [b"<< /A %d >>" % n for n in range(MAX_PDF_OBJECTS)]
    with pytest.raises(TooComplex, match=f"at most {MAX_PDF_OBJECTS}"):
        strip_pdf(pdf_of(CATALOGUE, ONE_PAGE, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 1 1] >>", *many))


def test_a_jfif_extension_holding_a_thumbnail_with_exif_goes():
    extension = b"JFXX\x00\x10" + photo_with_exif()  # a thumbnail as a JPEG file, its EXIF with it
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, "JPEG")
    jpeg = plain.getvalue()
    carrying = jpeg[:2] + b"\xff\xe0" + (len(extension) + 2).to_bytes(2, "big") + extension + jpeg[2:]

    stored = strip_jpeg(carrying)

    assert b"JFXX" not in stored and b"Exif" not in stored and TAKEN.encode() not in stored
    assert decoded(stored).tobytes() == decoded(jpeg).tobytes()


# ---- what a second reviewer made ---------------------------------------------------------------------------------

def drawing_with_inline_photo(prefix: bytes = b"q\n", after_bi: bytes = b" ") -> bytes:
    return prefix + b"BI" + after_bi + b"/W 48 /H 32 /CS /RGB /BPC 8 /F /DCT ID\n" + photo_with_exif() + b"\nEI\nQ\n"


@pytest.mark.parametrize("pdf", [
    pdf_of(CATALOGUE, ONE_PAGE, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 9 9] /Contents 4 0 R >>",
           stream(b"", drawing_with_inline_photo(prefix=b"q\x00"))),  # NUL: white space to PDF, not to a regex
    pdf_of(CATALOGUE, ONE_PAGE, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 9 9] /Contents 4 0 R >>",
           stream(b"", drawing_with_inline_photo(after_bi=b"%comment\n"))),
    pdf_of(CATALOGUE, ONE_PAGE, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 9 9] /Contents 4 0 R >>",
           stream(b"/Subtype /Image", drawing_with_inline_photo())),  # a page's drawing that calls itself an image
    pdf_of(CATALOGUE, ONE_PAGE, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 9 9] /Contents 4 0 R >>",
           b"[5 0 R 6 0 R]", stream(b"", b"q BI /W 48 /H 32 /CS /RGB /BPC 8"),  # split in two, through an array
           stream(b"", b"/F /D#43T ID\n" + photo_with_exif() + b"\nEI Q")),  # the filter's name escaped
    pdf_of(CATALOGUE, ONE_PAGE, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 9 9] /Resources << /Font << /F1 4 0 R "
           b">> >> >>", b"<< /Type /Font /Subtype /Type3 /CharProcs << /a 5 0 R >> >>",
           stream(b"", drawing_with_inline_photo())),  # in a Type 3 glyph
], ids=["nul-before-bi", "comment-after-bi", "labelled-image", "split-and-escaped", "type3-glyph"])
def test_a_photo_drawn_inline_is_refused_however_it_is_written(pdf):
    with pytest.raises(NotAccepted, match="hidden in what a page draws"):
        strip_pdf(pdf)


def test_program_private_data_signatures_threads_and_orphans_go():
    signature = b"/Type /Sig /Filter /Adobe.PPKLite /Name (Hanna Zhuk) /Location (Minsk) /M (D:20261102) /Contents <00>"
    pdf = pdf_of(b"<< /Type /Catalog /Pages 2 0 R /PieceInfo << /Illustrator << /Private 4 0 R >> >> "
                 b"/Threads [<< /I << /Author (Hanna Zhuk) >> >>] /AcroForm << /Fields [5 0 R] >> >>", ONE_PAGE,
                 b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 9 9] /Annots [5 0 R] >>",
                 stream(b"", b"%%For: (Hanna Zhuk) Exif\x00\x00"),
                 b"<< /Type /Annot /Subtype /Widget /FT /Sig /Rect [0 0 1 1] /T (signature) /V << " + signature
                 + b" >> >>",
                 stream(b"/Self 6 0 R", b'<x:xmpmeta xmlns:x="adobe:ns:meta/">Hanna Zhuk</x:xmpmeta>'))  # nothing reaches it

    stored = strip_pdf(pdf)

    assert b"Hanna Zhuk" not in stored and b"Minsk" not in stored and b"xmpmeta" not in stored
    assert PdfReader(io.BytesIO(stored)).pages[0]["/Annots"][0].get_object()["/T"] == "signature"


@pytest.mark.parametrize(("data", "refused"), [
    (b"From: a@b\nContent-Type: image/jpeg\nContent-Transfer-Encoding: base64\n\n/9j/4AAQSkZJRgABAQ==\n", NotAccepted),
    (b'<svg><image href="data:image/jpeg;base64,AAAA"/></svg>\n', NotAccepted),
    (b"see attached\n%PDF-1.7\n1 0 obj << >> endobj\n", NotAccepted),
    (b"\xff\xd8" + b"\xff\xdd\x00\x04\x00\x00" * (2_001), TooComplex),  # two thousand restart intervals
], ids=["e-mail", "svg", "pdf-behind-text", "segments"])
def test_files_made_to_carry_or_to_tire_are_refused(data, refused):
    with pytest.raises(refused):
        cleaned(data)


def test_a_photo_in_a_pdf_hiding_exif_in_a_segment_is_refused():
    photo = photo_with_exif()
    scan_end = photo.rindex(b"\xff\xd9")
    long_line_count = photo[:scan_end] + b"\xff\xdc\x00\x10" + TAKEN.encode()[:14] + photo[scan_end:]
    for hiding in (jpeg_with_exif_behind_a_second_start(), long_line_count):
        with pytest.raises(NotAccepted, match="damaged"):
            strip_pdf(img2pdf_like(hiding))


def jpeg_with_exif_behind_a_second_start() -> bytes:
    """SOI twice: a reader that takes the second for a segment reads its length from the APP1 marker after it
    (0xFFE1 bytes) and so keeps the EXIF inside it; a comment makes the span end on the next marker."""
    photo = photo_with_exif()
    start = photo.index(b"\xff\xe1")
    exif = photo[start:start + 2 + int.from_bytes(photo[start + 2:start + 4], "big")]
    filler = 0xFFE1 - len(exif)
    comment = b"\xff\xfe" + (filler - 2).to_bytes(2, "big") + bytes(filler - 4)
    return b"\xff\xd8\xff\xd8" + exif + comment + photo.replace(exif, b"")[2:]


def test_a_png_chunk_longer_than_its_fields_is_refused_and_a_damaged_one_is_not_a_500():
    image = io.BytesIO()
    Image.new("RGB", (4, 4)).save(image, "PNG")
    png = image.getvalue()
    gamma = b"gAMA\x00\x00\xb1\x8fHanna Zhuk 53.9N"
    with_text = png[:33] + struct.pack(">I", len(gamma) - 4) + gamma + struct.pack(">I", zlib.crc32(gamma)) + png[33:]
    empty_profile_after_data = png[:-12] + b"\x00\x00\x00\x00iCCP" + struct.pack(">I", zlib.crc32(b"iCCP")) + png[-12:]

    for damaged in (with_text, empty_profile_after_data):
        with pytest.raises(NotAccepted):
            cleaned(damaged)


def test_a_pdf_pypdf_cannot_decode_is_refused_not_a_500():
    with pytest.raises(NotAccepted, match="not a readable one"):
        strip_pdf(pdf_of(CATALOGUE, ONE_PAGE, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 9 9] /Contents 4 0 R >>",
                         stream(b"/Filter /NoSuchFilter", b"q Q")))


def test_a_jpeg_2000_header_keeps_only_what_draws():
    def box(kind: bytes, payload: bytes) -> bytes:
        return (8 + len(payload)).to_bytes(4, "big") + kind + payload

    jp2 = (b"\x00\x00\x00\x0cjP  \r\n\x87\n" + box(b"jp2h", box(b"ihdr", b"\x00" * 14) + box(b"xml ", b"53.9N Zhuk"))
           + box(b"jp2c", b"\xff\x4f\xff\x51"))
    assert strip_jp2(jp2) == (b"\x00\x00\x00\x0cjP  \r\n\x87\n" + box(b"jp2h", box(b"ihdr", b"\x00" * 14))
                              + box(b"jp2c", b"\xff\x4f\xff\x51"))


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(48, 32)
    writer.encrypt("a password")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(("data", "code"), [
    (b"GIF89a" + bytes(range(256)), files.UNSUPPORTED),
    (b"%PDF-1.7\nthis is no PDF at all\n", files.DAMAGED),
    (photo_with_exif()[:600], files.DAMAGED),
    (encrypted_pdf(), files.ENCRYPTED),
    (b"From: a@b\nContent-Type: image/jpeg\nContent-Transfer-Encoding: base64\n\n/9j/4AAQSkZJRgABAQ==\n",
     files.CANNOT_BE_CLEANED),
], ids=["gif", "pdf-unreadable", "jpeg-cut-short", "pdf-encrypted", "text-carrying-a-photo"])
def test_each_refusal_says_why_by_its_code(data, code):
    """The console words a refusal by its code: a damaged file is asked for again, not called the wrong type."""
    with pytest.raises(NotAccepted) as refused:
        cleaned(data)
    assert refused.value.code == code


@pytest.mark.parametrize("data", [b"%PDF-1.7\nthis is no PDF at all\n", encrypted_pdf()], ids=["damaged", "encrypted"])
async def test_a_refusal_keeps_its_code_across_the_cleaning_worker(data):
    cleaner = cleaning.Cleaner(workers=1, memory_bytes=1 << 30, seconds=30)
    try:
        with pytest.raises(NotAccepted) as refused:
            await cleaner.cleaned(data, 1 << 20)
    finally:
        cleaner.close()
    with pytest.raises(NotAccepted) as in_process:
        cleaned(data)
    assert (refused.value.code, refused.value.detail) == (in_process.value.code, in_process.value.detail)


# ---- a colour profile made when the photo was taken or exported says when (privacy review) --------------------------

def dated_profile() -> bytes:
    """An sRGB profile as software makes one at export: its header dated, and a calibration date tag ('calt')."""
    from PIL import ImageCms

    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[24:36] = struct.pack(">6H", 2026, 3, 14, 9, 41, 7)
    count = int.from_bytes(profile[128:132], "big")
    calt = b"dtim" + bytes(4) + struct.pack(">6H", 2026, 3, 14, 9, 41, 7)
    table_end = 132 + 12 * count
    entry = struct.pack(">4sII", b"calt", len(profile) + 12, len(calt))
    profile = profile[:table_end] + entry + profile[table_end:] + calt
    profile[128:132] = (count + 1).to_bytes(4, "big")
    for i in range(count):  # every other tag moved 12 bytes on by the new entry
        at = 132 + 12 * i + 4
        profile[at:at + 4] = (int.from_bytes(profile[at:at + 4], "big") + 12).to_bytes(4, "big")
    profile[0:4] = len(profile).to_bytes(4, "big")
    return bytes(profile)


@pytest.mark.parametrize("kind", ["JPEG", "PNG"])
def test_an_images_colour_profile_keeps_no_date(kind):
    profile = dated_profile()
    image = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(image, kind, icc_profile=profile)
    taken = struct.pack(">6H", 2026, 3, 14, 9, 41, 7)
    assert taken in (image.getvalue() if kind == "JPEG" else zlib.decompress(_iccp_of(image.getvalue())))

    stored = cleaned(image.getvalue()).data
    kept = Image.open(io.BytesIO(stored)).info["icc_profile"]
    assert taken not in kept and kept[24:36] == bytes(12) and kept[84:100] == bytes(16)
    assert len(kept) == len(profile) and kept[36:40] == b"acsp"  # the same profile otherwise: colours stay
    assert list(Image.open(io.BytesIO(stored)).getdata()) == list(Image.open(image).getdata())


def _iccp_of(png: bytes) -> bytes:
    start = png.index(b"iCCP") + 4
    length = struct.unpack(">I", png[start - 8:start - 4])[0]
    payload = png[start:start + length]
    return payload[payload.index(b"\0") + 2:]


def profile_naming_its_device() -> bytes:
    """A profile as a phone writes one: its header names the maker, the model and the creator, and its text tags
    the maker's and model's names (its copyright, 'cprt', is the one lcms writes: "No copyright, use freely")."""
    from PIL import ImageCms

    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[48:56], profile[80:84] = b"APPLiPh5", b"appl"
    count = int.from_bytes(profile[128:132], "big")
    texts = [(b"dmnd", b"Apple Computer Inc."), (b"dmdd", b"iPhone 15 Pro")]
    table_end = 132 + 12 * count
    shift = 12 * len(texts)
    tail, entries = b"", b""
    for signature, words in texts:
        body = b"text" + bytes(4) + words + b"\0"
        body += bytes(-len(body) % 4)
        entries += struct.pack(">4sII", signature, len(profile) + shift + len(tail), len(body))
        tail += body
    for i in range(count):  # the existing tags move on by the new entries
        at = 132 + 12 * i + 4
        profile[at:at + 4] = (int.from_bytes(profile[at:at + 4], "big") + shift).to_bytes(4, "big")
    profile = profile[:table_end] + entries + profile[table_end:] + tail
    profile[128:132] = (count + len(texts)).to_bytes(4, "big")
    profile[0:4] = len(profile).to_bytes(4, "big")
    return bytes(profile)


@pytest.mark.parametrize("kind", ["JPEG", "PNG"])
def test_an_images_colour_profile_names_no_device_nor_maker(kind):
    """An outside review's find: the profile kept "Apple" and the phone's model, though not where nor when."""
    image = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(image, kind, icc_profile=profile_naming_its_device())
    sent = image.getvalue() if kind == "JPEG" else zlib.decompress(_iccp_of(image.getvalue()))
    assert b"iPhone 15 Pro" in sent and b"APPLiPh5" in sent and "use freely".encode("utf-16-be") in sent

    stored = cleaned(image.getvalue()).data
    kept = Image.open(io.BytesIO(stored)).info["icc_profile"]
    for words in (b"Apple", b"iPhone", b"APPL", b"appl", "use freely".encode("utf-16-be")):
        assert words not in kept, words
    assert kept[36:40] == b"acsp" and list(Image.open(io.BytesIO(stored)).getdata()) == list(
        Image.open(image).getdata())
    from PIL import ImageCms  # the profile still reads as a profile, and still converts colours

    opened = ImageCms.ImageCmsProfile(io.BytesIO(kept))
    converted = ImageCms.profileToProfile(Image.open(io.BytesIO(stored)), opened, ImageCms.createProfile("sRGB"))
    assert converted.size == (8, 8)
