"""The OpenAI-compatible batch hosts, each served under its own path prefix with its quirks.

`/azure/openai/v1/...`, `/groq/openai/v1/...`, `/together/v1/...` and `/xai/v1/...` are the same
Files and Batches API as `/v1/...`, with the same scenarios and faults, answering as each host
answers the `openai` SDK (what the project's provider facts and the hosts' docs say):

- azure: the batch endpoint is named without `/v1` (`/chat/completions`, in create and in each
  line's `url`), and a batch is never expired: the `expire` scenario runs past its window instead.
- groq: completion windows from `24h` up to `7d`.
- together: input lines are `{custom_id, body}` (no `method`, `url`), uploaded with purpose
  `batch-api`; statuses are upper case; create answers `{"job": <batch>}`.
- xai: OpenAI's lines and routes as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ledger.emulator.errors import invalid_value


@dataclass(frozen=True)
class Host:
    """What one host does differently from OpenAI's routes."""

    name: str
    #: The path prefix that stands for OpenAI's `/v1`.
    prefix: str
    upload_purpose: str = "batch"
    #: Input lines carry only `custom_id` and `body`.
    body_only_lines: bool = False
    #: Endpoints are named with OpenAI's `/v1` prefix.
    v1_endpoints: bool = True
    #: The host expires a batch whose window passed.
    expires: bool = True
    #: The longest completion window, in hours.
    max_window_hours: int = 24
    upper_case_statuses: bool = False
    create_wraps_job: bool = False


HOSTS: dict[str, Host] = {
    host.name: host
    for host in (
        Host("azure", "/azure/openai/v1", v1_endpoints=False, expires=False),
        Host("groq", "/groq/openai/v1", max_window_hours=7 * 24),
        Host(
            "together",
            "/together/v1",
            upload_purpose="batch-api",
            body_only_lines=True,
            upper_case_statuses=True,
            create_wraps_job=True,
        ),
        Host("xai", "/xai/v1"),
    )
}

#: Mistral's batch jobs: routes of their own (mistral_routes.py) over the same store, whose input
#: lines are `{custom_id, body}` and whose `timeout_hours` go up to 7 days.
MISTRAL = Host("mistral", "/mistral/v1", body_only_lines=True, max_window_hours=7 * 24)


def by_name(name: str | None) -> Host | None:
    """The host a stored batch was made through (None: OpenAI's own `/v1`)."""
    return HOSTS.get(name or "") or (MISTRAL if name == MISTRAL.name else None)


#: Together's words: upper case, with no word for finalizing or cancelling (still running).
_TOGETHER_STATUSES = {"finalizing": "IN_PROGRESS", "cancelling": "IN_PROGRESS"}

_WINDOW = re.compile(r"([1-9][0-9]{0,3})([hd])")


def split(path: str) -> tuple[Host | None, str]:
    """The host a path is under, and the path as OpenAI's routes name it (`/v1/...`)."""
    for host in HOSTS.values():
        if path == host.prefix or path.startswith(host.prefix + "/"):
            return host, "/v1" + path[len(host.prefix) :]
    return None, path


def window_hours(window: str) -> int | None:
    """`24h` -> 24, `7d` -> 168; None for anything else."""
    found = _WINDOW.fullmatch(window)
    if found is None:
        return None
    return int(found.group(1)) * (24 if found.group(2) == "d" else 1)


def present_batch(host: Host | None, batch: dict[str, Any]) -> dict[str, Any]:
    """A stored batch's JSON as the host shows it."""
    if host is None:
        return batch
    shown = dict(batch)
    if not host.v1_endpoints and shown["endpoint"].startswith("/v1/"):
        shown["endpoint"] = shown["endpoint"][len("/v1") :]
    if host.upper_case_statuses:
        shown["status"] = _TOGETHER_STATUSES.get(shown["status"], shown["status"].upper())
    return shown


def create_body(host: Host | None, body: Any) -> tuple[Any, str | None]:
    """A host's create body in OpenAI's words, and the longer window it asked for, if it asked
    for one the host allows (Groq's up to `7d`): Azure's endpoint without `/v1` gets it back."""
    if host is None or not isinstance(body, dict):
        return body, None
    body = dict(body)
    endpoint, window = body.get("endpoint"), body.get("completion_window")
    if not host.v1_endpoints and isinstance(endpoint, str):
        if endpoint.startswith("/v1/"):
            raise invalid_value("endpoint", endpoint, [endpoint.removeprefix("/v1")])
        body["endpoint"] = "/v1" + endpoint
    hours = window_hours(window) if isinstance(window, str) else None
    if hours is not None and 24 < hours <= host.max_window_hours:
        body["completion_window"] = "24h"
        return body, window
    return body, None


def present_file(host: Host | None, file: dict[str, Any]) -> dict[str, Any]:
    """A file's JSON with the batch purpose in the host's word (Together's `batch-api`)."""
    if host is not None and file.get("purpose") == "batch":
        return {**file, "purpose": host.upload_purpose}
    return file
