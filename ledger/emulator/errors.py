"""API errors in the OpenAI wire shape: `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer: raised anywhere below a route, written by the server as JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body the API sends for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 `invalid_request_error`."""
    return ApiError(400, message, param=param, code=code)


def missing_parameter(name: str) -> ApiError:
    """A 400 for a required parameter that was not sent, worded as the API words it."""
    return bad_request(
        f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
    )


def invalid_value(name: str, value: object, supported: list[str] | None = None) -> ApiError:
    """A 400 for a parameter whose value is not one the API accepts."""
    message = f"Invalid value: {_quote(value)}."
    if supported:
        message += f" Supported values are: {_enumerate(supported)}."
    return bad_request(message, param=name, code="invalid_value")


def invalid_type(name: str, expected: str, value: object) -> ApiError:
    """A 400 for a parameter of the wrong JSON type."""
    return bad_request(
        f"Invalid type for '{name}': expected {expected}, but got {json_type(value)} instead.",
        param=name,
        code="invalid_type",
    )


def not_found(message: str, *, param: str | None = None) -> ApiError:
    """A 404 `invalid_request_error`."""
    return ApiError(404, message, param=param)


def json_type(value: object) -> str:
    """How the API names a JSON value's type in its messages ("a string", "an array", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _quote(value: object) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _enumerate(values: list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]
