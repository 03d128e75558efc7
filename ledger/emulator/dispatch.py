"""From a whole request to its answer: the control plane under `/_emulator/` (no key needed),
else the route, the API key, and the fault book, which may refuse, delay, drop or cut the answer.
Every failure is raised as `ApiError`; `error_response` shapes it as the API's error JSON.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ledger.emulator import anthropic_routes, gemini_routes, hosts, mistral_routes
from ledger.emulator.config import (
    ANTHROPIC_ROUTE_NAMES,
    SYNC_ROUTE_NAMES,
    EmulatorConfig,
    FaultRule,
)
from ledger.emulator.errors import ApiError, bad_request
from ledger.emulator.routes import Request, Response, json_response, match_route
from ledger.emulator.sync_routes import match_sync_route

if TYPE_CHECKING:
    from ledger.emulator.server import Emulator

SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


@dataclass(frozen=True)
class Reply:
    """The answer to send, and how much of its body (a `truncate_download` fault) if not all."""

    response: Response
    #: Bytes of the body to send before closing the connection; None: the whole body.
    cut: int | None = None


class Dropped(Exception):
    """The request was processed, and its answer is to be dropped."""


def handle(emulator: Emulator, request: Request) -> Reply:
    """Answer one request read whole (raises `ApiError`, or `Dropped` for no answer at all)."""
    if request.path.startswith("/_emulator/"):
        return Reply(_control(emulator, request))
    if mistral_routes.owns(request.path):
        return _mistral(emulator, request)
    host, path = hosts.split(request.path)
    if host is not None:
        # A compatible host's prefix (`/together/v1/...`): OpenAI's routes, with its quirks.
        request = replace(request, path=path, host=host)
    anthropic = host is None and anthropic_routes.owns(request.path)
    gemini = host is None and gemini_routes.owns(request.path)
    if gemini:
        matched = gemini_routes.match_route(request.method, request.path)
    elif anthropic:
        matched = anthropic_routes.match_route(request.method, request.path)
    else:
        matched = match_route(request.method, request.path)
    # The synchronous routes (chat, responses, embeddings, Anthropic messages) come last.
    matched = matched or match_sync_route(request.method, request.path)
    if matched is None:
        raise ApiError(404, f"Invalid URL ({request.method} {request.path})")
    route, object_id = matched
    emulator.count_request(route)
    if gemini:
        gemini_routes.authenticate(emulator.config, request)
        return _serve(
            emulator,
            route,
            lambda: emulator.gemini_api.handle(route, object_id, request),
            request,
            anthropic=False,
        )
    if anthropic:
        anthropic_routes.authenticate(emulator.config, request.headers)
    else:
        _authenticate(emulator.config, request.headers.get("authorization"))
    if route in SYNC_ROUTE_NAMES:
        return _serve(
            emulator,
            route,
            lambda: emulator.sync_api.handle(route, request),
            request,
            anthropic=anthropic,
        )
    api = emulator.message_batch_api if anthropic else emulator.api
    return _serve(
        emulator, route, lambda: api.handle(route, object_id, request), request, anthropic=anthropic
    )


def error_response(path: str, error: ApiError) -> Response:
    """`error` as the error JSON of the API that owns `path` (Anthropic's or OpenAI's)."""
    anthropic = anthropic_routes.owns(path)
    body = anthropic_routes.error_body(error) if anthropic else error.body()
    if mistral_routes.owns(path):
        body = mistral_routes.error_body(error)
    if gemini_routes.owns(path):
        body = gemini_routes.error_body(error)
    response = json_response(body, error.status)
    response.headers.update(error.headers)
    return response


def _mistral(emulator: Emulator, request: Request) -> Reply:
    """Mistral's Files and Batch Jobs routes (mistral_routes.py), with the same faults."""
    matched = mistral_routes.match_route(request.method, request.path)
    inner = replace(request, path=request.path[len(mistral_routes.PREFIX) :])
    synced = None if matched else match_sync_route(inner.method, inner.path)
    if matched is None and synced is None:
        raise ApiError(404, f"Invalid URL ({request.method} {request.path})")
    route, object_id = matched or synced or ("", None)
    emulator.count_request(route)
    _authenticate(emulator.config, request.headers.get("authorization"))
    if synced is not None:  # chat and embeddings, OpenAI-compatible as Mistral's are
        return _serve(
            emulator, route, lambda: emulator.sync_api.handle(route, inner), inner, anthropic=False
        )
    return _serve(
        emulator,
        route,
        lambda: emulator.mistral_api.handle(route, object_id, request),
        request,
        anthropic=False,
    )


