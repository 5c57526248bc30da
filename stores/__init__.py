"""Store backends: one sub-package each, all implementing `vapi_calendar.ports.stores.Store`."""

from __future__ import annotations

from vapi_calendar.ports.stores import Store

__all__ = ["store_from_url"]


def store_from_url(database_url: str) -> Store:
    """Pick the backend from `DATABASE_URL`; raise ValueError naming what is wrong."""
    if database_url.startswith("sqlite:///"):
        from vapi_calendar.stores.sqlite import SQLiteStore

        path = database_url.removeprefix("sqlite:///")
        if not path:
            raise ValueError(
                "DATABASE_URL sqlite:/// needs a file path, e.g. sqlite:///data/app.db"
            )
        return SQLiteStore(path)
    if database_url.startswith(("mongodb://", "mongodb+srv://")):
        from vapi_calendar.stores.mongo import MongoStore

        return MongoStore(database_url)  # validates the URL offline; ValueError if malformed
    raise ValueError("DATABASE_URL must start with sqlite:///, mongodb:// or mongodb+srv://")
