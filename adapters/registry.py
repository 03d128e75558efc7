"""Which batch providers exist, by name: the built-in ones and those other packages add.

A provider is registered as a factory, called with two positional arguments:

    factory(base_url: str | None, api_key: str | None) -> BatchProvider

- `base_url`: where the provider's API is: the job's recorded URL, else `--base-url`, else the
  configured one; None means the provider's default.
- `api_key`: the key read from the environment variable the provider's settings name
  (`api_key_env` in `ledger.toml`); None when the caller has none, and the factory may then
  read its own variable or refuse with `adapters.base.MissingAPIKey` (a FatalError).
- It returns an object implementing `adapters.base.BatchProvider`, whose `name` is the
  registered name (it is recorded on each job, and the job's lines are read by that name).
- A factory may carry a `result_reader` attribute, an `adapters.results.ResultReader` that reads
  the provider's output and error lines. Without one they are read as OpenAI Batch lines, the
  format OpenAI-compatible servers write.
- A factory may carry a `request_rules` attribute, a `RequestRules` naming the endpoints it
  takes and a check of each request; the build refuses what they refuse.

The built-ins are `openai`, `anthropic`, `mistral` and `gemini` (Gemini Batch Mode,
`adapters.gemini`), and the OpenAI-compatible batch hosts `azure`, `groq`, `together` and `xai`
(profiles of the OpenAI adapter: `adapters.openai.profiles`). A `[providers.NAME]` section of
`ledger.toml` can add another compatible host without code (`register_profile`). A factory may
carry `limits`, the most one batch holds, which the build cuts shards to (`batch_limits`).
Another package adds a provider, without touching this repository, with an entry point in the
group `ledger.providers` that loads to its factory:

    [project.entry-points."ledger.providers"]
    acme = "acme_ledger:make_provider"

A built-in name cannot be taken by an entry point (that entry point is ignored, with a warning:
an installed package must not silently reroute requests and keys); when two entry points share a
name the first found wins. Entry points are discovered once, on the first use of `REGISTRY`, and
an entry point's module is imported only when its provider is first built or its lines read, so
`import adapters` loads no SDK and no plug-in. docs/providers.md has the user's side of this.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from adapters.base import BatchProvider, MissingAPIKey
from adapters.openai.profiles import HOST_KEYS, HOSTS, HostProfile, declared_profile
from adapters.results import ResultReader
from ledger.errors import InputError

log = logging.getLogger(__name__)

#: The entry point group other packages register providers in.
ENTRY_POINT_GROUP = "ledger.providers"

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
        return GeminiBatchProvider(base_url=base_url, api_key=key)

    @property
    def result_reader(self) -> ResultReader:
        from adapters.gemini.lines import READER

        return READER

    @property
    def request_rules(self) -> RequestRules:
        from adapters.gemini.requests import ENDPOINTS, request_problem

        return RequestRules(endpoints=ENDPOINTS, problem=request_problem)


class ProfileFactory:
    """An OpenAI-compatible batch host: the OpenAI adapter under the host's profile."""

    def __init__(self, profile: HostProfile) -> None:
        self.profile = profile
        self.name = profile.name
        #: The variable the key is read from when the caller gives none.
        self.api_key_env = profile.api_key_env

    def __call__(self, base_url: str | None, api_key: str | None) -> BatchProvider:
        from adapters.openai.batch import OpenAIBatchProvider

        env = self.api_key_env
        # A host declared with no key variable needs no key; the SDK insists on a string.
        key = _key(api_key, env, self.name) if env else api_key or "no-key-needed"
        return OpenAIBatchProvider(base_url=base_url, api_key=key, profile=self.profile)

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


#: The providers that ship with ledger; entry points never replace these.
BUILT_INS: dict[str, Factory] = {
    "openai": OpenAIFactory(),
    "anthropic": AnthropicFactory(),
    "mistral": MistralFactory(),
    "gemini": GeminiFactory(),
    **{name: ProfileFactory(profile) for name, profile in HOSTS.items()},
}


class EntryPointFactory:
    """A provider another package registered: its module is imported on first use."""

    def __init__(self, entry_point: EntryPoint) -> None:
        self.entry_point = entry_point
        self._factory: Any = None

    def load(self) -> Factory:
        """The factory the entry point names; InputError when it cannot be imported."""
        if self._factory is None:
            try:
                loaded = self.entry_point.load()
            except Exception as error:  # a broken plug-in is the user's to fix, named here
                raise InputError(
                    f"provider {self.entry_point.name!r}: cannot load {self.entry_point.value!r} "
                    f"(entry point group {ENTRY_POINT_GROUP}): {error}"
                ) from None
            if not callable(loaded):
                raise InputError(
                    f"provider {self.entry_point.name!r}: {self.entry_point.value!r} is not a "
                    "factory (base_url, api_key) -> BatchProvider"
                )
            self._factory = loaded
        return self._factory

    def __call__(self, base_url: str | None, api_key: str | None) -> BatchProvider:
        return self.load()(base_url, api_key)

    @property
    def result_reader(self) -> ResultReader | None:
        return getattr(self.load(), "result_reader", None)


