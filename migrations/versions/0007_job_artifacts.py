"""job artifacts: where each job's shard, result files and results are in the artifact store

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 06:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: One artifact reference a column (`ledger.artifacts.ArtifactRef`, as a string); NULL for jobs
#: recorded before this revision, which keep using their local paths.
COLUMNS = ("input_ref", "output_ref", "error_ref", "results_ref")


def upgrade() -> None:
    # Plain ALTERs, not a batch copy: the reporting views read `jobs` (see 0005).
    for name in COLUMNS:
        op.add_column("jobs", sa.Column(name, sa.Text(), nullable=True))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("jobs", name)
