"""retry history: request_attempts (each request's earlier outcomes, kept when a retry moves it)
and job_parents (every job a retry job took requests from)

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


def upgrade() -> None:
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
    op.drop_table("job_parents")
    op.drop_index("ix_request_attempts_request_id", table_name="request_attempts")
    op.drop_table("request_attempts")
