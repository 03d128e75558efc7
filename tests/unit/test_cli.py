"""The CLI shell: init, status, show, history and sql on a new ledger (every command's help:
test_cli_reference.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from support.factories import add_jobs, add_run

from cli import cli
from ledger.core.db import alembic_config, open_ledger


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def newest_migration() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_init_creates_a_ledger_in_the_current_directory(tmp_path: Path) -> None:
    """`ledger init` with no options creates ./ledger.db at the newest schema."""
    code, out, _ = invoke("init")
    assert code == 0
    assert (tmp_path / "ledger.db").exists()
    assert f"schema {newest_migration()}" in out


def test_status_and_sql_on_a_new_database(tmp_path: Path) -> None:
    """A new ledger shows no runs and an empty jobs table."""
    assert invoke("init")[0] == 0
    assert invoke("status") == (0, "no runs yet\n", "")
    code, out, _ = invoke("sql", "select * from jobs", "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out, _ = invoke("sql", "select id, state from jobs")
    assert code == 0 and out.splitlines()[0].split() == ["id", "state"]


def test_status_show_and_history_report_a_job(tmp_path: Path) -> None:
    """Jobs appear in status (table and JSON), in show with their events, and in history."""
    engine = open_ledger(tmp_path / "other.db")
    [job_id] = add_jobs(engine, add_run(engine, "eval-1"), 1)
    code, out, _ = invoke("--db", str(tmp_path / "other.db"), "status")
    assert code == 0 and "eval-1: openai" in out and "1 built" in out
    code, out, _ = invoke("--db", str(tmp_path / "other.db"), "status", "--json")
    report = json.loads(out)
    assert report[0]["jobs"][0]["job_id"] == job_id
    assert report[0]["job_states"] == {"built": 1}
    code, out, _ = invoke("--db", str(tmp_path / "other.db"), "show", str(job_id))
    assert code == 0 and "shard-0001.jsonl" in out and "built" in out.split("events:")[1]
    code, out, _ = invoke("--db", str(tmp_path / "other.db"), "history")
    assert code == 0 and "eval-1" in out
    code, _, err = invoke("--db", str(tmp_path / "other.db"), "show", "999")
    assert code == 2 and err == "error: no job with id 999\n"


def test_ledger_db_environment_variable_picks_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$LEDGER_DB names the database when --db is not given."""
    monkeypatch.setenv("LEDGER_DB", str(tmp_path / "env.db"))
    assert invoke("init")[0] == 0
    assert (tmp_path / "env.db").exists() and not (tmp_path / "ledger.db").exists()


def digest_of(path: Path) -> dict[str, str]:
    """sha256 of every file in the directory, to prove nothing changed.

    A read-only reader of a WAL database may bring back SQLite's shared-memory index (-shm) and
    an empty write-ahead log (-wal) beside it: those do not count, a log with content does.
    """
    digests = {}
    for file in sorted(path.iterdir()):
        if file.name.endswith("-shm") or (file.name.endswith("-wal") and not file.stat().st_size):
            continue
        digests[file.name] = hashlib.sha256(file.read_bytes()).hexdigest()
    return digests


REFUSED = {
    "delete": ("DELETE FROM jobs", "only a single SELECT"),
    "update in a CTE": ("WITH x AS (SELECT 1) UPDATE jobs SET state = 'failed'", "read-only"),
    "attach": ("ATTACH DATABASE 'evil.db' AS evil", "only a single SELECT"),
    "attach in select": ("SELECT 1; ATTACH 'evil.db' AS e", "one statement"),
    "vacuum into": ("VACUUM INTO 'copy.db'", "only a single SELECT"),
    "pragma": ("PRAGMA query_only = 0", "only a single SELECT"),
    "pragma function": ("SELECT * FROM pragma_journal_mode('delete')", "read-only"),
    "two statements": ("SELECT 1; SELECT 2", "one statement"),
    "create table": ("CREATE TABLE t (x)", "only a single SELECT"),
    "load_extension": ("SELECT load_extension('x')", ""),
}


@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_sql_refuses_anything_but_one_read(tmp_path: Path, case: str) -> None:
    """Writes, ATTACH, VACUUM INTO, PRAGMA and two statements: exit 2, one line, no file touched."""
    query, message = REFUSED[case]
    engine = open_ledger(tmp_path / "ledger.db")
    add_jobs(engine, add_run(engine), 2)
    engine.dispose()
    before = digest_of(tmp_path)
    code, out, err = invoke("sql", query)
    assert code == 2, out
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err
    assert digest_of(tmp_path) == before
    assert invoke("sql", "select count(*) as n from jobs", "--csv")[1] == "n\n2\n"


def test_sql_interrupts_a_runaway_query(tmp_path: Path) -> None:
    """An endless recursive CTE is stopped after the time budget, with exit 2."""
    invoke("init")
    before = digest_of(tmp_path)
    runaway = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r"
    code, _, err = invoke("sql", "--time-budget", "0.5", runaway)
    assert code == 2
    assert err == "error: query stopped after its time budget of 0.5 s\n"
    assert digest_of(tmp_path) == before


def test_sql_on_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    """Querying a ledger that does not exist says so and does not create it."""
    code, _, err = invoke("sql", "select 1")
    assert code == 2 and "no ledger database" in err
    assert list(tmp_path.iterdir()) == []


def test_choices_named_in_cli_are_the_librarys() -> None:
    """The choices the commands spell out (so that --help loads neither the emulator nor the
    database layer) are the emulator's scenarios, the export formats, the result statuses and
    the SQL time budget."""
    import ledger.commands as cli_module
    from ledger.emulator import SCENARIOS
    from ledger.query.sql import DEFAULT_MAX_ROWS, DEFAULT_TIME_BUDGET
    from ledger.results.export import FORMATS
    from ledger.results.schema import STATUSES

    assert tuple(SCENARIOS) == cli_module.EMULATOR_SCENARIOS
    assert cli_module.RESULT_FORMATS == FORMATS
    assert cli_module.RESULT_STATUSES == STATUSES
    assert cli_module.SQL_TIME_BUDGET == DEFAULT_TIME_BUDGET
    assert cli_module.SQL_MAX_ROWS == DEFAULT_MAX_ROWS
