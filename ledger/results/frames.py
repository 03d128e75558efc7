"""A run's results in memory for analysis: `Ledger.results_frame` (a pandas DataFrame) and
`Ledger.results_dataset` (a Hugging Face `datasets.Dataset`).

Both are built from the Arrow batches `ledger results --format parquet` writes
(`ledger.results.parquet`: the CSV columns typed, plus `cost_usd`), one batch at a time, so the
build holds the finished table and one batch, never a copy of the run's lines. With `with_input`,
the input row's fields come along as columns `input.<field>` (decoded from the export's `input`
JSON text once the table is built; a field whose values mix types stays the JSON text `input`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from ledger.errors import ConfigError
from ledger.results.export import (
    CSV_COLUMNS,
    INPUT_COLUMN,
    csv_cells,
    find_run_results,
    merged_results,
)

# pyarrow through the module that names its extra when it is missing.
from ledger.results.parquet import arrow_schema, pa, record_batches


def results_table(
    engine: Engine,
    run_name: str,
    *,
    statuses: Collection[str] | None = None,
    with_input: bool = False,
) -> pa.Table:
    """The run's results as one `pyarrow.Table`, in input order."""
    shards = find_run_results(engine, run_name).shards
    rows = merged_results(shards, statuses)
    columns = CSV_COLUMNS
    if with_input:
        from ledger.results.with_input import input_rows, run_input
        from ledger.results.with_input import with_input as joined

        rows = joined(rows, input_rows(run_input(engine, run_name)))
        columns = (*CSV_COLUMNS, INPUT_COLUMN)
    records = (record for _, record in rows)
    batches = record_batches(engine, run_name, records, columns=columns, cells=csv_cells)
    table = pa.Table.from_batches(batches, schema=arrow_schema(columns))
    return _input_fields(table) if with_input else table


def _input_fields(table: pa.Table) -> pa.Table:
    """The `input` JSON text column replaced by one column per input field, `input.<field>`."""
    position = table.column_names.index(INPUT_COLUMN)
    decoded = [
        None if text is None else orjson.loads(text)
        for chunk in table.column(position).chunks
        for text in chunk.to_pylist()
    ]
    try:
        fields = pa.array(decoded)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return table  # a field with values of mixed types: left as the JSON text
    del decoded
    if not pa.types.is_struct(fields.type):
        return table
    table = table.remove_column(position)
    for offset, field in enumerate(fields.type):
        child = pa.StructArray.field(fields, offset)
        table = table.add_column(position + offset, f"input.{field.name}", child)
    return table


def results_frame(
    engine: Engine,
    run_name: str,
    *,
    statuses: Collection[str] | None = None,
    with_input: bool = False,
) -> Any:
    """The run's results as a pandas DataFrame: nullable Int64 counts, Float64 cost."""
    pd = _optional("pandas", "results_frame")
    table = results_table(engine, run_name, statuses=statuses, with_input=with_input)
    nullable = {pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype()}
    # self_destruct frees each Arrow column once converted: the peak is not two whole copies.
    return table.to_pandas(types_mapper=nullable.get, self_destruct=True)


def results_dataset(
    engine: Engine,
    run_name: str,
    *,
    statuses: Collection[str] | None = None,
    with_input: bool = False,
) -> Any:
    """The run's results as a Hugging Face `datasets.Dataset` over the Arrow table."""
    datasets = _optional("datasets", "results_dataset")
    table = results_table(engine, run_name, statuses=statuses, with_input=with_input)
    return datasets.Dataset(table)


def _optional(module: str, what: str) -> Any:
    """The module of an optional extra of the same name; ConfigError naming the extra."""
    try:
        return __import__(module)
    except ImportError:
        raise ConfigError(
            f"{what} needs {module}: pip install 'llm-batch-ledger[{module}]'"
        ) from None
