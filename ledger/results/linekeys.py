"""Reading a stored result line's order and status from its bytes, without parsing the line,
and the first and last line of a results file as it is read through once.

`ledger results` orders a run's lines by (line_number, custom_id) and filters them by status; a
full JSON parse of every line only for those is most of the work of a plain JSONL export.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

#: A line's place in the run: (line_number, custom_id).
LineKey = tuple[int, str]


def line_key(raw: bytes) -> tuple[int, str]:
    """A result line's (line_number, custom_id), read from its bytes without parsing the line.

    Results are written by orjson with `RESULT_KEYS` in order, so a line starts with its
    custom_id (a JSON string, so an unescaped `","status":"` first ends it) and its top-level
    `line_number` is the last one in the line: the keys after it (`tool_calls`, `choices`) hold
    only strings under fixed keys. A line of any other shape is parsed whole.
    """
    end = raw.find(_CUSTOM_ID_END, _CUSTOM_ID_AT)
    at = raw.rfind(_LINE_NUMBER)
    if not raw.startswith(_CUSTOM_ID) or end < 0 or at < end:
        record = orjson.loads(raw)
        return record["line_number"], record["custom_id"]
    at += len(_LINE_NUMBER)
    stop = raw.find(b",", at)
    encoded = raw[_CUSTOM_ID_AT:end]
    custom_id = orjson.loads(raw[_CUSTOM_ID_AT - 1 : end + 1]) if b"\\" in encoded else encoded
    return int(raw[at:stop] if stop >= 0 else raw[at:].rstrip(b"}\r\n")), (
        custom_id if isinstance(custom_id, str) else custom_id.decode()
    )


def line_status(raw: bytes) -> str:
    """A result line's status, read from its bytes (the key after custom_id)."""
    end = raw.find(_CUSTOM_ID_END, _CUSTOM_ID_AT)
    if not raw.startswith(_CUSTOM_ID) or end < 0:
        return orjson.loads(raw)["status"]
    start = end + len(_CUSTOM_ID_END)
    return raw[start : raw.index(b'"', start)].decode()


_CUSTOM_ID = b'{"custom_id":"'
_CUSTOM_ID_AT = len(_CUSTOM_ID)
_CUSTOM_ID_END = b'","status":"'
_LINE_NUMBER = b',"line_number":'


def first_and_last_keys(blocks: Iterable[bytes]) -> tuple[LineKey, LineKey] | None:
    """The keys of the first and the last line of a results file read as `blocks` (each let go
    once read but the last two); None for an empty file, a last line longer than two blocks, or
    a line that is not a result."""
    first: bytes | None = None
    head = before = last = b""
    size = 0
    for block in blocks:
        size += len(block)
        if first is None:
            head += block
            if (newline := head.find(b"\n")) >= 0:
                first, head = head[: newline + 1], b""
        before, last = last, block
    if first is None:
        return None
    tail = before + last
    start = tail.rfind(b"\n", 0, len(tail) - 1) + 1
    if start == 0 and size > len(tail):
        return None
    try:
        return line_key(first), line_key(tail[start:])
    except (ValueError, KeyError, TypeError):
        return None
