"""query indexes: a request's cost, and the indexes behind the queries a user runs at scale

`bench/scale.py` times each query at 10M request rows: the failed requests of a run, the most
expensive requests, `ledger status` and `run_progress` (issue 16).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP VIEW run_progress")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        # Priced per request at normalize; NULL while pending or when the model has no price.
        batch_op.add_column(sa.Column("cost_usd", sa.Double(), nullable=True))
        # A run's requests of one status (its failures, its per-status counts) without a scan.
        batch_op.create_index("ix_requests_run_status", ["run_id", "status"], unique=False)
        # The most expensive requests: the top of this index, not a sort of every row.
        batch_op.create_index("ix_requests_cost_usd", ["cost_usd"], unique=False)
    # Counting a run's succeeded requests walked a million index entries per 1M-request run;
    # they are the run's request count less the rest, which are few once a run is done.
    create_run_progress(
        "r.request_count - (SELECT COUNT(*) FROM requests q WHERE q.run_id = r.id "
        "AND q.status IN ('pending', 'failed', 'expired', 'cancelled', 'missing'))"
    )


def downgrade() -> None:
    op.execute("DROP VIEW run_progress")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_cost_usd")
        batch_op.drop_index("ix_requests_run_status")
        batch_op.drop_column("cost_usd")
    create_run_progress(
        "(SELECT COUNT(*) FROM requests q WHERE q.run_id = r.id AND q.status = 'succeeded')"
    )


def create_run_progress(requests_succeeded: str) -> None:
    """The `run_progress` view of migration 0001, with `requests_succeeded` computed as given."""
    if op.get_bind().dialect.name == "postgresql":
        created_at_utc = "to_timestamp(r.created_at)"
    else:
        created_at_utc = "strftime('%Y-%m-%d %H:%M:%f', r.created_at, 'unixepoch')"
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
               {requests_succeeded} AS requests_succeeded,
               (SELECT COUNT(*) FROM requests q
                 WHERE q.run_id = r.id AND q.status = 'failed') AS requests_failed,
               (SELECT COUNT(*) FROM requests q
                 WHERE q.run_id = r.id AND q.status IN ('expired', 'cancelled', 'missing'))
                   AS requests_not_run,
               (SELECT COALESCE(SUM(j.input_tokens), 0) FROM jobs j WHERE j.run_id = r.id)
                   AS input_tokens,
               (SELECT COALESCE(SUM(j.output_tokens), 0) FROM jobs j WHERE j.run_id = r.id)
                   AS output_tokens,
               (SELECT COALESCE(SUM(j.cost_usd), 0) FROM jobs j WHERE j.run_id = r.id)
                   AS cost_usd
        FROM runs r
    """)
