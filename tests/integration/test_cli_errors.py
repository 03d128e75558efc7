"""Errors a user can cause end in one line on stderr, `error: <message>`, and the exit code of
their kind (1 a provider or runtime failure, 2 bad input or configuration), never in a
traceback; `--debug` (or LEDGER_DEBUG=1) shows the traceback as well."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.engine import make_url
from support.drivers import LEDGER

from cli import cli
from ledger.core.db import create_ledger_engine, open_ledger
from ledger.reconcile.send import release_run

POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL")

#: What a missing OpenAI key reads as, wherever it is found missing.
NO_KEY = "$OPENAI_API_KEY is not set (the key of provider openai)"


def ledger(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def assert_one_error_line(result: Result, exit_code: int, *words: str) -> str:
    """Exit `exit_code`; stderr is exactly one `error: ...` line holding `words`."""
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    for word in words:
        assert word in line
    return line


def run_ledger(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `ledger` command on tmp_path's ledger, in tmp_path, never in debug mode."""
    env = dict(os.environ if env is None else env)
    env.pop("LEDGER_DEBUG", None)
    return subprocess.run(
        [LEDGER, "--db", str(tmp_path / "ledger.db"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def closed_port() -> int:
    """A loopback port nothing listens on (just released by the OS)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_prompts(path: Path, count: int = 2) -> Path:
    path.write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": f"hi {i}"}) + "\n" for i in range(count))
    )
    return path


def submit_to(emulator: Any, tmp_path: Path) -> None:
    """A run `in` with one job in flight at the emulator (the key is in the environment)."""
    emulator.configure(polls_per_stage=1000)
    sent = ledger(
        "--db",
        str(tmp_path / "ledger.db"),
        "submit",
        str(write_prompts(tmp_path / "in.jsonl")),
        "--model",
        "gpt-4o-mini",
        "--base-url",
        emulator.base_url,
    )
    assert sent.exit_code == 0 and "-> submitted" in sent.stdout, sent.output


def job_row(db: Path) -> Any:
    engine = open_ledger(db)
    with engine.connect() as connection:
        row = connection.execute(text("select state, lease_owner from jobs")).one()
    engine.dispose()
    return row


# -- a provider key that is not set ---------------------------------------------------------


def test_cancel_without_a_key_prints_one_line_and_exits_1(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """A real `ledger cancel RUN` with no OPENAI_API_KEY: one line, exit 1, the job untouched and
    its lease given back."""
    submit_to(emulator, tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = run_ledger(tmp_path, "cancel", "in", env=env)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"error: {NO_KEY}"]
    assert done.stdout == ""
    assert tuple(job_row(tmp_path / "ledger.db")) == ("submitted", None)


def test_cancel_without_a_key_in_process(
    tmp_path: Path, emulator: Any, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through click's runner: the error line and exit 1 come from the CLI's one
    error handler, not from the process dying."""
    submit_to(emulator, tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY")
    result = ledger("--db", str(tmp_path / "ledger.db"), "cancel", "in")
    assert assert_one_error_line(result, 1) == f"error: {NO_KEY}"


def test_reconcile_without_a_key_pauses_with_exit_1(tmp_path: Path) -> None:
    """`ledger reconcile` with no key: the pass pauses, the last line says why, exit 1."""
    write_prompts(tmp_path / "in.jsonl")
    built = ledger("submit", "in.jsonl", "--model", "gpt-4o-mini", "--dry-run")
    assert built.exit_code == 0, built.output
    engine = open_ledger(tmp_path / "ledger.db")
    assert release_run(engine, "in") == 1  # a dry run's jobs are held from any reconcile
    engine.dispose()
    result = ledger("reconcile")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.splitlines()[-1] == f"error: paused: {NO_KEY}"


# -- the database ---------------------------------------------------------------------------


def test_a_database_at_an_unknown_revision_is_refused_and_left_alone(tmp_path: Path) -> None:
    """A ledger stamped by a newer ledger: exit 2, the revision named, nothing migrated."""
    db = tmp_path / "ledger.db"
    engine = open_ledger(db)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'deadbeef'"))
    engine.dispose()
    result = ledger("--db", str(db), "status")
    assert_one_error_line(result, 2, str(db), "schema revision 'deadbeef'")
    engine = create_ledger_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        recorded = connection.execute(text("select version_num from alembic_version")).scalar()
    engine.dispose()
    assert recorded == "deadbeef"


@pytest.mark.parametrize(
    ("db", "words"),
    [
        ("nosuch://x", ["nosuch://x", "unknown database scheme 'nosuch'"]),
        ("not a url://", ["not a database URL"]),
    ],
)
def test_a_database_url_ledger_cannot_use_exits_2(db: str, words: list[str]) -> None:
    """A URL that does not parse, or names a scheme SQLAlchemy does not know: exit 2."""
    assert_one_error_line(ledger("--db", db, "status"), 2, *words)


@pytest.mark.skipif(
    importlib.util.find_spec("MySQLdb") is not None, reason="the MySQL driver is installed"
)
def test_a_database_driver_that_is_not_installed_exits_2() -> None:
    """mysql:// without its driver: exit 2, the driver named, the password not."""
    result = ledger("--db", "mysql://user:hunter2@127.0.0.1/x", "status")
    line = assert_one_error_line(result, 2, "mysql driver is not installed")
    assert "hunter2" not in line


def test_a_directory_as_the_database_exits_2(tmp_path: Path) -> None:
    """--db naming a directory: exit 2, said plainly."""
    (tmp_path / "adir").mkdir()
    result = ledger("--db", str(tmp_path / "adir"), "status")
    assert_one_error_line(result, 2, str(tmp_path / "adir"), "is a directory")


def test_a_file_that_is_not_a_database_exits_2_and_is_not_touched(tmp_path: Path) -> None:
    """--db naming a text file: exit 2, and the file keeps its bytes."""
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a ledger\n" * 100)
    result = ledger("--db", str(notes), "status")
    assert_one_error_line(result, 2, str(notes), "not a SQLite database")
    assert notes.read_text() == "my notes, not a ledger\n" * 100


def test_a_database_server_that_does_not_answer_exits_1() -> None:
    """A PostgreSQL URL on a closed port: the server may come back, so exit 1 (not 2)."""
    url = f"postgresql+psycopg://ledger:s3cret@127.0.0.1:{closed_port()}/ledger"
    line = assert_one_error_line(ledger("--db", url, "status"), 1, "cannot reach the database")
    assert "s3cret" not in line


@pytest.mark.skipif(not POSTGRES_URL, reason="LEDGER_TEST_POSTGRES_URL is not set")
def test_a_postgresql_database_that_does_not_exist_exits_2() -> None:
    """The server answers that the database does not exist: exit 2, the database named."""
    assert POSTGRES_URL is not None
    name = f"no_such_ledger_{uuid.uuid4().hex[:8]}"
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    assert_one_error_line(ledger("--db", url, "status"), 2, name, "does not exist")


def test_ledger_sql_reports_a_bad_url_the_same_way() -> None:
    """`ledger sql`, which opens the database read-only its own way, says the same line."""
    assert_one_error_line(ledger("--db", "nosuch://x", "sql", "select 1"), 2, "nosuch")


# -- ledger.toml ----------------------------------------------------------------------------


def test_a_config_file_that_is_not_toml_exits_2(tmp_path: Path) -> None:
    """--config naming a file that is not TOML: exit 2, the file named."""
    (tmp_path / "bad.toml").write_text("[defaults\n")
    result = ledger("--config", str(tmp_path / "bad.toml"), "status")
    assert_one_error_line(result, 2, "bad.toml", "not valid TOML")


def test_an_unknown_key_in_ledger_toml_exits_2(tmp_path: Path) -> None:
    """./ledger.toml, found on its own, with a misspelt key: exit 2, the key named."""
    (tmp_path / "ledger.toml").write_text("[defaults]\nmodle = 'gpt-4o-mini'\n")
    assert_one_error_line(ledger("status"), 2, "ledger.toml", "'defaults.modle'")


# -- a provider that cannot be reached ------------------------------------------------------


def test_an_unreachable_provider_is_one_line_and_the_run_waits(
    tmp_path: Path, api_key: str
) -> None:
    """A real `ledger submit` to a closed port: the run is recorded and the send's connection
    problem is one line; it is transient (`ledger reconcile` retries), so submit exits 0."""
    write_prompts(tmp_path / "in.jsonl")
    base_url = f"http://127.0.0.1:{closed_port()}/v1"
    done = run_ledger(
        tmp_path, "submit", "in.jsonl", "--model", "gpt-4o-mini", "--base-url", base_url
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "job 1: connection problem: Connection error. ([Errno 111] Connection refused)"
    ]
    assert tuple(job_row(tmp_path / "ledger.db")) == ("built", None)


# -- --debug --------------------------------------------------------------------------------


def test_debug_shows_the_traceback_and_keeps_the_exit_code() -> None:
    """--debug: the traceback, then the same one line, and the same exit code."""
    result = ledger("--debug", "--db", "nosuch://x", "status")
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "ledger.errors.ConfigError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: nosuch://x: unknown database scheme")


def test_ledger_debug_in_the_environment_does_the_same() -> None:
    """LEDGER_DEBUG=1 is --debug; LEDGER_DEBUG=0 is not."""
    shown = ledger("--db", "nosuch://x", "status", env={"LEDGER_DEBUG": "1"})
    assert shown.exit_code == 2 and "Traceback" in shown.stderr
    hidden = ledger("--db", "nosuch://x", "status", env={"LEDGER_DEBUG": "0"})
    assert_one_error_line(hidden, 2, "nosuch")
