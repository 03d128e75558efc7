"""`ledger results --with-input`: each result carries the user's own input row (an eval's gold
label next to the answer), joined by the line number the build gave the row.

The input is read again, streamed once beside the results (both are in input order), so memory
stays one row; every field of the row is kept, columns the build ignored included (CSV cells as
text). The file must be the one the run was built from: its SHA-256 is checked first.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ledger.build.inputs import BLOCK_SIZE, BOM, InputFile
from ledger.core.models import Run
from ledger.errors import InputError


def run_input(engine: Engine, run_name: str) -> Path:
    """The input file `run_name` was built from, checked to be unchanged (InputError else)."""
    with engine.connect() as connection:
        run = connection.execute(
            select(Run.input_path, Run.input_sha256).where(Run.name == run_name)
        ).first()
    if run is None:
        raise InputError(f"no run named {run_name!r}")
    path = Path(run.input_path)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while block := handle.read(BLOCK_SIZE):
                digest.update(block)
    except OSError as error:
        raise InputError(f"--with-input: cannot read the run's input {path}: {error}") from None
    if digest.hexdigest() != run.input_sha256:
        raise InputError(f"--with-input: {path} changed since run {run_name!r} was built")
    return path


def input_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every row of an input file with its line number, as the build numbered them."""
    with InputFile(path) as probe:
        fmt = probe.format
    if fmt == "jsonl":
        yield from _jsonl_rows(path)
    else:
        yield from _csv_rows(path, "\t" if fmt == "tsv" else ",")


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.removeprefix(BOM) if number == 1 else line
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a blank line (a bad one never made a result)
            if isinstance(value, dict):
                yield number, value


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        header = [name.strip() for name in next(reader, [])]
        start = reader.line_num + 1
        for cells in reader:
            number, start = start, reader.line_num + 1
            yield number, dict(zip(header, cells, strict=False))


def with_input(
    records: Iterable[tuple[bytes, dict[str, Any]]], rows: Iterator[tuple[int, dict[str, Any]]]
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Each (raw line, record) of results in input order with its row added as `input` (None
    when the row cannot be found); the raw line is the record serialized again."""
    current: tuple[int, dict[str, Any]] | None = next(rows, None)
    for _, record in records:
        line_number = record["line_number"]
        while current is not None and current[0] < line_number:
            current = next(rows, None)
        row = current[1] if current is not None and current[0] == line_number else None
        joined = {**record, "input": row}
        yield orjson.dumps(joined) + b"\n", joined
