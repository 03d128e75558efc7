"""What `ledger sql` lets through before a query reaches the database: one statement, starting as
a query, with words in literals and comments taken as text."""

from __future__ import annotations

import pytest

from ledger.query.sql import QueryRefused, check_query
from ledger.query.sql_guard import called_functions, denied_postgres_function, statement_count


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("select 1", 1),
        ("select 1;", 1),
        ("select 1; ;", 1),
        ("select 1; commit; delete from requests", 3),
        ("select ';' as semicolon", 1),
        ("select 'it''s; fine'", 1),
        ("select E'a\\'; b'", 1),
        ('select 1 as "x;y"', 1),
        ("select $$ ; $$, $tag$ ; $$ ; $tag$", 1),
        ("select 1 -- ; delete\n", 1),
        ("select /* ; /* nested ; */ still ; */ 1", 1),
        ("select 1 /* a */ ; select 2", 2),
    ],
)
def test_statements_are_counted_by_tokens(query: str, count: int) -> None:
    """Semicolons inside strings, quoted names, dollar quotes and comments end no statement."""
    assert statement_count(query) == count


@pytest.mark.parametrize(
    "query",
    ["select 'unclosed", 'select "unclosed', "select $$ unclosed", "select /* unclosed"],
)
def test_an_unclosed_quote_or_comment_is_refused(query: str) -> None:
    """A query whose string or comment never ends is refused, not guessed at."""
    with pytest.raises(QueryRefused):
        check_query(query)


@pytest.mark.parametrize(
    "query",
    ["delete from jobs", "pragma query_only=0", "select 1; select 2", "", "-- only a comment"],
)
def test_only_one_query_statement_passes(query: str) -> None:
    """Anything but exactly one SELECT / WITH / VALUES statement is refused."""
    with pytest.raises(QueryRefused):
        check_query(query)


def test_functions_are_found_by_call_not_by_text() -> None:
    """A function counts when called; its name in a literal or a comment does not."""
    query = """select count(*), "PG_LS_DIR" ('.'), pg_catalog.pg_read_file('x'),
               'pg_sleep(1)' as text -- lo_import(1)
               from jobs"""
    assert called_functions(query) == {"count", "pg_ls_dir", "pg_read_file"}
    assert denied_postgres_function(query) == "pg_ls_dir"
    assert denied_postgres_function("select 'pg_read_file(1)', count(*) from jobs") is None
