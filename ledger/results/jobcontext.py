"""What normalizing a job reads of it before it starts: the job's row, its files, its reader
and how its batch ended (`ledger.results.normalize`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from sqlalchemy import select
from sqlalchemy.engine import Engine

from adapters.registry import result_reader
from adapters.results import ResultReader
from ledger.artifacts import RecordedFile
from ledger.core.models import Job, Run
from ledger.core.states import State
from ledger.core.store import StaleWrite
from ledger.errors import LedgerError
from ledger.results.unanswered import BatchEnd, batch_end
from ledger.results.validate import SchemaBook
from ledger.usage.pricing import Price


@dataclass(frozen=True)
class JobContext:
    """What normalizing a job reads of it, once."""

    job_id: int
    run_id: int
    shard_index: int
    model: str
    #: The batch provider the job went to (a run may go to several).
    provider: str
    batch_id: str | None
    input_path: Path
    #: The shard and the downloaded files, read from the artifact store (verified) when recorded
    #: there, else from their local paths.
    input: RecordedFile
    provider_files: tuple[RecordedFile, ...]
    #: Reads the provider's lines: the reader of the job's `provider`.
    reader: ResultReader
    json_by_default: bool
    #: How the batch ended: what a request no line answered ends as.
    end: BatchEnd
    #: The job's model's price; None: unknown, so the job's cost is unknown.
    price: Price | None = None
    #: The JSON Schema each input request declared, read with the input shard.
    schemas: SchemaBook = field(default_factory=SchemaBook)


def load_job(engine: Engine, job_id: int) -> JobContext:
    """The `downloaded` job `job_id`; StaleWrite when it is in another state."""
    with engine.connect() as connection:
        job = connection.execute(select(Job).where(Job.id == job_id)).one_or_none()
        if job is None:
            raise LedgerError(f"no job with id {job_id}")
        if job.state != State.DOWNLOADED.value:
            raise StaleWrite(f"job {job_id} is {job.state}, not {State.DOWNLOADED.value}")
        options = connection.execute(select(Run.options).where(Run.id == job.run_id)).scalar_one()
        end = batch_end(connection, job)
    options = options or {}
    return JobContext(
        job_id=job.id,
        run_id=job.run_id,
        shard_index=job.shard_index,
        model=job.model,
        provider=job.provider,
        batch_id=job.batch_id,
        input_path=Path(job.input_path),
        input=cast(RecordedFile, RecordedFile.of(job.input_ref, job.input_path, engine)),
        provider_files=tuple(
            found
            for ref, path in ((job.output_ref, job.output_path), (job.error_ref, job.error_path))
            if (found := RecordedFile.of(ref, path, engine)) is not None
        ),
        reader=result_reader(job.provider),
        json_by_default=bool(options.get("json_mode")) or options.get("json_schema") is not None,
        end=end,
    )
