"""Reading the user's input file: JSONL or CSV, streamed in blocks, hashed as it is read.

Records come out in chunks of `(line_number, object_or_problem, raw_line)`: a decoded row, or the
`RowProblem` that made it unreadable (invalid UTF-8, not JSON, a cell of the wrong type), so the
caller decides whether a bad row stops the build or is skipped. Blank lines are not records. A
UTF-8 byte-order mark at the start (spreadsheet exports) is dropped; the file's SHA-256 is of its
bytes as they are.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from ledger.build.bodies import RowProblem
from ledger.errors import InputError

#: How much of the input is read at a time.
BLOCK_SIZE = 1 << 20
#: Records handed over at a time for CSV (JSONL hands over one block's lines).
CSV_CHUNK = 4096
BOM = b"\xef\xbb\xbf"

Format = Literal["jsonl", "csv", "tsv"]
Record = tuple[int, "dict[str, Any] | RowProblem", bytes]

_FORMAT_OF_SUFFIX: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
}

#: CSV columns read as JSON, and as numbers; other known columns stay text, unknown ones are
#: ignored (they stay in the user's file, joinable by custom_id).
_CSV_JSON_COLUMNS = ("messages", "metadata")
_CSV_KNOWN_COLUMNS = (
    "id",
    "custom_id",
    "prompt",
    "messages",
    "input",
    "model",
    "max_output_tokens",
    "temperature",
    "metadata",
)

# Prompts are often longer than csv's default 128 KiB field limit.
csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))


class InputFile:
    """One input file, open for a single streamed pass (use as a context manager)."""

    def __init__(self, path: str | Path, display: str | None = None) -> None:
        self.path = Path(path)
        #: How messages name the file: as the user gave it.
        self.display = display if display is not None else str(path)
        self._hash = hashlib.sha256()
        self._handle: IO[bytes] | None = None
        self._bad_utf8: dict[int, str] = {}
        self.format: Format = "jsonl"

    def __enter__(self) -> InputFile:
        try:
            self._handle = open(self.path, "rb")
        except FileNotFoundError:
            raise InputError(f"{self.display}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{self.display}: is a directory, not an input file") from None
        except OSError as error:
            raise InputError(f"{self.display}: cannot read ({error.strerror})") from None
        self.format = self._detect_format()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._handle is not None:
            self._handle.close()

    @property
    def sha256(self) -> str:
        """The digest of the bytes read so far (all of them after `finish_hash`)."""
        return self._hash.hexdigest()

    def finish_hash(self) -> str:
        """Hash what a build that stopped early did not read; return the whole file's digest."""
        assert self._handle is not None
        while block := self._handle.read(BLOCK_SIZE):
            self._hash.update(block)
        return self.sha256

    def _detect_format(self) -> Format:
        known = _FORMAT_OF_SUFFIX.get(self.path.suffix.lower())
        if known:
            return known
        assert self._handle is not None
        start = self._handle.read(4096)
        self._handle.seek(0)
        first = start.removeprefix(BOM).lstrip()[:1]
        return "jsonl" if first in (b"{", b"[") else "csv"

    def chunks(self) -> Iterator[list[Record]]:
        """The file's records, a chunk at a time, in file order."""
        if self.format == "jsonl":
            for lines in self._lines():
                yield _jsonl_records(lines)
        else:
            yield from self._csv_chunks("\t" if self.format == "tsv" else ",")

    def _lines(self) -> Iterator[list[tuple[int, bytes]]]:
        """Numbered lines (without their newline), a block's worth at a time."""
        assert self._handle is not None
        read, update = self._handle.read, self._hash.update
        carry = b""
        number = 0
        block = read(BLOCK_SIZE)
        update(block)
        block = block.removeprefix(BOM)
        while block:
            lines = (carry + block).split(b"\n") if carry else block.split(b"\n")
            carry = lines.pop()
            yield list(zip(range(number + 1, number + 1 + len(lines)), lines, strict=True))
            number += len(lines)
            block = read(BLOCK_SIZE)
            update(block)
        if carry:
            yield [(number + 1, carry)]

    def _text_lines(self) -> Iterator[str]:
        """Decoded lines for the csv module, remembering which ones were not UTF-8."""
        for lines in self._lines():
            for number, line in lines:
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as error:
                    self._bad_utf8[number] = _utf8_problem(line, error)
                    text = line.decode("utf-8", "replace")
                yield text + "\n"

    def _csv_chunks(self, delimiter: str) -> Iterator[list[Record]]:
        reader = csv.reader(self._text_lines(), delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                return
            columns = self._csv_columns(header)
            chunk: list[Record] = []
            start = reader.line_num + 1
            for cells in reader:
                number, start = start, reader.line_num + 1
                if not cells or cells == [""]:
                    continue
                chunk.append((number, self._csv_record(cells, columns, header, number), b""))
                if len(chunk) >= CSV_CHUNK:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
        except csv.Error as error:
            raise InputError(f"{self.display}:{reader.line_num}: bad CSV: {error}") from None

    def _csv_columns(self, header: list[str]) -> dict[str, int]:
        names = [name.strip() for name in header]
        if 1 in self._bad_utf8:
            raise InputError(f"{self.display}:1: {self._bad_utf8[1]}")
        for index, name in enumerate(names):
            if name in names[:index]:
                raise InputError(f'{self.display}:1: bad CSV header: column "{name}" twice')
        if not any(name in names for name in ("prompt", "messages", "input")):
            raise InputError(
                f"{self.display}:1: bad CSV header: no prompt, messages or input column "
                f"(columns: {', '.join(names) or 'none'})"
            )
        return {name: index for index, name in enumerate(names) if name in _CSV_KNOWN_COLUMNS}

    def _csv_record(
        self, cells: list[str], columns: dict[str, int], header: list[str], number: int
    ) -> dict[str, Any] | RowProblem:
        if self._bad_utf8:
            bad = [n for n in self._bad_utf8 if n >= number]
            if bad:
                message = self._bad_utf8[bad[0]]
                self._bad_utf8.clear()
                return RowProblem(message)
        if len(cells) > len(header):
            return RowProblem(f"{len(cells)} cells, but the header has {len(header)} columns")
        record: dict[str, Any] = {}
        for name, index in columns.items():
            if index >= len(cells) or cells[index] == "":
                continue
            try:
                record[name] = _csv_value(name, cells[index])
            except RowProblem as problem:
                return problem
        return record


def _csv_value(name: str, cell: str) -> Any:
    """A CSV cell as the value its column holds."""
    if name in _CSV_JSON_COLUMNS:
        try:
            return orjson.loads(cell)
        except orjson.JSONDecodeError:
            raise RowProblem("not valid JSON", name) from None
    if name == "max_output_tokens":
        try:
            return int(cell)
        except ValueError:
            raise RowProblem("must be a whole number", name) from None
    if name == "temperature":
        try:
            return float(cell)
        except ValueError:
            raise RowProblem("must be a number", name) from None
    return cell


def _jsonl_records(lines: list[tuple[int, bytes]]) -> list[Record]:
    """Parsed JSONL lines; blank lines are left out."""
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    records: list[Record] = []
    append = records.append
    for number, line in lines:
        try:
            value = loads(line)
        except decode_error as error:
            if line.strip():
                append((number, _json_problem(line, error), line))
            continue
        if type(value) is not dict:
            append((number, RowProblem(f"not a JSON object (a {_json_type(value)})"), line))
        else:
            append((number, value, line))
    return records


def _json_problem(line: bytes, error: orjson.JSONDecodeError) -> RowProblem:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return RowProblem(_utf8_problem(line, bad))
    return RowProblem(f"not valid JSON ({error})")


def _utf8_problem(line: bytes, error: UnicodeDecodeError) -> str:
    return f"invalid UTF-8 (byte 0x{line[error.start]:02x} at column {error.start + 1})"


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return type(value).__name__
