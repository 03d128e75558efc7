"""Provider adapters: one module per provider behind one Protocol (`adapters.base`)."""

from __future__ import annotations

from collections.abc import Callable

from adapters.base import BatchProvider


def _openai(base_url: str | None) -> BatchProvider:
    from adapters.openai.batch import OpenAIBatchProvider

    return OpenAIBatchProvider(base_url=base_url)


def _anthropic(base_url: str | None) -> BatchProvider:
    from adapters.anthropic.batch import AnthropicBatchProvider

    return AnthropicBatchProvider(base_url=base_url)


#: Provider name -> a factory taking the base URL recorded on the job.
REGISTRY: dict[str, Callable[[str | None], BatchProvider]] = {
    "openai": _openai,
    "anthropic": _anthropic,
}


def get_provider(name: str, base_url: str | None = None) -> BatchProvider:
    """The adapter registered under `name`, talking to `base_url` (or its default)."""
    try:
        factory = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ValueError(f"unknown provider {name!r} (known: {known})") from None
    return factory(base_url)
