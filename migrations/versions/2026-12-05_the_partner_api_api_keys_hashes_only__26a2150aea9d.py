"""The partner API: API keys (hashes only), launch tickets, idempotent answers

Revision ID: 26a2150aea9d
Revises: ba5b20c72477
Create Date: 2026-12-05 13:54:02.202719
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "26a2150aea9d"
down_revision: str | None = "ba5b20c72477"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "launch_ticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("ticket_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("claims", sa.JSON(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partner.id"], name=op.f("fk_launch_ticket_partner_id_partner")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_launch_ticket")),
        sa.UniqueConstraint("ticket_hash", name=op.f("uq_launch_ticket_ticket_hash")),
    )
    with op.batch_alter_table("launch_ticket", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_launch_ticket_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "partner_api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("prefix", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partner.id"], name=op.f("fk_partner_api_key_partner_id_partner")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_api_key")),
        sa.UniqueConstraint("prefix", name=op.f("uq_partner_api_key_prefix")),
    )
    with op.batch_alter_table("partner_api_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_api_key_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "partner_idempotent_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner.id"], name=op.f("fk_partner_idempotent_request_partner_id_partner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_idempotent_request")),
        sa.UniqueConstraint("partner_id", "key", name=op.f("uq_partner_idempotent_request_partner_id_key")),
    )
    with op.batch_alter_table("partner_idempotent_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_idempotent_request_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("partner_idempotent_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_idempotent_request_created_at"))

    op.drop_table("partner_idempotent_request")
    with op.batch_alter_table("partner_api_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_api_key_partner_id"))

    op.drop_table("partner_api_key")
    with op.batch_alter_table("launch_ticket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_launch_ticket_expires_at"))

    op.drop_table("launch_ticket")
