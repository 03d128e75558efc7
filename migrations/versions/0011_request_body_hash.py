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

#: The rows the body-hash index holds (`ledger.build.reuse.ledger_lookup` repeats it literally).
SUCCEEDED_ONLY = "status = 'succeeded'"
#: The rows the (run, reused_from) index holds: the copies (every query of it names them so).
COPIES_ONLY = "reused_from IS NOT NULL"


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch copy of the table): both are nullable, without a foreign key.
    op.add_column("requests", sa.Column("body_hash", sa.LargeBinary(length=16), nullable=True))
    op.add_column("requests", sa.Column("reused_from", sa.Integer(), nullable=True))
    # The reuse lookup: succeeded requests by body hash, one index probe per hash. Partial: a
    # request enters it when normalizing records it succeeded, not when the build inserts it
    # pending; the build inserting 100k random 16-byte keys cost it 0.15-0.2 s (bench/build.py,
    # 1.54-1.62x its floor against 1.42-1.43x). The lookup names the status as a literal, which
    # SQLite and PostgreSQL need to match a partial index.
    op.create_index(
        "ix_requests_body_hash",
        "requests",
        ["body_hash"],
        unique=False,
        sqlite_where=sa.text(SUCCEEDED_ONLY),
        postgresql_where=sa.text(SUCCEEDED_ONLY),
    )
    # A run's copied requests (normalize answers a run's within-run duplicates from these).
    # Partial too: the rows that copied an answer are few, and a build inserting every other row
    # into it paid for nothing.
    op.create_index(
        "ix_requests_run_reused",
        "requests",
        ["run_id", "reused_from"],
        unique=False,
        sqlite_where=sa.text(COPIES_ONLY),
        postgresql_where=sa.text(COPIES_ONLY),
    )


def downgrade() -> None:
    op.drop_index("ix_requests_run_reused", table_name="requests")
    op.drop_index("ix_requests_body_hash", table_name="requests")
    # Plain DROP COLUMNs (SQLite 3.35+): a batch copy of the table would break the views on it.
    op.execute("ALTER TABLE requests DROP COLUMN reused_from")
    op.execute("ALTER TABLE requests DROP COLUMN body_hash")
