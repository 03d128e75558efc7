"""The hash a request is known by for reuse: its provider and its canonical body (endpoint, model,
every parameter, the input), never its custom_id.

The canonical body is the request line from `,"method":` on: `,"method":"POST","url":URL,
"body":BODY}` as orjson writes it. A simple row's line already has that shape, whether it was cut
from its target's template or built the general way (both make the same bytes: `RowMaker.requests`),
so its hash costs a `find`, a slice and one blake2b of bytes the build has anyway. A ready Batch API
line is passed through as the user wrote it (any spacing, the custom_id anywhere), so its checker
writes the canonical form of its url and body once (`ReadyLineChecker.request`): a ready line and a
simple row of the same body hash alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b
from typing import Any

import orjson

from ledger.build.row_checks import BatchRequest

#: Where a line's canonical body starts: the key after its custom_id (a JSON string cannot hold
#: an unescaped `"`, so the first `,"method":` of an orjson line is this key).
_METHOD = b',"method":'
#: Bytes of the digest: 128 bits, far past any chance of two bodies colliding in a ledger.
DIGEST_SIZE = 16


def canonical_body(url: str, body: Any) -> bytes:
    """The canonical form of a request's url and body, as a simple row's line ends."""
    return b'%s"POST","url":%s,"body":%s}' % (_METHOD, orjson.dumps(url), orjson.dumps(body))


def hash_prefix(provider: str) -> bytes:
    """What the hashed bytes of a request to `provider` start with, before its canonical body."""
    return provider.encode() + b"\n"


def hashed_template(
    template: tuple[bytes, bytes, bytes] | None, provider: str
) -> tuple[bytes, bytes, bytes, Any] | None:
    """A prompt row's template (`RowBuilder.template`: the line's head, middle and tail around
    its custom_id and text) and its hash fed the bytes every row's hash starts with: the
    provider's prefix and the middle, where the canonical body starts (a line's first key is its
    custom_id). A row's hash is then a copy of it fed the row's text and the tail
    (`RowMaker.requests` takes it as it makes the line; a copy costs less than a new blake2b).
    None without a template, or one whose middle is not so."""
    if template is None or not template[1].startswith(_METHOD):
        return None
    head, middle, tail = template
    return head, middle, tail, blake2b(hash_prefix(provider) + middle, digest_size=DIGEST_SIZE)


def templated_line(
    template: tuple[bytes, bytes, bytes, Any], custom_id: str, text: str
) -> tuple[bytes, bytes]:
    """A prompt row's request line, made from its target's template (`hashed_template`), and
    its reuse hash, taken from the same pieces."""
    head, middle, tail, hashed = template
    text_json = orjson.dumps(text)
    digest = hashed.copy()
    digest.update(text_json)
    digest.update(tail)
    return b"".join((head, orjson.dumps(custom_id), middle, text_json, tail)), digest.digest()


def hash_bodies(requests: Iterable[BatchRequest]) -> None:
    """Set the `body_hash` of each request that has none yet (a prompt row's is taken as its
    line is made from its template): blake2b-128 of its provider and canonical body. One loop
    over a chunk, as the build's hot path wants it (a call per request cost a third more)."""
    prefixes: dict[str, bytes] = {}
    for request in requests:
        if request.body_hash:
            continue
        canonical = request.canonical
        if canonical is None:
            line = request.line
            canonical = line[line.find(_METHOD) :]
        prefix = prefixes.get(request.provider)
        if prefix is None:
            prefix = prefixes[request.provider] = hash_prefix(request.provider)
        request.body_hash = blake2b(prefix + canonical, digest_size=DIGEST_SIZE).digest()


def body_hash(request: BatchRequest) -> bytes:
    """The request's reuse hash (`hash_bodies` of it alone, which also sets it)."""
    hash_bodies((request,))
    return request.body_hash
