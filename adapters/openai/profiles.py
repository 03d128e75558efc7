"""OpenAI-compatible batch hosts, each declared once as what it does differently from OpenAI.

The OpenAI adapter (`adapters.openai.batch`) talks to every host here with the `openai` SDK; a
`HostProfile` says where the host is, which variable holds its key, how its input lines and
upload look, what its status words are, and what one batch may hold. Shards are always built as
OpenAI lines; `upload_lines` rewrites them into the host's envelope at upload, a pure function of
the shard's bytes, so an upload retried after a crash sends the same bytes again.

Sources, as read in November 2026 (see also /docs/providers.md):
- [facts] the project's gathered provider facts (public docs, SDK sources and issues);
- [azure-docs] learn.microsoft.com/azure/ai-foundry/openai/how-to/batch ("we do not expire the
  jobs that take longer"; 100,000 requests and 200 MB per file; the v1 surface `/openai/v1/`);
- [openai-sdk] `openai/resources/batches.py`, `openai/types/batch.py` (3.57).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ledger.errors import ConfigError, InputError

#: OpenAI's own words: the status map of every profile that keeps them. [openai-sdk]
OPENAI_STATUSES: Mapping[str, str] = {
    word: word
    for word in (
        "validating",
        "in_progress",
        "finalizing",
        "cancelling",
        "completed",
        "failed",
        "expired",
        "cancelled",
    )
}

#: Line envelopes: OpenAI's `{custom_id, method, url, body}`, or `{custom_id, body}` alone.
ENVELOPES = ("openai", "body")

#: The `[providers.NAME]` keys of ledger.toml that declare a compatible host's differences from
#: OpenAI (besides `base_url` and `api_key_env`), and the TOML types they take.
HOST_KEYS: dict[str, tuple[type, ...]] = {
    "envelope": (str,),
    "upload_purpose": (str,),
    "max_requests_per_batch": (int,),
    "max_bytes_per_batch": (int,),
}


@dataclass(frozen=True)
class HostProfile:
    """What one OpenAI-compatible batch host does differently from api.openai.com."""

    #: The provider's name (`--provider`, `ledger.toml`, the `provider` column).
    name: str
    #: Where the host's OpenAI-compatible API is; None: the SDK's default (api.openai.com).
    base_url: str | None = None
    #: A variable naming the host's own resource (Azure's endpoint), the base URL being that
    #: plus `resource_path`; used when `base_url` is None.
    resource_env: str | None = None
    resource_path: str = ""
    #: The variable holding the key; None: the host needs none.
    api_key_env: str | None = "OPENAI_API_KEY"
    #: A variable holding a bearer token used when the key variable is unset (Azure: a
    #: Microsoft Entra ID token, sent as `Authorization: Bearer`, which the v1 surface takes
    #: as the openai SDK's `api_key`). [azure-docs]
    ad_token_env: str | None = None
    #: `openai`: lines as built; `body`: `{custom_id, body}` without `method` and `url`.
    envelope: str = "openai"
    #: The `purpose` input files are uploaded (and listed) with.
    upload_purpose: str = "batch"
    #: Host status word -> OpenAI's word for it (mapped to ledger states by the adapter).
    statuses: Mapping[str, str] = field(default_factory=lambda: dict(OPENAI_STATUSES))
    #: The `completion_window` batches are created with, and the longest the host takes.
    completion_window: str = "24h"
    max_completion_window: str = "24h"
    #: What one batch (one input file) may hold.
    max_requests: int = 50_000
    max_bytes: int = 200_000_000
    #: Whether the host ends a batch `expired` when its window passes (Azure never does).
    expires: bool = True
    #: Whether the endpoint path (in lines and in create) keeps OpenAI's `/v1` prefix.
    endpoint_v1_prefix: bool = True
    #: Whether the host keeps batch `metadata`; without it a batch is adopted by its input
    #: file alone, which is as good a tag: each job's upload is named after the job.
    batch_metadata: bool = True
    #: Whether `POST /batches` answers `{"job": <batch>}` instead of the batch itself.
    create_wraps_job: bool = False
    #: Whether the host takes `expires_after` on upload and `output_expires_after` on create
    #: (OpenAI's API reference and SDK, openai 2.x: `files.create(expires_after=)`,
    #: `batches.create(output_expires_after=)`); other hosts are not sent them.
    file_expiry: bool = False

    def window_problem(self, window: str) -> str | None:
        """Why batches of this host cannot be created with `window` (`24h`, `48h`, `7d`), if
        they cannot: it must lie between 24h and `max_completion_window`."""
        hours, longest = _window_hours(window), _window_hours(self.max_completion_window)
        if hours is None or longest is None or not 24 <= hours <= longest:
            return (
                f"{window!r}: {self.name} takes a window from 24h to "
                f"{self.max_completion_window} (hours as 48h, or days as 7d)"
            )
        return None

    def default_base_url(self) -> str | None:
        """Where the host is when nothing else says: `base_url`, or the resource variable's URL;
        ConfigError when the host has no fixed URL and its resource variable is unset."""
        if self.base_url is not None or self.resource_env is None:
            return self.base_url
        resource = os.environ.get(self.resource_env)
        if not resource:
            raise ConfigError(
                f"${self.resource_env} is not set (where provider {self.name} is; or give "
                "--base-url or base_url in ledger.toml)"
            )
        return resource.rstrip("/") + self.resource_path

    def configured_base_url(self) -> str | None:
        """`default_base_url`, or None where its resource variable is unset (the batch adapter
        names what is missing when it is built)."""
        try:
            return self.default_base_url()
        except ConfigError:
            return None

    def endpoint_path(self, endpoint: str) -> str:
        """The endpoint path as the host expects it (`/v1/chat/completions` or without `/v1`)."""
        if not self.endpoint_v1_prefix and endpoint.startswith("/v1/"):
            return endpoint[len("/v1") :]
        return endpoint

    @property
    def rewrites_lines(self) -> bool:
        """Whether the shard's lines must be rewritten before upload."""
        return self.envelope != "openai" or not self.endpoint_v1_prefix

    def upload_line(self, line: bytes) -> bytes:
        """One shard line (OpenAI's envelope) as this host takes it."""
        item = json.loads(line)
        if self.envelope == "body":
            item = {"custom_id": item["custom_id"], "body": item["body"]}
        else:
            item["url"] = self.endpoint_path(item["url"])
        return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()


