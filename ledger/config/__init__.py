"""Settings from `ledger.toml`, and the one factory that turns a provider's settings into a batch
adapter or a synchronous chat client, for the CLI and the Python API alike.

The file is `--config FILE`, else `$LEDGER_CONFIG`, else `./ledger.toml` when there is one; none
is needed. `[defaults]` gives defaults to the settings of `ledger submit`, `retry` and
`reconcile` and of the Python API (each declared in ledger.settings, which checks them);
`[providers.NAME]` says where a provider is and how to reach it, `[models."NAME"]` changes the
model table (docs/models.md). API keys never live in the file: a provider names the environment
variable holding its key. Unknown keys are refused with the file and the key named, so a typo never
silently does nothing. See docs/config.md.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adapters.chat_types import DEFAULT_TIMEOUT
from adapters.openai.profiles import HOST_KEYS
from adapters.registry import check_window, declare_host
from ledger.errors import ConfigError, InputError, MissingAPIKey
from ledger.settings import SETTINGS
from ledger.settings.budget import parse_budget
from ledger.settings.toml_checks import check_type as _check_type
from ledger.settings.toml_checks import unknown_key as _unknown
from ledger.usage.capabilities import check_rows

#: The file looked for in the current directory, and the variable that can name another.
CONFIG_FILE = "ledger.toml"
CONFIG_ENV = "LEDGER_CONFIG"

#: The provider `ledger submit` sends to when neither the option nor the file names one.
DEFAULT_PROVIDER: str = SETTINGS["provider"].default

#: Wire protocols a provider can speak: OpenAI's (api.openai.com, Ollama, vLLM, gateways) or
#: Anthropic's.
KINDS = ("openai", "anthropic", "gemini")

#: Synchronous endpoints an OpenAI-kind provider can chat through.
CHAT_ENDPOINTS = ("chat", "responses")

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


#: Every `[providers.NAME]` key and the values it accepts.
PROVIDER_KEYS: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "base_url": (str,),
    "model": (str,),
    "embedding_model": (str,),
    "batch": (bool,),
    "api_key_env": (str,),
    "chat_endpoint": (str,),
    "max_context_tokens": (dict,),
    "timeout": (int, float),
    # The name of the account whose enqueued-token queue this provider's batches share (a
    # label, never a key): reconcilers on other machines with the same name share one queue.
    "account": (str,),
    "completion_window": (str,),  # a compatible host's (Groq: 24h to 7d)
    "ad_token_env": (str,),
    # What an OpenAI-compatible batch host declared here does differently from OpenAI.
    **HOST_KEYS,
}


@dataclass(frozen=True)
class ProviderSettings:
    """How to reach one provider. The key itself is read from `api_key_env` when needed."""

    name: str
    #: The wire protocol: `openai` or `anthropic`.
    kind: str
    #: None: the SDK's default (or $OPENAI_BASE_URL / $ANTHROPIC_BASE_URL).
    base_url: str | None = None
    #: The model synchronous calls use when the request names none.
    model: str | None = None
    #: The model `ledger doctor` checks embeddings with (OpenAI kind only).
    embedding_model: str | None = None
    #: Whether batch jobs may go to this provider (it needs a registered batch adapter).
    batch: bool = False
    #: The environment variable holding the key; None: the server needs no key (Ollama).
    api_key_env: str | None = None
    #: `chat` (/v1/chat/completions) or `responses` (/v1/responses); OpenAI kind only.
    chat_endpoint: str = "chat"
    #: Model -> the tokens its context holds; a synchronous request that cannot fit is refused.
    max_context_tokens: Mapping[str, int] = field(default_factory=dict)
    #: Seconds a synchronous call may take.
    timeout: float = DEFAULT_TIMEOUT
    #: The account's name for the shared token queues (ledger.spend); None: derived.
    account: str | None = None
    #: A host's batch window (None: its default); a bearer-token variable (Azure's Entra ID).
    completion_window: str | None = None
    ad_token_env: str | None = None

    def api_key(self) -> str | None:
        """The key from the environment, else `ad_token_env`'s token (None: none needed/set)."""
        if self.api_key_env is None:
            return None
        return os.environ.get(self.api_key_env) or os.environ.get(self.ad_token_env or "") or None

    def require_api_key(self) -> str | None:
        """The key; MissingAPIKey when the provider needs one and its variable is unset."""
        key = self.api_key()
        if self.api_key_env and key is None:
            name = self.api_key_env + (f" nor ${self.ad_token_env}" if self.ad_token_env else "")
            raise MissingAPIKey(f"${name} is not set (the key of provider {self.name})")
        return key


