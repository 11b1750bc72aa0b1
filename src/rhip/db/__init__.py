"""The SQL database: engine, sessions, the declarative Base and Alembic migrations."""

from rhip.db.base import Base
from rhip.db.engine import Database, upgrade

__all__ = ["Base", "Database", "upgrade"]
