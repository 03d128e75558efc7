"""A run's requests for the dashboard: one filtered page at a time, and one request in full.

A page is at most PAGE_SIZE rows of SQL (`LIMIT`/`OFFSET` over the input order), whatever the
run's size. A request's input and result are not in the database: they are read from the shard
file its job sent and from that job's normalized results file, one line each.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from ledger.artifacts import ArtifactError, RecordedFile
from ledger.core.models import Job, Request
from ledger.core.states import State

SelectT = TypeVar("SelectT", bound=Select)

#: Rows on one page of the requests list.
PAGE_SIZE = 50
#: The longest input or result shown in full, in characters; longer ones are cut.
SHOWN_CHARS = 20_000


@dataclass(frozen=True)
class RequestFilter:
    """The requests list's filter; an empty field matches everything."""

    status: str = ""
    model: str = ""
    error_code: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, params: Any) -> RequestFilter:
        try:
            page = max(1, int(params.get("page") or 1))
        except ValueError:
            page = 1
        return cls(
            status=params.get("status") or "",
            model=params.get("model") or "",
            error_code=params.get("error_code") or "",
            page=page,
        )

    def query(self, **changes: Any) -> dict[str, Any]:
        """The filter as query parameters (without empty ones), with `changes` applied."""
        values = {
            "status": self.status,
            "model": self.model,
            "error_code": self.error_code,
            "page": self.page,
            **changes,
        }
        return {k: v for k, v in values.items() if v not in ("", None, 1)}

    def apply(self, query: SelectT) -> SelectT:
        if self.status:
            query = query.where(Request.status == self.status)
        if self.model:
            query = query.where(Job.model == self.model)
        if self.error_code:
            query = query.where(Request.error_code == self.error_code)
        return query


@dataclass(frozen=True)
class RequestRow:
    id: int
    custom_id: str
    line_number: int
    status: str
    http_status: int | None
    error_code: str | None
    error_message: str | None
    input_tokens: int | None
    output_tokens: int | None
    model: str
    job_id: int


@dataclass(frozen=True)
class RequestPage:
    rows: list[RequestRow]
    matching: int
    chosen: RequestFilter
    #: What the filter can choose from, for this run.
    statuses: list[str]
    models: list[str]
    error_codes: list[str]

    @property
    def pages(self) -> int:
        return max(1, -(-self.matching // PAGE_SIZE))

    @property
    def first_row(self) -> int:
        return (self.chosen.page - 1) * PAGE_SIZE + 1 if self.rows else 0

    @property
    def last_row(self) -> int:
        return self.first_row + len(self.rows) - 1 if self.rows else 0


#: What a request row shows, in the list and on its own page (which adds its job's files).
REQUEST_COLUMNS = (
    Request.id,
    Request.custom_id,
    Request.line_number,
    Request.status,
    Request.http_status,
    Request.error_code,
    Request.error_message,
    Request.input_tokens,
    Request.output_tokens,
    Job.model,
    Request.job_id,
)


def request_page(connection: Connection, run_id: int, chosen: RequestFilter) -> RequestPage:
    """One page of the run's requests matching `chosen`, in input order."""
    columns = REQUEST_COLUMNS
    counted = (
        select(func.count())
        .select_from(Request)
        .join(Job, Job.id == Request.job_id)
        .where(Request.run_id == run_id)
    )
    matching = connection.execute(chosen.apply(counted)).scalar_one()
    # A page past the end (an old link, a run that shrank under a filter) shows the last one.
    chosen = replace(chosen, page=min(chosen.page, max(1, -(-matching // PAGE_SIZE))))
    base = select(*columns).join(Job, Job.id == Request.job_id).where(Request.run_id == run_id)
    rows = connection.execute(
        chosen.apply(base)
        .order_by(Request.line_number, Request.id)
        .limit(PAGE_SIZE)
        .offset((chosen.page - 1) * PAGE_SIZE)
    ).all()
    statuses = connection.execute(
        select(Request.status).where(Request.run_id == run_id).group_by(Request.status)
    ).scalars()
    models = connection.execute(
        select(Job.model).where(Job.run_id == run_id).group_by(Job.model).order_by(Job.model)
    ).scalars()
    codes = connection.execute(
        select(Request.error_code)
        .where(Request.run_id == run_id, Request.error_code.is_not(None))
        .group_by(Request.error_code)
        .order_by(Request.error_code)
    ).scalars()
    return RequestPage(
        rows=[RequestRow(*row) for row in rows],
        matching=matching,
        chosen=chosen,
        statuses=sorted(statuses),
        models=list(models),
        error_codes=[code for code in codes if code],
    )


@dataclass(frozen=True)
class RequestDetail:
    row: RequestRow
    job_state: str
    input_path: str
    #: The request line as sent (pretty JSON), or why it cannot be shown.
    input_text: str
    #: The normalized result (pretty JSON), or why there is none yet.
    result_text: str
    #: The answer's text, when the result has one.
    answer: str | None


def request_detail(connection: Connection, run_id: int, request_id: int) -> RequestDetail | None:
    """One request of the run with its input line and its result, or None when there is none."""
    found: Any = connection.execute(
        select(
            *REQUEST_COLUMNS,
            Job.state,
            Job.input_path,
            Job.results_path,
            Job.input_ref,
            Job.results_ref,
        )
        .join(Job, Job.id == Request.job_id)
        .where(Request.run_id == run_id, Request.id == request_id)
    ).first()
    if found is None:
        return None
    row = RequestRow(*found[:11])
    state, input_path, results_path, input_ref, results_ref = found[11:]
    engine = connection.engine
    sent = _line_of(RecordedFile.of(input_ref, input_path, engine), row.custom_id)
    input_text = _shown(sent) if isinstance(sent, dict) else sent
    answer = None
    results = RecordedFile.of(results_ref, results_path, engine)
    if state != State.NORMALIZED.value or results is None:
        result_text = f"no result yet: job {row.job_id} is {state}"
    else:
        result = _line_of(results, row.custom_id)
        result_text = _shown(result) if isinstance(result, dict) else result
        if isinstance(result, dict) and isinstance(result.get("text"), str):
            answer = _cut(result["text"])
    return RequestDetail(row, state, input_path, input_text, result_text, answer)


def _line_of(file: RecordedFile | None, custom_id: str) -> dict[str, Any] | str:
    """The JSON line of `file` (a stored artifact, verified, or a local path) whose custom_id is
    `custom_id`, or why it is not there."""
    if file is None:
        return f"job has no file holding {custom_id}"
    path = file.name
    needle = orjson.dumps(custom_id)
    found: dict[str, Any] | None = None
    try:
        with file.open() as lines:
            for raw in lines:
                # Parse only the lines that can match: a shard can hold 50,000 of them.
                if found is not None or needle not in raw:
                    continue
                record = orjson.loads(raw)
                if isinstance(record, dict) and record.get("custom_id") == custom_id:
                    found = record
                    if file.ref is None:
                        break  # a stored file is read to its end: only then is it verified
    except ArtifactError as error:
        return f"cannot read {path}: {error}"
    except OSError as error:
        return f"cannot read {path}: {error.strerror or error}"
    except orjson.JSONDecodeError:
        return f"{path} has a line that is not JSON"
    return found if found is not None else f"{custom_id} is not in {path}"


def _shown(record: dict[str, Any]) -> str:
    return _cut(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())


def _cut(text: str) -> str:
    if len(text) <= SHOWN_CHARS:
        return text
    return text[:SHOWN_CHARS] + f"\n... ({len(text) - SHOWN_CHARS:,} more characters not shown)"
