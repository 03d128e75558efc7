"""Batch API request lines: from a simple row (prompt, messages or input) or a ready line.

A simple row becomes a body in the endpoint's own parameter names (`max_output_tokens` for
responses, `max_completion_tokens` for chat, and so on). A ready line is checked and passed through
byte for byte (`ledger.build.ready_lines`). Each check failure is a `RowProblem` naming the field
(`ledger.build.row_checks`, with `BatchRequest`). The endpoint names are `ledger.build.endpoints`;
the options every row shares are `ledger.build.body_options`.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from ledger.build.endpoints import COMPLETIONS, MODERATIONS
from ledger.build.endpoints import EMBEDDINGS as EMBEDDINGS
from ledger.build.endpoints import ENDPOINTS as ENDPOINTS
from ledger.build.endpoints import RESPONSES as RESPONSES
from ledger.build.endpoints import resolve_endpoint as resolve_endpoint
from ledger.build.ready_lines import READY_FIELDS as READY_FIELDS
from ledger.build.ready_lines import ReadyLineChecker as ReadyLineChecker
from ledger.build.row_checks import CUSTOM_ID as CUSTOM_ID
from ledger.build.row_checks import CUSTOM_ID_MAX as CUSTOM_ID_MAX
from ledger.build.row_checks import EMBEDDING_INPUTS_PER_REQUEST as EMBEDDING_INPUTS_PER_REQUEST
from ledger.build.row_checks import BatchRequest as BatchRequest
from ledger.build.row_checks import RowProblem as RowProblem
from ledger.build.row_checks import check_custom_id as check_custom_id
from ledger.build.row_checks import (
    check_messages,
    check_metadata,
    check_responses_input,
    check_text,
    optional_int,
    optional_temperature,
)
from ledger.build.row_checks import generated_custom_id as generated_custom_id

#: Row fields that hold the request's text; a row has exactly one.
TEXT_FIELDS = ("prompt", "messages", "input")


#: Stand-ins for a row's custom_id and text, cut out of a line to make a model's template.
_ID_MARK, _TEXT_MARK = "\x00custom_id\x00", "\x00text\x00"


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


class RowBuilder:
    """Builds the request of each simple row, with the options every row shares (the build's
    hot loop over many rows, and the targets they go to, is `ledger.build.targets.RowMaker`)."""

    def __init__(self, options: BodyOptions) -> None:
        options.check()
        self.options = options
        self.endpoint = options.endpoint
        self._chat = options.endpoint == CHAT
        self._system = [{"role": "system", "content": options.system}] if options.system else []
        # What every body gets after model and text, unless the row overrides it: built once.
        self._shared = self._parameters(options.max_output_tokens, options.temperature, None)
        #: The output bound of a body with only the shared parameters.
        self.shared_cap: int | None = self._shared.get(
            "max_completion_tokens" if self._chat else "max_output_tokens"
        )
        # Bodies with an output format are checked against their text (JSON mode needs the
        # word "json" in it), so only bodies without one are `shared`.
        self.plain = text_format_for(options) is None
        #: Whether a prompt row's body is `prompt_body` (chat and responses; the other
        #: endpoints' rows take the general path).
        self.templated = options.endpoint in (CHAT, RESPONSES)

    def prompt_body(self, model: str, text: str) -> dict[str, Any]:
        """The body of a prompt row with the shared parameters."""
        if self._chat:
            return {"model": model, "messages": [*self._system, _user(text)], **self._shared}
        body = {"model": model, "input": text}
        if self.options.system is not None:
            body["instructions"] = self.options.system
        body.update(self._shared)
        return body

    def template(self, model: str) -> tuple[bytes, bytes, bytes] | None:
        """A prompt row's line for `model`, cut around its custom_id and its text: the line of
        a row is then `head + dumps(custom_id) + middle + dumps(text) + tail`, the same bytes as
        its dict would dump to (orjson writes a string alike wherever it stands). None if the
        stand-ins cannot be found once each (a system prompt holding one)."""
        body = self.prompt_body(model, _TEXT_MARK)
        line = orjson.dumps(
            {"custom_id": _ID_MARK, "method": "POST", "url": self.endpoint, "body": body}
        )
        head, _, rest = line.partition(orjson.dumps(_ID_MARK))
        middle, _, tail = rest.partition(orjson.dumps(_TEXT_MARK))
        if line.count(orjson.dumps(_ID_MARK)) != 1 or line.count(orjson.dumps(_TEXT_MARK)) != 1:
            return None
        return head, middle, tail

    def request(self, row: Mapping[str, Any], line_number: int) -> BatchRequest:
        """The request for one row, any shape (raises `RowProblem`)."""
        custom_id = self._custom_id(row, line_number)
        model = row.get("model")
        if model is None:
            model = self.options.model
            if model is None:
                raise RowProblem("missing (give --model or a model per row)", "model")
        elif type(model) is not str or not model:
            raise RowProblem("must be a non-empty string", "model")
        if self.endpoint in (EMBEDDINGS, MODERATIONS):
            body = self._embeddings_body(row, model)
            given = body["input"]
            inputs = len(given) if isinstance(given, list) else 1
            cap = None
        elif self.endpoint == COMPLETIONS:
            body, inputs = self._completion_body(row, model), 1
            cap = body.get("max_tokens")
        else:
            body = self._generation_body(row, model)
            cap = body.get("max_completion_tokens" if self._chat else "max_output_tokens")
            inputs = 1
        line = orjson.dumps(
            {"custom_id": custom_id, "method": "POST", "url": self.endpoint, "body": body}
        )
        # Embeddings and moderations bodies are checked by model alone; chat and responses
        # bodies when they take no row's own parameters (and carry no output format).
        shared = self.endpoint in (EMBEDDINGS, MODERATIONS) or (
            self.templated
            and self.plain
            and row.get("max_output_tokens") is None
            and row.get("temperature") is None
            and row.get("metadata") is None
        )
        return BatchRequest(line_number, custom_id, model, line, body, inputs, cap, shared=shared)

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

    def _completion_body(self, row: Mapping[str, Any], model: str) -> dict[str, Any]:
        """A legacy `/v1/completions` body: a prompt, `max_tokens` and temperature."""
        field, value = self._text(row)
        if field != "prompt":
            raise RowProblem("the completions endpoint takes prompt", field)
        check_text(value, field)
        o = self.options
        cap = optional_int(row.get("max_output_tokens"), "max_output_tokens", o.max_output_tokens)
        temperature = optional_temperature(row.get("temperature"), o.temperature)
        given = {"max_tokens": cap, "temperature": temperature}
        return {"model": model, "prompt": value} | {k: v for k, v in given.items() if v is not None}

    def _embeddings_body(self, row: Mapping[str, Any], model: str) -> dict[str, Any]:
        name = self.endpoint.rsplit("/", 1)[-1]  # embeddings or moderations: an input alone
        for field in ("max_output_tokens", "temperature", "metadata"):
            if row.get(field) is not None:
                raise RowProblem(f"the {name} endpoint has no such parameter", field)
        field, value = self._text(row)
        if field == "messages":
            raise RowProblem(f"the {name} endpoint takes input (or prompt)", field)
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
