"""email outbox and progress email preference

Revision ID: 4ce16693779a
Revises: 4e7fcb7c19ba
Create Date: 2026-12-01 11:07:52.201050
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "4ce16693779a"
down_revision: str | None = "4e7fcb7c19ba"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["cashout_order.id"], name="fk_email_message_order_id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "kind", name="uq_email_message_order_kind"),
    )
    with op.batch_alter_table("email_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_message_next_attempt_at"), ["next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_email_message_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_email_message_state"), ["state"], unique=False)

    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_updates", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("email_updates")

    with op.batch_alter_table("email_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_message_state"))
        batch_op.drop_index(batch_op.f("ix_email_message_order_id"))
        batch_op.drop_index(batch_op.f("ix_email_message_next_attempt_at"))

    op.drop_table("email_message")
