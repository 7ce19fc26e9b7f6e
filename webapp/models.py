"""Imports every table module so `SQLModel.metadata` is complete (for Alembic and test `create_all`)."""

from webapp.auth.models import User
from webapp.sessions import HttpSession

__all__ = ["HttpSession", "User"]
