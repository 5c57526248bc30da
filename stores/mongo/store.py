"""MongoDB backend on PyMongo's async API (`AsyncMongoClient`; never Motor).

Several app replicas share one database, so every guarantee of the contract must hold across
processes. The adapter relies on exactly two primitives, because they are the only ones that
are atomic both on MongoDB and on FerretDB (the MongoDB-protocol server CI runs against):

- an insert into a unique index fails for all but one concurrent writer;
- `delete_one({"_id": ...})` reports `deleted_count == 1` to exactly one concurrent caller.

Updates, `find_one_and_update` and `find_one_and_delete` are atomic on MongoDB but FerretDB v1
runs them as a read followed by a write by `_id`, so two callers can both "win" a conditional
update there (see docs/production.md). Hence the "claim" scheme for leases and records: each
claim is a new, never-modified document (`_id` = a fresh version id) under a unique `key`; taking
over an expired claim deletes exactly that version and inserts a new one, and whoever's insert
lands first wins. Deleting by version id can never remove somebody else's newer claim.

BSON dates have millisecond resolution, but the contract round-trips microseconds: each time is
stored as a UTC BSON date (queryable, usable by TTL indexes) plus the sub-millisecond rest in a
`<field>_us` integer. TTL indexes only tidy up; expiry is always checked on read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from vapi_calendar.ports.stores import (
    GOOGLE,
    AlreadyExists,
    ApiKey,
    CalendarWarning,
    Connection,
    LinkKind,
    NotFound,
    OAuthState,
    Store,
    StoreError,
    User,
)

log = logging.getLogger(__name__)

Document = dict[str, Any]

DEFAULT_DATABASE = "vapi_calendar"
# PyMongo waits 30 s for a reachable server by default; a tool call has a 10 s budget, so fail
# sooner. A serverSelectionTimeoutMS in the URL wins.
DEFAULT_SERVER_SELECTION_MS = 5000
# /readyz must answer within a typical probe timeout even when the database is gone.
PING_TIMEOUT_SECONDS = 2.0
# A claim loops only while others keep releasing or expiring the same key; give up (as "taken")
# rather than spin.
_CLAIM_ATTEMPTS = 20
_NOT_IMPLEMENTED = 238  # FerretDB's answer to index options it lacks (TTL)
_SCHEMA_RETRY_MAX_SECONDS = 10.0


# -- time ------------------------------------------------------------------------------------------


def _time_fields(name: str, value: datetime | None) -> Document:
    if value is None:
        return {name: None, f"{name}_us": 0}
    if value.tzinfo is None:
        # A naive datetime would silently be taken as UTC by PyMongo; refuse it like SQLite does.
        raise ValueError("the store only accepts timezone-aware datetimes")
    utc = value.astimezone(UTC)
    rest = utc.microsecond % 1000
    return {name: utc - timedelta(microseconds=rest), f"{name}_us": rest}


def _read_time(doc: Document, name: str) -> datetime | None:
    value = doc.get(name)
    if value is None:
        return None
    return value.astimezone(UTC) + timedelta(microseconds=doc.get(f"{name}_us", 0))


def _required_time(doc: Document, name: str) -> datetime:
    value = _read_time(doc, name)
    if value is None:
        raise StoreError("stored document lacks a required time")
    return value


def _expired(doc: Document, now: datetime) -> bool:
    return _required_time(doc, "expires_at") <= now


# -- errors ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn driver errors into short, value-free StoreErrors; the original stays chained."""
    try:
        yield
    except DuplicateKeyError as exc:
        raise AlreadyExists("duplicate key") from exc
    except ConnectionFailure as exc:  # includes server selection and network timeouts
        raise StoreError("database unreachable") from exc
    except OperationFailure as exc:
        name = (exc.details or {}).get("codeName") or f"code {exc.code}"
        raise StoreError(f"database error ({name})") from exc
    except PyMongoError as exc:
        if getattr(exc, "timeout", False):
            raise StoreError("database timed out") from exc
        raise StoreError(f"database error ({type(exc).__name__})") from exc


