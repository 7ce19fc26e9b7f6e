"""app instances: each running instance's heartbeat, for the operations page

Revision ID: aff15a2b93c8
Revises: 0cb50ba12bfb
Create Date: 2026-12-05 08:53:29.353569
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "aff15a2b93c8"
down_revision: str | None = "0cb50ba12bfb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_instance",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_instance")),
    )
    with op.batch_alter_table("app_instance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_instance_last_seen_at"), ["last_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("app_instance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_instance_last_seen_at"))

    op.drop_table("app_instance")
