"""A multipart/form-data body read as it streams, into memory only, within limits.

Starlette's own form parser spools a file larger than 1 MiB to a temporary file: an uploaded document, in clear, on
the disk of whoever runs the process, outside every database and every key. This reader keeps each file in memory
(the caller's limit bounds it), refuses the request the moment a file passes that limit (413, without reading the
rest of a body that may be gigabytes long), and never logs a field's value or a file's name. A NUL character in a
field, a part's name or a file's name is refused as kit.http's guard refuses one in a URL-encoded form (the guard
does not read an upload); a file's content is bytes, and may hold any."""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from starlette.requests import Request

from kit.http import NUL_REFUSED
from kit.problems import Problem

MAX_FIELD_BYTES = 4096
MAX_PARTS = 16
MAX_BOUNDARY = 70  # RFC 2046 §5.1.1


@dataclass
class UploadedFile:
    filename: str
    declared_type: str  # what the client said; never believed, kept for nothing but diagnostics of the caller
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)


class _TooLarge(Exception):
    pass


async def read_multipart(request: Request, *, max_file_bytes: int, max_field_bytes: int = MAX_FIELD_BYTES,
                         max_parts: int = MAX_PARTS, too_large: str = "The file is larger than allowed.") -> Form:
    """The fields and files of a multipart/form-data request, files whole in memory. 413 problem as soon as a file
    passes `max_file_bytes` (or a field `max_field_bytes`); 415 for a body that is not multipart, 400 for one that
    is broken or holds a NUL character in its text (`nul-character`)."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data":
        raise Problem(415, "Send the file as multipart/form-data.", kind="multipart-expected")
    if not boundary:
        raise Problem(400, "A multipart/form-data body names its boundary (RFC 2046).", kind="multipart-invalid")
    if len(boundary) > MAX_BOUNDARY:  # the parser refuses one too long with an error of its own
        raise Problem(400, f"The multipart boundary is longer than {MAX_BOUNDARY} characters (RFC 2046).",
                      kind="multipart-invalid")
    form = Form()
    state: dict[str, object] = {}

    def part_begin() -> None:
        if len(form.fields) + len(form.files) >= max_parts:
            raise Problem(400, "The form has too many parts.", kind="multipart-invalid")
        state.update(headers={}, header_field=b"", header_value=b"", target=None)

    def header_field(data: bytes, start: int, end: int) -> None:
        state["header_field"] = state["header_field"] + data[start:end]  # type: ignore[operator]

    def header_value(data: bytes, start: int, end: int) -> None:
        state["header_value"] = state["header_value"] + data[start:end]  # type: ignore[operator]

    def header_end() -> None:
        headers = state["headers"]
        headers[bytes(state["header_field"]).lower()] = bytes(state["header_value"])  # type: ignore[index,arg-type]
        state["header_field"], state["header_value"] = b"", b""

    def headers_finished() -> None:
        headers: dict[bytes, bytes] = state["headers"]  # type: ignore[assignment]
        _disposition, params = parse_options_header(headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name in form.files or name in form.fields:  # which one is meant? Keeping either would be a guess
            raise Problem(400, "The form sends one part twice.", kind="multipart-invalid")
        filename = _decoded(params[b"filename"]) if b"filename" in params else None
        if "\x00" in name or (filename is not None and "\x00" in filename):
            raise Problem(400, f"{NUL_REFUSED} in the name of a part or a file.", kind="nul-character")
        if filename is not None:
            upload = UploadedFile(filename=filename, declared_type=headers.get(b"content-type", b"").decode("latin-1"))
            form.files[name] = upload
            state["target"], state["limit"] = upload.data, max_file_bytes
        else:
            buffer = bytearray()
            state["target"], state["limit"], state["field_name"] = buffer, max_field_bytes, name

    def part_data(data: bytes, start: int, end: int) -> None:
        target: bytearray = state["target"]  # type: ignore[assignment]
        target += data[start:end]
        if len(target) > state["limit"]:  # type: ignore[operator]
            raise _TooLarge

    def part_end() -> None:
        if state.get("field_name") is not None:
            value = bytes(state["target"]).decode("utf-8", "replace")  # type: ignore[arg-type]
            if "\x00" in value:
                raise Problem(400, f"{NUL_REFUSED} in a form field.", kind="nul-character")
            form.fields[str(state["field_name"])] = value
        state["field_name"] = None

    def end() -> None:
        state["complete"] = True  # the closing boundary came: the body was not cut short

    parser = MultipartParser(boundary, {  # type: ignore[arg-type]
        "on_part_begin": part_begin, "on_header_field": header_field, "on_header_value": header_value,
        "on_header_end": header_end, "on_headers_finished": headers_finished, "on_part_data": part_data,
        "on_part_end": part_end, "on_end": end,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except _TooLarge:
        raise Problem(413, too_large, kind="content-too-large") from None
    except MultipartParseError as broken:
        if "header size" in str(broken):  # the parser's words for a part's headers past its 4 KiB or so
            raise Problem(400, "A part's headers are longer than 4 KiB: the file's name is that long? Send it under a "
                               "shorter name.", kind="file-name-too-long") from None
        raise Problem(400, "The multipart body is malformed.", kind="multipart-invalid") from None
    if not state.get("complete"):
        raise Problem(400, "The multipart body ends before its closing boundary (cut short?).",
                      kind="multipart-invalid")
    return form


def _decoded(raw: bytes) -> str:
    """A file name as browsers send it (UTF-8 bytes in the quoted parameter)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
