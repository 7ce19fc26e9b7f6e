"""Orders keep the partner's reference

Revision ID: ba5b20c72477
Revises: 8db18a99cad8
Create Date: 2026-12-05 13:43:22.947075
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "ba5b20c72477"
down_revision: str | None = "8db18a99cad8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cashout_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_reference", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index("ix_cashout_order_partner_reference", ["partner_id", "partner_reference"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cashout_order", schema=None) as batch_op:
        batch_op.drop_index("ix_cashout_order_partner_reference")
        batch_op.drop_column("partner_reference")
