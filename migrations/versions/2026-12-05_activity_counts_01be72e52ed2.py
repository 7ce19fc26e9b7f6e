"""Activity counts for the charts (kept as statuses change), counted from the orders already there

Revision ID: 01be72e52ed2
Revises: f91322bf2d49
Create Date: 2026-12-05 10:41:56.662162
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from webapp.activity.counts import recount
from webapp.orders.statuses import PAID_OUT_STATUSES

revision: str = "01be72e52ed2"
down_revision: str | None = "f91322bf2d49"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activity_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hour", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("rolled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity_count")),
    )
    with op.batch_alter_table("activity_count", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_activity_count_hour"), ["hour"], unique=False)

    with op.batch_alter_table("webhook_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_attempt_at"), ["at"], unique=False)
    count_the_orders_already_there()


def count_the_orders_already_there() -> None:
    """The charts begin with every order placed so far, not from zero."""
    orders = sa.table("cashout_order", sa.column("id"), sa.column("created_at", sa.DateTime()), sa.column("status"))
    moves = sa.table(
        "order_transition",
        sa.column("order_id"),
        sa.column("from_status"),
        sa.column("to_status"),
        sa.column("at", sa.DateTime()),
    )
    paid_out = [status.value for status in PAID_OUT_STATUSES]
    bind = op.get_bind()
    placed = bind.execute(sa.select(orders.c.created_at, orders.c.status)).all()
    payouts = bind.execute(
        sa.select(orders.c.created_at, moves.c.at)
        .join(orders, orders.c.id == moves.c.order_id)
        .where(moves.c.to_status.in_(paid_out), moves.c.from_status.not_in(paid_out))
    ).all()
    counts = recount(placed, payouts)
    rows = [
        {"hour": hour, "kind": kind, "count": count, "rolled": True} for (hour, kind), count in counts.items() if count
    ]
    if rows:
        op.bulk_insert(
            sa.table(
                "activity_count",
                sa.column("hour", sa.DateTime()),
                sa.column("kind"),
                sa.column("count"),
                sa.column("rolled"),
            ),
            rows,
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempt_at"))

    with op.batch_alter_table("activity_count", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activity_count_hour"))

    op.drop_table("activity_count")
