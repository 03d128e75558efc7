"""Batch API request lines: from a simple row (prompt, messages or input) or a ready line.

A simple row becomes a body in the endpoint's own parameter names (`max_output_tokens` for
responses, `max_completion_tokens` for chat, and so on). A ready line is checked and passed through
byte for byte. Each check failure is a `RowProblem` naming the field. The endpoint names are
`ledger.build.endpoints`; the options every row shares are `ledger.build.body_options`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

# The endpoints and the body options are defined beside this module; importers of this module
# find them here too (the `as` form re-exports them).
from ledger.build.body_options import BodyOptions as BodyOptions
from ledger.build.body_options import JsonSchemaFormat as JsonSchemaFormat
from ledger.build.body_options import read_json_schema as read_json_schema
from ledger.build.body_options import read_system_option as read_system_option
from ledger.build.body_options import text_format_for
from ledger.build.endpoints import CHAT as CHAT
from ledger.build.endpoints import EMBEDDINGS as EMBEDDINGS
from ledger.build.endpoints import ENDPOINTS as ENDPOINTS
from ledger.build.endpoints import RESPONSES as RESPONSES
from ledger.build.endpoints import resolve_endpoint as resolve_endpoint
from ledger.errors import InputError

#: What the Batch API accepts as a custom_id here (the provider also needs uniqueness per file).
CUSTOM_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
CUSTOM_ID_MAX = 64

#: Fields of a ready Batch API line.
READY_FIELDS = ("custom_id", "method", "url", "body")

#: Row fields that hold the request's text; a row has exactly one.
TEXT_FIELDS = ("prompt", "messages", "input")

#: Limits of the API: metadata pairs and sizes, inputs in one embeddings request.
METADATA_MAX_PAIRS, METADATA_KEY_MAX, METADATA_VALUE_MAX = 16, 64, 512
EMBEDDING_INPUTS_PER_REQUEST = 2048


class RowProblem(InputError):
    """One bad input row: which field (if any) and what is wrong with it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def describe(self, source: str, line_number: int) -> str:
        """`input.jsonl:17: field "custom_id": duplicate of line 3`."""
        where = f'field "{self.field}": ' if self.field else ""
        return f"{source}:{line_number}: {where}{self.message}"


@dataclass(slots=True)
class BatchRequest:
    """One request as it goes into a shard file."""

    line_number: int
    custom_id: str
    model: str
    #: The Batch API input line, without its newline.
    line: bytes
    body: dict[str, Any]
    #: What the request counts toward the batch's input cap (embeddings inputs; else 1).
    inputs: int
    #: The request's own bound on output tokens, if it has one.
    max_output_tokens: int | None
    est_tokens: int | None = None
    #: The batch provider it goes to (a run may fan out to several; `ledger.build.targets`).
    provider: str = ""


def generated_custom_id(line_number: int) -> str:
    """The custom_id of a row without one: `row-000017` for line 17."""
    return f"row-{line_number:06d}"


