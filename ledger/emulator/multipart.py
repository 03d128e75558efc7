"""A `multipart/form-data` parser for uploads: exact bytes, no temporary files, no `cgi`.

Browsers and httpx quote field values the HTML5 way (`"` as `%22`, a backslash doubled, control
characters as `%XX`); `_unquote` undoes exactly that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from ledger.emulator.errors import ApiError, bad_request

_PARAM = re.compile(r';\s*([A-Za-z0-9_*.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_HTML5_ESCAPE = re.compile(r"%(22|[01][0-9A-Fa-f])|\\\\")


@dataclass(frozen=True)
class Part:
    """One form field: its name, its file name if it is a file, and its bytes."""

    name: str
    filename: str | None
    content: bytes


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a `multipart/form-data` content type; ApiError (400) otherwise."""
    if not content_type:
        raise _not_multipart()
    kind, _, rest = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise _not_multipart()
    for name, value in _PARAM.findall(";" + rest):
        if name.lower() == "boundary":
            boundary = value.strip().strip('"')
            if 1 <= len(boundary) <= 200:
                return boundary.encode("latin-1", "replace")
    raise bad_request("Invalid multipart/form-data request: no boundary.")


def parse(body: bytes, boundary: bytes) -> list[Part]:
    """The parts of a multipart body; ApiError (400) when it is malformed or cut short."""
    delimiter = b"--" + boundary
    position = body.find(delimiter)
    if position < 0 or (position > 0 and body[position - 2 : position] != b"\r\n"):
        raise _malformed("no opening boundary")
    position += len(delimiter)
    parts: list[Part] = []
    while True:
        if body.startswith(b"--", position):
            return parts  # the closing delimiter; an epilogue after it is ignored
        if not body.startswith(b"\r\n", position):
            raise _malformed("bad boundary line")
        header_end = body.find(b"\r\n\r\n", position + 2)
        if header_end < 0:
            raise _malformed("unterminated part headers")
        headers = _headers(body[position + 2 : header_end])
        content_start = header_end + 4
        content_end = body.find(b"\r\n" + delimiter, content_start)
        if content_end < 0:
            raise _malformed("the body ends inside a part")
        parts.append(_part(headers, body[content_start:content_end]))
        position = content_end + 2 + len(delimiter)


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    if not block:
        return headers
    for line in block.split(b"\r\n"):
        name, colon, value = line.decode("utf-8", "replace").partition(":")
        if not colon:
            raise _malformed("a part header without a colon")
        headers[name.strip().lower()] = value.strip()
    return headers


def _part(headers: dict[str, str], content: bytes) -> Part:
    disposition = headers.get("content-disposition", "")
    kind, _, rest = disposition.partition(";")
    if kind.strip().lower() != "form-data":
        raise _malformed("a part that is not form-data")
    params: dict[str, str] = {}
    for name, value in _PARAM.findall(";" + rest):
        value = value.strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = _unquote(value[1:-1])
        params[name.lower()] = value
    if "name" not in params:
        raise _malformed("a part without a name")
    filename = params.get("filename")
    extended = params.get("filename*")
    if extended and extended.count("'") >= 2:
        # RFC 5987: charset'language'percent-encoded
        charset, _, encoded = extended.split("'", 2)
        try:
            filename = unquote(encoded, encoding=charset or "utf-8", errors="replace")
        except LookupError:
            filename = unquote(encoded, errors="replace")
    return Part(name=params["name"], filename=filename, content=content)


def _unquote(value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "\\\\":
            return "\\"
        return chr(int(match.group(1), 16))

    return _HTML5_ESCAPE.sub(replace, value)


def _not_multipart() -> ApiError:
    return bad_request(
        "Invalid Content-Type header: expected multipart/form-data with a boundary.",
    )


def _malformed(why: str) -> ApiError:
    return bad_request(f"Invalid multipart/form-data request: {why}.")
