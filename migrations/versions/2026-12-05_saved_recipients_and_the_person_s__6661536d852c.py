"""saved recipients and the person's language

Revision ID: 6661536d852c
Revises: 7bc2d4380af1
Create Date: 2026-12-05 08:08:52.499864
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "6661536d852c"
down_revision: str | None = "7bc2d4380af1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "saved_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("bank_bin", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("bank_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("account_number", sqlmodel.sql.sqltypes.AutoString(length=19), nullable=False),
        sa.Column("recipient_name", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name=op.f("fk_saved_recipient_user_id_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_recipient")),
        sa.UniqueConstraint("user_id", "bank_bin", "account_number", name="uq_saved_recipient_account"),
    )
    with op.batch_alter_table("saved_recipient", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_saved_recipient_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("cashout_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("save_recipient", sa.Boolean(), nullable=False, server_default=sa.true()))

    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("locale")

    with op.batch_alter_table("cashout_order", schema=None) as batch_op:
        batch_op.drop_column("save_recipient")

    with op.batch_alter_table("saved_recipient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_recipient_user_id"))

    op.drop_table("saved_recipient")
