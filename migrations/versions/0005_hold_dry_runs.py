"""hold dry runs: jobs.held_reason, set while no reconciler may take the job (a dry run's)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for every existing job: what was recorded before this revision stays free to send.
    # A plain ALTER, not a batch copy: the reporting views read `jobs` and SQLite would refuse
    # the rename a copy needs.
    op.add_column("jobs", sa.Column("held_reason", sa.String(length=40), nullable=True))


def downgrade() -> None:
    # SQLite 3.35+ drops a column in place (no view reads this one).
    op.drop_column("jobs", "held_reason")
