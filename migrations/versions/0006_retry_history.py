"""retry history: request_attempts (each request's earlier outcomes, kept when a retry moves it)
and job_parents (every job a retry job took requests from); run_progress counts the new request
status `unavailable` (result files gone) among the requests not run, not as succeeded

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 06:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


#: The request statuses run_progress counts as not run, before this revision and after it.
NOT_RUN_BEFORE = ("expired", "cancelled", "missing")
NOT_RUN = (*NOT_RUN_BEFORE, "unavailable")


def upgrade() -> None:
    op.execute("DROP VIEW run_progress")
    create_run_progress(NOT_RUN)
    op.create_table(
        "request_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(length=200), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("cost_usd", sa.Double(), nullable=True),
        sa.Column("retry_job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("recorded_at", sa.Double(), nullable=False),
    )
    op.create_index("ix_request_attempts_request_id", "request_attempts", ["request_id"])
    op.create_table(
        "job_parents",
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("parent_job_id", sa.Integer(), sa.ForeignKey("jobs.id"), primary_key=True),
    )


def downgrade() -> None:
    op.execute("DROP VIEW run_progress")
    create_run_progress(NOT_RUN_BEFORE)
    op.drop_table("job_parents")
    op.drop_index("ix_request_attempts_request_id", table_name="request_attempts")
    op.drop_table("request_attempts")


def create_run_progress(not_run: tuple[str, ...]) -> None:
    """The `run_progress` view of migration 0004, with `not_run` as the statuses of requests
    that did not run (succeeded: the run's request count less the pending, failed and not run,
    which are few once a run is done)."""
    if op.get_bind().dialect.name == "postgresql":
        created_at_utc = "to_timestamp(r.created_at)"
    else:
        created_at_utc = "strftime('%Y-%m-%d %H:%M:%f', r.created_at, 'unixepoch')"
    not_run_list = ", ".join(f"'{status}'" for status in not_run)
    op.execute(f"""
        CREATE VIEW run_progress AS
        SELECT r.id AS run_id, r.name AS run_name, r.provider, r.endpoint, r.model,
               r.request_count, {created_at_utc} AS created_at_utc,
               (SELECT COUNT(*) FROM jobs j WHERE j.run_id = r.id) AS jobs,
               (SELECT COUNT(*) FROM jobs j
                 WHERE j.run_id = r.id AND j.state IN ('submitted', 'in_progress'))
                   AS jobs_in_flight,
               (SELECT COUNT(*) FROM jobs j
                 WHERE j.run_id = r.id AND j.state = 'normalized') AS jobs_normalized,
               r.request_count - (SELECT COUNT(*) FROM requests q WHERE q.run_id = r.id
                 AND q.status IN ('pending', 'failed', {not_run_list})) AS requests_succeeded,
               (SELECT COUNT(*) FROM requests q
                 WHERE q.run_id = r.id AND q.status = 'failed') AS requests_failed,
               (SELECT COUNT(*) FROM requests q
                 WHERE q.run_id = r.id AND q.status IN ({not_run_list}))
                   AS requests_not_run,
               (SELECT COALESCE(SUM(j.input_tokens), 0) FROM jobs j WHERE j.run_id = r.id)
                   AS input_tokens,
               (SELECT COALESCE(SUM(j.output_tokens), 0) FROM jobs j WHERE j.run_id = r.id)
                   AS output_tokens,
               (SELECT COALESCE(SUM(j.cost_usd), 0) FROM jobs j WHERE j.run_id = r.id)
                   AS cost_usd
        FROM runs r
    """)
