"""Storage: the engine and transactions, tables, repositories and migrations."""

from truthset.storage.engine import Database
from truthset.storage.migrate import upgrade

__all__ = ["Database", "upgrade"]
