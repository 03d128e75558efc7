"""The arithmetic of a price: one model's rates, the tokens a provider reports, and their cost.

Every rate is USD per 1 million tokens at Batch API rates. A prompt is split into the tokens
written to a prompt cache (Anthropic: 5-minute or 1-hour TTL), the tokens read from it (OpenAI
`cached_tokens`, Anthropic `cache_read_input_tokens`), and the rest, each priced at its own rate;
a model with a long-context band prices every token of a request whose prompt is over the
threshold at that band's rates. Where the rates come from is `ledger.usage.capabilities`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TokenUsage:
    """The tokens of one request (or a sum of them), in the provider-neutral split."""

    #: Every prompt token, cache reads and cache writes included (as OpenAI counts them).
    input_tokens: int = 0
    output_tokens: int = 0
    #: Prompt tokens read from the prompt cache.
    cached_tokens: int = 0
    #: Prompt tokens written to the cache with a 5-minute or a 1-hour TTL (Anthropic).
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cache_write_5m_tokens + other.cache_write_5m_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
        )


def token_usage(usage: Any) -> TokenUsage | None:
    """The tokens a response body's `usage` reports, from any of the providers' namings.

    OpenAI chat (`prompt_tokens`, `prompt_tokens_details.cached_tokens`), responses
    (`input_tokens`, `input_tokens_details.cached_tokens`), and Anthropic, whose `input_tokens`
    leaves out `cache_read_input_tokens` and `cache_creation_input_tokens` (split by TTL in
    `cache_creation` when given; a write without the split is a 5-minute write, the default TTL).
    None when there is no usage object.
    """
    counts = token_counts(usage)
    return None if counts is None else TokenUsage(*counts)


def token_counts(usage: Any) -> tuple[int, int, int, int, int] | None:
    """`token_usage` as a plain tuple in `TokenUsage`'s field order: pricing every request of
    a job reads it without building an object per request."""
    if type(usage) is not dict and not isinstance(usage, Mapping):  # a dict's check is cheaper
        return None
    if "prompt_tokens" in usage:
        names = _CHAT_NAMES
    elif _ANTHROPIC_CACHE_KEYS.isdisjoint(usage):
        names = _RESPONSES_NAMES
    else:
        return _anthropic_counts(usage)
    # Written out, without a call per count: every answer of a batch is priced.
    get = usage.get
    details = get(names[2])
    if type(details) is dict or isinstance(details, Mapping):
        cached = details.get("cached_tokens")
    else:
        cached = None
    input_tokens, output_tokens = get(names[0]), get(names[1])
    return (
        input_tokens if type(input_tokens) is int and input_tokens > 0 else 0,
        output_tokens if type(output_tokens) is int and output_tokens > 0 else 0,
        cached if type(cached) is int and cached > 0 else 0,
        0,
        0,
    )


def _anthropic_counts(usage: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    # Anthropic's `input_tokens` leaves out the cache reads and writes.
    read = _count(usage.get("cache_read_input_tokens"))
    written = _count(usage.get("cache_creation_input_tokens"))
    split = _mapping(usage.get("cache_creation"))
    one_hour = min(_count(split.get("ephemeral_1h_input_tokens")), written)
    return (
        _count(usage.get("input_tokens")) + read + written,
        _count(usage.get("output_tokens")),
        read,
        written - one_hour,
        one_hour,
    )


#: The usage keys of a prompt, a completion and the prompt's details, in each OpenAI naming.
_CHAT_NAMES = ("prompt_tokens", "completion_tokens", "prompt_tokens_details")
_RESPONSES_NAMES = ("input_tokens", "output_tokens", "input_tokens_details")


@dataclass(frozen=True)
class LongContext:
    """A second band of rates for requests whose prompt is over `threshold` tokens."""

    threshold: int
    price: Price


@dataclass(frozen=True)
class Price:
    """One model's rates, USD per 1 million tokens at batch rates.

    A cache rate left None prices those tokens as other input (no discount, no surcharge).
    """

    input_per_million: float
    output_per_million: float
    #: Prompt tokens read from the provider's prompt cache.
    cached_input_per_million: float | None = None
    #: Prompt tokens written to the cache with a 5-minute / 1-hour TTL (Anthropic).
    cache_write_5m_per_million: float | None = None
    cache_write_1h_per_million: float | None = None
    long_context: LongContext | None = None

    def cost(
        self,
        input_tokens: int,
        output_tokens: int = 0,
        cached_tokens: int = 0,
        cache_write_5m_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
    ) -> float:
        """USD for one request's tokens; cache reads and writes are part of `input_tokens`.

        Summed usage gives the right figure too, unless the model has a long-context band:
        the band is chosen per request, so price requests one at a time for such a model.
        """
        band = self
        if self.long_context is not None and input_tokens > self.long_context.threshold:
            band = self.long_context.price
        # The parts can never add up to more than the prompt, whatever a usage object says.
        cached = min(cached_tokens, input_tokens)
        write_5m = min(cache_write_5m_tokens, input_tokens - cached)
        write_1h = min(cache_write_1h_tokens, input_tokens - cached - write_5m)
        plain = input_tokens - cached - write_5m - write_1h
        rate = band.input_per_million
        cached_rate, write_5m_rate = band.cached_input_per_million, band.cache_write_5m_per_million
        write_1h_rate = band.cache_write_1h_per_million
        return (
            plain * rate
            + cached * (rate if cached_rate is None else cached_rate)
            + write_5m * (rate if write_5m_rate is None else write_5m_rate)
            + write_1h * (rate if write_1h_rate is None else write_1h_rate)
            + output_tokens * band.output_per_million
        ) / 1_000_000

    def cost_of(self, usage: TokenUsage) -> float:
        """USD for the tokens of one request."""
        return self.cost(
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_tokens,
            usage.cache_write_5m_tokens,
            usage.cache_write_1h_tokens,
        )


#: The usage keys only Anthropic's counting has.
_ANTHROPIC_CACHE_KEYS = frozenset(
    {"cache_read_input_tokens", "cache_creation_input_tokens", "cache_creation"}
)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def _count(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0
