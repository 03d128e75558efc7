"""A run's results in memory for analysis: `Ledger.results_frame` (a pandas DataFrame) and
`Ledger.results_dataset` (a Hugging Face `datasets.Dataset`).

Both are built from the Arrow batches `ledger results --format parquet` writes
(`ledger.results.parquet`: the CSV columns typed, plus `cost_usd`), one batch at a time, so the
build holds the finished table and one batch, never a copy of the run's lines.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy.engine import Engine

from ledger.errors import ConfigError
from ledger.results.export import CSV_COLUMNS, csv_row, find_run_results, merged_results
from ledger.results.parquet import arrow_schema, record_batches


def results_table(engine: Engine, run_name: str, *, statuses: Collection[str] | None = None) -> Any:
    """The run's results as one `pyarrow.Table`, in input order."""
    import pyarrow as pa

    shards = find_run_results(engine, run_name).shards
    records = (record for _, record in merged_results(shards, statuses))
    batches = record_batches(engine, run_name, records, columns=CSV_COLUMNS, csv_row=csv_row)
    return pa.Table.from_batches(batches, schema=arrow_schema(CSV_COLUMNS))


def results_frame(engine: Engine, run_name: str, *, statuses: Collection[str] | None = None) -> Any:
    """The run's results as a pandas DataFrame: nullable Int64 counts, Float64 cost."""
    pd = _optional("pandas", "pandas", "results_frame")
    import pyarrow as pa

    table = results_table(engine, run_name, statuses=statuses)
    nullable = {pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype()}
    # self_destruct frees each Arrow column once converted: the peak is not two whole copies.
    return table.to_pandas(types_mapper=nullable.get, self_destruct=True)


def results_dataset(
    engine: Engine, run_name: str, *, statuses: Collection[str] | None = None
) -> Any:
    """The run's results as a Hugging Face `datasets.Dataset` over the Arrow table."""
    datasets = _optional("datasets", "datasets", "results_dataset")
    return datasets.Dataset(results_table(engine, run_name, statuses=statuses))


def _optional(module: str, extra: str, what: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ConfigError(
            f"{what} needs {module}: pip install 'llm-batch-ledger[{extra}]'"
        ) from None
