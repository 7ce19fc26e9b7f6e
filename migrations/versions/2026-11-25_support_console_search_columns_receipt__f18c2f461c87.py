"""support console: search columns, receipt reviews, audit log

Revision ID: f18c2f461c87
Revises: 8c2be2be59af
Create Date: 2026-11-25 19:17:16.700736
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "f18c2f461c87"
down_revision: str | None = "8c2be2be59af"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("receipt_id", sa.Integer(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["cashout_order.id"], name=op.f("fk_audit_entry_order_id_cashout_order")),
        sa.ForeignKeyConstraint(["receipt_id"], ["ipn_receipt.id"], name=op.f("fk_audit_entry_receipt_id_ipn_receipt")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entry")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_entry_prev_hash")),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entry_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entry_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entry_order_id"), ["order_id"], unique=False)

    with op.batch_alter_table("cashout_order", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("account_tail", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("provider_tx_hash", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch_op.add_column(sa.Column("provider_content", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_cashout_order_account_tail"), ["account_tail"], unique=False)
        batch_op.create_index("ix_cashout_order_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_cashout_order_external_order_id_prefix",
            ["external_order_id"],
            unique=False,
            postgresql_ops={"external_order_id": "varchar_pattern_ops"},
        )
        batch_op.create_index(batch_op.f("ix_cashout_order_provider_content"), ["provider_content"], unique=False)
        batch_op.create_index(batch_op.f("ix_cashout_order_provider_tx_hash"), ["provider_tx_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_cashout_order_transfer_content"), ["transfer_content"], unique=False)
        batch_op.create_index(
            "ix_cashout_order_user_email_prefix",
            ["user_email"],
            unique=False,
            postgresql_ops={"user_email": "varchar_pattern_ops"},
        )

    backfill_search_columns()

    with op.batch_alter_table("ipn_receipt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reviewed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True))
        batch_op.add_column(sa.Column("review_note", sqlmodel.sql.sqltypes.AutoString(), nullable=True))

    with op.batch_alter_table("order_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_event_kind"), ["kind"], unique=False)


def backfill_search_columns() -> None:
    """Orders placed before this revision get the columns support searches by."""
    connection = op.get_bind()
    orders = sa.table(
        "cashout_order",
        sa.column("id"),
        sa.column("account_number"),
        sa.column("account_tail"),
        sa.column("provider_order", sa.JSON()),
        sa.column("provider_tx_hash"),
        sa.column("provider_content"),
    )
    for row in connection.execute(sa.select(orders.c.id, orders.c.account_number, orders.c.provider_order)).all():
        provider = row.provider_order or {}
        tx_hash = (provider.get("tokenTransfer") or {}).get("txHash")
        content = (provider.get("bankTransfer") or {}).get("contentPayment")
        connection.execute(
            orders.update()
            .where(orders.c.id == row.id)
            .values(
                account_tail=row.account_number[-4:],
                provider_tx_hash=tx_hash[:128] if tx_hash else None,
                provider_content=content[:64].upper() if content else None,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("order_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_event_kind"))

    with op.batch_alter_table("ipn_receipt", schema=None) as batch_op:
        batch_op.drop_column("review_note")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("reviewed_at")

    with op.batch_alter_table("cashout_order", schema=None) as batch_op:
        batch_op.drop_index("ix_cashout_order_user_email_prefix", postgresql_ops={"user_email": "varchar_pattern_ops"})
        batch_op.drop_index(batch_op.f("ix_cashout_order_transfer_content"))
        batch_op.drop_index(batch_op.f("ix_cashout_order_provider_tx_hash"))
        batch_op.drop_index(batch_op.f("ix_cashout_order_provider_content"))
        batch_op.drop_index(
            "ix_cashout_order_external_order_id_prefix", postgresql_ops={"external_order_id": "varchar_pattern_ops"}
        )
        batch_op.drop_index("ix_cashout_order_created_at_id")
        batch_op.drop_index(batch_op.f("ix_cashout_order_account_tail"))
        batch_op.drop_column("provider_content")
        batch_op.drop_column("provider_tx_hash")
        batch_op.drop_column("account_tail")

    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entry_order_id"))
        batch_op.drop_index(batch_op.f("ix_audit_entry_at"))
        batch_op.drop_index(batch_op.f("ix_audit_entry_action"))

    op.drop_table("audit_entry")
