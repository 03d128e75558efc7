"""The ledger's tables as typed SQLAlchemy models.

The schema itself is created only by the Alembic migrations in `migrations/`; a test proves these
models and the migrated database do not drift apart.

Times are Unix epoch seconds (float) taken from the database's clock (`ledger.core.db.db_now`), so
several machines sharing one PostgreSQL ledger agree on leases and due times. The SQL views
(`docs/schema.md`) show them as readable timestamps.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Run(Base):
    """One submission of one input file: the user's unit of work."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    provider: Mapped[str] = mapped_column(String(40))
    endpoint: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    input_path: Mapped[str] = mapped_column(Text)
    input_sha256: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Double)


class Job(Base):
    """One provider batch: a shard of a run moving through the states of `ledger.core.states`."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("run_id", "shard_index", name="uq_jobs_run_shard"),
        Index("ix_jobs_state_next_check", "state", "next_check_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    shard_index: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(40))
    base_url: Mapped[str | None] = mapped_column(Text)
    endpoint: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    # The shard's input file, as built.
    input_path: Mapped[str] = mapped_column(Text)
    input_sha256: Mapped[str] = mapped_column(String(64))
    input_bytes: Mapped[int] = mapped_column(Integer)
    request_count: Mapped[int] = mapped_column(Integer)
    est_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # The tag of the current remote side effect (upload or create), recorded before the call and
    # sent as file name / batch metadata, so a crash is recovered by adoption, not repetition.
    submit_token: Mapped[str | None] = mapped_column(String(64))
    input_file_id: Mapped[str | None] = mapped_column(String(200))
    # The upload's creation time by the provider's clock: it bounds the search for a batch
    # created before a crash, since our clock and the provider's may disagree.
    input_file_created_at: Mapped[float | None] = mapped_column(Double)
    batch_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    provider_status: Mapped[str | None] = mapped_column(String(40))
    # The batch's current run of 404s after the grace (how many, since when by the database
    # clock): one 404 proves nothing, so a batch is declared missing only after a streak.
    not_found_count: Mapped[int | None] = mapped_column(Integer)
    first_not_found_at: Mapped[float | None] = mapped_column(Double)
    output_file_id: Mapped[str | None] = mapped_column(String(200))
    error_file_id: Mapped[str | None] = mapped_column(String(200))
    output_path: Mapped[str | None] = mapped_column(Text)
    error_path: Mapped[str | None] = mapped_column(Text)
    results_path: Mapped[str | None] = mapped_column(Text)
    # Where the job's artifacts are (`ledger.artifacts.ArtifactRef` strings, e.g.
    # `db:sha256:<hex>#size=<n>`): the shard, the downloaded output and error files, and the
    # normalized results. Any machine reaching the ledger reads them from there, verified.
    input_ref: Mapped[str | None] = mapped_column(Text)
    output_ref: Mapped[str | None] = mapped_column(Text)
    error_ref: Mapped[str | None] = mapped_column(Text)
    results_ref: Mapped[str | None] = mapped_column(Text)
    requests_total: Mapped[int | None] = mapped_column(Integer)
    requests_completed: Mapped[int | None] = mapped_column(Integer)
    requests_failed: Mapped[int | None] = mapped_column(Integer)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Double)
    last_error: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    parent_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    # Why no reconciler may take the job yet ("dry run"); NULL: free to send. A dry run's jobs
    # wait here until `ledger send` or a submit without --dry-run releases them.
    held_reason: Mapped[str | None] = mapped_column(String(40))
    # The job's reservation (ledger.spend), written with its create intent: the estimated cost
    # it holds against every budget cap until its actual cost is known, and the provider account
    # whose enqueued-token queue its estimated input tokens count against (a name, never a key).
    est_cost_usd: Mapped[float | None] = mapped_column(Double)
    account: Mapped[str | None] = mapped_column(String(200))
    # Why the create step holds the job back now (a budget cap, a token quota, a paused
    # provider), with by how much; NULL when nothing holds it.
    waiting_for: Mapped[str | None] = mapped_column(Text)
    # Leasing: a reconciler owns a job while lease_expires_at is in the future; every claim bumps
    # the fence, so a writer whose lease lapsed (and was taken over) can no longer write.
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[float | None] = mapped_column(Double)
    fence: Mapped[int] = mapped_column(Integer, default=0)
    next_check_at: Mapped[float | None] = mapped_column(Double)
    poll_interval: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    submitted_at: Mapped[float | None] = mapped_column(Double)
    finished_at: Mapped[float | None] = mapped_column(Double)


class BudgetCap(Base):
    """A spending cap recorded in the ledger (`ledger budget set`, `submit --max-cost`); it wins
    over ledger.toml's `[budget]` for the same scope."""

    __tablename__ = "budget_caps"

    #: `daily`, `provider:NAME` (per UTC day) or `run:NAME` (the run's whole life).
    scope: Mapped[str] = mapped_column(String(250), primary_key=True)
    usd: Mapped[float] = mapped_column(Double)
    set_at: Mapped[float] = mapped_column(Double)


