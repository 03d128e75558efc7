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
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from adapters.base import BatchProvider
from adapters.builtins import (
    AnthropicFactory,
    Factory,
    GeminiFactory,
    MistralFactory,
    OpenAIFactory,
    ProfileFactory,
    RequestRules,
)
from adapters.openai.profiles import HOST_KEYS, HOSTS, HostProfile, declared_profile
from adapters.results import ResultReader
from ledger.errors import InputError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

log = logging.getLogger(__name__)

#: The entry point group other packages register providers in.
ENTRY_POINT_GROUP = "ledger.providers"

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
        # Imported here, on the first look-up: importlib.metadata cost every command ~15 ms of
        # start-up, commands that never name a provider included (`bench/startup.py`).
        from importlib.metadata import entry_points

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
        # No entry point replaces a built-in, so one is found without scanning every installed
        # distribution's entry points (some 7 ms of each normalizing or sending process), as
        # long as nothing has changed the mapping (which discovers them first).
        if self._factories is None and name in self._built_ins:
            return self._built_ins[name]
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


def check_window(name: str, window: str | None) -> None:
    """InputError (`.completion_window: ...`) unless provider `name` creates batches with
    `window` (None: its default): a compatible host, between 24h and its longest window."""
    if window is None:
        return
    factory = REGISTRY.get(name)
    if not isinstance(factory, ProfileFactory):
        raise InputError(f".completion_window: provider {name} takes none")
    try:
        factory.with_window(window)
    except InputError as error:
        raise InputError(f".{error}") from None


def batch_limits(name: str) -> tuple[int, int] | None:
    """The most requests and bytes one batch of provider `name` holds, when its factory says."""
    return getattr(_factory(name), "limits", None)


def get_provider(
    name: str,
    base_url: str | None = None,
    *,
    api_key: str | None = None,
    completion_window: str | None = None,
) -> BatchProvider:
    """The adapter registered under `name`, talking to `base_url` (None: its default) with
    `api_key` (None: the provider's usual variable), creating batches with `completion_window`
    (None: the host's default; only a compatible host takes one); InputError for an unknown
    name or a window the host does not take."""
    factory = _factory(name)
    if completion_window is not None:
        if not isinstance(factory, ProfileFactory):
            raise InputError(f"completion_window: provider {name} takes none")
        factory = factory.with_window(completion_window)
    return factory(base_url, api_key)


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
