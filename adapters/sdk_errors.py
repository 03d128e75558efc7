"""One translation of SDK errors into the chat errors of `adapters.chat_types`, for both chat
clients (the `openai` and `anthropic` SDKs name their errors alike)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from adapters.base import scrub
from adapters.chat_types import ChatError, ProviderStatusError, ProviderUnreachable


@contextmanager
def sdk_errors(
    sdk: Any, *, api_key: str | None, where: str, base_error: type[Exception]
) -> Iterator[None]:
    """Turn one SDK's errors into the ledger's chat errors, with the key scrubbed.

    `sdk` is the `openai` or `anthropic` module (both name their errors alike); `base_error` is
    the SDK's root error class; `where` names the server for connection errors.
    """
    try:
        yield
    except sdk.APIStatusError as error:
        message = error_message(error.body, error.message)
        raise ProviderStatusError(error.status_code, scrub(message, api_key)) from None
    except sdk.APIConnectionError as error:
        cause = error.__cause__ or error
        raise ProviderUnreachable(scrub(f"cannot reach {where}: {cause}", api_key)) from None
    except base_error as error:
        raise ChatError(scrub(str(error), api_key)) from None


def error_message(body: object, fallback: str) -> str:
    """The `message` of an error body in OpenAI's or Anthropic's shape, else `fallback`."""
    if isinstance(body, Mapping):
        inner: Any = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return fallback
