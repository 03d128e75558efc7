"""Whether an answer is one worth scoring: cut short (`truncated`), stopped by a content filter or
refused (`filtered`), or not an instance of the JSON Schema its request declared (`invalid`).

The schema is the request's own: `--json-schema` (recorded in `runs.options`) is written into
every body of the run, and a ready line or a row may declare its own, so each body in the job's
input shard (in the artifact store) says what its answer must match, on any machine. A job's
schemas are compiled once each, by the hash of their canonical JSON (`SchemaBook`), so a run
with one schema compiles one validator, whatever its size.
"""

from __future__ import annotations

import hashlib
from array import array
from typing import TYPE_CHECKING, Any, TypeAlias

import orjson

from adapters.results import Answer

if TYPE_CHECKING:
    # jsonschema is imported where a schema is compiled or an answer checked: importing it
    # costs about 40 ms that `ledger status` and `--help` need not pay (bench/startup.py).
    from jsonschema.protocols import Validator

#: A request's answer was cut at its output token limit.
TRUNCATED = "truncated"
#: A request's answer was stopped by the provider's content filter, or refused.
FILTERED = "filtered"
#: A request's answer is not an instance of the JSON Schema the request declared.
INVALID = "invalid"

#: How long a validation error's message may be in a result and a `requests` row.
ERROR_CHARS = 300


class BrokenSchema:
    """A declared schema that is not a valid JSON Schema: every answer to it is `invalid`."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


#: What an answer is checked with: a compiled schema, or the reason the schema is broken.
SchemaCheck: TypeAlias = "Validator | BrokenSchema"


def declared_schema(body: Any) -> dict[str, Any] | None:
    """The JSON Schema a request body declares for its answer (chat `response_format` or a
    Responses `text.format` of type `json_schema`), or None."""
    if not isinstance(body, dict):
        return None
    given = body.get("response_format")
    if isinstance(given, dict) and given.get("type") == "json_schema":
        wrapper = given.get("json_schema")
        schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
        return schema if isinstance(schema, dict) else None
    text = body.get("text")
    given = text.get("format") if isinstance(text, dict) else None
    if isinstance(given, dict) and given.get("type") == "json_schema":
        schema = given.get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def compile_schema(schema: dict[str, Any]) -> Validator:
    """A validator for `schema` (its `$schema` dialect, else Draft 2020-12); raises
    `jsonschema.SchemaError` when the schema itself is not valid. No `$ref` is ever fetched."""
    from jsonschema import validators

    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


class SchemaBook:
    """The schema of each input request of a job, by position, each distinct one compiled once."""

    def __init__(self) -> None:
        self._ids: dict[bytes, int] = {}
        self._validators: list[SchemaCheck | None] = [None]
        self._of = array("I")  # position -> index in _validators (0: no schema)

    def add(self, body: Any) -> None:
        """Note the schema (or none) of the next input request."""
        schema = declared_schema(body)
        if schema is None:
            self._of.append(0)
            return
        canonical = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        key = hashlib.sha256(canonical).digest()
        found = self._ids.get(key)
        if found is None:
            from jsonschema import exceptions

            try:
                compiled: Validator | BrokenSchema = compile_schema(schema)
            except exceptions.SchemaError as error:
                compiled = BrokenSchema(_bounded(f"{_path(error.json_path)}: {error.message}"))
            found = self._ids[key] = len(self._validators)
            self._validators.append(compiled)
        self._of.append(found)

    def validator(self, position: int) -> SchemaCheck | None:
        """The validator of the request at `position`, None when it declared no schema."""
        if position >= len(self._of):
            return None
        return self._validators[self._of[position]]


def verdict(
    answer: Answer,
    parsed: Any,
    json_error: str | None,
    validator: SchemaCheck | None,
) -> tuple[str, dict[str, str | None]] | None:
    """The status and error of an answer that is not worth scoring, or None when it is."""
    if answer.finish_reason == "length":
        return TRUNCATED, {
            "code": "length",
            "message": "the answer was cut at the request's output token limit",
        }
    if answer.finish_reason == "content_filter" or answer.refusal is not None:
        code = "content_filter" if answer.finish_reason == "content_filter" else "refusal"
        message = answer.refusal or "the answer was stopped by the provider's content filter"
        return FILTERED, {"code": code, "message": _bounded(message)}
    if validator is None or (answer.text is None and answer.tool_calls):
        return None  # no schema, or the model called a tool instead of answering
    if isinstance(validator, BrokenSchema):
        return INVALID, {
            "code": "schema_invalid",
            "message": f"the request's schema is not a valid JSON Schema: {validator.problem}",
        }
    if json_error is not None or (parsed is None and answer.text is None):
        return INVALID, {
            "code": "invalid_json",
            "message": _bounded(f"not JSON: {json_error}" if json_error else "no answer"),
        }
    from jsonschema import exceptions  # a dict lookup once imported

    error = exceptions.best_match(validator.iter_errors(parsed))
    if error is None:
        return None
    return INVALID, {
        "code": "schema_violation",
        "message": _bounded(f"{_path(error.json_path)}: {error.message}"),
    }


def _path(json_path: str) -> str:
    return json_path or "$"


def _bounded(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"
