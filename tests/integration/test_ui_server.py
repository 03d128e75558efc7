"""`ledger ui` as a server: who may read it, and that it can only read."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from support.uikit import running_ui

from cli import cli
from ledger.core.db import open_ledger

TOKEN = "s3cret-dashboard-token"


@pytest.fixture(scope="module")
def empty_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new ledger with the current schema and no runs."""
    database = tmp_path_factory.mktemp("ui") / "ledger.db"
    open_ledger(database).dispose()
    return database


@pytest.fixture(scope="module")
def open_ui(empty_ledger: Path) -> Iterator[str]:
    """`ledger ui` on loopback with no token; yields its URL."""
    with running_ui(empty_ledger) as ui:
        yield ui.url


def fetch(
    url: str, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """One request, redirects not followed, so each answer is seen as the server gave it."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.org"])
def test_binding_beyond_loopback_without_a_token_is_refused(host: str) -> None:
    """Any non-loopback bind without --token exits 2 with one line, before listening."""
    result = CliRunner().invoke(cli, ["ui", "--host", host], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "--token" in result.stderr and host in result.stderr


@pytest.fixture(scope="module")
def guarded(empty_ledger: Path) -> Iterator[str]:
    """`ledger ui --token TOKEN` on loopback; yields its URL."""
    with running_ui(empty_ledger, "--token", TOKEN) as ui:
        yield ui.url


def test_with_a_token_every_request_without_it_gets_401(guarded: str) -> None:
    """Pages, fragments and static files all answer 401 without the token, or with a wrong one."""
    for path in ("/", "/runs/1", "/static/htmx.min.js", "/?token=wrong"):
        response = fetch(guarded, path)
        assert response.status == 401, path
        assert response.getheader("WWW-Authenticate", "").startswith("Bearer")
    wrong = fetch(guarded, "/", headers={"Authorization": "Bearer wrong"})
    assert wrong.status == 401


def test_the_token_once_in_the_url_becomes_a_cookie(guarded: str) -> None:
    """?token= answers with a cookie and a redirect that drops the token; the cookie then
    opens every page."""
    response = fetch(guarded, f"/?token={TOKEN}&x=1")
    assert response.status == 303
    assert response.getheader("Location") == "/?x=1"
    cookie = response.getheader("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    pair = cookie.split(";")[0]
    assert fetch(guarded, "/", headers={"Cookie": pair}).status == 200
    assert fetch(guarded, "/static/dashboard.css", headers={"Cookie": pair}).status == 200


def test_a_bearer_header_opens_the_pages(guarded: str) -> None:
    """Scripts send Authorization: Bearer TOKEN instead of a cookie."""
    response = fetch(guarded, "/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200


def test_without_a_token_only_loopback_host_names_are_answered(open_ui: str) -> None:
    """A page whose own name was rebound to 127.0.0.1 cannot read the ledger (Host check)."""
    port = urlsplit(open_ui).port
    assert fetch(open_ui, "/", headers={"Host": "evil.example"}).status == 400
    assert fetch(open_ui, "/", headers={"Host": f"evil.example:{port}"}).status == 400
    assert fetch(open_ui, "/", headers={"Host": f"localhost:{port}"}).status == 200
    assert fetch(open_ui, "/", headers={"Host": f"127.0.0.1:{port}"}).status == 200


def test_every_route_only_reads(empty_ledger: Path, open_ui: str) -> None:
    """The app has GET/HEAD routes and read-only static files, nothing else; other methods
    answer 405."""
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from ledger.ui.app import create_app
    from ledger.ui.readonly import open_readonly
    from ledger.usage.pricing import load_price_table

    engine = open_readonly(f"sqlite:///{empty_ledger}")
    app = create_app(engine, load_price_table())
    routes = [route for route in app.routes if isinstance(route, Route)]
    mounts = [route for route in app.routes if isinstance(route, Mount)]
    assert len(routes) + len(mounts) == len(app.routes) and routes
    for route in routes:
        assert route.methods is not None and route.methods <= {"GET", "HEAD"}, route.path
    assert [type(mount.app) for mount in mounts] == [StaticFiles]
    engine.dispose()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert fetch(open_ui, "/", method=method).status == 405, method
    assert fetch(open_ui, "/", method="HEAD").status == 200


def test_pages_carry_a_content_security_policy(open_ui: str) -> None:
    """Scripts only from the dashboard itself, no framing, no referrer, pages never cached."""
    response = fetch(open_ui, "/")
    policy = response.getheader("Content-Security-Policy", "")
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.getheader("Referrer-Policy") == "no-referrer"
    assert response.getheader("Cache-Control") == "no-store"


def test_a_missing_ledger_is_reported_not_created(tmp_path: Path) -> None:
    """The dashboard never creates or migrates a database: a missing one exits 2."""
    database = tmp_path / "nowhere.db"
    result = CliRunner().invoke(cli, ["--db", str(database), "ui"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "no ledger database" in result.stderr and "ledger init" in result.stderr
    assert not database.exists()


def test_a_database_without_the_ledger_schema_is_refused(tmp_path: Path) -> None:
    """A SQLite file that is not a ledger is refused with the fix (`ledger init`)."""
    import sqlite3

    database = tmp_path / "other.db"
    sqlite3.connect(database).close()
    result = CliRunner().invoke(cli, ["--db", str(database), "ui"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "has no ledger schema" in result.stderr


def test_importing_the_cli_does_not_import_the_web_stack() -> None:
    """Only the `ui` command imports starlette, uvicorn and jinja2 (the optional `ui` extra)."""
    code = (
        "import sys, cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'starlette', 'uvicorn', 'jinja2', 'ledger'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['ledger']"


def test_without_the_ui_extra_the_command_says_how_to_get_it(empty_ledger: Path) -> None:
    """With the web stack missing, `ledger ui` exits 1 with the pip command, no traceback."""
    code = (
        "import sys; sys.modules['uvicorn'] = None; from cli import main; "
        f"sys.argv = ['ledger', '--db', {str(empty_ledger)!r}, 'ui']; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: ledger ui needs the `ui` extra (uvicorn is missing): "
        "pip install 'llm-batch-ledger[ui]'"
    )


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_stops_the_dashboard_with_exit_code_0(
    empty_ledger: Path, stop: signal.Signals
) -> None:
    """Like `ledger reconcile --loop`: a clean stop, not a re-raised signal or "Aborted!"."""
    with running_ui(empty_ledger) as ui:
        assert fetch(ui.url, "/").status == 200  # serving, so its signal handlers are in place
        ui.process.send_signal(stop)
        assert ui.process.wait(timeout=10) == 0
