"""Anthropic custom_ids: the ledger's custom_ids in Anthropic's alphabet, tagged by the create
that sent them.

Anthropic's `custom_id`s allow only `[A-Za-z0-9_-]`, at most 64 characters; the ledger allows
more (`.`, `:` ...). Each id is therefore encoded reversibly (`encode_custom_id`) and, when the
batch is created, prefixed with a short tag drawn from the create's token (`tag_custom_id`), so
the batch's results name the create that made them (`adapters.anthropic.batch.find_batches`).
The download turns them back (`ledger_custom_id`).
"""

from __future__ import annotations

import re

#: Anthropic's limit on a custom_id.
MAX_CUSTOM_ID_CHARS = 64

#: Characters of the create token that tag every custom_id of a batch, and the separator after.
TAG_CHARS = 8
TAG_SEPARATOR = "-"
#: What is left of Anthropic's 64 characters for the encoded ledger custom_id.
MAX_ENCODED_CHARS = MAX_CUSTOM_ID_CHARS - TAG_CHARS - len(TAG_SEPARATOR)

_KEPT = re.compile(r"[A-Za-z0-9-]")
_ESCAPE = re.compile(r"_([0-9a-f]{2})")
_TAGGED = re.compile(rf"[0-9a-f]{{{TAG_CHARS}}}{TAG_SEPARATOR}(.*)", re.DOTALL)


def encode_custom_id(custom_id: str) -> str:
    """`custom_id` in Anthropic's alphabet: letters, digits and `-` stay; every other character
    becomes `_` and the hex of each of its UTF-8 bytes (`.` -> `_2e`, `_` -> `_5f`)."""
    return "".join(
        char if _KEPT.fullmatch(char) else "".join(f"_{byte:02x}" for byte in char.encode())
        for char in custom_id
    )


def decode_custom_id(encoded: str) -> str:
    """The ledger custom_id `encode_custom_id` made `encoded` from; ValueError when it is not
    such an encoding."""
    if "_" not in encoded:
        return encoded
    out = bytearray()
    position = 0
    while position < len(encoded):
        char = encoded[position]
        if char != "_":
            out += char.encode()
            position += 1
            continue
        escape = _ESCAPE.match(encoded, position)
        if escape is None:
            raise ValueError(f"{encoded!r} is not an encoded custom_id")
        out.append(int(escape.group(1), 16))
        position = escape.end()
    try:
        return out.decode()
    except UnicodeDecodeError:
        raise ValueError(f"{encoded!r} is not an encoded custom_id") from None


def batch_tag(token: str) -> str:
    """The tag a create with this token puts on its custom_ids (the token's first hex digits)."""
    tag = token[:TAG_CHARS].lower()
    if not re.fullmatch(rf"[0-9a-f]{{{TAG_CHARS}}}", tag):
        raise ValueError(f"a batch tag needs a hex token of at least {TAG_CHARS} digits")
    return tag


def tag_custom_id(tag: str, encoded: str) -> str:
    """The custom_id sent to Anthropic: the batch tag, `-`, the encoded ledger custom_id."""
    return f"{tag}{TAG_SEPARATOR}{encoded}"


def has_tag(anthropic_id: str, tag: str) -> bool:
    """Whether a result's custom_id was sent by the create that carried `tag`."""
    return anthropic_id.startswith(tag + TAG_SEPARATOR)


def ledger_custom_id(anthropic_id: str) -> str | None:
    """The ledger custom_id behind an Anthropic custom_id, or None when it is not ours."""
    tagged = _TAGGED.fullmatch(anthropic_id)
    if tagged is None:
        return None
    try:
        return decode_custom_id(tagged.group(1))
    except ValueError:
        return None
