"""How long a throttled provider asks us to wait, in every form the header comes in."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx2

from adapters.base import retry_after

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC).timestamp()


def test_retry_after_in_seconds() -> None:
    """`Retry-After: 7` is seven seconds (fractions too)."""
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after": "0.5"}) == 0.5


def test_retry_after_ms_is_honoured_and_wins() -> None:
    """`retry-after-ms` (OpenAI's) is read in milliseconds, before a coarser `retry-after`."""
    assert retry_after({"retry-after-ms": "1500"}) == 1.5
    assert retry_after({"retry-after-ms": "250", "retry-after": "1"}) == 0.25


def test_retry_after_as_an_http_date() -> None:
    """An HTTP date is the seconds from now until then; a date already past is no wait."""
    later = format_datetime(datetime(2026, 11, 29, 12, 0, 30, tzinfo=UTC), usegmt=True)
    assert later == "Sun, 29 Nov 2026 12:00:30 GMT"
    assert retry_after({"retry-after": later}, now=NOW) == 30.0
    assert retry_after({"retry-after": "Sun, 29 Nov 2026 11:59:00 GMT"}, now=NOW) == 0.0


def test_header_names_are_case_insensitive_on_real_responses() -> None:
    """The SDK's headers (httpx) match whatever case the server sent."""
    headers = httpx2.Headers({"Retry-After-Ms": "2000", "Retry-After": "9"})
    assert retry_after(headers) == 2.0


def test_unreadable_or_absent_headers_ask_for_nothing() -> None:
    """No header, garbage, a negative or infinite number: None (our own backoff applies)."""
    assert retry_after({}) is None
    for value in ("soon", "-3", "inf", "nan", ""):
        assert retry_after({"retry-after": value}) is None, value
    assert retry_after({"retry-after-ms": "soon", "retry-after": "4"}) == 4.0
