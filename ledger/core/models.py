"""The ledger's tables, each declared as a class of its columns (SQLAlchemy Core).

The schema itself is created only by the Alembic migrations in `migrations/`; a test proves these
models and the migrated database do not drift apart.

Times are Unix epoch seconds (float) taken from the database's clock (`ledger.core.db.db_now`), so
several machines sharing one PostgreSQL ledger agree on leases and due times. The SQL views
(`docs/schema.md`) show them as readable timestamps.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

#: Every table of the ledger (the migrations create them; tests compare the two).
metadata = MetaData()


class Base:
    """A table declared as a class: its columns are class attributes (`Job.state`), and the
    class stands for its table in a statement (`select(Job)`, `insert(Request)`).

    Plain SQLAlchemy Core: the ledger reads and writes rows and never loads objects, and the
    ORM's declarative classes cost every command some 70 ms of start-up, importing
    `sqlalchemy.orm` and configuring the mappers (`bench/startup.py`: `ledger status` 429 ms
    with them, 355 ms without). A column that is NOT NULL in its migration says
    `nullable=False` (Core's columns allow NULL by default); `tests/unit/test_migrations.py`
    compares these tables with the migrated schema."""

    metadata: ClassVar[MetaData] = metadata
    __tablename__: ClassVar[str]
    __table__: ClassVar[Table]
    __table_args__: ClassVar[tuple[Any, ...]] = ()

    def __init_subclass__(cls) -> None:
        columns: list[Column[Any]] = []
        for key, value in vars(cls).items():
            if isinstance(value, Column):
                value.name = value.key = key
                columns.append(value)
        cls.__table__ = Table(cls.__tablename__, metadata, *columns, *cls.__table_args__)

    @classmethod
    def __clause_element__(cls) -> Table:
        return cls.__table__


class Run(Base):
    """One submission of one input file: the user's unit of work."""

    __tablename__ = "runs"

    id = Column(Integer, primary_key=True)
    name = Column(String(200), unique=True, nullable=False)
    provider = Column(String(40), nullable=False)
    endpoint = Column(String(100), nullable=False)
    model = Column(String(200), nullable=False)
    input_path = Column(Text, nullable=False)
    input_sha256 = Column(String(64), nullable=False)
    options = Column(JSON, default=dict, nullable=False)
    request_count = Column(Integer, default=0, nullable=False)
    created_at = Column(Double, nullable=False)


class Job(Base):
    """One provider batch: a shard of a run moving through the states of `ledger.core.states`."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("run_id", "shard_index", name="uq_jobs_run_shard"),
        Index("ix_jobs_state_next_check", "state", "next_check_at"),
    )

    id = Column(Integer, primary_key=True)
    run_id = Column(ForeignKey("runs.id"), index=True, nullable=False)
    shard_index = Column(Integer, nullable=False)
    state = Column(String(20), nullable=False)
    provider = Column(String(40), nullable=False)
    base_url = Column(Text)
    endpoint = Column(String(100), nullable=False)
    model = Column(String(200), nullable=False)
    # The shard's input file, as built.
    input_path = Column(Text, nullable=False)
    input_sha256 = Column(String(64), nullable=False)
    input_bytes = Column(Integer, nullable=False)
    request_count = Column(Integer, nullable=False)
    est_input_tokens = Column(Integer, default=0, nullable=False)
    # The tag of the current remote side effect (upload or create), recorded before the call and
    # sent as file name / batch metadata, so a crash is recovered by adoption, not repetition.
    submit_token = Column(String(64))
    input_file_id = Column(String(200))
    # The upload's creation time by the provider's clock: it bounds the search for a batch
    # created before a crash, since our clock and the provider's may disagree.
    input_file_created_at = Column(Double)
    batch_id = Column(String(200), unique=True)
    provider_status = Column(String(40))
    # The batch's current run of 404s after the grace (how many, since when by the database
    # clock): one 404 proves nothing, so a batch is declared missing only after a streak.
    not_found_count = Column(Integer)
    first_not_found_at = Column(Double)
    output_file_id = Column(String(200))
    error_file_id = Column(String(200))
    output_path = Column(Text)
    error_path = Column(Text)
    results_path = Column(Text)
    # Where the job's artifacts are (`ledger.artifacts.ArtifactRef` strings, e.g.
    # `db:sha256:<hex>#size=<n>`): the shard, the downloaded output and error files, and the
    # normalized results. Any machine reaching the ledger reads them from there, verified.
    input_ref = Column(Text)
    output_ref = Column(Text)
    error_ref = Column(Text)
    results_ref = Column(Text)
    requests_total = Column(Integer)
    requests_completed = Column(Integer)
    requests_failed = Column(Integer)
    input_tokens = Column(Integer)
    output_tokens = Column(Integer)
    cost_usd = Column(Double)
    last_error = Column(Text)
    attempt = Column(Integer, default=0, nullable=False)
    parent_job_id = Column(ForeignKey("jobs.id"))
    # Why no reconciler may take the job yet ("dry run"); NULL: free to send. A dry run's jobs
    # wait here until `ledger send` or a submit without --dry-run releases them.
    held_reason = Column(String(40))
    # The job's reservation (ledger.spend), written with its create intent: the estimated cost
    # it holds against every budget cap until its actual cost is known, and the provider account
    # whose enqueued-token queue its estimated input tokens count against (a name, never a key).
    est_cost_usd = Column(Double)
    account = Column(String(200))
    # Why the create step holds the job back now (a budget cap, a token quota, a paused
    # provider), with by how much; NULL when nothing holds it.
    waiting_for = Column(Text)
    # Leasing: a reconciler owns a job while lease_expires_at is in the future; every claim bumps
    # the fence, so a writer whose lease lapsed (and was taken over) can no longer write.
    lease_owner = Column(String(200))
    lease_expires_at = Column(Double)
    fence = Column(Integer, default=0, nullable=False)
    next_check_at = Column(Double)
    poll_interval = Column(Double)
    created_at = Column(Double, nullable=False)
    updated_at = Column(Double, nullable=False)
    submitted_at = Column(Double)
    finished_at = Column(Double)


class BudgetCap(Base):
    """A spending cap recorded in the ledger (`ledger budget set`, `submit --max-cost`); it wins
    over ledger.toml's `[budget]` for the same scope."""

    __tablename__ = "budget_caps"

    #: `daily`, `provider:NAME` (per UTC day) or `run:NAME` (the run's whole life).
    scope = Column(String(250), primary_key=True)
    usd = Column(Double, nullable=False)
    set_at = Column(Double, nullable=False)


class ProviderPause(Base):
    """A provider whose account answered a quota or billing error: no batch is created for it
    until `until` (NULL: until `ledger budget resume`)."""

    __tablename__ = "provider_pauses"

    provider = Column(String(40), primary_key=True)
    reason = Column(Text, nullable=False)
    paused_at = Column(Double, nullable=False)
    until = Column(Double)


class JobEvent(Base):
    """Append-only history: one row per state change of a job."""

    __tablename__ = "job_events"

    id = Column(Integer, primary_key=True)
    job_id = Column(ForeignKey("jobs.id"), index=True, nullable=False)
    # NULL when the event records the job's creation.
    from_state = Column(String(20))
    to_state = Column(String(20), nullable=False)
    at = Column(Double, index=True, nullable=False)
    actor = Column(String(200), nullable=False)
    detail = Column(JSON)


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

    id = Column(Integer, primary_key=True)
    run_id = Column(ForeignKey("runs.id"), nullable=False)
    job_id = Column(ForeignKey("jobs.id"), nullable=False)
    custom_id = Column(String(64), nullable=False)
    line_number = Column(Integer, nullable=False)
    # pending until normalized; then succeeded, failed, expired, cancelled or missing.
    status = Column(String(20), nullable=False)
    http_status = Column(Integer)
    error_code = Column(String(200))
    error_message = Column(Text)
    est_input_tokens = Column(Integer)
    input_tokens = Column(Integer)
    output_tokens = Column(Integer)
    # Priced at normalize from the result's own usage; NULL while pending or when the model has
    # no price.
    cost_usd = Column(Double)
    # blake2b-128 of the request's provider and canonical body (endpoint, model, every parameter,
    # the input; not its custom_id): `submit --reuse` looks succeeded requests up by it. NULL for
    # rows recorded before migration 0011 (never reused).
    body_hash = Column(LargeBinary(16))
    # The request whose answer this one copied instead of being sent: a succeeded request of an
    # earlier run (`--reuse`), or the first copy of an identical request of the same run.
    reused_from = Column(Integer)


class RequestAttempt(Base):
    """An earlier outcome of a request, kept when a retry moved it to a new job (the `requests`
    row holds only the latest)."""

    __tablename__ = "request_attempts"

    id = Column(Integer, primary_key=True)
    request_id = Column(ForeignKey("requests.id"), index=True, nullable=False)
    # The job that carried the request then, and what became of it there.
    job_id = Column(ForeignKey("jobs.id"), nullable=False)
    status = Column(String(20), nullable=False)
    http_status = Column(Integer)
    error_code = Column(String(200))
    error_message = Column(Text)
    input_tokens = Column(Integer)
    output_tokens = Column(Integer)
    cost_usd = Column(Double)
    # The retry job that took the request next.
    retry_job_id = Column(ForeignKey("jobs.id"), nullable=False)
    recorded_at = Column(Double, nullable=False)


class JobParent(Base):
    """Every job a retry job took requests from (`jobs.parent_job_id` names only the first)."""

    __tablename__ = "job_parents"

    job_id = Column(ForeignKey("jobs.id"), primary_key=True)
    parent_job_id = Column(ForeignKey("jobs.id"), primary_key=True)


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
