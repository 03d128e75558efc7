"""Batch API request lines: from a simple row (prompt, messages or input) or a ready line.

A simple row becomes a body in the endpoint's own parameter names (`max_output_tokens` for
responses, `max_completion_tokens` for chat, and so on). A ready line is checked and passed through
byte for byte. Each check failure is a `RowProblem` naming the field. The endpoint names are
`ledger.build.endpoints`; the options every row shares are `ledger.build.body_options`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
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
from ledger.build.row_checks import EMBEDDING_INPUTS_PER_REQUEST as EMBEDDING_INPUTS_PER_REQUEST
from ledger.build.row_checks import RowProblem as RowProblem
from ledger.build.row_checks import (
    check_messages,
    check_metadata,
    check_responses_input,
    check_text,
    optional_int,
    optional_temperature,
)

#: What the Batch API accepts as a custom_id here (the provider also needs uniqueness per file).
CUSTOM_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
CUSTOM_ID_MAX = 64

#: Fields of a ready Batch API line.
READY_FIELDS = ("custom_id", "method", "url", "body")

#: Row fields that hold the request's text; a row has exactly one.
TEXT_FIELDS = ("prompt", "messages", "input")


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
    #: True when the body is a simple row's text with only the parameters every row shares
    #: (no per-row cap, temperature or metadata, no output format): the model checks of such
    #: bodies depend on the model alone, so a build checks one per model.
    shared: bool = False


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _raise(problem: RowProblem, _line_number: int) -> None:
    raise problem


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
        self._shared_cap = self._shared.get(
            "max_completion_tokens" if self._chat else "max_output_tokens"
        )
        # Bodies with an output format are checked against their text (JSON mode needs the
        # word "json" in it), so only bodies without one are `shared`.
        self._plain = text_format_for(options) is None
        self._fast = options.endpoint in (CHAT, RESPONSES)

    def request(self, row: Mapping[str, Any], line_number: int) -> BatchRequest:
        """The request for one row (raises `RowProblem`)."""
        made = self.requests([(line_number, row, b"")], _raise)
        return made[0]

    def requests(
        self,
        records: Iterable[tuple[int, Any, bytes]],
        reject: Callable[[RowProblem, int], None],
    ) -> list[BatchRequest]:
        """The request of each record (line number, row or RowProblem, raw line) in order;
        `reject` hears each bad one.

        The commonest row, `{"id": ..., "prompt": "..."}` with the shared parameters, is built
        right here, with no call per row but orjson's (the build's hot loop: measured with
        bench/build.py); any other goes through `_request`, which builds it or says what is
        wrong. Both make the same bytes for the same row."""
        made: list[BatchRequest] = []
        append, dumps, fullmatch = made.append, orjson.dumps, CUSTOM_ID.fullmatch
        fast, chat, endpoint = self._fast, self._chat, self.endpoint
        default_model, instructions = self.options.model, self.options.system
        system, shared, cap, plain = self._system, self._shared, self._shared_cap, self._plain
        for line_number, row, _raw in records:
            if fast and type(row) is dict:
                get = row.get
                text = get("prompt")
                custom_id = get("custom_id")
                if custom_id is None or custom_id == "":
                    custom_id = get("id")
                    if custom_id is None or custom_id == "":
                        custom_id = generated_custom_id(line_number)
                model = get("model")
                if model is None:
                    model = default_model
                if (
                    type(text) is str
                    and text
                    and not text.isspace()
                    and type(custom_id) is str
                    and fullmatch(custom_id)
                    and type(model) is str
                    and model
                    and get("messages") is None
                    and get("input") is None
                    and get("max_output_tokens") is None
                    and get("temperature") is None
                    and get("metadata") is None
                ):
                    body: dict[str, Any]
                    if chat:
                        body = {"model": model, "messages": [*system, _user(text)], **shared}
                    else:
                        body = {"model": model, "input": text}
                        if instructions is not None:
                            body["instructions"] = instructions
                        body.update(shared)
                    line = dumps(
                        {"custom_id": custom_id, "method": "POST", "url": endpoint, "body": body}
                    )
                    append(
                        BatchRequest(line_number, custom_id, model, line, body, 1, cap, None, plain)
                    )
                    continue
            try:
                if isinstance(row, RowProblem):
                    raise row
                append(self._request(row, line_number))
            except RowProblem as problem:
                reject(problem, line_number)
        return made

    def _request(self, row: Mapping[str, Any], line_number: int) -> BatchRequest:
        """The request for one row, any shape (raises `RowProblem`)."""
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
        # Embeddings bodies are checked by model alone; others when they take no row's own
        # parameters (and carry no output format).
        shared = self.endpoint == EMBEDDINGS or (
            self._plain
            and row.get("max_output_tokens") is None
            and row.get("temperature") is None
            and row.get("metadata") is None
        )
        return BatchRequest(line_number, custom_id, model, line, body, inputs, cap, None, shared)

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
            check_text(value, field)
        elif field == "messages":
            check_messages(value, chat)
        elif chat:
            raise RowProblem("the chat endpoint takes prompt or messages", field)
        else:
            check_responses_input(value)
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
                    optional_int(cap, "max_output_tokens", self.options.max_output_tokens),
                    optional_temperature(temperature, self.options.temperature),
                    None if metadata is None else check_metadata(metadata),
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
                check_text(item, field)
        else:
            check_text(value, field)
        return {"model": model, "input": value}


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
