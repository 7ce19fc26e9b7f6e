"""background job board: claims of each round across instances, and how rounds went

Revision ID: 0cb50ba12bfb
Revises: 6661536d852c
Create Date: 2026-12-05 08:43:35.714126
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0cb50ba12bfb"
down_revision: str | None = "6661536d852c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "background_job",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("busy_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("last_round_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_success_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("failures_in_a_row", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("last_instance", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_background_job")),
    )


def downgrade() -> None:
    op.drop_table("background_job")