class ProviderPause(Base):
    """A provider whose account answered a quota or billing error: no batch is created for it
    until `until` (NULL: until `ledger budget resume`)."""

    __tablename__ = "provider_pauses"

    provider: Mapped[str] = mapped_column(String(40), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    paused_at: Mapped[float] = mapped_column(Double)
    until: Mapped[float | None] = mapped_column(Double)


class JobEvent(Base):
    """Append-only history: one row per state change of a job."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    # NULL when the event records the job's creation.
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    at: Mapped[float] = mapped_column(Double, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


#: The status of a request nothing has been heard about yet (its job not normalized).
PENDING = "pending"
#: The columns of a request row that hold its outcome: what normalizing writes, and what a retry
#: keeps of the earlier attempt.
OUTCOME_COLUMNS = (
    "status",
    "http_status",
    "error_code",
    "error_message",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)
_COPIED = tuple(column for column in OUTCOME_COLUMNS if column != "cost_usd")
#: The SET clause that gives a request row the outcome of the row its `reused_from` names, at no
#: cost (that row paid): a request copied from an earlier run (`submit --reuse`) and a duplicate
#: within a run alike. One row-value subquery: the source row is looked up once, not per column.
COPY_OUTCOME_OF_SOURCE = (
    f"({', '.join(_COPIED)}) = (SELECT {', '.join(f's.{c}' for c in _COPIED)} "
    "FROM requests s WHERE s.id = requests.reused_from), cost_usd = 0.0"
)


class Request(Base):
    """One input request (one line of the user's input) and its fate."""

    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("run_id", "custom_id", name="uq_requests_run_custom_id"),
        Index("ix_requests_job_status", "job_id", "status"),
        # The queries `bench/scale.py` times at 10M rows: a run's failures and per-status counts,
        # and the most expensive requests (migration 0005).
        Index("ix_requests_run_status", "run_id", "status"),
        Index("ix_requests_cost_usd", "cost_usd"),
        # The reuse lookup and a run's copied requests (migration 0011) hold some rows only:
        # `partial_indexes` below declares them.
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    custom_id: Mapped[str] = mapped_column(String(64))
    line_number: Mapped[int] = mapped_column(Integer)
    # pending until normalized; then succeeded, failed, expired, cancelled or missing.
    status: Mapped[str] = mapped_column(String(20))
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    est_input_tokens: Mapped[int | None] = mapped_column(Integer)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    # Priced at normalize from the result's own usage; NULL while pending or when the model has
    # no price.
    cost_usd: Mapped[float | None] = mapped_column(Double)
    # blake2b-128 of the request's provider and canonical body (endpoint, model, every parameter,
    # the input; not its custom_id): `submit --reuse` looks succeeded requests up by it. NULL for
    # rows recorded before migration 0011 (never reused).
    body_hash: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    # The request whose answer this one copied instead of being sent: a succeeded request of an
    # earlier run (`--reuse`), or the first copy of an identical request of the same run.
    reused_from: Mapped[int | None] = mapped_column(Integer)


class RequestAttempt(Base):
    """An earlier outcome of a request, kept when a retry moved it to a new job (the `requests`
    row holds only the latest)."""

    __tablename__ = "request_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    # The job that carried the request then, and what became of it there.
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    status: Mapped[str] = mapped_column(String(20))
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Double)
    # The retry job that took the request next.
    retry_job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    recorded_at: Mapped[float] = mapped_column(Double)


class JobParent(Base):
    """Every job a retry job took requests from (`jobs.parent_job_id` names only the first)."""

    __tablename__ = "job_parents"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    parent_job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)


def partial_indexes() -> tuple[Index, ...]:
    """The `requests` indexes that hold some rows only (migration 0011), bound to the table.

    Declared apart from `Request`, and only where the schema is compared or generated (the
    migration tests, Alembic's autogenerate): a dialect's `*_where` argument makes SQLAlchemy
    import that dialect, and PostgreSQL's (with asyncpg's and asyncio) added some 20 ms to every
    command's start-up (`bench/startup.py`), though only the migrations ever create an index.
    Calling it again returns the same indexes."""
    table = Base.metadata.tables[Request.__tablename__]
    declared = {str(index.name): index for index in table.indexes}
    wanted = (
        ("ix_requests_body_hash", ("body_hash",), "status = 'succeeded'"),
        ("ix_requests_run_reused", ("run_id", "reused_from"), "reused_from IS NOT NULL"),
    )
    return tuple(
        declared.get(name)
        or Index(
            name,
            *(table.c[column] for column in columns),
            sqlite_where=text(where),
            postgresql_where=text(where),
        )
        for name, columns, where in wanted
    )
