"""partners, launch tokens and the webhook outbox

Revision ID: d5d9212d4a00
Revises: 2f05c5478511
Create Date: 2026-12-01 06:07:51.467676
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "d5d9212d4a00"
down_revision: str | None = "2f05c5478511"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("allowed_origins", sa.JSON(), nullable=False),
        sa.Column("return_urls", sa.JSON(), nullable=False),
        sa.Column("logo_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("primary_color", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("theme_mode", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("token_alg", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("token_key", sa.Text(), nullable=False),
        sa.Column("webhook_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("webhook_secret", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "launch_token_use",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("jti", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partner.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partner_id", "jti"),
    )
    with op.batch_alter_table("launch_token_use", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_launch_token_use_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "webhook_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("delivered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["cashout_order.id"],
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partner.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_event_next_attempt_at"), ["next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_event_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_event_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_event_state"), ["state"], unique=False)

    op.create_table(
        "webhook_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["webhook_event.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_attempt_event_id"), ["event_id"], unique=False)

    with op.batch_alter_table("cashout_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("partner_user_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.create_index(batch_op.f("ix_cashout_order_partner_id"), ["partner_id"], unique=False)
        batch_op.create_foreign_key("fk_cashout_order_partner_id_partner", "partner", ["partner_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("cashout_order", schema=None) as batch_op:
        batch_op.drop_constraint("fk_cashout_order_partner_id_partner", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_cashout_order_partner_id"))
        batch_op.drop_column("partner_user_id")
        batch_op.drop_column("partner_id")

    with op.batch_alter_table("webhook_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempt_event_id"))

    op.drop_table("webhook_attempt")
    with op.batch_alter_table("webhook_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_event_state"))
        batch_op.drop_index(batch_op.f("ix_webhook_event_partner_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_event_order_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_event_next_attempt_at"))

    op.drop_table("webhook_event")
    with op.batch_alter_table("launch_token_use", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_launch_token_use_expires_at"))

    op.drop_table("launch_token_use")
    op.drop_table("partner")
