"""Ready Batch API lines: checked, then passed through byte for byte."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.build.body_hash import canonical_body
from ledger.build.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, ENDPOINTS, MODERATIONS
from ledger.build.row_checks import BatchRequest, RowProblem, check_custom_id

#: Fields of a ready Batch API line.
READY_FIELDS = ("custom_id", "method", "url", "body")


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
        request = BatchRequest(line_number, custom_id, model, raw, body, inputs, cap)
        # Passed through as written: its hash is taken over its canonical form.
        request.canonical = canonical_body(url, body)
        return request

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
        if self.endpoint in (EMBEDDINGS, MODERATIONS):
            given = body.get("input")
            if given is None or given == "" or given == []:
                raise RowProblem("missing", "body.input")
            nested = isinstance(given, list) and not all(isinstance(x, int) for x in given)
            return (len(given) if nested else 1), None
        if self.endpoint == CHAT:
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                raise RowProblem("missing (a non-empty list)", "body.messages")
            cap = body.get("max_completion_tokens", body.get("max_tokens"))
        elif self.endpoint == COMPLETIONS:
            if body.get("prompt") is None:
                raise RowProblem("missing", "body.prompt")
            cap = body.get("max_tokens")
        else:
            if body.get("input") is None and body.get("prompt") is None:
                raise RowProblem("missing", "body.input")
            cap = body.get("max_output_tokens")
        return 1, cap if isinstance(cap, int) and not isinstance(cap, bool) else None
