"""spend caps and shared token quotas: each job's reservation (estimated cost, queue account) and
why it waits; the caps `ledger budget set` and `submit --max-cost` record; providers paused for
their quota or billing

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 07:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("est_cost_usd", "account", "waiting_for")


def upgrade() -> None:
    # Plain ALTERs (no batch copy): the reporting views read `jobs`. NULL for existing jobs: a
    # job recorded before this revision reserves nothing until its next create.
    op.add_column("jobs", sa.Column("est_cost_usd", sa.Double(), nullable=True))
    op.add_column("jobs", sa.Column("account", sa.String(length=200), nullable=True))
    op.add_column("jobs", sa.Column("waiting_for", sa.Text(), nullable=True))
    op.create_table(
        "budget_caps",
        sa.Column("scope", sa.String(length=250), primary_key=True),
        sa.Column("usd", sa.Double(), nullable=False),
        sa.Column("set_at", sa.Double(), nullable=False),
    )
    op.create_table(
        "provider_pauses",
        sa.Column("provider", sa.String(length=40), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("paused_at", sa.Double(), nullable=False),
        sa.Column("until", sa.Double(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("provider_pauses")
    op.drop_table("budget_caps")
    for column in reversed(COLUMNS):
        op.drop_column("jobs", column)