OPENAI = HostProfile(name="openai", file_expiry=True)

# Azure OpenAI Batch through the v1 surface with the plain `openai` client. [azure-docs] [facts]
# The base URL is `$AZURE_OPENAI_ENDPOINT/openai/v1/` (the registry builds it); the v1 surface
# needs no api-version (OPENAI_API_VERSION matters only to the older `AzureOpenAI` surface).
AZURE = HostProfile(
    name="azure",
    resource_env="AZURE_OPENAI_ENDPOINT",
    resource_path="/openai/v1/",
    api_key_env="AZURE_OPENAI_API_KEY",
    ad_token_env="AZURE_OPENAI_AD_TOKEN",
    # 100,000 requests and 200 MB per input file (1 GB with your own Blob storage). [azure-docs]
    max_requests=100_000,
    max_bytes=200_000_000,
    # "We aim to process batch requests within 24 hours; we do not expire the jobs that take
    # longer": a batch past 24 h keeps being polled. [azure-docs]
    expires=False,
    # Lines and create name the endpoint `/chat/completions` (curator's Azure backend). [facts]
    endpoint_v1_prefix=False,
)

# Groq: OpenAI's lines and routes under `/openai/v1`; windows `24h` to `7d`. [facts]
GROQ = HostProfile(
    name="groq",
    base_url="https://api.groq.com/openai/v1",
    api_key_env="GROQ_API_KEY",
    # The longest window: a 24h batch may be expired by a busy host, 7d gives it time. [facts]
    completion_window="24h",
    max_completion_window="7d",
)

# Together: `{custom_id, body}` lines, purpose `batch-api`, upper-case statuses, 50,000
# requests / 100 MB per file, create answers `{job: ...}`. [facts] No metadata on create in
# its batch reference: its batches are adopted by input file.
TOGETHER = HostProfile(
    name="together",
    base_url="https://api.together.xyz/v1",
    api_key_env="TOGETHER_API_KEY",
    envelope="body",
    upload_purpose="batch-api",
    statuses={
        "VALIDATING": "validating",
        "IN_PROGRESS": "in_progress",
        "COMPLETED": "completed",
        "FAILED": "failed",
        "EXPIRED": "expired",
        "CANCELLED": "cancelled",
    },
    max_requests=50_000,
    max_bytes=100_000_000,
    batch_metadata=False,
    create_wraps_job=True,
)

# xAI: an OpenAI-compatible `/v1/files` + `/v1/batches` that takes OpenAI's JSONL as is. [facts]
XAI = HostProfile(name="xai", base_url="https://api.x.ai/v1", api_key_env="XAI_API_KEY")

#: The hosts that ship with ledger besides OpenAI itself, by provider name.
HOSTS: dict[str, HostProfile] = {p.name: p for p in (AZURE, GROQ, TOGETHER, XAI)}


def _window_hours(window: str) -> int | None:
    """`24h` -> 24, `7d` -> 168; None for anything else."""
    number, unit = window[:-1], window[-1:]
    if not number.isdigit() or unit not in ("h", "d"):
        return None
    return int(number) * (24 if unit == "d" else 1)


def declared_profile(name: str, table: Mapping[str, object], key_env: str | None) -> HostProfile:
    """The host a `[providers.NAME]` table of ledger.toml declares: `base_url`, the key in
    `key_env`, and, where it differs from OpenAI, `envelope`, `upload_purpose`,
    `max_requests_per_batch` and `max_bytes_per_batch` (at most OpenAI's). InputError naming
    the key, as `.key: problem`, for a value that cannot be."""
    if name in HOSTS or name in ("openai", "anthropic"):
        raise InputError(f": {name} is built in; its batch host cannot be redeclared")
    base_url = table.get("base_url")
    if not isinstance(base_url, str):
        raise InputError(".base_url: a compatible batch host needs its URL")
    envelope = table.get("envelope", OPENAI.envelope)
    if envelope not in ENVELOPES:
        raise InputError(f".envelope: {envelope!r} is not one of {', '.join(ENVELOPES)}")
    max_requests = _at_most(table, "max_requests_per_batch", OPENAI.max_requests)
    max_bytes = _at_most(table, "max_bytes_per_batch", OPENAI.max_bytes)
    return HostProfile(
        name=name,
        base_url=base_url,
        api_key_env=key_env,
        envelope=str(envelope),
        upload_purpose=str(table.get("upload_purpose", OPENAI.upload_purpose)),
        max_requests=max_requests,
        max_bytes=max_bytes,
    )


def _at_most(table: Mapping[str, object], key: str, most: int) -> int:
    value = table.get(key, most)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise InputError(f".{key}: must be a whole number between 1 and {most}")
    return value
