"""`ledger sql` is read-only on SQLite and PostgreSQL alike: no second statement, no server files,
no extension functions, bounded results, and literals that stay literals."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from support.factories import add_jobs, add_run

from cli import cli
from ledger.core.db import open_ledger
from ledger.core.models import Job
from ledger.query.sql import QueryRefused, run_readonly_query


@pytest.fixture
def ledger_url(db_url: str) -> str:
    """A ledger with one run of three jobs, on each configured database."""
    engine = open_ledger(db_url)
    add_jobs(engine, add_run(engine), 3)
    engine.dispose()
    return db_url


def job_count(url: str) -> int:
    engine: Engine = open_ledger(url)
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(Job)).scalar_one()
    finally:
        engine.dispose()


def sql(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--db", url, "sql", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "query",
    [
        "select 1; commit; delete from jobs",
        "select 1; delete from jobs",
        "with gone as (delete from jobs returning id) select * from gone",
    ],
)
def test_a_smuggled_write_is_refused_and_nothing_changes(ledger_url: str, query: str) -> None:
    """A write behind a query, or inside one, is refused with one line and exit 2."""
    code, out, err = sql(ledger_url, query)
    assert code == 2, out
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert job_count(ledger_url) == 3


def test_a_word_with_a_colon_in_a_literal_is_just_text(ledger_url: str) -> None:
    """`:word` and `%` inside a string are data, not bind parameters or placeholders."""
    code, out, err = sql(ledger_url, "select ':word' as a, '100%' as b", "--csv")
    assert (code, err) == (0, "")
    assert out == "a,b\n:word,100%\n"


def test_rows_are_cut_at_max_rows_with_a_note(ledger_url: str) -> None:
    """--max-rows bounds the answer; stderr says rows were cut."""
    code, out, err = sql(ledger_url, "select id from jobs order by id", "--csv", "--max-rows", "2")
    assert code == 0
    assert out.splitlines()[0] == "id" and len(out.splitlines()) == 3
    assert "cut at 2 rows" in err
    assert sql(ledger_url, "select id from jobs", "--csv", "--max-rows", "3")[2] == ""


def test_bytes_are_capped_without_holding_every_row(ledger_url: str) -> None:
    """Large values stop the fetch at the byte cap instead of filling memory."""
    big = (
        "select zeroblob(4000000) from jobs"
        if ledger_url.startswith("sqlite")
        else "select repeat('x', 4000000) from jobs"
    )
    result = run_readonly_query(ledger_url, big, max_bytes=6_000_000)
    assert len(result.rows) == 1
    assert result.truncated == "cut at 6000000 bytes of values"


@pytest.mark.parametrize("max_rows", ["0", "-4"])
def test_a_nonsense_row_cap_is_refused(ledger_url: str, max_rows: str) -> None:
    """--max-rows below 1 is a usage error (exit 2)."""
    assert sql(ledger_url, "select 1", "--max-rows", max_rows)[0] == 2


@pytest.mark.parametrize(
    "query",
    [
        "select fts3_tokenizer('simple')",
        "select load_extension('/tmp/x')",
        "select readfile('/etc/passwd')",
        "select writefile('/tmp/x', 'y')",
        "select edit('x')",
    ],
)
def test_sqlite_functions_outside_the_allow_list_are_refused(tmp_path, query: str) -> None:
    """SQLite: only built-in functions on the allow-list run (fts3_tokenizer leaks a pointer)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    open_ledger(url).dispose()
    with pytest.raises(QueryRefused):
        run_readonly_query(url, query)


def test_sqlite_refuses_a_huge_value_quickly(tmp_path) -> None:
    """Three 100 MB zeroblobs are refused at the value cap, not built in memory."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    open_ledger(url).dispose()
    with pytest.raises(QueryRefused, match="a value would exceed"):
        run_readonly_query(
            url, "select zeroblob(100000000), zeroblob(100000000), zeroblob(100000000)"
        )


def test_the_documented_views_pass_the_allow_list(ledger_url: str) -> None:
    """Every view the docs show can be queried (their functions are all allowed)."""
    for view in ("run_progress",):
        result = run_readonly_query(ledger_url, f"select * from {view}")
        assert result.columns


@pytest.mark.parametrize(
    "query",
    [
        "select pg_read_file('/etc/passwd')",
        "select * from pg_ls_dir('.')",
        "select pg_reload_conf()",
        "select pg_advisory_lock(1)",
        "select set_config('default_transaction_read_only', 'off', false)",
        'select "pg_sleep"(30)',
        "select lo_import('/etc/passwd')",
    ],
)
def test_postgres_server_file_and_admin_functions_are_refused(db_url: str, query: str) -> None:
    """PostgreSQL (even as a superuser): server files, admin, locks and settings are refused."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL functions")
    open_ledger(db_url).dispose()
    with pytest.raises(QueryRefused, match="is not available in ledger sql"):
        run_readonly_query(db_url, query)


def test_the_time_budget_stops_a_long_query(ledger_url: str) -> None:
    """A query past its budget is stopped with one line naming the budget."""
    slow = (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r"
        if ledger_url.startswith("sqlite")
        else "select count(*) from generate_series(1, 2000000000)"
    )
    code, _, err = sql(ledger_url, "--time-budget", "0.5", slow)
    assert code == 2 and err.count("\n") == 1
    assert "time budget" in err or "statement timeout" in err