@dataclass(frozen=True)
class LedgerConfig:
    """A read `ledger.toml` (or the empty settings when there is none)."""

    #: The file read, None when there was none.
    path: Path | None = None
    #: `[defaults]`, checked, paths made absolute.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: `[providers.NAME]` sections, with the built-in settings of their name filled in.
    providers: Mapping[str, ProviderSettings] = field(default_factory=dict)
    #: `[models."NAME"]` rows, checked, laid over the packaged model table.
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: `[budget]`, checked against `ledger.settings.budget.BUDGET_KEYS`.
    budget: Mapping[str, Any] = field(default_factory=dict)

    def command_defaults(self) -> dict[str, dict[str, Any]]:
        """The defaults by command and parameter name (click's `default_map`)."""
        commands: dict[str, dict[str, Any]] = {}
        for key, value in self.defaults.items():
            setting = SETTINGS[key]
            if setting.multiple and not isinstance(value, list | tuple):
                value = (value,)  # click's default for a repeatable option is a sequence
            for command in setting.commands:
                commands.setdefault(command, {})[setting.param] = value
        return commands

    def provider_names(self) -> list[str]:
        """The configured providers in file order, or the default one when none is."""
        return list(self.providers) or [DEFAULT_PROVIDER]


def builtin_settings(name: str) -> ProviderSettings | None:
    """The settings a built-in provider (`openai`, `anthropic`, or a compatible batch host:
    `azure`, `groq`, `together`, `xai`) has without any file."""
    from adapters.openai.profiles import HOSTS
    from adapters.registry import REGISTRY

    host = HOSTS.get(name)
    if host is not None:
        url, env, tok = host.configured_base_url(), host.api_key_env, host.ad_token_env
        return ProviderSettings(name, "openai", url, batch=True, api_key_env=env, ad_token_env=tok)
    if name == "openai":
        return ProviderSettings(
            name="openai",
            kind="openai",
            base_url=os.environ.get("OPENAI_BASE_URL") or None,
            embedding_model="text-embedding-3-small",
            batch="openai" in REGISTRY,
            api_key_env="OPENAI_API_KEY",
        )
    if name == "anthropic":
        return ProviderSettings(
            name="anthropic",
            kind="anthropic",
            base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
            batch="anthropic" in REGISTRY,
            api_key_env="ANTHROPIC_API_KEY",
        )
    if name == "mistral":
        # Chat goes to Mistral's OpenAI-compatible chat completions; batch through the
        # `mistralai` SDK (adapters.mistral), which is given the same `/v1` URL.
        return ProviderSettings(
            name="mistral",
            kind="openai",
            base_url=os.environ.get("MISTRAL_BASE_URL") or "https://api.mistral.ai/v1",
            embedding_model="mistral-embed",
            batch="mistral" in REGISTRY,
            api_key_env="MISTRAL_API_KEY",
        )
    if name == "gemini":
        # The google-genai SDK reads GOOGLE_API_KEY too: GEMINI_API_KEY first, else that one.
        google = os.environ.get("GOOGLE_API_KEY") and not os.environ.get("GEMINI_API_KEY")
        env = "GOOGLE_API_KEY" if google else "GEMINI_API_KEY"
        return ProviderSettings(name="gemini", kind="gemini", batch=True, api_key_env=env)
    return None


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The settings file: `explicit`, else `$LEDGER_CONFIG`, else `./ledger.toml` if present."""
    chosen = explicit or os.environ.get(CONFIG_ENV)
    if chosen:
        return Path(chosen)
    local = Path(CONFIG_FILE)
    return local if local.is_file() else None


def load_config(path: str | os.PathLike[str] | None = None) -> LedgerConfig:
    """Read and check the settings file `find_config(path)` names; empty settings when none.

    ConfigError, naming the file and the key, for a missing file, bad TOML, an unknown key or a
    value of the wrong kind.
    """
    found = find_config(path)
    if found is None:
        return LedgerConfig()
    try:
        document = tomllib.loads(found.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{found}: no such config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{found}: cannot read ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{found}: not valid TOML ({error})") from None
    return parse_config(document, found)


def parse_config(document: Mapping[str, Any], path: Path) -> LedgerConfig:
    """Check a parsed `ledger.toml` (read from `path`) and build its settings."""
    sections = ("defaults", "providers", "models", "budget")
    for key in document:
        if key not in sections:
            _unknown(path, key, "", sections)
    defaults = _parse_defaults(_table(document.get("defaults", {}), path, "[defaults]"), path)
    providers: dict[str, ProviderSettings] = {}
    for name, section in _table(document.get("providers", {}), path, "[providers]").items():
        providers[name] = _parse_provider(name, _table(section, path, f"[providers.{name}]"), path)
    # A bad row is an InputError naming the file, the model and the field.
    models = check_rows(_table(document.get("models", {}), path, "[models]"), str(path))
    budget = parse_budget(_table(document.get("budget", {}), path, "[budget]"), path)
    return LedgerConfig(path.resolve(), defaults, providers, models, budget)


def _parse_defaults(section: Mapping[str, Any], path: Path) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, value in section.items():
        setting = SETTINGS.get(key)
        if setting is None:
            _unknown(path, key, "defaults", SETTINGS)
        _check_type(path, f"defaults.{key}", value, setting.toml_types())
        problem = setting.problem(value)
        if problem is not None:
            raise ConfigError(f"{path}: defaults.{key}: {problem}")
        if setting.kind == "path":
            # Relative paths in the file mean relative to the file, wherever ledger runs.
            value = str((path.resolve().parent / Path(value).expanduser()).resolve())
        checked[key] = value
    return checked


def _parse_provider(name: str, section: Mapping[str, Any], path: Path) -> ProviderSettings:
    from adapters.registry import REGISTRY

    where = f"providers.{name}"
    for key, value in section.items():
        if key not in PROVIDER_KEYS:
            _unknown(path, key, where, PROVIDER_KEYS)
        _check_type(path, f"{where}.{key}", value, PROVIDER_KEYS[key])
    kind = section.get("kind") or (name if name in KINDS else "openai")
    if kind not in KINDS:
        raise ConfigError(f"{path}: {where}.kind: {kind!r} is not one of {', '.join(KINDS)}")
    # A name a package registered (an entry point) may batch, as a built-in name may.
    base = builtin_settings(name) or ProviderSettings(name=name, kind=kind, batch=name in REGISTRY)
    if base.kind != kind:
        # A built-in name re-declared as the other protocol keeps nothing of the built-in.
        base = ProviderSettings(name=name, kind=kind)
    for key in ("api_key_env", "ad_token_env"):
        if not _ENV_NAME.fullmatch(section.get(key, "_")):
            raise ConfigError(f"{path}: {where}.{key}: {section[key]!r} is not a variable name")
    env = section.get("api_key_env")
    endpoint = section.get("chat_endpoint", base.chat_endpoint)
    if endpoint not in CHAT_ENDPOINTS or (kind == "anthropic" and "chat_endpoint" in section):
        allowed = "none for anthropic" if kind == "anthropic" else " or ".join(CHAT_ENDPOINTS)
        raise ConfigError(f"{path}: {where}.chat_endpoint: {endpoint!r} ({allowed})")
    limits: dict[str, int] = {}
    for model, limit in section.get("max_context_tokens", {}).items():
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ConfigError(
                f"{path}: {where}.max_context_tokens.{model}: expected a whole number of "
                f"tokens, got {limit!r}"
            )
        limits[model] = limit
    timeout = section.get("timeout", base.timeout)
    if timeout <= 0:
        raise ConfigError(f"{path}: {where}.timeout: must be more than 0 seconds")
    try:
        if kind == "openai" and declare_host(name, section, env or base.api_key_env):
            base = replace(base, batch=True)
        check_window(name, section.get("completion_window"))
    except InputError as error:
        raise ConfigError(f"{path}: {where}{error}") from None
    return replace(
        base,
        base_url=section.get("base_url", base.base_url),
        model=section.get("model", base.model),
        embedding_model=section.get("embedding_model", base.embedding_model),
        batch=section.get("batch", base.batch),
        api_key_env=env if env is not None else base.api_key_env,
        chat_endpoint=endpoint,
        max_context_tokens=limits,
        timeout=float(timeout),
        account=section.get("account", base.account),
        completion_window=section.get("completion_window"),
        ad_token_env=section.get("ad_token_env", base.ad_token_env),
    )


def _table(value: Any, path: Path, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where} must be a table")
    return value


# The factory (provider settings -> batch adapter or chat client) lives in ledger.config.factory;
# re-exported here, so `from ledger.config import chat_client` keeps working.
from ledger.config.factory import (  # noqa: E402
    batch_api_key,
    batch_provider,
    batch_provider_for,
    chat_client,
    check_batch_provider,
    provider_settings,
    submit_provider,
)

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FILE",
    "LedgerConfig",
    "ProviderSettings",
    "batch_api_key",
    "batch_provider",
    "batch_provider_for",
    "builtin_settings",
    "chat_client",
    "check_batch_provider",
    "find_config",
    "load_config",
    "parse_config",
    "provider_settings",
    "submit_provider",
]
