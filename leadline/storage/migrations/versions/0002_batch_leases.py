"""Batch workers: job leases, planned shares and grants, and the batch pool as columns of the batch row.

Revision ID: 0002_batch_leases
Revises: 0001
Create Date: 2026-12-01 03:35:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_batch_leases"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("pool_tokens", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("pool_searches", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("share_tokens", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("share_searches", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("grant_tokens", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("grant_searches", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("extra", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("result", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for name in (
            "result",
            "extra",
            "grant_searches",
            "grant_tokens",
            "share_searches",
            "share_tokens",
            "lease_until",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("pool_searches")
        batch.drop_column("pool_tokens")
