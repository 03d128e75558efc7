"""The rate-limit headers every answer carries, as the real APIs send them: OpenAI's
`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` and Anthropic's
`anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`.

The emulator never refuses for rate (the `http_429` fault does that); it counts what it was sent
in one-minute windows so that the headers move as a client's would. Sources:
platform.openai.com/docs/guides/rate-limits ("Rate limits in headers"),
docs.anthropic.com/en/api/rate-limits ("Response headers").
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime

#: Per minute; the figures of a mid tier, which no test comes near.
REQUESTS_PER_MINUTE = 10_000
TOKENS_PER_MINUTE = 10_000_000
_WINDOW = 60.0


class RateWindow:
    """Requests and (estimated: bytes / 4) tokens sent in the current minute."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._start = 0.0
        self._requests = 0
        self._tokens = 0

    def headers(self, now: float, body_bytes: int, *, anthropic: bool) -> dict[str, str]:
        """Count one request of `body_bytes` at `now`; the headers its answer carries."""
        with self._lock:
            if now - self._start >= _WINDOW:
                self._start, self._requests, self._tokens = now, 0, 0
            self._requests += 1
            self._tokens += math.ceil(body_bytes / 4)
            requests_left = max(0, REQUESTS_PER_MINUTE - self._requests)
            tokens_left = max(0, TOKENS_PER_MINUTE - self._tokens)
            reset = max(0.0, self._start + _WINDOW - now)
        if anthropic:
            at = datetime.fromtimestamp(now + reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return {
                "anthropic-ratelimit-requests-limit": str(REQUESTS_PER_MINUTE),
                "anthropic-ratelimit-requests-remaining": str(requests_left),
                "anthropic-ratelimit-requests-reset": at,
                "anthropic-ratelimit-tokens-limit": str(TOKENS_PER_MINUTE),
                "anthropic-ratelimit-tokens-remaining": str(tokens_left),
                "anthropic-ratelimit-tokens-reset": at,
            }
        return {
            "x-ratelimit-limit-requests": str(REQUESTS_PER_MINUTE),
            "x-ratelimit-limit-tokens": str(TOKENS_PER_MINUTE),
            "x-ratelimit-remaining-requests": str(requests_left),
            "x-ratelimit-remaining-tokens": str(tokens_left),
            "x-ratelimit-reset-requests": _duration(reset),
            "x-ratelimit-reset-tokens": _duration(reset),
        }


def _duration(seconds: float) -> str:
    """OpenAI's reset durations: `6m0s`, `1.5s`, `20ms`."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text
