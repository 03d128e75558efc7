"""request body hash: each request's canonical body hash, indexed, so a submit
with `--reuse` finds an earlier succeeded request of the same body among millions of rows; and
`reused_from`, the request whose answer a reused (or within-run duplicate) request copied

Rows recorded before this revision have no hash (NULL) and are never reused.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch copy of the table): both are nullable, without a foreign key.
    op.add_column("requests", sa.Column("body_hash", sa.LargeBinary(length=16), nullable=True))
    op.add_column("requests", sa.Column("reused_from", sa.Integer(), nullable=True))
    # The reuse lookup: requests by body hash, one index probe per hash (the status is read from
    # the few rows found; out of the index, so normalizing a request's status never moves an
    # entry of it).
    op.create_index("ix_requests_body_hash", "requests", ["body_hash"], unique=False)
    # A run's copied requests (normalize answers a run's within-run duplicates from these).
    op.create_index("ix_requests_run_reused", "requests", ["run_id", "reused_from"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_requests_run_reused", table_name="requests")
    op.drop_index("ix_requests_body_hash", table_name="requests")
    # Plain DROP COLUMNs (SQLite 3.35+): a batch copy of the table would break the views on it.
    op.execute("ALTER TABLE requests DROP COLUMN reused_from")
    op.execute("ALTER TABLE requests DROP COLUMN body_hash")
