"""A total deadline and a size cap on every provider call, for both SDK clients.

httpx2's timeouts bound each socket operation, not a call: a server that answers one byte every
20 s never trips a 120 s read timeout and holds the reconciler (and its SIGTERM) for as long as
it likes; a 512 MB JSON answer is read whole into memory before the SDK parses it. The transport
here wraps httpx2's own: each request gets a total deadline, every socket wait is shortened to
the time left, and the body is checked between chunks, so a call ends at most one read after its
deadline (never more than twice the budget). Ordinary answers are capped in size; uploads and
downloads run inside `transfer()`, with a longer deadline and no cap (they stream to disk).

The cap counts the bytes as decoded: an answer sent compressed (`Content-Encoding: gzip`) is
inflated here, a bounded piece at a time (httpx2's own decoders), and refused once the inflated
bytes pass the cap, so a gzip bomb never fills memory. A redirect to another origin (scheme,
host or port) is refused: following it would send the request's body there.

A call that passes its deadline raises `httpx2.ReadTimeout`, an oversized answer
`httpx2.ReadError`, a redirect elsewhere `httpx2.RemoteProtocolError`: all are connection
problems the adapters sort into `TransientError`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx2
from httpx2._decoders import SUPPORTED_DECODERS, ContentDecoder, MultiDecoder

from ledger.errors import TransientError

#: The total time one ordinary call (a poll, a list page, a create) may take, headers and body.
CALL_DEADLINE = 60.0
#: The total time one upload or download may take (1 GB at about 0.3 MB/s).
TRANSFER_DEADLINE = 3600.0
#: An ordinary answer (a batch, a page of a list) is a few kB; 16 MiB is far past any real one.
MAX_ANSWER_BYTES = 16 << 20
#: A synchronous chat or embeddings answer: embeddings of a large input list run to tens of MB.
MAX_CHAT_ANSWER_BYTES = 256 << 20


@dataclass(frozen=True)
class Budget:
    seconds: float
    max_bytes: int | None


_ORDINARY = Budget(CALL_DEADLINE, MAX_ANSWER_BYTES)
#: The budget of calls made here and now; None: an ordinary call's.
_budget: ContextVar[Budget | None] = ContextVar("provider_call_budget", default=None)


@contextmanager
def budget(seconds: float, max_bytes: int | None) -> Iterator[None]:
    """Calls inside get `seconds` each in all, and answers of at most `max_bytes` (None: any)."""
    token = _budget.set(Budget(seconds, max_bytes))
    try:
        yield
    finally:
        _budget.reset(token)


def transfer() -> Any:
    """Calls inside: an upload or a download, with a longer deadline and no size cap."""
    return budget(TRANSFER_DEADLINE, None)


class _GuardedStream(httpx2.SyncByteStream):
    def __init__(
        self,
        inner: Any,
        request: httpx2.Request,
        deadline: float,
        cap: int | None,
        decoder: ContentDecoder | None = None,
    ):
        self._inner = inner
        self._request = request
        self._deadline = deadline
        self._cap = cap
        #: Set when this stream inflates a compressed answer itself (the cap counts its output).
        self._decoder = decoder
        self._received = 0
        self._decoded = 0

    def __iter__(self) -> Iterator[bytes]:
        # httpcore reads the read timeout once when the body starts: shorten it to the time left.
        _shorten_timeouts(self._request, self._deadline)
        for chunk in self._inner:
            self._received = self._counted(self._received, chunk)
            _check_deadline(self._request, self._deadline)
            if self._decoder is None:
                yield chunk
                continue
            for piece in self._decoder.decode(chunk):
                self._decoded = self._counted(self._decoded, piece, " inflated")
                yield piece
                _check_deadline(self._request, self._deadline)
        if self._decoder is not None:
            for piece in self._decoder.flush():
                self._decoded = self._counted(self._decoded, piece, " inflated")
                yield piece

    def _counted(self, total: int, data: bytes, how: str = "") -> int:
        total += len(data)
        if self._cap is not None and total > self._cap:
            raise httpx2.ReadError(
                f"answer larger than {self._cap >> 20} MiB{how} refused", request=self._request
            )
        return total

    def close(self) -> None:
        self._inner.close()


class GuardedTransport(httpx2.BaseTransport):
    """httpx2's transport with a total deadline per request and a cap on ordinary answers
    (`default`'s, unless a `budget` block says otherwise)."""

    def __init__(self, inner: httpx2.BaseTransport, default: Budget = _ORDINARY) -> None:
        self._inner = inner
        self._default = default

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        budget = _budget.get() or self._default
        deadline = time.monotonic() + budget.seconds
        _shorten_timeouts(request, deadline)
        response = self._inner.handle_request(request)
        _check_deadline(request, deadline)
        decoder = None
        if budget.max_bytes is not None:
            try:
                decoder = _take_decoding(response)
            except BaseException:
                response.close()
                raise
        response.stream = _GuardedStream(
            response.stream, request, deadline, budget.max_bytes, decoder
        )
        return response

    def close(self) -> None:
        self._inner.close()


def _take_decoding(response: httpx2.Response) -> ContentDecoder | None:
    """The decoder of a compressed answer, its Content-Encoding removed so httpx2 does not
    inflate it again (unbounded) after the cap; None for an answer sent as is."""
    values = response.headers.get_list("content-encoding", split_commas=True)
    encodings = [value.strip().lower() for value in values if value.strip()]
    encodings = [encoding for encoding in encodings if encoding != "identity"]
    if not encodings:
        return None
    unknown = [encoding for encoding in encodings if encoding not in SUPPORTED_DECODERS]
    if unknown:
        raise httpx2.DecodingError(
            f"answer in an unsupported content encoding refused: {', '.join(unknown)}",
            request=response.request,
        )
    del response.headers["content-encoding"]
    response.headers.pop("content-length", None)
    if len(encodings) == 1:
        return SUPPORTED_DECODERS[encodings[0]]()
    return MultiDecoder(encodings)


def _refuse_cross_origin_redirect(response: httpx2.Response) -> None:
    """A response hook: a redirect to another scheme, host or port is refused (following it
    would re-send the request's body to a server the user never named)."""
    if not response.has_redirect_location:
        return
    source = response.request.url
    target = source.join(response.headers["location"])
    if (target.scheme, target.host, target.port) != (source.scheme, source.host, source.port):
        where = f"{source.scheme}://{source.netloc.decode()}"
        elsewhere = f"{target.scheme}://{target.netloc.decode()}"
        raise httpx2.RemoteProtocolError(
            f"redirect from {where} to another origin ({elsewhere}) refused",
            request=response.request,
        )


def guarded_client(
    timeout: httpx2.Timeout | float, *, default: Budget = _ORDINARY
) -> httpx2.Client:
    """An httpx2 client with the SDKs' defaults (redirects followed within one origin, proxies
    from the environment) whose every transport is wrapped in `GuardedTransport`.

    The client is built without a transport of ours, so httpx2 still reads HTTP(S)_PROXY and
    NO_PROXY and mounts a proxy transport per scheme; each of those, and the direct transport,
    is then wrapped. (Handing httpx2 a transport switches its environment proxies off.)"""
    client = httpx2.Client(
        timeout=timeout,
        follow_redirects=True,
        event_hooks={"response": [_refuse_cross_origin_redirect]},
    )
    client._transport = GuardedTransport(client._transport, default)
    client._mounts = {
        pattern: None if transport is None else GuardedTransport(transport, default)
        for pattern, transport in client._mounts.items()
    }
    return client


def chat_client(timeout: float) -> httpx2.Client:
    """The guarded client of a synchronous chat client: each call ends within `timeout` seconds
    in all (not only per socket read), with an answer of at most MAX_CHAT_ANSWER_BYTES."""
    return guarded_client(timeout, default=Budget(timeout, MAX_CHAT_ANSWER_BYTES))


def _shorten_timeouts(request: httpx2.Request, deadline: float) -> None:
    left = max(deadline - time.monotonic(), 0.001)
    timeouts = dict(request.extensions.get("timeout") or {})
    for phase in ("connect", "read", "write", "pool"):
        current = timeouts.get(phase)
        timeouts[phase] = left if current is None else min(current, left)
    request.extensions["timeout"] = timeouts


def _check_deadline(request: httpx2.Request, deadline: float) -> None:
    if time.monotonic() > deadline:
        raise httpx2.ReadTimeout("the call passed its total deadline", request=request)


def error_text(error: Exception) -> str:
    """An SDK error's text; a connection error's own ("Connection error.") says nothing, so the
    httpx2 error under it (a deadline passed, an oversized answer) follows it."""
    cause = error.__cause__
    return f"{error} ({cause})" if isinstance(cause, httpx2.HTTPError) else str(error)


def require_batch(answer: object, kind: type) -> None:
    """The SDKs hand back the text of an answer that is not JSON rather than a batch: refuse it."""
    if not isinstance(answer, kind):
        raise TransientError(f"the provider's answer is not a batch: {str(answer)[:200]!r}")