def check_custom_id(value: Any, field: str = "custom_id") -> str:
    """The custom_id as a string, or a problem if it is not one the Batch API takes."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RowProblem("must be a string", field)
    if not CUSTOM_ID.fullmatch(value):
        if len(value) > CUSTOM_ID_MAX:
            raise RowProblem(f"{len(value)} characters, more than {CUSTOM_ID_MAX}", field)
        if not value:
            raise RowProblem("empty", field)
        bad = next(c for c in value if not CUSTOM_ID.fullmatch(c))
        raise RowProblem(f"{bad!r} is not allowed (only A-Z a-z 0-9 _ . : -)", field)
    return value


class RowBuilder:
    """Builds the request of each simple row, with the options every row shares."""

    def __init__(self, options: BodyOptions) -> None:
        options.check()
        self.options = options
        self.endpoint = options.endpoint
        self._chat = options.endpoint == CHAT
        self._system = [{"role": "system", "content": options.system}] if options.system else []
        # What every body gets after model and text, unless the row overrides it: built once.
        self._shared = self._parameters(options.max_output_tokens, options.temperature, None)

    def request(self, row: Mapping[str, Any], line_number: int) -> BatchRequest:
        """The request for one row (raises `RowProblem`)."""
        custom_id = self._custom_id(row, line_number)
        model = row.get("model")
        if model is None:
            model = self.options.model
            if model is None:
                raise RowProblem("missing (give --model or a model per row)", "model")
        elif type(model) is not str or not model:
            raise RowProblem("must be a non-empty string", "model")
        if self.endpoint == EMBEDDINGS:
            body = self._embeddings_body(row, model)
            given = body["input"]
            inputs = len(given) if isinstance(given, list) else 1
            cap = None
        else:
            body = self._generation_body(row, model)
            cap = body.get("max_completion_tokens" if self._chat else "max_output_tokens")
            inputs = 1
        line = orjson.dumps(
            {"custom_id": custom_id, "method": "POST", "url": self.endpoint, "body": body}
        )
        return BatchRequest(line_number, custom_id, model, line, body, inputs, cap)

    def _custom_id(self, row: Mapping[str, Any], line_number: int) -> str:
        field = "custom_id"
        value = row.get(field)
        if value is None or value == "":
            field = "id"
            value = row.get(field)
            if value is None or value == "":
                return generated_custom_id(line_number)
        if type(value) is str and CUSTOM_ID.fullmatch(value):
            return value
        return check_custom_id(value, field)

    def _text(self, row: Mapping[str, Any]) -> tuple[str, Any]:
        present = [(f, row[f]) for f in TEXT_FIELDS if row.get(f) is not None]
        if len(present) == 1:
            return present[0]
        if not present:
            raise RowProblem("missing (each row needs prompt, messages or input)", "prompt")
        raise RowProblem(
            f"give one of prompt, messages, input, not {present[1][0]} too", present[0][0]
        )

    def _generation_body(self, row: Mapping[str, Any], model: str) -> dict[str, Any]:
        field, value = self._text(row)
        chat = self._chat
        if field == "prompt":
            _check_text(value, field)
        elif field == "messages":
            _check_messages(value, chat)
        elif chat:
            raise RowProblem("the chat endpoint takes prompt or messages", field)
        else:
            _check_responses_input(value)
        body: dict[str, Any]
        if chat:
            messages = [{"role": "user", "content": value}] if field == "prompt" else value
            body = {"model": model, "messages": self._system + messages}
        else:
            body = {"model": model, "input": value}
            if self.options.system is not None:
                body["instructions"] = self.options.system
        cap, temperature, metadata = (
            row.get("max_output_tokens"),
            row.get("temperature"),
            row.get("metadata"),
        )
        if cap is None and temperature is None and metadata is None:
            body.update(self._shared)
        else:
            body.update(
                self._parameters(
                    _optional_int(cap, "max_output_tokens", self.options.max_output_tokens),
                    _optional_temperature(temperature, self.options.temperature),
                    None if metadata is None else _check_metadata(metadata),
                )
            )
        return body

    def _parameters(
        self, cap: int | None, temperature: float | None, metadata: dict[str, str] | None
    ) -> dict[str, Any]:
        """Output limit, temperature, output format and metadata in the endpoint's own names."""
        chat = self._chat
        parameters: dict[str, Any] = {}
        if cap is not None:
            parameters["max_completion_tokens" if chat else "max_output_tokens"] = cap
        if temperature is not None:
            parameters["temperature"] = temperature
        text_format = text_format_for(self.options)
        if text_format is not None:
            if chat:
                parameters["response_format"] = text_format["chat"]
            else:
                parameters["text"] = {"format": text_format["responses"]}
        if metadata is not None:
            parameters["metadata"] = metadata
        return parameters

    def _embeddings_body(self, row: Mapping[str, Any], model: str) -> dict[str, Any]:
        for field in ("max_output_tokens", "temperature", "metadata"):
            if row.get(field) is not None:
                raise RowProblem("the embeddings endpoint has no such parameter", field)
        field, value = self._text(row)
        if field == "messages":
            raise RowProblem("the embeddings endpoint takes input (or prompt)", field)
        if isinstance(value, list):
            if not value or len(value) > EMBEDDING_INPUTS_PER_REQUEST:
                raise RowProblem(
                    f"a list of 1 to {EMBEDDING_INPUTS_PER_REQUEST} strings is needed", field
                )
            for item in value:
                _check_text(item, field)
        else:
            _check_text(value, field)
        return {"model": model, "input": value}


def _check_text(value: Any, field: str) -> None:
    if type(value) is not str:
        raise RowProblem("must be a string", field)
    if not value or value.isspace():
        raise RowProblem("empty", field)


#: Message roles each endpoint takes, and the fields of a responses input message.
CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
RESPONSES_ROLES = frozenset({"system", "developer", "user", "assistant"})
RESPONSES_MESSAGE_FIELDS = frozenset({"role", "content", "type"})


def _check_messages(value: Any, chat: bool) -> None:
    if not isinstance(value, list) or not value:
        raise RowProblem("must be a non-empty list of {role, content} objects", "messages")
    roles = CHAT_ROLES if chat else RESPONSES_ROLES
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise RowProblem("must be an object with role and content", where)
        role = message.get("role")
        if not isinstance(role, str):
            raise RowProblem("missing role", where)
        if role not in roles:
            raise RowProblem(f"role {role!r} is not one of {', '.join(sorted(roles))}", where)
        if not isinstance(message.get("content"), str | list):
            raise RowProblem("missing content (a string or a list of parts)", where)
        if not chat:
            for key in message:
                if key not in RESPONSES_MESSAGE_FIELDS:
                    raise RowProblem(
                        "the responses endpoint takes role and content (use --endpoint chat)",
                        f"{where}.{key}",
                    )


