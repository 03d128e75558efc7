"""`ledger ui`: a live, read-only dashboard of the ledger in the browser.

`serve()` checks the bind (loopback, or a token), opens the database read-only
(`ledger.ui.readonly`), builds the Starlette app (`ledger.ui.app`) and runs it on uvicorn until
interrupted. Starlette, uvicorn and Jinja2 come with the `ui` extra and are imported only here, so
the rest of ledger (and `import cli`) never needs them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from ledger.errors import InputError, LedgerError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8780


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve the ledger beyond this machine without a token."""
    if token is None and not is_loopback(host):
        raise InputError(
            f"--host {host} would show the ledger beyond this machine: give --token TOKEN "
            "(or $LEDGER_UI_TOKEN), which every request must then carry"
        )
    if token is not None and not token.strip():
        raise InputError("--token: must not be empty")


def serve(
    db: str | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the dashboard of the ledger `db` (a SQLite path or an SQLAlchemy URL; default
    `$LEDGER_DB` or ./ledger.db) on host:port (0: a free port) until SIGINT or SIGTERM."""
    check_bind(host, token)
    try:
        from ledger.ui.app import create_app
        from ledger.ui.server import run_until_stopped
    except ImportError as error:
        raise LedgerError(
            f"ledger ui needs the `ui` extra ({error.name} is missing): "
            "pip install 'llm-batch-ledger[ui]'"
        ) from None
    from sqlalchemy.engine import make_url

    from ledger.core.db import resolve_url
    from ledger.ui.readonly import open_readonly
    from ledger.usage.pricing import load_price_table

    url = resolve_url(db)
    engine = open_readonly(url)
    shown = make_url(url).render_as_string(hide_password=True)
    app = create_app(engine, load_price_table(), token=token, hosts=(host,), database=shown)
    listening = _listen(host, port)
    bound_port = listening.getsockname()[1]
    address = f"[{host}]" if ":" in host else host
    hint = "?token=TOKEN once, then a cookie" if token else "read-only"
    echo(f"ledger ui: http://{address}:{bound_port}/ ({hint}; Ctrl-C stops it)")
    try:
        run_until_stopped(app, listening)
    finally:
        listening.close()
        engine.dispose()


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the address is printed, so the URL shown already
    answers (and `--port 0` shows the port it got)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as error:
        listening.close()
        raise InputError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    listening.listen(128)
    return listening
