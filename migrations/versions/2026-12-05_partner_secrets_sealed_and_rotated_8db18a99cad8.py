"""Partner secrets sealed with SECRETS_KEY (they were stored in plain text), and room for the one a rotation replaces

Revision ID: 8db18a99cad8
Revises: d4f346bbe864
Create Date: 2026-12-05 13:35:40.723261
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from webapp.config import Settings
from webapp.secretbox import SecretBox

revision: str = "8db18a99cad8"
down_revision: str | None = "d4f346bbe864"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("partner", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_token_alg", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
        batch_op.add_column(sa.Column("previous_token_key", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("previous_token_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("previous_webhook_secret", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("previous_webhook_secret_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.alter_column(
            "webhook_secret", existing_type=sa.VARCHAR(length=100), type_=sa.Text(), existing_nullable=False
        )
    _each_secret(SecretBox.of(Settings().secrets_key.get_secret_value()).reseal)


def _each_secret(change: Callable[[str], str]) -> None:
    """Every partner's launch key and webhook secret, changed by `change` (seal on the way up, open on the way down)."""
    partner = sa.table("partner", sa.column("id"), sa.column("token_key"), sa.column("webhook_secret"))
    connection = op.get_bind()
    for row in connection.execute(sa.select(partner)).all():
        connection.execute(
            partner.update()
            .where(partner.c.id == row.id)
            .values(token_key=change(row.token_key), webhook_secret=change(row.webhook_secret))
        )


def downgrade() -> None:
    _each_secret(SecretBox.of(Settings().secrets_key.get_secret_value()).open)  # a replaced secret is dropped
    with op.batch_alter_table("partner", schema=None) as batch_op:
        batch_op.alter_column(
            "webhook_secret", existing_type=sa.Text(), type_=sa.VARCHAR(length=100), existing_nullable=False
        )
        batch_op.drop_column("previous_webhook_secret_until")
        batch_op.drop_column("previous_webhook_secret")
        batch_op.drop_column("previous_token_until")
        batch_op.drop_column("previous_token_key")
        batch_op.drop_column("previous_token_alg")
