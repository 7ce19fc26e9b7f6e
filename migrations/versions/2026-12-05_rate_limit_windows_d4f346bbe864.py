"""Rate-limit counts per key and minute, added to by each instance once a second (no row written per request)

Revision ID: d4f346bbe864
Revises: 01be72e52ed2
Create Date: 2026-12-05 10:54:52.886316
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "d4f346bbe864"
down_revision: str | None = "01be72e52ed2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_window",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "minute", name=op.f("pk_rate_limit_window")),
    )
    with op.batch_alter_table("rate_limit_counter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limit_counter_expires_at"))

    op.drop_table("rate_limit_counter")


def downgrade() -> None:
    op.create_table(
        "rate_limit_counter",
        sa.Column("key", sa.VARCHAR(length=255), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limit_counter")),
    )
    with op.batch_alter_table("rate_limit_counter", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rate_limit_counter_expires_at"), ["expires_at"], unique=False)

    op.drop_table("rate_limit_window")
