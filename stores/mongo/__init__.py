"""MongoDB (or a MongoDB-protocol server) for several replicas, on PyMongo's async API."""

from vapi_calendar.stores.mongo.store import MongoStore

__all__ = ["MongoStore"]
