"""The factories of the providers that ship with ledger (registered in adapters.registry, whose
docstring says what a factory is): each imports its SDK only when first called."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from adapters.base import BatchProvider, MissingAPIKey
from adapters.openai.profiles import HostProfile
from adapters.results import ResultReader
from ledger.errors import InputError

#: What a provider is registered as.
Factory = Callable[[str | None, str | None], BatchProvider]


@dataclass(frozen=True)
class RequestRules:
    """What a provider's batches take, checked when a run is built: a request the provider
    would refuse is refused then, before anything is recorded or sent."""

    #: The endpoints its shard lines may name (the first is the default); None: any.
    endpoints: tuple[str, ...] | None = None
    #: Why one request (custom_id, body) cannot go, or None; None: nothing to check.
    problem: Callable[[str, Any], str | None] | None = None


class OpenAIFactory:
    """The built-in `openai` provider: api.openai.com or any compatible server."""

    name = "openai"
    #: The variable the key is read from when the caller gives none.
    api_key_env = "OPENAI_API_KEY"

    def __call__(self, base_url: str | None, api_key: str | None) -> BatchProvider:
        from adapters.openai.batch import OpenAIBatchProvider

        return OpenAIBatchProvider(
            base_url=base_url, api_key=_key(api_key, self.api_key_env, self.name)
        )

    @property
    def result_reader(self) -> ResultReader:
        from adapters.openai.lines import READER

        return READER


class AnthropicFactory:
    """The built-in `anthropic` provider: Anthropic's Message Batches."""

    name = "anthropic"
    #: The variable the key is read from when the caller gives none.
    api_key_env = "ANTHROPIC_API_KEY"

    def __call__(self, base_url: str | None, api_key: str | None) -> BatchProvider:
        from adapters.anthropic.batch import AnthropicBatchProvider

        return AnthropicBatchProvider(
            base_url=base_url, api_key=_key(api_key, self.api_key_env, self.name)
        )

    @property
    def result_reader(self) -> ResultReader:
        from adapters.anthropic.lines import READER

        return READER

    @property
    def request_rules(self) -> RequestRules:
        from adapters.anthropic.requests import CHAT_ENDPOINT, request_problem

        return RequestRules(endpoints=(CHAT_ENDPOINT,), problem=request_problem)


class MistralFactory:
    """The built-in `mistral` provider: Mistral's batch jobs (the optional `mistralai` SDK)."""

    name = "mistral"
    #: The variable the key is read from when the caller gives none (the SDK's own).
    api_key_env = "MISTRAL_API_KEY"

    def __call__(self, base_url: str | None, api_key: str | None) -> BatchProvider:
        try:
            from adapters.mistral.batch import MistralBatchProvider
        except ImportError as error:
            raise InputError(
                f"provider mistral needs the mistralai SDK ({error}): "
                "pip install 'llm-batch-ledger[mistral]'"
            ) from None
        return MistralBatchProvider(
            base_url=base_url, api_key=_key(api_key, self.api_key_env, self.name)
        )

    @property
    def result_reader(self) -> ResultReader:
        # Mistral's output and error lines are OpenAI's (adapters.mistral.lines).
        from adapters.openai.lines import READER

        return READER

    @property
    def request_rules(self) -> RequestRules:
        from adapters.chat_types import CHAT, EMBEDDINGS

        return RequestRules(endpoints=(CHAT, EMBEDDINGS))

    @property
    def limits(self) -> tuple[int, int]:
        """The most requests and bytes one Mistral batch job holds."""
        from adapters.mistral.lines import MAX_BYTES, MAX_REQUESTS

        return MAX_REQUESTS, MAX_BYTES


class GeminiFactory:
    """The built-in `gemini` provider: Gemini Batch Mode (needs the `gemini` extra)."""

    name = "gemini"
    #: The variable the key is read from when the caller gives none; the SDK's other name for
    #: it, GOOGLE_API_KEY, is read next.
    api_key_env = "GEMINI_API_KEY"
    #: The most requests and bytes one batch holds (`adapters.gemini.requests`).
    limits = (50_000, 2 * 1024**3)

    def __call__(self, base_url: str | None, api_key: str | None) -> BatchProvider:
        try:
            from adapters.gemini.batch import GeminiBatchProvider
        except ImportError:
            raise InputError(
                "provider 'gemini' needs the google-genai SDK: pip install "
                "'llm-batch-ledger[gemini]'"
            ) from None
        key = api_key or os.environ.get(self.api_key_env) or os.environ.get("GOOGLE_API_KEY")
        if not key:
            raise MissingAPIKey(
                f"${self.api_key_env} (or $GOOGLE_API_KEY) is not set (the key of provider gemini)"
            )
        inline = _gemini_inline()
        if inline is None:
            return GeminiBatchProvider(base_url=base_url, api_key=key)
        return GeminiBatchProvider(base_url=base_url, api_key=key, inline_max_bytes=inline)

    @property
    def result_reader(self) -> ResultReader:
        from adapters.gemini.lines import READER

        return READER

    @property
    def request_rules(self) -> RequestRules:
        from adapters.gemini.requests import ENDPOINTS, request_problem

        return RequestRules(endpoints=ENDPOINTS, problem=request_problem)


#: Overrides the bytes under which a Gemini chat job goes inline (`adapters.gemini.inline`;
#: 0: always through the Files API). Google's 20 MB is the default.
GEMINI_INLINE_ENV = "LEDGER_GEMINI_INLINE_MAX_BYTES"


def _gemini_inline() -> int | None:
    given = os.environ.get(GEMINI_INLINE_ENV, "").strip()
    if not given:
        return None
    if not given.isdigit():
        raise InputError(f"${GEMINI_INLINE_ENV} must be a whole number of bytes, not {given!r}")
    return int(given)


class ProfileFactory:
    """An OpenAI-compatible batch host: the OpenAI adapter under the host's profile."""

    def __init__(self, profile: HostProfile) -> None:
        self.profile = profile
        self.name = profile.name
        #: The variable the key is read from when the caller gives none.
        self.api_key_env = profile.api_key_env

    def __call__(self, base_url: str | None, api_key: str | None) -> BatchProvider:
        from adapters.openai.batch import OpenAIBatchProvider

        env, token_env = self.api_key_env, self.profile.ad_token_env
        if not api_key and env and not os.environ.get(env) and token_env:
            # No key: a bearer token (Azure's Entra ID token) in its own variable will do.
            api_key = os.environ.get(token_env)
        # A host declared with no key variable needs no key; the SDK insists on a string.
        key = _key(api_key, env, self.name) if env else api_key or "no-key-needed"
        return OpenAIBatchProvider(base_url=base_url, api_key=key, profile=self.profile)

    def with_window(self, window: str) -> ProfileFactory:
        """This host with batches created with `window` (InputError if it takes no such)."""
        problem = self.profile.window_problem(window)
        if problem is not None:
            raise InputError(f"completion_window: {problem}")
        return ProfileFactory(replace(self.profile, completion_window=window))

    @property
    def result_reader(self) -> ResultReader:
        # Output and error lines are OpenAI's on every compatible host.
        from adapters.openai.lines import READER

        return READER

    @property
    def limits(self) -> tuple[int, int]:
        """The most requests and bytes one batch of this host holds."""
        return self.profile.max_requests, self.profile.max_bytes


def _key(given: str | None, variable: str, name: str) -> str:
    key = given or os.environ.get(variable)
    if not key:
        raise MissingAPIKey(f"${variable} is not set (the key of provider {name})")
    return key
