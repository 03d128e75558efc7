"""What the emulator does: its clock, scenario, limits and faults, all in one dataclass.

`EmulatorConfig` is set at start; every field except `host`, `port` and `state_dir` can be changed
while it runs (`Emulator.configure(**changes)` or `POST /_emulator/config`), and `check_changes`
is the one place that says which changes are legal.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Every scenario the emulator plays, and what it does to a batch.
SCENARIOS: dict[str, str] = {
    "normal": "validating -> in_progress -> finalizing -> completed, every request answered",
    "expire": "expires part way: `partial_fraction` of the requests done, the rest batch_expired",
    "cancel": "the provider cancels part way: partial results, the rest batch_cancelled",
    "fail_validation": "fails validation with `fail_validation_code`",
    "token_limit_exceeded": "fails with token_limit_exceeded (the first `token_limit_failures` "
    "creations per input file name, or always)",
    "request_failures": "`failure_rate` of the requests answer 4xx/5xx into the error file",
    "all_fail": "every request answers 4xx/5xx: no output file",
    "slow_finalizing": "stays in finalizing for `slow_finalizing_stages` extra stages",
    "not_found_grace": "a new batch answers 404 to its first `not_found_gets` GETs",
    "zipped_output": "result files are served as ZIP archives of `zip_members` JSONL members",
    "duplicate_key": "(Gemini routes) one answer comes back under another request's key, so that "
    "key is on two lines and the other request on none (python-genai #1909); elsewhere `normal`",
    "unknown_key": "(Gemini routes) one answer comes back under a key no request has; elsewhere "
    "`normal`",
    "off_schema": "(OpenAI routes) about half the requests that ask for JSON answer "
    '`{"off_schema": true}` instead of an instance of their schema, as a model that strays does',
}

#: Names of the OpenAI Files and Batches routes.
OPENAI_ROUTE_NAMES: tuple[str, ...] = (
    "upload_file",
    "list_files",
    "retrieve_file",
    "file_content",
    "delete_file",
    "create_batch",
    "list_batches",
    "retrieve_batch",
    "cancel_batch",
)

#: Names of the Anthropic Message Batches routes.
ANTHROPIC_ROUTE_NAMES: tuple[str, ...] = (
    "create_message_batch",
    "list_message_batches",
    "retrieve_message_batch",
    "cancel_message_batch",
    "message_batch_results",
    "delete_message_batch",
)

#: Names of the Gemini Files and batches routes (`ledger.emulator.gemini_routes`).
GEMINI_ROUTE_NAMES: tuple[str, ...] = (
    "gemini_upload_file",
    "gemini_list_files",
    "gemini_get_file",
    "gemini_delete_file",
    "gemini_download_file",
    "gemini_create_batch",
    "gemini_create_embeddings_batch",
    "gemini_list_batches",
    "gemini_get_batch",
    "gemini_cancel_batch",
    "gemini_delete_batch",
    "gemini_generate_content",
    "gemini_count_tokens",
)

#: Names of every API route, as fault rules and `stats()["requests"]` spell them.
ROUTE_NAMES: tuple[str, ...] = OPENAI_ROUTE_NAMES + ANTHROPIC_ROUTE_NAMES + GEMINI_ROUTE_NAMES

#: The routes that serve a download (where `truncate_download` fires when no route is named).
DOWNLOAD_ROUTES = frozenset({"file_content", "message_batch_results", "gemini_download_file"})

#: Names of the synchronous routes (`ledger.emulator.sync_routes`); faults and stats know them too.
SYNC_ROUTE_NAMES: tuple[str, ...] = (
    "chat_completions",
    "responses",
    "embeddings",
    "messages",
    "count_message_tokens",
)

#: Fault kinds and what each does to a request it fires on.
FAULT_KINDS: dict[str, str] = {
    "http_500": "answer 500 server_error without processing",
    "http_429": "answer 429 rate_limit_exceeded with retry-after, without processing",
    "drop_response": "process the request, then close the connection without answering",
    "truncate_download": "send the full Content-Length, then close after `fraction` of the body "
    "(downloads: file content, Message Batch results)",
    "latency": "wait `seconds` before handling the request",
    "insufficient_quota": "refuse for the account's money without processing: OpenAI routes 429 "
    "insufficient_quota, Anthropic routes 402 billing_error",
}

#: Fields fixed for the life of a running emulator.
STARTUP_ONLY = frozenset({"host", "port", "state_dir"})


@dataclass(frozen=True)
class FaultRule:
    """One injected fault: which requests it fires on (route, every Nth, at most `times`)."""

    kind: str
    #: A name from ROUTE_NAMES or SYNC_ROUTE_NAMES, or None for every API route
    #: (`truncate_download`: the DOWNLOAD_ROUTES).
    route: str | None = None
    #: Fire on every Nth matching request (1 = each); None = each.
    every: int | None = None
    #: Fire at most this many times in all; None = no limit.
    times: int | None = None
    #: `latency`: seconds to wait. `http_429`: the retry-after it announces.
    seconds: float = 0.1
    #: `truncate_download`: the share of the body sent before the connection closes.
    fraction: float = 0.5

    @classmethod
    def from_value(cls, value: FaultRule | Mapping[str, Any]) -> FaultRule:
        """A rule from itself or from a mapping such as JSON gives; ValueError when invalid."""
        rule = value if isinstance(value, FaultRule) else _build(cls, value, "fault")
        rule.check()
        return rule

    def check(self) -> None:
        """Raise ValueError unless every field holds a usable value."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (one of {', '.join(FAULT_KINDS)})")
        routes = ROUTE_NAMES + SYNC_ROUTE_NAMES
        if self.route is not None and self.route not in routes:
            raise ValueError(f"unknown route {self.route!r} (one of {', '.join(routes)})")
        _require_int("every", self.every, minimum=1, optional=True)
        _require_int("times", self.times, minimum=0, optional=True)
        _require_number("seconds", self.seconds, 0.0, 600.0)
        _require_number("fraction", self.fraction, 0.0, 1.0)


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour; see docs/emulator.md for each field."""

    host: str = "127.0.0.1"
    #: 0 picks a free port.
    port: int = 0
    #: When set, only this bearer key is accepted; otherwise any key is.
    api_key: str | None = None
    #: Keep files and batches in this directory (restart-safe); None keeps them in memory.
    state_dir: str | Path | None = None

    #: The clock: wall seconds per lifecycle stage (fractions welcome) ...
    stage_seconds: float = 1.0
    #: ... or, when set, the number of GETs of a batch that move it one stage.
    polls_per_stage: int | None = None

    #: Default scenario for new batches (see SCENARIOS).
    scenario: str = "normal"
    #: `[{"file_name_contains": "...", "scenario": "..."}]`, matched against the input file name.
    scenario_rules: Sequence[Mapping[str, str]] = ()
    #: `request_failures`: the share of requests that answer 4xx/5xx.
    failure_rate: float = 0.25
    #: `expire` and `cancel` (and a client cancel while in progress): the share of requests done.
    partial_fraction: float = 0.5
    #: `fail_validation`: the error code the failed batch reports.
    fail_validation_code: str = "invalid_request"
    #: `token_limit_exceeded`: fail only the first N creations per input file name (None: all).
    token_limit_failures: int | None = None
    #: `slow_finalizing`: extra stages spent in finalizing.
    slow_finalizing_stages: int = 3
    #: `not_found_grace`: GETs of a new batch answered 404.
    not_found_gets: int = 2
    #: `zipped_output`: JSONL members per ZIP archive.
    zip_members: int = 3

    #: Validation limits (the real ones by default; lower them in tests).
    max_requests_per_batch: int = 50_000
    max_batch_file_bytes: int = 200 * 1024 * 1024
    max_upload_bytes: int = 512 * 1024 * 1024
    #: Anthropic Message Batches: requests and body bytes per create.
    max_message_batch_requests: int = 100_000
    max_message_batch_bytes: int = 256 * 1024 * 1024
    #: Anthropic keeps a Message Batch's results this long after its creation (29 days), then
    #: archives them: `archived_at` is set and the results answer 404. Lower it in tests.
    message_results_seconds: float = 29 * 24 * 3600
    #: An unknown `input_file_id`: "reject" (400 at create) or "fail" (a failed batch).
    unknown_input_file: str = "reject"

    #: The synchronous routes answer a JSON-mode request with text that is not JSON.
    sync_invalid_json: bool = False

    #: Length of the deterministic embedding vectors (unless a request sends `dimensions`).
    embedding_dimensions: int = 8
    #: Mixed into every deterministic choice (shuffles, failures, ids of requests).
    seed: int = 0

    #: Injected faults, in order (see FAULT_KINDS); mappings are turned into FaultRule.
    faults: Sequence[FaultRule | Mapping[str, Any]] = ()
    #: Log each request on stderr.
    verbose: bool = False

    def __post_init__(self) -> None:
        # Accept lists and mappings (JSON, keyword arguments) but keep immutable, checked values.
        faults = tuple(FaultRule.from_value(f) for f in self.faults)
        object.__setattr__(self, "faults", faults)
        rules = tuple(dict(r) for r in self.scenario_rules)
        object.__setattr__(self, "scenario_rules", rules)
        self.check()

    def check(self) -> None:
        """Raise ValueError unless every field holds a usable value."""
        _require_number("stage_seconds", self.stage_seconds, 0.0, 86_400.0)
        _require_int("polls_per_stage", self.polls_per_stage, minimum=1, optional=True)
        check_scenario(self.scenario)
        for rule in self.scenario_rules:
            if set(rule) != {"file_name_contains", "scenario"}:
                raise ValueError(
                    "a scenario rule has exactly the keys file_name_contains and scenario"
                )
            if not isinstance(rule["file_name_contains"], str):
                raise ValueError("file_name_contains must be a string")
            check_scenario(rule["scenario"])
        _require_number("failure_rate", self.failure_rate, 0.0, 1.0)
        _require_number("partial_fraction", self.partial_fraction, 0.0, 1.0)
        if not isinstance(self.fail_validation_code, str) or not self.fail_validation_code:
            raise ValueError("fail_validation_code must be a non-empty string")
        _require_int("token_limit_failures", self.token_limit_failures, minimum=0, optional=True)
        _require_int("slow_finalizing_stages", self.slow_finalizing_stages, minimum=0)
        _require_int("not_found_gets", self.not_found_gets, minimum=0)
        _require_int("zip_members", self.zip_members, minimum=1)
        _require_int("max_requests_per_batch", self.max_requests_per_batch, minimum=1)
        _require_int("max_batch_file_bytes", self.max_batch_file_bytes, minimum=1)
        _require_int("max_upload_bytes", self.max_upload_bytes, minimum=1)
        _require_int("max_message_batch_requests", self.max_message_batch_requests, minimum=1)
        _require_int("max_message_batch_bytes", self.max_message_batch_bytes, minimum=1)
        _require_number(
            "message_results_seconds", self.message_results_seconds, 0.0, 365 * 86_400.0
        )
        if self.unknown_input_file not in ("reject", "fail"):
            raise ValueError("unknown_input_file must be 'reject' or 'fail'")
        if not isinstance(self.sync_invalid_json, bool):
            raise ValueError(
                f"sync_invalid_json must be true or false, not {self.sync_invalid_json!r}"
            )
        _require_int("embedding_dimensions", self.embedding_dimensions, minimum=1)
        _require_int("seed", self.seed, minimum=-(2**63))
        _require_int("port", self.port, minimum=0)
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise ValueError("api_key must be a string")

    def fault_rules(self) -> tuple[FaultRule, ...]:
        """The faults, each a checked FaultRule (as `__post_init__` left them)."""
        return tuple(f for f in self.faults if isinstance(f, FaultRule))

    def with_changes(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """A copy with `changes` applied; ValueError for unknown, fixed or invalid fields."""
        check_changes(changes)
        return dataclasses.replace(self, **dict(changes))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EmulatorConfig:
        """A config from a mapping such as JSON gives; ValueError for unknown or invalid fields."""
        return _build(cls, values, "config")

    def public(self) -> dict[str, Any]:
        """The config as JSON-ready values (the API key masked)."""
        values = dataclasses.asdict(self)
        values["state_dir"] = None if self.state_dir is None else str(self.state_dir)
        values["api_key"] = None if self.api_key is None else "***"
        values["scenario_rules"] = [dict(r) for r in self.scenario_rules]
        values["faults"] = [dataclasses.asdict(f) for f in self.fault_rules()]
        return values


def parse_scenario_rule(text: str) -> dict[str, str]:
    """A scenario rule from `TEXT=SCENARIO` (the CLI's spelling); ValueError when invalid."""
    contains, equals, scenario = text.rpartition("=")
    if not equals or not contains:
        raise ValueError(f"a scenario rule is TEXT=SCENARIO, not {text!r}")
    return {"file_name_contains": contains, "scenario": check_scenario(scenario)}


def parse_fault(text: str) -> FaultRule:
    """A fault rule from its JSON (the CLI's spelling); ValueError when invalid."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"a fault is a JSON object, not {text!r}") from None
    return FaultRule.from_value(value)


def check_scenario(name: object) -> str:
    """Return `name` if it names a scenario; ValueError otherwise."""
    if not isinstance(name, str) or name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r} (one of {', '.join(SCENARIOS)})")
    return name


def check_changes(changes: Mapping[str, Any]) -> None:
    """Raise ValueError for a change to an unknown or startup-only field."""
    known = {f.name for f in dataclasses.fields(EmulatorConfig)}
    for name in changes:
        if name not in known:
            raise ValueError(f"unknown setting {name!r}")
        if name in STARTUP_ONLY:
            raise ValueError(f"{name} is fixed once the emulator runs")


def _build(cls: Any, values: Mapping[str, Any], what: str) -> Any:
    if not isinstance(values, Mapping):
        raise ValueError(f"a {what} must be an object")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in values if k not in known)
    if unknown:
        raise ValueError(f"unknown {what} field(s): {', '.join(unknown)}")
    try:
        return cls(**dict(values))
    except TypeError as error:
        raise ValueError(f"invalid {what}: {error}") from None


def _require_int(name: str, value: object, *, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")


def _require_number(name: str, value: object, low: float, high: float) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not low <= value <= high  # also false for NaN
    ):
        raise ValueError(f"{name} must be a number from {low} to {high}, not {value!r}")
