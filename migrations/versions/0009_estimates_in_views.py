"""estimated against actual in the views: job_overview gains `est_cost_usd`; run_progress gains
`est_input_tokens` and `est_cost_usd`, and its `cost_usd` is NULL (unknown) when a normalized job
of the run has no cost (its model has no price) instead of an undercount that reads as $0

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 07:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The request statuses run_progress counts as not run (as of migration 0006).
NOT_RUN = "'expired', 'cancelled', 'missing', 'unavailable'"


def upgrade() -> None:
    op.execute("DROP VIEW job_overview")
    op.execute("DROP VIEW run_progress")
    create_job_overview(estimates=True)
    create_run_progress(estimates=True)


def downgrade() -> None:
    op.execute("DROP VIEW job_overview")
    op.execute("DROP VIEW run_progress")
    create_job_overview(estimates=False)
    create_run_progress(estimates=False)


def _utc(column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"to_timestamp({column})"
    return f"strftime('%Y-%m-%d %H:%M:%f', {column}, 'unixepoch')"


def create_job_overview(*, estimates: bool) -> None:
    """The `job_overview` view of migration 0001, with the job's estimated cost when asked."""
    if op.get_bind().dialect.name == "postgresql":
        now = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
    else:
        now = "((julianday('now') - 2440587.5) * 86400.0)"
    est_cost = "j.est_cost_usd, " if estimates else ""
    op.execute(f"""
        CREATE VIEW job_overview AS
        SELECT j.id AS job_id, r.name AS run_name, j.shard_index, j.state, j.provider_status,
               j.batch_id, j.request_count, j.requests_completed, j.requests_failed,
               j.est_input_tokens, j.input_tokens, j.output_tokens, {est_cost}j.cost_usd,
               j.attempt, j.parent_job_id, j.last_error,
               {_utc("j.created_at")} AS created_at_utc,
               {_utc("j.updated_at")} AS updated_at_utc,
               COALESCE(j.finished_at, {now}) - j.created_at AS seconds_elapsed,
               {now} - j.updated_at AS seconds_in_state
        FROM jobs j
        JOIN runs r ON r.id = j.run_id
    """)


def create_run_progress(*, estimates: bool) -> None:
    """The `run_progress` view of migration 0006; with `estimates`, the run's estimated input
    tokens and cost (NULL while a job has no estimate: its model has no price, or a retry job not
    yet estimated), and its cost NULL when a normalized job's model has no price."""
    cost = "(SELECT COALESCE(SUM(j.cost_usd), 0) FROM jobs j WHERE j.run_id = r.id)"
    extra = ""
    if estimates:
        cost = f"""CASE WHEN EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = r.id
                     AND j.state = 'normalized' AND j.cost_usd IS NULL) THEN NULL
                 ELSE {cost} END"""
        extra = """,
               (SELECT COALESCE(SUM(j.est_input_tokens), 0) FROM jobs j WHERE j.run_id = r.id)
                   AS est_input_tokens,
               CASE WHEN EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = r.id
                     AND j.est_cost_usd IS NULL) THEN NULL
                 ELSE (SELECT COALESCE(SUM(j.est_cost_usd), 0) FROM jobs j
                       WHERE j.run_id = r.id) END AS est_cost_usd"""
    op.execute(f"""
        CREATE VIEW run_progress AS
        SELECT r.id AS run_id, r.name AS run_name, r.provider, r.endpoint, r.model,
               r.request_count, {_utc("r.created_at")} AS created_at_utc,
               (SELECT COUNT(*) FROM jobs j WHERE j.run_id = r.id) AS jobs,
               (SELECT COUNT(*) FROM jobs j
                 WHERE j.run_id = r.id AND j.state IN ('submitted', 'in_progress'))
                   AS jobs_in_flight,
               (SELECT COUNT(*) FROM jobs j
                 WHERE j.run_id = r.id AND j.state = 'normalized') AS jobs_normalized,
               r.request_count - (SELECT COUNT(*) FROM requests q WHERE q.run_id = r.id
                 AND q.status IN ('pending', 'failed', {NOT_RUN})) AS requests_succeeded,
               (SELECT COUNT(*) FROM requests q
                 WHERE q.run_id = r.id AND q.status = 'failed') AS requests_failed,
               (SELECT COUNT(*) FROM requests q
                 WHERE q.run_id = r.id AND q.status IN ({NOT_RUN}))
                   AS requests_not_run,
               (SELECT COALESCE(SUM(j.input_tokens), 0) FROM jobs j WHERE j.run_id = r.id)
                   AS input_tokens,
               (SELECT COALESCE(SUM(j.output_tokens), 0) FROM jobs j WHERE j.run_id = r.id)
                   AS output_tokens,
               {cost} AS cost_usd{extra}
        FROM runs r
    """)
