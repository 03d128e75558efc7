"""answer verdicts: run_progress counts the new request statuses `invalid` (the answer breaks its
request's JSON Schema), `truncated` (cut at the output token limit) and `filtered` (stopped by a
content filter or refused) in a column of their own, `requests_unusable`, not as succeeded

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 08:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Answered, but not an answer worth scoring (`ledger.results.validate`).
UNUSABLE = ("invalid", "truncated", "filtered")
#: The request statuses run_progress counts as not run (since revision 0006).
NOT_RUN = ("expired", "cancelled", "missing", "unavailable")


def upgrade() -> None:
    op.execute("DROP VIEW run_progress")
    create_run_progress(UNUSABLE)


def downgrade() -> None:
    op.execute("DROP VIEW run_progress")
    create_run_progress(())  # revision 0009's view, as it was


def create_run_progress(unusable_statuses: tuple[str, ...]) -> None:
    """The `run_progress` view of migration 0009 (estimates beside actuals, an unknown cost NULL),
    with `unusable_statuses` counted apart (in `requests_unusable`; none: no such column):
    succeeded is the run's request count less the pending, failed, unusable and not run."""
    if op.get_bind().dialect.name == "postgresql":
        created_at_utc = "to_timestamp(r.created_at)"
    else:
        created_at_utc = "strftime('%Y-%m-%d %H:%M:%f', r.created_at, 'unixepoch')"
    not_run = ", ".join(f"'{status}'" for status in NOT_RUN)
    unusable = "".join(f", '{status}'" for status in unusable_statuses)
    unusable_column = (
        f""",
               (SELECT COUNT(*) FROM requests q
                 WHERE q.run_id = r.id AND q.status IN ({unusable[2:]}))
                   AS requests_unusable"""
        if unusable_statuses
        else ""
    )
    cost = "(SELECT COALESCE(SUM(j.cost_usd), 0) FROM jobs j WHERE j.run_id = r.id)"
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
                 AND q.status IN ('pending', 'failed'{unusable}, {not_run}))
                   AS requests_succeeded,
               (SELECT COUNT(*) FROM requests q
                 WHERE q.run_id = r.id AND q.status = 'failed') AS requests_failed,
               (SELECT COUNT(*) FROM requests q
                 WHERE q.run_id = r.id AND q.status IN ({not_run}))
                   AS requests_not_run,
               (SELECT COALESCE(SUM(j.input_tokens), 0) FROM jobs j WHERE j.run_id = r.id)
                   AS input_tokens,
               (SELECT COALESCE(SUM(j.output_tokens), 0) FROM jobs j WHERE j.run_id = r.id)
                   AS output_tokens,
               CASE WHEN EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = r.id
                     AND j.state = 'normalized' AND j.cost_usd IS NULL) THEN NULL
                 ELSE {cost} END AS cost_usd,
               (SELECT COALESCE(SUM(j.est_input_tokens), 0) FROM jobs j WHERE j.run_id = r.id)
                   AS est_input_tokens,
               CASE WHEN EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = r.id
                     AND j.est_cost_usd IS NULL) THEN NULL
                 ELSE (SELECT COALESCE(SUM(j.est_cost_usd), 0) FROM jobs j
                       WHERE j.run_id = r.id) END AS est_cost_usd{unusable_column}
        FROM runs r
    """)
