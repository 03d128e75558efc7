"""A run's results as Arrow record batches and Parquet: `ledger results --format parquet`,
`Ledger.results_frame` and `Ledger.results_dataset` (docs/results.md#parquet).

The columns are the CSV export's, in its order, taken from the row `csv_row` makes (so a column
added to the CSV comes along), then `cost_usd`. Line numbers, HTTP statuses, job ids and token
counts are int64, the cost float64 (null when the model has no price), every other column the CSV
cell as a string. A cell CSV leaves empty is null here, unless the result's own field is an empty
string (an answer of no text stays ""). The cost is each request's, priced at normalize: its
`requests` row, looked up by custom_id a batch of rows at a time.

Records are turned into Arrow batches of `BATCH_ROWS` rows (Python objects live for one batch:
Arrow holds the rest compactly), and batches are written in row groups of at most `GROUP_ROWS`
rows or `GROUP_BYTES` bytes: memory holds one row group, never the run. The command also keeps
pandas out and lets Arrow allocate with malloc (`ledger.results.arrow_process`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.core.models import Request, Run
from ledger.errors import ConfigError, InputError

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover - the extra is in `dev`, so tests always have it
    # This module is imported only when Arrow results are asked for: say which extra they need.
    raise ConfigError(
        "Parquet, DataFrame and Dataset results need pyarrow: "
        "pip install 'llm-batch-ledger[parquet]'"
    ) from None

#: The column added after the CSV columns: USD of the request, null when unknown.
COST_COLUMN = "cost_usd"
#: The job id a cost lookup takes for a copied answer (`reused_from`): its row's cost stands.
COPIED = -1
#: CSV columns that hold integers.
INT_COLUMNS = frozenset(
    {
        "line_number",
        "http_status",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "job_id",
        "reused_from",
    }
)
#: A batch ends at this many rows or this many characters of text, whichever first.
BATCH_ROWS = 4096
BATCH_CHARS = 8 << 20  # of answer text
#: A row group ends at this many rows or this many bytes of Arrow data, whichever first. The
#: group being filled is most of the export's memory above pyarrow's own: 16 MB (about 40,000
#: answers of 40 words) keeps the peak of bench/parquet.py ~25 MB under that of 64 MB groups.
GROUP_ROWS = 100_000
GROUP_BYTES = 16 << 20
# Custom ids per `requests` lookup (a batch's): under the bound-parameter limits of SQLite (32,766
# since 3.32) and PostgreSQL (65,535).
_LOOKUP_CHUNK = 4096
#: A positional parameter in the SQL of each driver's paramstyle (sqlite3's, psycopg's).
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}

#: A record's cells in column order, None for an empty one (`csv_cells`; a cell "" is also
#: empty unless the record's own field of that name is "").
Cells = Callable[[dict[str, Any]], list[Any]]


def arrow_schema(columns: Sequence[str]) -> pa.Schema:
    """The Arrow schema of the CSV `columns` plus the cost."""
    fields = [pa.field(name, _type_of(name)) for name in columns if name != COST_COLUMN]
    return pa.schema([*fields, pa.field(COST_COLUMN, pa.float64())])


def _type_of(name: str) -> pa.DataType:
    return pa.int64() if name in INT_COLUMNS else pa.string()


def record_batches(
    engine: Engine,
    run_name: str,
    records: Iterable[dict[str, Any]],
    *,
    columns: Sequence[str],
    cells: Cells,
    batch_rows: int = BATCH_ROWS,
    batch_chars: int = BATCH_CHARS,
) -> Iterator[pa.RecordBatch]:
    """The run's result records (in the order given) as Arrow batches of `arrow_schema`.

    `columns` names the cells `cells` makes of a record (the CSV header)."""
    schema = arrow_schema(columns)
    run_id = _run_id(engine, run_name)
    names = [name for name in columns if name != COST_COLUMN]
    rows: list[list[Any]] = []
    # Only what the cost lookup needs: a whole record is many times its row's cells.
    keys: list[tuple[str, int | None]] = []
    size = 0
    for record in records:
        row = cells(record)
        if len(row) != len(names):
            raise ValueError(f"cells made {len(row)} cells for {len(names)} columns")
        # Rare (an answer of no text): most rows are kept as made, not copied cell by cell.
        if "" in row:
            row = [
                None if cell == "" and record.get(name) != "" else cell
                for name, cell in zip(names, row, strict=True)
            ]
        rows.append(row)
        # A copied answer names the job that answered it first; its row is this run's own.
        job_id = COPIED if record.get("reused_from") is not None else record.get("job_id")
        keys.append((record["custom_id"], job_id))
        size += len(record.get("text") or "")
        if len(rows) >= batch_rows or size >= batch_chars:
            yield _batch(engine, run_id, schema, rows, keys)
            rows, keys, size = [], [], 0
    if rows:
        yield _batch(engine, run_id, schema, rows, keys)


def _batch(
    engine: Engine,
    run_id: int,
    schema: pa.Schema,
    rows: list[list[Any]],
    keys: list[tuple[str, int | None]],
) -> pa.RecordBatch:
    arrays = [
        _array(list(column), field.type)
        for column, field in zip(zip(*rows, strict=True), schema, strict=False)
    ]
    arrays.append(pa.array(_costs(engine, run_id, keys), type=pa.float64()))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _array(values: list[Any], kind: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        if kind != pa.string():
            raise
        # A cell that is no string (a number in a column added later): as the CSV writes it.
        return pa.array([v if v is None or isinstance(v, str) else str(v) for v in values], kind)


def _costs(engine: Engine, run_id: int, keys: list[tuple[str, int | None]]) -> list[float | None]:
    """The cost of each (custom_id, job_id) from its `requests` row; None (unknown) unless that
    row was last written by the job the result came from."""
    found: dict[str, tuple[int, float | None]] = {}
    with engine.connect() as connection:
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            ids = [custom_id for custom_id, _ in keys[start : start + _LOOKUP_CHUNK]]
            sql = _cost_query(engine, len(ids))
            for custom_id, job_id, cost in connection.exec_driver_sql(sql, (run_id, *ids)):
                found[custom_id] = (job_id, cost)
    costs: list[float | None] = []
    for custom_id, job_id in keys:
        row_job_id, cost = found.get(custom_id, (None, None))
        costs.append(cost if row_job_id == job_id or job_id == COPIED else None)
    return costs


def _cost_query(engine: Engine, count: int) -> str:
    """The driver's own SQL selecting the `requests` rows of a run's `count` custom ids.
    SQLAlchemy took longer compiling an IN list of 4,096 ids and making its rows than SQLite
    took running it: 1.65-1.8 s against 0.7-1.06 s for the lookups of 300,000 results."""
    marker = _MARKERS[engine.dialect.paramstyle]
    return (
        f"SELECT custom_id, job_id, cost_usd FROM {Request.__tablename__} "
        f"WHERE run_id = {marker} AND custom_id IN ({', '.join([marker] * count)})"
    )


def _run_id(engine: Engine, run_name: str) -> int:
    with engine.connect() as connection:
        run_id = connection.execute(select(Run.id).where(Run.name == run_name)).scalar()
    if run_id is None:
        raise InputError(f"no run named {run_name!r}")
    return run_id


def write_parquet(
    out: BinaryIO,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    *,
    group_rows: int = GROUP_ROWS,
    group_bytes: int = GROUP_BYTES,
) -> int:
    """Write `batches` to `out` as Parquet, in row groups of at most `group_rows` rows (or about
    `group_bytes` of Arrow data); returns the rows written."""
    written = 0
    group: list[pa.RecordBatch] = []
    rows = size = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for batch in batches:
            group.append(batch)
            rows, size = rows + batch.num_rows, size + batch.nbytes
            if rows >= group_rows or size >= group_bytes:
                writer.write_table(pa.Table.from_batches(group, schema), row_group_size=rows)
                written, group, rows, size = written + rows, [], 0, 0
        if group:
            writer.write_table(pa.Table.from_batches(group, schema), row_group_size=rows)
            written += rows
    return written


def export_parquet(
    engine: Engine,
    run_name: str,
    records: Iterable[dict[str, Any]],
    out: BinaryIO,
    *,
    columns: Sequence[str],
    cells: Cells,
) -> int:
    """`ledger results --format parquet`: the records written to `out`; returns the count."""
    batches = record_batches(engine, run_name, records, columns=columns, cells=cells)
    return write_parquet(out, arrow_schema(columns), batches)
