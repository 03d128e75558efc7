"""jobs: the 404 streak of a batch (count and first time) and the provider's time of its upload

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("not_found_count", "first_not_found_at", "input_file_created_at")


def upgrade() -> None:
    op.add_column("jobs", sa.Column("not_found_count", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("first_not_found_at", sa.Double(), nullable=True))
    op.add_column("jobs", sa.Column("input_file_created_at", sa.Double(), nullable=True))


def downgrade() -> None:
    for column in reversed(COLUMNS):
        op.drop_column("jobs", column)