def _serve(
    emulator: Emulator,
    route: str,
    respond: Callable[[], Response],
    request: Request,
    *,
    anthropic: bool,
) -> Reply:
    """Apply the fault book to one authenticated request, and handle it unless refused."""
    decision = emulator.faults.decide(route)
    if decision.latency:
        time.sleep(decision.latency)
    rule = decision.answer
    refusal = _refusal(rule, route)
    if refusal is not None and rule is not None:
        emulator.faults.count_served(rule.kind)
        raise refusal
    response = respond()
    response.headers.update(
        emulator.rate_window.headers(time.time(), len(request.body), anthropic=anthropic)
    )
    if rule is not None and rule.kind == "drop_response":
        emulator.faults.count_served(rule.kind)
        raise Dropped
    if rule is not None and rule.kind == "truncate_download":
        cut = math.floor(len(response.body) * rule.fraction)
        if cut < len(response.body):
            emulator.faults.count_served(rule.kind)
            return Reply(response, cut)
    return Reply(response)


def _authenticate(config: EmulatorConfig, header: str | None) -> None:
    scheme, _, key = (header or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or "
            "as the password field (with blank username) if you're accessing the API from your "
            "browser and are prompted for a username. You can obtain an API key from "
            "https://platform.openai.com/account/api-keys.",
        )
    if config.api_key is not None and key != config.api_key:
        shown = f"{key[:3]}***{key[-2:]}" if len(key) > 6 else "***"
        raise ApiError(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )


def _refusal(rule: FaultRule | None, route: str) -> ApiError | None:
    """The error answer an `http_500` / `http_429` / `insufficient_quota` rule gives instead of
    handling the request."""
    if rule is None:
        return None
    if rule.kind == "insufficient_quota":
        if route in ANTHROPIC_ROUTE_NAMES:
            # Anthropic's errors page: 402 billing_error.
            return ApiError(
                402,
                "Your credit balance is too low to access the Anthropic API.",
                type="billing_error",
            )
        # The body OpenAI sends (as SDK users report it): type and code insufficient_quota.
        return ApiError(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
        )
    if rule.kind == "http_500":
        return ApiError(500, SERVER_ERROR, type="server_error")
    if rule.kind == "http_429":
        return ApiError(
            429,
            "Rate limit reached for requests. Please try again later.",
            type="requests",
            code="rate_limit_exceeded",
            headers={
                "retry-after": str(max(1, math.ceil(rule.seconds))),
                "retry-after-ms": str(round(rule.seconds * 1000)),
            },
        )
    return None


def _control(emulator: Emulator, request: Request) -> Response:
    """The control plane: stats, and the config (read or change)."""
    if request.path == "/_emulator/stats" and request.method == "GET":
        return json_response(emulator.stats())
    if request.path == "/_emulator/config" and request.method == "GET":
        return json_response(emulator.config.public())
    if request.path == "/_emulator/config" and request.method == "POST":
        try:
            changes = json.loads(request.body)
        except (ValueError, RecursionError):
            raise bad_request("The body must be a JSON object of settings.") from None
        if not isinstance(changes, Mapping):
            raise bad_request("The body must be a JSON object of settings.")
        try:
            return json_response(
                emulator.configure(**{str(k): v for k, v in changes.items()}).public()
            )
        except (ValueError, TypeError) as error:
            raise bad_request(str(error)) from None
    raise ApiError(404, f"Invalid URL ({request.method} {request.path})")
