"""Who may read the dashboard: the token gate, the loopback Host check, the response headers.

With a token, every request must carry it: `?token=...` once (answered with a cookie and a
redirect to the same page without it, so it leaves the address bar), then the cookie; or an
`Authorization: Bearer ...` header for scripts. The cookie holds an HMAC of the token, not the
token. Without a token the server binds loopback only, and answers only requests addressed to a
loopback name, so a web page that rebinds its own host name to 127.0.0.1 cannot read the ledger.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from starlette.datastructures import URL, Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "ledger_ui"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

#: Scripts come only from the dashboard's own static files; nothing may frame the page.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
#: Pages change while runs are live; the vendored static files do not.
PAGE_HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"cache-control", b"no-store"),)


def _host_name(headers: Headers) -> str:
    host = headers.get("host", "")
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware: the token gate (when a token is set) or the loopback Host check, and the
    security headers on every answer."""

    def __init__(self, app: ASGIApp, *, token: str | None, hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.token = token
        self.cookie = _cookie_value(token) if token else ""
        self.hosts = LOOPBACK_NAMES | {h.strip("[]").lower() for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        extra = SECURITY_HEADERS
        if not scope["path"].startswith("/static/"):
            extra += PAGE_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        refusal = self._refusal(Request(scope))
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        """The answer that replaces the page, or None when the request may read it."""
        if self.token is None:
            if _host_name(request.headers).lower() not in self.hosts:
                return PlainTextResponse("400: this dashboard answers only on loopback", 400)
            return None
        given = request.query_params.get("token")
        if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            return self._remember(request.url)
        if hmac.compare_digest(request.cookies.get(COOKIE, "").encode(), self.cookie.encode()):
            return None
        bearer = request.headers.get("authorization", "")
        if bearer.startswith("Bearer ") and hmac.compare_digest(
            bearer[7:].strip().encode(), self.token.encode()
        ):
            return None
        return PlainTextResponse(
            "401: this dashboard needs its token: open it once with ?token=TOKEN, "
            "or send Authorization: Bearer TOKEN",
            401,
            headers={"WWW-Authenticate": 'Bearer realm="ledger ui"'},
        )

    def _remember(self, url: URL) -> Response:
        """Set the cookie and send the browser to the same page without the token."""
        rest = url.remove_query_params("token")
        target = rest.path + (f"?{rest.query}" if rest.query else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, self.cookie, httponly=True, samesite="strict")
        return response


def _cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"ledger ui session", hashlib.sha256).hexdigest()