class ProviderRegistry(MutableMapping[str, Factory]):
    """Name -> factory: the built-ins, then the entry points, discovered on first use."""

    def __init__(self, built_ins: dict[str, Factory], group: str = ENTRY_POINT_GROUP) -> None:
        self._built_ins = built_ins
        self._group = group
        self._factories: dict[str, Factory] | None = None
        self._lock = threading.Lock()

    def reload(self) -> None:
        """Discover the entry points again (a package installed into a running process)."""
        with self._lock:
            self._factories = None

    def _loaded(self) -> dict[str, Factory]:
        factories = self._factories
        if factories is None:
            with self._lock:
                if self._factories is None:
                    self._factories = self._discover()
                factories = self._factories
        return factories

    def _discover(self) -> dict[str, Factory]:
        factories: dict[str, Factory] = dict(self._built_ins)
        for entry_point in entry_points(group=self._group):
            name = entry_point.name
            if name in self._built_ins:
                log.warning(
                    "entry point %s = %s ignored: %r is a built-in provider",
                    name,
                    entry_point.value,
                    name,
                )
            elif name not in factories:
                factories[name] = EntryPointFactory(entry_point)
        return factories

    def __getitem__(self, name: str) -> Factory:
        return self._loaded()[name]

    def __setitem__(self, name: str, factory: Factory) -> None:
        self._loaded()[name] = factory

    def __delitem__(self, name: str) -> None:
        del self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._loaded()))

    def __len__(self) -> int:
        return len(self._loaded())


#: Every provider batch jobs can go to, by name.
REGISTRY = ProviderRegistry(BUILT_INS)


def provider_names() -> list[str]:
    """The registered provider names, sorted."""
    return sorted(REGISTRY)


def _factory(name: str) -> Factory:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(provider_names())
        raise InputError(f"unknown provider {name!r} (known: {known})") from None


def declare_host(name: str, table: Mapping[str, object], key_env: str | None) -> bool:
    """Register the OpenAI-compatible host a `[providers.NAME]` table of ledger.toml declares,
    if it declares one: any of `HOST_KEYS`, or `batch = true` on a name no adapter has (or one
    declared before: read again, it is declared again). Whether it did; InputError for a table
    that cannot be one (`.key: problem`)."""
    factory = REGISTRY.get(name)
    declared = factory is None or (isinstance(factory, ProfileFactory) and name not in BUILT_INS)
    if not (any(key in table for key in HOST_KEYS) or (table.get("batch") is True and declared)):
        return False
    register_profile(declared_profile(name, table, key_env))
    return True


def register_profile(profile: HostProfile) -> None:
    """Make a compatible host declared in `ledger.toml` a provider (a built-in name keeps its
    own factory: a config file must not reroute a built-in's requests and key)."""
    if profile.name in BUILT_INS:
        raise InputError(f": {profile.name} is built in; its batch host cannot be redeclared")
    REGISTRY[profile.name] = ProfileFactory(profile)


def batch_limits(name: str) -> tuple[int, int] | None:
    """The most requests and bytes one batch of provider `name` holds, when its factory says."""
    return getattr(_factory(name), "limits", None)


def get_provider(
    name: str, base_url: str | None = None, *, api_key: str | None = None
) -> BatchProvider:
    """The adapter registered under `name`, talking to `base_url` (None: its default) with
    `api_key` (None: the provider's usual variable); InputError for an unknown name."""
    return _factory(name)(base_url, api_key)


def request_rules(name: str) -> RequestRules:
    """What provider `name` takes (a factory's `request_rules` attribute); no rules when it
    states none. InputError for an unknown name."""
    rules = getattr(_factory(name), "request_rules", None)
    return rules if isinstance(rules, RequestRules) else RequestRules()


def result_reader(name: str) -> ResultReader:
    """How the output and error lines of provider `name` are read (a job's `provider` column);
    OpenAI's format when the provider names no reader. InputError for an unknown name."""
    reader = getattr(_factory(name), "result_reader", None)
    if reader is None:
        from adapters.openai.lines import READER

        return READER
    return reader
