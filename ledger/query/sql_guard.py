"""What `ledger sql` lets through, decided before a query reaches the database.

The database enforces read-only access itself (a read-only file on SQLite, a read-only session on
PostgreSQL); these checks close what read-only access leaves open: a second statement smuggled
behind the first, and functions that read the server's files, reconfigure it, take locks or leak
memory addresses (SQLite's `fts3_tokenizer`). Both checks run on the query's tokens, so a word
inside a string literal or a comment is just text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ledger.errors import InputError

#: SQLite's built-in functions a read-only query may call (core, aggregate, window, date and
#: time, math and JSON: https://sqlite.org/lang_corefunc.html and its sibling pages). Anything
#: else, loadable or compiled in (`fts3_tokenizer`, `load_extension`, `readfile`, `writefile`,
#: `edit`, ...), is refused by the authorizer.
_SQLITE_FUNCTION_NAMES = """
    abs changes char coalesce concat concat_ws format glob hex ifnull iif instr
    last_insert_rowid length like likelihood likely lower ltrim max min nullif octet_length
    printf quote random randomblob replace round rtrim sign soundex sqlite_compileoption_get
    sqlite_compileoption_used sqlite_offset sqlite_source_id sqlite_version substr substring
    total_changes trim typeof unhex unicode unlikely upper zeroblob
    avg count group_concat string_agg sum total
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value
    nth_value
    date time datetime julianday unixepoch strftime timediff
    acos acosh asin asinh atan atan2 atanh ceil ceiling cos cosh degrees exp floor ln log log10
    log2 mod pi pow power radians sin sinh sqrt tan tanh trunc
    json jsonb json_array jsonb_array json_array_length json_error_position json_extract
    jsonb_extract json_insert jsonb_insert json_object jsonb_object json_patch jsonb_patch
    json_pretty json_remove jsonb_remove json_replace jsonb_replace json_set jsonb_set json_type
    json_valid json_quote json_group_array jsonb_group_array json_group_object
    jsonb_group_object json_each json_tree jsonb_each jsonb_tree -> ->>
"""
SQLITE_ALLOWED_FUNCTIONS = frozenset(_SQLITE_FUNCTION_NAMES.split())

#: PostgreSQL functions refused by name or prefix: server files and directories, large objects
#: (which read and write server files), configuration and signals, advisory locks (a console
#: holding one would stall every reconciler's create), replication and WAL control, sleeping,
#: remote connections. A superuser connection could otherwise run all of them; a read-only role
#: (docs/production.md) is the second fence.
POSTGRES_DENIED_PREFIXES: tuple[str, ...] = (
    "pg_read_",
    "pg_ls_",
    "pg_stat_file",
    "pg_file_",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_signal_",
    "pg_advisory",
    "pg_try_advisory",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_",
    "pg_drop_",
    "pg_replication_",
    "pg_logical_",
    "pg_copy_",
    "pg_import_",
    "pg_backup_",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_log_backend_memory_contexts",
    "pg_sleep",
    "pg_notify",
    "lo_",
    "dblink",
    "set_config",
    "current_setting",
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "table_to_xml",
    "cursor_to_xml",
    "database_to_xml",
    "schema_to_xml",
)

# One token of SQL: a comment, a quoted string (standard, E'' escape or dollar-quoted), a quoted
# identifier, a word, or any other single character.
_TOKEN = re.compile(
    r"""
    (?P<line_comment>--[^\n]*)
  | (?P<block_comment>/\*)
  | (?P<escape_string>[Ee]'(?:[^'\\]|\\.|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*)?\$)
  | (?P<quoted_ident>"(?:[^"]|"")*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<space>\s+)
  | (?P<other>[^'"])
    """,
    re.VERBOSE | re.DOTALL,
)


class QueryRefused(InputError, ValueError):
    """The query is not a single read-only statement, or ran past its time budget."""


def tokens(query: str) -> Iterator[tuple[str, str]]:
    """(kind, text) for each token of `query`; comments and spaces included."""
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None:  # an opening quote with no end
            raise QueryRefused("a quoted string or identifier is not closed")
        kind = match.lastgroup or "other"
        if kind == "tag":
            kind = "dollar"
        end = match.end()
        if kind == "block_comment":
            end = _block_comment_end(query, match.start())
        elif kind == "dollar":
            close = query.find(match.group(0), end)
            if close < 0:
                raise QueryRefused("a dollar-quoted string is not closed")
            end = close + len(match.group(0))
            kind = "string"
        yield kind, query[match.start() : end]
        position = end


def _block_comment_end(query: str, start: int) -> int:
    # PostgreSQL's block comments nest; SQLite's do not, but a nested opener there is just text
    # inside the comment, so counting depth is safe for both.
    depth, position = 0, start
    while position < len(query):
        if query.startswith("/*", position):
            depth, position = depth + 1, position + 2
        elif query.startswith("*/", position):
            depth, position = depth - 1, position + 2
            if depth == 0:
                return position
        else:
            position += 1
    raise QueryRefused("a /* comment is not closed")


def statement_count(query: str) -> int:
    """How many statements `query` holds (empty ones between semicolons are not counted)."""
    count, open_statement = 0, False
    for kind, text in tokens(query):
        if kind in ("space", "line_comment", "block_comment"):
            continue
        if text == ";":
            count += open_statement
            open_statement = False
        else:
            open_statement = True
    return count + open_statement


def called_functions(query: str) -> set[str]:
    """The names (lower case, schema dropped) of everything called as `name(`."""
    called: set[str] = set()
    previous: str | None = None
    for kind, text in tokens(query):
        if kind in ("space", "line_comment", "block_comment"):
            continue
        if text == "(" and previous is not None:
            called.add(previous)
        if kind == "word":
            previous = text.lower()
        elif kind == "quoted_ident":
            previous = text[1:-1].replace('""', '"').lower()
        else:
            previous = None
    return called


def denied_postgres_function(query: str) -> str | None:
    """The first function `query` calls that `ledger sql` refuses on PostgreSQL, if any."""
    for name in sorted(called_functions(query)):
        if name.startswith(POSTGRES_DENIED_PREFIXES):
            return name
    return None
