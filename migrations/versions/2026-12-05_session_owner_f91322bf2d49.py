"""Sessions name their signed-in person, so support can end every session of one person

Revision ID: f91322bf2d49
Revises: aff15a2b93c8
Create Date: 2026-12-05 10:20:35.792549
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f91322bf2d49"
down_revision: str | None = "aff15a2b93c8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("http_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_http_session_owner"), ["owner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("http_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_http_session_owner"))
        batch_op.drop_column("owner")