def _client_options(url: str) -> Document:
    options: Document = {"tz_aware": True, "tzinfo": UTC}
    if "serverselectiontimeoutms=" not in url.lower():
        options["serverSelectionTimeoutMS"] = DEFAULT_SERVER_SELECTION_MS
    return options


def _database_name(url: str, options: Document) -> str:
    """Validate the URL without any network I/O; raise ValueError saying what is wrong."""
    try:
        # The async client parses and checks the URL in its constructor and connects (and
        # resolves mongodb+srv) only on first use, so this probe is offline and needs no close.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the real client warns about unknown options
            probe: AsyncMongoClient[Document] = AsyncMongoClient(url, **options)
            return probe.get_default_database(DEFAULT_DATABASE).name
    except (PyMongoError, ValueError, TypeError) as exc:
        reason = str(exc).split(", full error", 1)[0]
        password = _password(url)
        if password and password in reason:
            reason = reason.replace(password, "***")
        raise ValueError(f"DATABASE_URL is not a valid MongoDB URL: {reason}") from None


def _password(url: str) -> str | None:
    userinfo = url.split("://", 1)[-1].split("@", 1)
    if len(userinfo) < 2 or ":" not in userinfo[0]:
        return None
    return userinfo[0].split(":", 1)[1] or None


# -- documents -------------------------------------------------------------------------------------


def _user(doc: Document) -> User:
    return User(
        id=doc["_id"],
        timezone=doc["timezone"],
        created_at=_required_time(doc, "created_at"),
        rules=json.loads(doc["rules"]),
    )


def _link_id(platform: str, kind: str, linked_id: str) -> str:
    # Platform and kind never contain ":", so the first two separate the parts unambiguously.
    return f"{platform}:{kind}:{linked_id}"


def _link_doc(platform: str, kind: str, linked_id: str, user_id: str) -> Document:
    return {
        "_id": _link_id(platform, kind, linked_id),
        "platform": platform,
        "kind": kind,
        "linked_id": linked_id,
        "user_id": user_id,
    }


def _api_key(doc: Document) -> ApiKey:
    return ApiKey(
        id=doc["_id"],
        user_id=doc["user_id"],
        digest=doc["digest"],
        name=doc.get("name", ""),
        created_at=_required_time(doc, "created_at"),
    )


def _warning_docs(warnings: tuple[CalendarWarning, ...]) -> list[Document]:
    return [
        {"calendar_id": w.calendar_id, "reason": w.reason, **_time_fields("since", w.since)}
        for w in warnings
    ]


def _connection(doc: Document) -> Connection:
    return Connection(
        user_id=doc["_id"],
        access_token=doc["access_token"],
        refresh_token=doc["refresh_token"],
        expiry=_read_time(doc, "expiry"),
        scopes=tuple(doc["scopes"]),
        email=doc["email"],
        subject=doc["subject"],
        status=doc["status"],
        updated_at=_read_time(doc, "updated_at"),
        # Documents written before warnings existed have none (no migration needed).
        warnings=tuple(
            CalendarWarning(w["calendar_id"], w["reason"], _required_time(w, "since"))
            for w in doc.get("warnings", ())
        ),
        # Documents written before Microsoft 365 existed are Google's.
        provider=doc.get("provider", GOOGLE),
    )


