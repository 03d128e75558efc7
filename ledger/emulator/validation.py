"""The API's input rules: what `POST /v1/files` and `POST /v1/batches` refuse at once (400), and
what fails a batch when it leaves `validating` (per-line `errors` with the real codes).

Codes and messages follow what the real service answers where it is documented or observed
(`invalid_json_line`, `missing_required_parameter`, `invalid_url`, `duplicate_custom_id`,
`streaming_unsupported`, `invalid_request`); `mismatched_model`, `too_many_requests`,
`file_too_large` and `empty_file` are the emulator's names for rules whose real codes are not
published (docs/emulator.md lists them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.emulator.answers import ENDPOINTS
from ledger.emulator.errors import (
    ApiError,
    bad_request,
    invalid_type,
    invalid_value,
    missing_parameter,
)

#: Purposes a client may upload with.
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
#: The only completion window there is.
COMPLETION_WINDOWS = ("24h",)
#: Limits on `expires_after.seconds` and `output_expires_after.seconds`.
MIN_EXPIRY_SECONDS = 3600
MAX_EXPIRY_SECONDS = 30 * 24 * 3600
#: Batch metadata limits.
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512

_CREATE_FIELDS = (
    "input_file_id",
    "endpoint",
    "completion_window",
    "metadata",
    "output_expires_after",
)
_ENDPOINT_NAMES = {
    "/v1/responses": "Responses",
    "/v1/chat/completions": "Chat Completions",
    "/v1/embeddings": "Embeddings",
    "/v1/completions": "Completions",
    "/v1/moderations": "Moderations",
}
#: Body fields an endpoint cannot do without, and how the API names them in its message.
_REQUIRED_BODY = {
    "/v1/chat/completions": ("messages", "Messages"),
    "/v1/embeddings": ("input", "Input"),
    "/v1/moderations": ("input", "Input"),
    "/v1/completions": ("prompt", "Prompt"),
}


@dataclass(frozen=True)
class BatchParams:
    """A batch creation request that passed the create-time rules."""

    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    output_expires_after: dict[str, Any] | None


@dataclass(frozen=True)
class InputRequest:
    """One valid line of a batch input file."""

    line: int
    custom_id: str
    body: dict[str, Any]


def check_batch_params(body: Any) -> BatchParams:
    """Apply the create-time rules to a `POST /v1/batches` body; ApiError (400) on the first."""
    if not isinstance(body, dict):
        raise invalid_type("body", "an object", body)
    for name in body:
        if name not in _CREATE_FIELDS:
            raise bad_request(
                f"Unknown parameter: '{name}'.", param=str(name), code="unknown_parameter"
            )
    for name in ("input_file_id", "endpoint", "completion_window"):
        if body.get(name) is None:
            raise missing_parameter(name)
        if not isinstance(body[name], str):
            raise invalid_type(name, "a string", body[name])
    if body["endpoint"] not in ENDPOINTS:
        raise invalid_value("endpoint", body["endpoint"], list(ENDPOINTS))
    if body["completion_window"] not in COMPLETION_WINDOWS:
        raise invalid_value("completion_window", body["completion_window"], ["24h"])
    return BatchParams(
        input_file_id=body["input_file_id"],
        endpoint=body["endpoint"],
        completion_window=body["completion_window"],
        metadata=check_metadata(body.get("metadata")),
        output_expires_after=check_expiry("output_expires_after", body.get("output_expires_after")),
    )


def check_metadata(metadata: Any) -> dict[str, str] | None:
    """Metadata as the API allows it: up to 16 string pairs, keys <= 64, values <= 512 chars."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise invalid_type("metadata", "an object", metadata)
    if len(metadata) > MAX_METADATA_PAIRS:
        raise bad_request(
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"{MAX_METADATA_PAIRS} properties, but got an object with {len(metadata)} "
            "properties instead.",
            param="metadata",
            code="object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY:
            raise bad_request(
                f"Invalid 'metadata': string too long. Expected a string with maximum length "
                f"{MAX_METADATA_KEY}, but got a string with length {len(key)} instead.",
                param="metadata",
                code="string_above_max_length",
            )
        if not isinstance(value, str):
            raise invalid_type(f"metadata.{key}", "a string", value)
        if len(value) > MAX_METADATA_VALUE:
            raise bad_request(
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum "
                f"length {MAX_METADATA_VALUE}, but got a string with length {len(value)} instead.",
                param=f"metadata.{key}",
                code="string_above_max_length",
            )
    return dict(metadata)


def check_expiry(name: str, value: Any) -> dict[str, Any] | None:
    """An `expires_after`-style policy: anchor `created_at`, seconds from 3600 to 2592000."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise invalid_type(name, "an object", value)
    anchor, seconds = value.get("anchor"), value.get("seconds")
    if anchor is None:
        raise missing_parameter(f"{name}.anchor")
    if anchor != "created_at":
        raise invalid_value(f"{name}.anchor", anchor, ["created_at"])
    if seconds is None:
        raise missing_parameter(f"{name}.seconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise invalid_type(f"{name}.seconds", "an integer", seconds)
    if not MIN_EXPIRY_SECONDS <= seconds <= MAX_EXPIRY_SECONDS:
        raise bad_request(
            f"Invalid '{name}.seconds': expected a value between {MIN_EXPIRY_SECONDS} and "
            f"{MAX_EXPIRY_SECONDS}, but got {seconds} instead.",
            param=f"{name}.seconds",
            code="invalid_value",
        )
    extra = sorted(set(value) - {"anchor", "seconds"})
    if extra:
        raise bad_request(
            f"Unknown parameter: '{name}.{extra[0]}'.",
            param=f"{name}.{extra[0]}",
            code="unknown_parameter",
        )
    return {"anchor": anchor, "seconds": seconds}


def check_upload(filename: str, purpose: str, content: bytes, max_bytes: int) -> None:
    """The rules `POST /v1/files` applies to a file before storing it; ApiError (400)."""
    if purpose not in UPLOAD_PURPOSES:
        raise invalid_value("purpose", purpose, list(UPLOAD_PURPOSES))
    if len(content) > max_bytes:
        raise bad_request(
            f"File is too large: {len(content)} bytes, the limit is {max_bytes} bytes.",
            param="file",
        )
    if purpose == "batch" and not (filename.endswith(".jsonl") and _first_line_is_json(content)):
        raise bad_request("Invalid file format for Batch API. Must be .jsonl", param="file")


def check_input_file(
    content: bytes,
    endpoint: str,
    *,
    max_requests: int,
    max_bytes: int,
    line_url: str | None = "",
) -> tuple[list[InputRequest], list[dict[str, Any]]]:
    """Validate a batch input file: its requests, and the errors (empty when it is valid).
    `line_url` is the `url` each line names: "" the endpoint itself; None for a host whose lines
    are `{custom_id, body}` alone (hosts.py)."""
    if len(content) > max_bytes:
        return [], [
            _error(
                "file_too_large",
                f"The batch input file is larger than the {max_bytes} byte limit.",
            )
        ]
    lines = [(n, raw) for n, raw in enumerate(content.split(b"\n"), start=1) if raw.strip()]
    if not lines:
        return [], [_error("empty_file", "The batch input file is empty.")]
    if len(lines) > max_requests:
        return [], [
            _error(
                "too_many_requests",
                f"The batch input file has {len(lines)} requests; a batch may hold at most "
                f"{max_requests}.",
            )
        ]
    requests: list[InputRequest] = []
    errors: list[dict[str, Any]] = []
    seen_ids: set[str] = set()
    model: str | None = None
    for number, raw in lines:
        problem = _check_line(raw, endpoint, endpoint if line_url == "" else line_url)
        if isinstance(problem, dict):
            errors.append({**problem, "line": number})
            continue
        custom_id, body = problem
        if custom_id in seen_ids:
            errors.append(
                _error(
                    "duplicate_custom_id",
                    "The custom_id for this request is a duplicate of another request. The "
                    "custom_id parameter must be unique for each request in a batch.",
                    param="custom_id",
                    line=number,
                )
            )
            continue
        seen_ids.add(custom_id)
        if model is None:
            model = body["model"]
        elif body["model"] != model:
            errors.append(
                _error(
                    "mismatched_model",
                    f"The provided model '{body['model']}' does not match the model '{model}' "
                    "of the other requests. A batch must use a single model.",
                    param="body.model",
                    line=number,
                )
            )
            continue
        requests.append(InputRequest(line=number, custom_id=custom_id, body=body))
    return requests, errors


def _check_line(
    raw: bytes, endpoint: str, line_url: str | None
) -> dict[str, Any] | tuple[str, dict[str, Any]]:
    """An error (without its line) or the line's custom_id and body."""
    try:
        item = json.loads(raw)
    except (ValueError, RecursionError):  # also UnicodeDecodeError; RecursionError: deep nesting
        return _error("invalid_json_line", "This line is not parseable as valid JSON.")
    if not isinstance(item, dict):
        return _error("invalid_request", "Each line must be a JSON object.")
    for name in ("custom_id", "method", "url", "body"):
        if name not in item and (line_url is not None or name in ("custom_id", "body")):
            return _error(
                "missing_required_parameter",
                f"Missing required parameter: '{name}'.",
                param=name,
            )
    custom_id, body = item["custom_id"], item["body"]
    if not isinstance(custom_id, str) or not custom_id:
        return _error(
            "invalid_request", "The custom_id must be a non-empty string.", param="custom_id"
        )
    if line_url is None:
        pass  # a body-only host: no method or url to check
    elif item["method"] != "POST":
        return _error(
            "invalid_request",
            f"Invalid value for 'method': {item['method']!r}. Only 'POST' is supported.",
            param="method",
        )
    elif item["url"] != line_url:
        return _error(
            "invalid_url",
            "The URL provided for this request does not match the batch endpoint.",
            param="url",
        )
    if not isinstance(body, dict):
        return _error("invalid_request", "The body must be a JSON object.", param="body")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return _error("invalid_request", "Model parameter is required.", param="body.model")
    if body.get("stream"):
        return _error(
            "streaming_unsupported",
            f"{_ENDPOINT_NAMES[endpoint]}: Streaming is not supported in the Batch API.",
            param="body.stream",
        )
    required = _REQUIRED_BODY.get(endpoint)
    if required is not None and body.get(required[0]) is None:
        name, label = required
        return _error("invalid_request", f"{label} parameter is required.", param=f"body.{name}")
    return custom_id, body


def _error(
    code: str, message: str, *, param: str | None = None, line: int | None = None
) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def _first_line_is_json(content: bytes) -> bool:
    start = 0
    while start < len(content):
        end = content.find(b"\n", start)
        end = len(content) if end < 0 else end
        raw = content[start:end]
        if raw.strip():
            try:
                return isinstance(json.loads(raw), dict)
            except (ValueError, RecursionError):
                return False
        start = end + 1
    return False


def api_error_for_file(file_id: str) -> ApiError:
    """The 400 for a batch whose input file does not exist."""
    return bad_request(
        f"Cannot find file {file_id}, or your organization does not have access to it.",
        param="input_file_id",
    )