def _check_responses_input(value: Any) -> None:
    if isinstance(value, str):
        _check_text(value, "input")
    elif not isinstance(value, list) or not value:
        raise RowProblem("must be a string or a non-empty list of input items", "input")


def _optional_int(value: Any, field: str, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RowProblem("must be a whole number of at least 1", field)
    return value


def _optional_temperature(value: Any, default: float | None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
        raise RowProblem("must be a number between 0 and 2", "temperature")
    return value


def _check_metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise RowProblem("must be an object of strings", "metadata")
    if len(value) > METADATA_MAX_PAIRS:
        raise RowProblem(f"{len(value)} pairs, more than {METADATA_MAX_PAIRS}", "metadata")
    for key, item in value.items():
        if len(key) > METADATA_KEY_MAX:
            raise RowProblem(f"key {key[:20]!r}... longer than {METADATA_KEY_MAX}", "metadata")
        if not isinstance(item, str) or len(item) > METADATA_VALUE_MAX:
            raise RowProblem(
                f"value of {key!r} must be a string of at most {METADATA_VALUE_MAX} characters",
                "metadata",
            )
    return value


class ReadyLineChecker:
    """Checks ready Batch API lines: all for one endpoint and one model, none streaming."""

    def __init__(self, endpoint: str | None, model: str | None) -> None:
        #: Fixed by `--endpoint`, or by the first line's url.
        self.endpoint = endpoint
        #: Fixed by `--model`, or by the first line's body.model.
        self.model = model
        self._model_line: int | None = None

    def request(self, obj: Mapping[str, Any], raw: bytes, line_number: int) -> BatchRequest:
        """The request of one ready line, passed through unchanged (raises `RowProblem`)."""
        for field in READY_FIELDS:
            if field not in obj:
                raise RowProblem("missing (this is a Batch API input line)", field)
        for field in obj:
            if field not in READY_FIELDS:
                raise RowProblem("not a Batch API input field", field)
        custom_id = check_custom_id(obj["custom_id"])
        if obj["method"] != "POST":
            raise RowProblem('must be "POST"', "method")
        url = obj["url"]
        self._check_url(url)
        body = obj["body"]
        if not isinstance(body, dict):
            raise RowProblem("must be an object", "body")
        model = self._check_model(body.get("model"), line_number)
        if body.get("stream"):
            raise RowProblem("a batch request cannot stream", "body.stream")
        inputs, cap = self._check_body(body)
        return BatchRequest(line_number, custom_id, model, raw, body, inputs, cap)

    def _check_url(self, url: Any) -> None:
        if not isinstance(url, str) or url not in ENDPOINTS.values():
            known = ", ".join(ENDPOINTS.values())
            raise RowProblem(f"unknown endpoint {url!r} (known: {known})", "url")
        if self.endpoint is None:
            self.endpoint = url
        elif url != self.endpoint:
            raise RowProblem(f'"{url}" does not match the endpoint {self.endpoint}', "url")

    def _check_model(self, model: Any, line_number: int) -> str:
        if not isinstance(model, str) or not model:
            raise RowProblem("missing (a ready line names its model)", "body.model")
        if self.model is None:
            self.model, self._model_line = model, line_number
        elif model != self.model:
            first = f"line {self._model_line}" if self._model_line else "--model"
            raise RowProblem(
                f'"{model}" differs from "{self.model}" of {first} '
                "(a batch takes one model; split the file or use simple rows)",
                "body.model",
            )
        return model

    def _check_body(self, body: Mapping[str, Any]) -> tuple[int, int | None]:
        """Inputs counted toward the batch cap, and the output bound, of a checked body."""
        if self.endpoint == EMBEDDINGS:
            given = body.get("input")
            if given is None or given == "" or given == []:
                raise RowProblem("missing", "body.input")
            nested = isinstance(given, list) and not all(isinstance(x, int) for x in given)
            return (len(given) if nested else 1), None
        if self.endpoint == CHAT:
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                raise RowProblem("missing (a non-empty list)", "body.messages")
            cap = body.get("max_completion_tokens", body.get("max_tokens"))
        else:
            if body.get("input") is None and body.get("prompt") is None:
                raise RowProblem("missing", "body.input")
            cap = body.get("max_output_tokens")
        return 1, cap if isinstance(cap, int) and not isinstance(cap, bool) else None