class MongoStore(Store):
    def __init__(self, url: str) -> None:
        self.url = url
        self._options = _client_options(url)
        # From the URL path (mongodb://host/NAME), else DEFAULT_DATABASE.
        self.database_name = _database_name(url, self._options)
        self._client: AsyncMongoClient[Document] | None = None
        self._db: AsyncDatabase[Document] | None = None
        self._schema_ready = False
        # One index-creation attempt at a time, shared by every caller that needs it, so that
        # while the database is down callers fail together instead of queueing one timeout each.
        self._schema_attempt: asyncio.Task[None] | None = None
        self._schema_task: asyncio.Task[None] | None = None

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def _conn(self) -> AsyncDatabase[Document]:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    async def _ready(self) -> AsyncDatabase[Document]:
        """The database, once its indexes exist: uniqueness is what the claims rely on."""
        db = self._conn
        await self._ensure_schema()
        return db

    async def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        attempt = self._schema_attempt
        if attempt is None or attempt.done():
            attempt = self._schema_attempt = asyncio.create_task(self._create_indexes())
        # Shielded: one caller giving up (cancelled) must not abort the attempt for the others.
        await asyncio.shield(attempt)

    async def _create_indexes(self) -> None:
        db = self._conn
        with _errors():
            await db.links.create_index("user_id", name="user_id")
            await db.api_keys.create_index("user_id", name="user_id")
            await db.api_keys.create_index("digest", unique=True, name="digest_unique")
            await db.leases.create_index("key", unique=True, name="key_unique")
            await db.records.create_index("key", unique=True, name="key_unique")
            for name in ("records", "leases", "oauth_states"):
                field = "user_id" if name == "oauth_states" else "owner"
                await db[name].create_index(field, name=field)
            for name in ("oauth_states", "leases", "records"):
                await self._create_ttl_index(db[name])
            await self._move_vapi_links(db)
        self._schema_ready = True

    async def _move_vapi_links(self, db: AsyncDatabase[Document]) -> None:
        """Vapi's links lived in `assistants` and `phone_numbers` before every platform shared
        `links`: move each into `links` (a link made there since wins), then delete it. Safe
        to run concurrently in several replicas: inserts are unique, deletes by `_id`."""
        for old, kind in (("assistants", "agent"), ("phone_numbers", "phoneNumber")):
            async for doc in db[old].find({}):
                with contextlib.suppress(DuplicateKeyError):
                    await db.links.insert_one(_link_doc("vapi", kind, doc["_id"], doc["user_id"]))
                await db[old].delete_one({"_id": doc["_id"]})

    async def _create_ttl_index(self, collection: AsyncCollection[Document]) -> None:
        try:
            await collection.create_index("expires_at", expireAfterSeconds=0, name="expires_ttl")
        except OperationFailure as exc:
            if exc.code != _NOT_IMPLEMENTED:
                raise
            # FerretDB v1 has no TTL indexes. Nothing depends on them: expiry is checked on
            # read, OAuth states are swept on use, and expired claims are replaced on use.
            log.info("database has no TTL indexes; expired %s stay until reused", collection.name)

    async def _prepare_in_background(self) -> None:
        # The server must start while the database is briefly down; keep trying so indexes
        # exist as soon as it is back (operations also create them on first use).
        delay = 0.5
        while True:
            try:
                await self._ensure_schema()
                return
            except StoreError as exc:
                log.warning("database not ready (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _SCHEMA_RETRY_MAX_SECONDS)

    async def _upsert(self, collection: AsyncCollection[Document], doc: Document) -> None:
        """Create or replace the document with this `_id` as one whole-document write."""
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                with _errors():
                    await collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)
                return
            except AlreadyExists:
                # Two upserts raced to insert; MongoDB retries this itself, FerretDB does not.
                continue
        raise StoreError("database is busy (upsert kept conflicting)")

    async def _user_exists(self, db: AsyncDatabase[Document], user_id: str) -> bool:
        with _errors():
            return await db.users.find_one({"_id": user_id}, {"_id": 1}) is not None

    async def _claim(
        self,
        collection: AsyncCollection[Document],
        key: str,
        fields: Document,
        ttl_seconds: float,
        may_replace: Callable[[Document, datetime], bool],
    ) -> bool:
        """Insert a fresh claim on `key` unless a current one exists that may not be replaced."""
        for _ in range(_CLAIM_ATTEMPTS):
            now = datetime.now(UTC)
            claim = {
                "_id": uuid.uuid4().hex,  # this version; never modified, only deleted
                "key": key,
                **fields,
                **_time_fields("expires_at", now + timedelta(seconds=ttl_seconds)),
            }
            try:
                with _errors():
                    await collection.insert_one(claim)
                return True
            except AlreadyExists:
                pass
            with _errors():
                current = await collection.find_one({"key": key})
                if current is None:
                    continue  # released meanwhile; try again
                if not may_replace(current, now):
                    return False
                # Remove exactly the version judged above. If someone else replaced it first,
                # this deletes nothing and their claim makes our next insert fail.
                await collection.delete_one({"_id": current["_id"]})
        return False

    # -- life cycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if self._client is not None:
            return
        # One client (and connection pool) per store, and the app opens one store per process.
        self._client = AsyncMongoClient(self.url, **self._options)
        self._db = self._client.get_database(self.database_name)
        if not self._schema_ready:
            self._schema_task = asyncio.create_task(self._prepare_in_background())

    async def close(self) -> None:
        tasks = (self._schema_task, self._schema_attempt)
        self._schema_task = self._schema_attempt = None
        for task in tasks:
            if task is not None and not task.done():
                task.cancel()
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, StoreError):
                    await task
        client, self._client, self._db = self._client, None, None
        if client is not None:
            await client.close()

    async def ping(self) -> None:
        db = self._conn
        with _errors(), pymongo.timeout(PING_TIMEOUT_SECONDS):
            await db.command("ping")
        await self._ensure_schema()

    # -- users --------------------------------------------------------------------------------
    async def create_user(self, user: User) -> None:
        db = await self._ready()
        doc = {
            "_id": user.id,
            "timezone": user.timezone,
            # JSON text, as in SQLite: any key (dots, "$") and number round-trips exactly.
            "rules": json.dumps(user.rules),
            **_time_fields("created_at", user.created_at),
        }
        try:
            with _errors():
                await db.users.insert_one(doc)
        except AlreadyExists:
            raise AlreadyExists("user already exists") from None

    async def get_user(self, user_id: str) -> User | None:
        db = await self._ready()
        with _errors():
            doc = await db.users.find_one({"_id": user_id})
        return _user(doc) if doc else None

    async def update_user(
        self,
        user_id: str,
        *,
        timezone: str | None = None,
        rules: dict[str, Any] | None = None,
    ) -> User:
        db = await self._ready()
        changes: Document = {}
        if timezone is not None:
            changes["timezone"] = timezone
        if rules is not None:
            changes["rules"] = json.dumps(rules)
        with _errors():
            if changes:
                doc = await db.users.find_one_and_update(
                    {"_id": user_id}, {"$set": changes}, return_document=ReturnDocument.AFTER
                )
            else:
                doc = await db.users.find_one({"_id": user_id})
        if doc is None:
            raise NotFound("no such user")
        return _user(doc)

    async def delete_user(self, user_id: str) -> bool:
        db = await self._ready()
        # No cross-collection transaction: drop dependents, then the user, then dependents
        # again. A crash midway leaves a user to delete again rather than orphans, and a link
        # or connection written concurrently is caught either here or by its writer's re-check.
        with _errors():
            await self._delete_dependents(db, user_id)
            deleted = (await db.users.delete_one({"_id": user_id})).deleted_count
            await self._delete_dependents(db, user_id)
        return deleted > 0

    async def _delete_dependents(self, db: AsyncDatabase[Document], user_id: str) -> None:
        await db.links.delete_many({"user_id": user_id})
        await db.api_keys.delete_many({"user_id": user_id})
        await db.google_connections.delete_one({"_id": user_id})
        await db.oauth_states.delete_many({"user_id": user_id})
        await db.records.delete_many({"owner": user_id})
        await db.leases.delete_many({"owner": user_id})

    # -- (platform, agent or phone number) → user links ----------------------------------------
    async def put_link(self, platform: str, kind: LinkKind, linked_id: str, user_id: str) -> None:
        db = await self._ready()
        await self._link(db, db.links, _link_doc(platform, kind, linked_id, user_id))

    async def delete_link(self, platform: str, kind: LinkKind, linked_id: str) -> bool:
        db = await self._ready()
        with _errors():
            result = await db.links.delete_one({"_id": _link_id(platform, kind, linked_id)})
        return result.deleted_count > 0

    async def linked_user(self, platform: str, kind: LinkKind, linked_id: str) -> str | None:
        db = await self._ready()
        with _errors():
            doc = await db.links.find_one({"_id": _link_id(platform, kind, linked_id)})
        return doc["user_id"] if doc else None

    # -- API keys ---------------------------------------------------------------------------------
    async def create_api_key(self, key: ApiKey) -> None:
        db = await self._ready()
        if not await self._user_exists(db, key.user_id):
            raise NotFound("no such user")
        doc = {
            "_id": key.id,
            "user_id": key.user_id,
            "digest": key.digest,
            "name": key.name,
            **_time_fields("created_at", key.created_at),
        }
        try:
            with _errors():
                await db.api_keys.insert_one(doc)
        except AlreadyExists:
            raise AlreadyExists("API key id or digest already exists") from None
        if not await self._user_exists(db, key.user_id):
            # The user was deleted while we inserted: take the key back out.
            with _errors():
                await db.api_keys.delete_one({"_id": key.id})
            raise NotFound("no such user")

    async def list_api_keys(self, user_id: str) -> list[ApiKey]:
        db = await self._ready()
        with _errors():
            docs = [doc async for doc in db.api_keys.find({"user_id": user_id})]
        keys = [_api_key(doc) for doc in docs]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    async def delete_api_key(self, user_id: str, key_id: str) -> bool:
        db = await self._ready()
        with _errors():
            doc = await db.api_keys.find_one({"_id": key_id, "user_id": user_id}, {"_id": 1})
            if doc is None:
                return False
            return (await db.api_keys.delete_one({"_id": key_id})).deleted_count > 0

    async def api_key_by_digest(self, digest: str) -> ApiKey | None:
        db = await self._ready()
        with _errors():
            doc = await db.api_keys.find_one({"digest": digest})
        return _api_key(doc) if doc else None

    async def _link(
        self, db: AsyncDatabase[Document], collection: AsyncCollection[Document], doc: Document
    ) -> None:
        user_id = doc["user_id"]
        if not await self._user_exists(db, user_id):
            raise NotFound("no such user")
        await self._upsert(collection, doc)
        if not await self._user_exists(db, user_id):
            # The user was deleted while we linked: take our link back out.
            with _errors():
                await collection.delete_one({"_id": doc["_id"], "user_id": user_id})
            raise NotFound("no such user")

    # -- calendar connections ---------------------------------------------------------------------
    async def save_connection(self, connection: Connection) -> None:
        db = await self._ready()
        c = connection
        doc = {
            "_id": c.user_id,
            "access_token": c.access_token,
            "refresh_token": c.refresh_token,
            "scopes": list(c.scopes),
            "email": c.email,
            "subject": c.subject,
            "status": c.status,
            "warnings": _warning_docs(c.warnings),
            "provider": c.provider,
            **_time_fields("expiry", c.expiry),
            **_time_fields("updated_at", c.updated_at or datetime.now(UTC)),
        }
        if not await self._user_exists(db, c.user_id):
            raise NotFound("no such user")
        await self._upsert(db.google_connections, doc)
        if not await self._user_exists(db, c.user_id):
            with _errors():
                await db.google_connections.delete_one({"_id": c.user_id})
            raise NotFound("no such user")

    async def get_connection(self, user_id: str) -> Connection | None:
        db = await self._ready()
        with _errors():
            doc = await db.google_connections.find_one({"_id": user_id})
        return _connection(doc) if doc else None

    async def set_connection_status(self, user_id: str, status: str) -> bool:
        db = await self._ready()
        changes = {"status": status, **_time_fields("updated_at", datetime.now(UTC))}
        with _errors():
            result = await db.google_connections.update_one({"_id": user_id}, {"$set": changes})
        return result.matched_count > 0

    async def set_calendar_warnings(
        self, user_id: str, warnings: tuple[CalendarWarning, ...]
    ) -> bool:
        db = await self._ready()
        changes = {"warnings": _warning_docs(warnings)}
        with _errors():
            result = await db.google_connections.update_one({"_id": user_id}, {"$set": changes})
        return result.matched_count > 0

    async def delete_connection(self, user_id: str) -> bool:
        db = await self._ready()
        with _errors():
            return (await db.google_connections.delete_one({"_id": user_id})).deleted_count > 0

    async def list_connections(self) -> list[Connection]:
        db = await self._ready()
        with _errors():
            docs = await db.google_connections.find().sort("_id", 1).to_list()
        return [_connection(doc) for doc in docs]

    # -- OAuth state (single use) -----------------------------------------------------------------
    async def put_oauth_state(self, state: OAuthState) -> None:
        db = await self._ready()
        doc = {
            "_id": state.state_hash,
            "user_id": state.user_id,
            "code_verifier": state.code_verifier,
            "link": state.link,
            "browser": state.browser,
            "provider": state.provider,
            **_time_fields("expires_at", state.expires_at),
        }
        await self._upsert(db.oauth_states, doc)

    async def consume_oauth_state(self, state_hash: str, now: datetime) -> OAuthState | None:
        db = await self._ready()
        with _errors():
            doc = await db.oauth_states.find_one({"_id": state_hash})
            # The delete count is the single point of truth: of any number of racing callers
            # exactly one removes the document (find_one_and_delete would tell every caller on
            # FerretDB that it won).
            won = (
                doc is not None
                and (await db.oauth_states.delete_one({"_id": state_hash})).deleted_count == 1
            )
            # Abandoned consents are never consumed; sweep them by the caller's clock. `$lt`
            # on the millisecond part never removes a state that is still valid.
            cutoff = _time_fields("expires_at", now)["expires_at"]
            await db.oauth_states.delete_many({"expires_at": {"$lt": cutoff}})
        if not won or doc is None or _expired(doc, now):
            return None
        return OAuthState(
            state_hash=doc["_id"],
            user_id=doc["user_id"],
            code_verifier=doc["code_verifier"],
            expires_at=_required_time(doc, "expires_at"),
            link=doc.get("link", ""),
            browser=doc.get("browser", ""),
            provider=doc.get("provider", GOOGLE),
        )

    # -- leases -----------------------------------------------------------------------------------
    async def acquire_lease(
        self, name: str, holder: str, ttl_seconds: float, *, owner: str | None = None
    ) -> bool:
        db = await self._ready()

        def may_replace(current: Document, now: datetime) -> bool:
            # Our own lease is "extended" by replacing it with a later-expiring version.
            return current["holder"] == holder or _expired(current, now)

        fields = {"holder": holder, "owner": owner}
        return await self._claim(db.leases, name, fields, ttl_seconds, may_replace)

    async def release_lease(self, name: str, holder: str) -> None:
        db = await self._ready()
        # Claims are never modified, so the one matched here is the holder's own version even
        # when the server deletes by `_id` after reading (as FerretDB does).
        with _errors():
            await db.leases.delete_one({"key": name, "holder": holder})

    # -- idempotency records ----------------------------------------------------------------------
    async def get_record(self, key: str) -> str | None:
        db = await self._ready()
        with _errors():
            doc = await db.records.find_one({"key": key})
        if doc is None or _expired(doc, datetime.now(UTC)):
            return None
        return str(doc["value"])

    async def put_record(
        self,
        key: str,
        value: str,
        ttl_seconds: float,
        *,
        owner: str | None = None,
        durable: bool = True,
    ) -> bool:
        # Every write uses the deployment's write concern, `durable` or not.
        db = await self._ready()
        fields = {"value": value, "owner": owner}
        return await self._claim(db.records, key, fields, ttl_seconds, _expired)

    # -- retention --------------------------------------------------------------------------------
    async def purge_expired(self) -> int:
        db = await self._ready()
        cutoff = _time_fields("expires_at", datetime.now(UTC))["expires_at"]
        purged = 0
        with _errors():
            for name in ("records", "leases", "oauth_states"):
                # `$lt` on the millisecond part never removes one that is still valid.
                result = await db[name].delete_many({"expires_at": {"$lt": cutoff}})
                purged += result.deleted_count
        return purged
