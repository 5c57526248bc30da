"""The embedded default: one SQLite file, shared safely by several processes on one host."""

from vapi_calendar.stores.sqlite.store import SCHEMA_VERSION, SQLiteStore

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]
