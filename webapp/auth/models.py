"""People who signed in, keyed by their IdP's issuer and subject."""

from datetime import datetime

from sqlalchemy import UniqueConstraint, true
from sqlmodel import Field, SQLModel

from webapp.db import utcnow


class User(SQLModel, table=True):
    __tablename__ = "user_account"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    issuer: str = Field(max_length=255)
    subject: str = Field(max_length=255)
    email: str = Field(max_length=320, index=True)
    name: str | None = Field(default=None, max_length=255)
    first_login_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime = Field(default_factory=utcnow)
    email_updates: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    """Progress emails (order placed, money sent); the outcome (done, failed) is always mailed."""
    locale: str | None = Field(default=None, max_length=8)
    """The language the person chose in the language switch: their pages on any device and their emails use it."""
