"""SQLite backend on aiosqlite.

Several server processes may share one database file, so every guarantee of the contract
(single-use OAuth state, leases, first-writer-wins records) is a single SQL statement that
SQLite executes atomically under its own file lock; nothing is read in Python and written back.
Datetimes are stored as epoch seconds (REAL) and come back as aware UTC datetimes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from vapi_calendar.ports.stores import (
    AlreadyExists,
    ApiKey,
    CalendarWarning,
    ConnectedUser,
    Connection,
    LinkKind,
    NotFound,
    OAuthState,
    Store,
    StoreError,
    User,
)
from vapi_calendar.support.batched import BatchedLookup, LookupsClosed

# RETURNING (used for every atomic take/consume below) arrived in SQLite 3.35.
_MIN_SQLITE = (3, 35, 0)

# Ordered schema migrations: MIGRATIONS[i] brings the schema from version i to i + 1.
# Append new entries; never edit a released one. Each entry is a list of single statements
# (not a script) so that the whole upgrade runs inside one BEGIN IMMEDIATE transaction.
MIGRATIONS: list[list[str]] = [
    # 1: initial schema
    [
        """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            timezone TEXT NOT NULL,
            rules TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL
        )
        """,
        """
        CREATE TABLE assistants (
            assistant_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE
        )
        """,
        "CREATE INDEX assistants_user_id ON assistants(user_id)",
        """
        CREATE TABLE google_connections (
            user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            access_token TEXT NOT NULL,
            refresh_token TEXT,
            expiry REAL,
            scopes TEXT NOT NULL DEFAULT '[]',
            email TEXT,
            subject TEXT,
            status TEXT NOT NULL DEFAULT 'connected',
            updated_at REAL NOT NULL
        )
        """,
        """
        CREATE TABLE oauth_states (
            state_hash TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            code_verifier TEXT NOT NULL,
            expires_at REAL NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        )
        """,
        "CREATE INDEX oauth_states_expires_at ON oauth_states(expires_at)",
        """
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at REAL NOT NULL
        )
        """,
        """
        CREATE TABLE records (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            expires_at REAL NOT NULL
        )
        """,
        "CREATE INDEX records_expires_at ON records(expires_at)",
    ],
    # 2: who owns records and leases (deleted with the user); how a consent is bound to its
    # connect link and to the browser that started it
    [
        "ALTER TABLE records ADD COLUMN owner TEXT",
        "CREATE INDEX records_owner ON records(owner)",
        "ALTER TABLE leases ADD COLUMN owner TEXT",
        "CREATE INDEX leases_owner ON leases(owner)",
        "ALTER TABLE oauth_states ADD COLUMN link TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE oauth_states ADD COLUMN browser TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX oauth_states_user_id ON oauth_states(user_id)",
    ],
    # 3: calendars of a connection that cannot be read (JSON list, see _warnings_json)
    [
        "ALTER TABLE google_connections ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]'",
    ],
    # 4: Vapi phone number → user links
    [
        """
        CREATE TABLE phone_numbers (
            phone_number_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE
        )
        """,
        "CREATE INDEX phone_numbers_user_id ON phone_numbers(user_id)",
    ],
    # 5: links of every platform in one table (Vapi's assistant and phone-number links move
    # in); per-user API keys, stored as digests
    [
        """
        CREATE TABLE links (
            platform TEXT NOT NULL,
            kind TEXT NOT NULL,
            linked_id TEXT NOT NULL,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            PRIMARY KEY (platform, kind, linked_id)
        )
        """,
        "CREATE INDEX links_user_id ON links(user_id)",
        "INSERT INTO links (platform, kind, linked_id, user_id) "
        "SELECT 'vapi', 'agent', assistant_id, user_id FROM assistants",
        "INSERT INTO links (platform, kind, linked_id, user_id) "
        "SELECT 'vapi', 'phoneNumber', phone_number_id, user_id FROM phone_numbers",
        "DROP TABLE assistants",
        "DROP TABLE phone_numbers",
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            digest TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        )
        """,
        "CREATE INDEX api_keys_user_id ON api_keys(user_id)",
    ],
    # 6: which calendar provider a connection (and a pending consent) is with
    [
        "ALTER TABLE google_connections ADD COLUMN provider TEXT NOT NULL DEFAULT 'google'",
        "ALTER TABLE oauth_states ADD COLUMN provider TEXT NOT NULL DEFAULT 'google'",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


def _epoch(value: datetime) -> float:
    # A naive datetime would silently be read as local time by .timestamp(); refuse it.
    if value.tzinfo is None:
        raise ValueError("the store only accepts timezone-aware datetimes")
    return value.timestamp()


def _from_epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def _is_busy(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(exc)


def _translate(exc: sqlite3.Error) -> StoreError:
    """A short, value-free StoreError; the original stays chained for debugging."""
    if _is_busy(exc):
        return StoreError("database is busy (locked by another writer)")
    name = getattr(exc, "sqlite_errorname", "") or type(exc).__name__
    return StoreError(f"database error ({name})")


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        timezone=row["timezone"],
        created_at=_from_epoch(row["created_at"]),
        rules=json.loads(row["rules"]),
    )


# Every tool call starts with this read: its user and that user's connection (found by id or
# through a link) in one statement instead of a read each (the hand-offs to a thread, not
# SQLite, are what it costs). `{link}`: the columns naming the link it was found through, if
# any. Column names do not clash.
_USERS_WITH_CONNECTIONS = (
    "SELECT {link}u.id, u.timezone, u.rules, u.created_at, c.* FROM users u "
    "LEFT JOIN google_connections c ON c.user_id = u.id "
)


# Store a record unless a live one exists (first writer wins): RETURNING yields a row only
# when it was stored.
_PUT_RECORD = (
    "INSERT INTO records (key, value, expires_at, owner) "
    "VALUES (:key, :value, :expires, :owner) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
    "expires_at = excluded.expires_at, owner = excluded.owner "
    "WHERE records.expires_at <= :now"
)
_PUT_RECORD_RETURNING_KEY = _PUT_RECORD + " RETURNING key"
# …and, in the same statement, read another record as it stands then.
_PUT_RECORD_RETURNING_READ = (
    _PUT_RECORD + " RETURNING (SELECT value FROM records WHERE key = :read AND expires_at > :now)"  # noqa: S608 - constants only
)


def _record_params(key: str, value: str, ttl_seconds: float, owner: str | None) -> dict[str, Any]:
    now = time.time()
    return {"key": key, "value": value, "expires": now + ttl_seconds, "now": now, "owner": owner}


def _connected_user(row: sqlite3.Row) -> ConnectedUser:
    return ConnectedUser(_user(row), None if row["user_id"] is None else _connection(row))


def _api_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        id=row["id"],
        user_id=row["user_id"],
        digest=row["digest"],
        name=row["name"],
        created_at=_from_epoch(row["created_at"]),
    )


def _warnings_json(warnings: tuple[CalendarWarning, ...]) -> str:
    return json.dumps(
        [
            {"calendarId": w.calendar_id, "reason": w.reason, "since": _epoch(w.since)}
            for w in warnings
        ]
    )


def _warnings(text: str) -> tuple[CalendarWarning, ...]:
    return tuple(
        CalendarWarning(item["calendarId"], item["reason"], _from_epoch(item["since"]))
        for item in json.loads(text)
    )


def _connection(row: sqlite3.Row) -> Connection:
    return Connection(
        user_id=row["user_id"],
        access_token=row["access_token"],
        refresh_token=row["refresh_token"],
        expiry=None if row["expiry"] is None else _from_epoch(row["expiry"]),
        scopes=tuple(json.loads(row["scopes"])),
        email=row["email"],
        subject=row["subject"],
        status=row["status"],
        updated_at=_from_epoch(row["updated_at"]),
        warnings=_warnings(row["warnings"]),
        provider=row["provider"],
    )


class SQLiteStore(Store):
    def __init__(self, path: str, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        # How long a statement waits for another process's write lock before failing.
        self.busy_timeout_ms = busy_timeout_ms
        self._db: aiosqlite.Connection | None = None
        # A second connection for what only matters while the processes using it live: leases,
        # tool-call answers and booking markers (`put_record(durable=False)`). Its commits do
        # not wait for an fsync (synchronous=NORMAL, SQLite's advice for WAL when durability
        # is not needed): about 0.3 ms less per write here, four writes per booking. A crash of
        # the process loses nothing either way; a power cut or an OS crash may lose its last
        # commits, which then no longer matter (see `_open_connection`). Everything else, from
        # users to tokens and single-use link markers, commits durably (synchronous=FULL).
        self._coordination_db: aiosqlite.Connection | None = None
        # Serialises open() and close().
        self._lock = asyncio.Lock()
        # This process's writes, on either connection, take turns here (first come, first
        # served). Otherwise the two connections meet in SQLite's busy handler, which sleeps
        # 1, 2, 5 … 100 ms between tries while everything queued behind the sleeping
        # connection waits too. Reads never wait for a writer in WAL mode, so they skip it.
        # A multi-statement transaction (BEGIN IMMEDIATE) holds it throughout, so no other
        # write of this process lands inside it on the same connection.
        self._writes = asyncio.Lock()
        # The read every tool call starts with (its user and connection) has a read-only
        # connection and a thread of its own, so that reads asked for while one is running go
        # out together when it ends: one hand-off to the thread for most of a burst of calls
        # instead of one each (`support.batched`; nothing is cached).
        self._identity_thread: ThreadPoolExecutor | None = None
        self._identity_db: sqlite3.Connection | None = None
        self._users_by_id: BatchedLookup[str, sqlite3.Row] | None = None
        self._users_by_link: BatchedLookup[tuple[str, str, str], sqlite3.Row] | None = None

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    @property
    def _coordination(self) -> aiosqlite.Connection:
        if self._coordination_db is None:
            raise StoreError("store is not open")
        return self._coordination_db

    async def _fetch(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] = (),
        *,
        durable: bool = True,
    ) -> list[sqlite3.Row]:
        # execute_fetchall steps the statement to completion, so an autocommit write with
        # RETURNING is committed before we look at its rows.
        db = self._conn if durable else self._coordination
        try:
            if durable and sql.startswith("SELECT"):
                return list(await db.execute_fetchall(sql, params))
            async with self._writes:
                return list(await db.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def _change(self, sql: str, params: Sequence[Any] = (), *, durable: bool = True) -> int:
        """Run one write statement and return how many rows it changed."""
        db = self._conn if durable else self._coordination
        try:
            async with self._writes, db.execute(sql, params) as cursor:
                return cursor.rowcount
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    # -- life cycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        async with self._lock:
            if self._db is not None:
                return
            if sqlite3.sqlite_version_info < _MIN_SQLITE:
                raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old; 3.35+ is needed")
            await asyncio.to_thread(self._prepare_file)
            db = await self._open_connection()
            self._db = db
            try:
                await self._migrate()
                self._coordination_db = await self._open_connection(durable=False)
                await self._open_identity_reads()
            except BaseException:
                self._db = None
                await db.close()
                raise

    async def _open_connection(self, *, durable: bool = True) -> aiosqlite.Connection:
        try:
            db = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        db.row_factory = sqlite3.Row
        try:
            # busy_timeout first: switching to WAL needs a lock another process may hold.
            await db.execute_fetchall(f"PRAGMA busy_timeout={int(self.busy_timeout_ms):d}")
            await self._enable_wal(db)
            await db.execute_fetchall("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten with zeros, not left readable in free pages.
            await db.execute_fetchall("PRAGMA secure_delete=ON")
            # FULL: a commit survives a power cut. NORMAL (coordination records only): it
            # survives a crash of the process; a power cut or an OS crash may roll back the last
            # commits (SQLite's documentation of `synchronous`).
            # Those are leases (every holder died with the machine), and answers and booking
            # markers of tool calls that were in flight; the event id derived from the tool
            # call still keeps a redelivery from booking twice (`tools/booking.py`).
            await db.execute_fetchall(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        except sqlite3.Error as exc:
            await db.close()
            raise _translate(exc) from exc
        except BaseException:
            await db.close()
            raise
        return db

    def _prepare_file(self) -> None:
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Create the file ourselves so it never exists with a wider mode, and tighten an older
        # one. SQLite gives its -wal/-shm side files the same mode as the database file.
        # Never open (and close) an existing database file here: closing any descriptor of a
        # file drops every POSIX lock this process holds on it, including those of a store
        # already open in the process, and another process may then believe it is the last
        # connection, checkpoint and delete the WAL, which leaves the open store reading a
        # deleted WAL (stale reads for good). O_EXCL only ever opens a file nobody else has.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)

    async def _enable_wal(self, db: aiosqlite.Connection) -> None:
        # The switch needs an exclusive lock, and when several connections open a new file at
        # once SQLite can report the contention at once instead of calling the busy handler,
        # so retry within the same time budget. (If the file system cannot do WAL, SQLite keeps
        # the rollback journal; every guarantee here still holds, with less read concurrency.)
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                await db.execute_fetchall("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise _translate(exc) from exc
            await asyncio.sleep(0.01)

    async def _migrate(self) -> None:
        rows = await self._fetch("PRAGMA user_version")
        if rows[0][0] == SCHEMA_VERSION:
            return
        db = self._conn
        try:
            async with self._writes:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    # Re-read under the write lock: another process may have migrated meanwhile.
                    async with db.execute("PRAGMA user_version") as cursor:
                        row = await cursor.fetchone()
                    current = row[0] if row else 0
                    if current > SCHEMA_VERSION:
                        raise StoreError("database schema is newer than this server")
                    for statements in MIGRATIONS[current:]:
                        for sql in statements:
                            await db.execute(sql)
                    # PRAGMA cannot take a bound parameter; SCHEMA_VERSION is our own int.
                    await db.execute(f"PRAGMA user_version={SCHEMA_VERSION:d}")
                except BaseException:
                    await db.rollback()
                    raise
                await db.commit()
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def _open_identity_reads(self) -> None:
        thread = ThreadPoolExecutor(1, thread_name_prefix="vapi-calendar-identity-reads")
        try:
            db = await asyncio.get_running_loop().run_in_executor(thread, self._connect_reader)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        self._identity_thread, self._identity_db = thread, db
        self._users_by_id = BatchedLookup(self._read_users_by_id, thread)
        self._users_by_link = BatchedLookup(self._read_users_by_link, thread)

    def _connect_reader(self) -> sqlite3.Connection:
        # Runs on the identity thread, which alone ever uses this connection (SQLite's own
        # same-thread check stays on). WAL mode is the file's, set by the main connection.
        try:
            db = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        try:
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms):d}")
            db.execute("PRAGMA query_only=ON")
        except sqlite3.Error as exc:
            db.close()
            raise _translate(exc) from exc
        return db

    def _read_connected_users(self, sql: str, params: list[Any]) -> list[sqlite3.Row]:
        # Runs on the identity thread, one read at a time.
        if self._identity_db is None:
            raise StoreError("store is not open")
        try:
            return self._identity_db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    # The thread only reads: rows become objects on the event loop's thread, so the reader
    # never holds the GIL for long while the loop waits for it.
    def _read_users_by_id(self, user_ids: Sequence[str]) -> dict[str, sqlite3.Row]:
        marks = ", ".join("?" * len(user_ids))
        rows = self._read_connected_users(
            _USERS_WITH_CONNECTIONS.format(link="") + f"WHERE u.id IN ({marks})", list(user_ids)
        )
        return {row["id"]: row for row in rows}

    def _read_users_by_link(
        self, links: Sequence[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], sqlite3.Row]:
        marks = ", ".join(["(?, ?, ?)"] * len(links))
        link = "l.platform AS link_platform, l.kind AS link_kind, l.linked_id AS link_id, "
        rows = self._read_connected_users(
            _USERS_WITH_CONNECTIONS.format(link=link)
            + "JOIN links l ON l.user_id = u.id "
            + f"WHERE (l.platform, l.kind, l.linked_id) IN (VALUES {marks})",
            [part for link in links for part in link],
        )
        return {(row["link_platform"], row["link_kind"], row["link_id"]): row for row in rows}

    async def _close_identity_reads(self) -> None:
        thread, db = self._identity_thread, self._identity_db
        self._identity_thread = self._identity_db = self._users_by_id = self._users_by_link = None
        if thread is None:
            return
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(thread, db.close)
        thread.shutdown(wait=False)

    async def close(self) -> None:
        async with self._lock:
            await self._close_identity_reads()
            for db in (self._coordination_db, self._db):
                if db is not None:
                    await db.close()
            self._db = self._coordination_db = None

    async def ping(self) -> None:
        await self._fetch("SELECT 1")

    # -- users --------------------------------------------------------------------------------
    async def create_user(self, user: User) -> None:
        rows = await self._fetch(
            "INSERT INTO users (id, timezone, rules, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING RETURNING id",
            (user.id, user.timezone, json.dumps(user.rules), _epoch(user.created_at)),
        )
        if not rows:
            raise AlreadyExists("user already exists")

    async def get_user(self, user_id: str) -> User | None:
        rows = await self._fetch("SELECT * FROM users WHERE id = ?", (user_id,))
        return _user(rows[0]) if rows else None

    async def update_user(
        self,
        user_id: str,
        *,
        timezone: str | None = None,
        rules: dict[str, Any] | None = None,
    ) -> User:
        rows = await self._fetch(
            "UPDATE users SET timezone = COALESCE(?, timezone), rules = COALESCE(?, rules) "
            "WHERE id = ? RETURNING *",
            (timezone, None if rules is None else json.dumps(rules), user_id),
        )
        if not rows:
            raise NotFound("no such user")
        return _user(rows[0])

    async def delete_user(self, user_id: str) -> bool:
        db = self._conn
        try:
            async with self._writes:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    # Links, API keys and the connection go with the user through
                    # ON DELETE CASCADE.
                    async with db.execute("DELETE FROM users WHERE id = ?", (user_id,)) as cursor:
                        deleted = cursor.rowcount > 0
                    for table, column in (
                        ("oauth_states", "user_id"),
                        ("records", "owner"),
                        ("leases", "owner"),
                    ):
                        await db.execute(f"DELETE FROM {table} WHERE {column} = ?", (user_id,))  # noqa: S608 - our own names
                except BaseException:
                    await db.rollback()
                    raise
                await db.commit()
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        await self._scrub_wal()
        return deleted

    async def _scrub_wal(self) -> None:
        """Copy the write-ahead log into the database and empty it: the log still holds the
        deleted rows' old pages (secure_delete zeroes them only in the database file)."""
        # Another process may be writing: its own checkpoints catch up, so this is best effort.
        with contextlib.suppress(StoreError):
            await self._fetch("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- (platform, agent or phone number) → user links ----------------------------------------
    async def put_link(self, platform: str, kind: LinkKind, linked_id: str, user_id: str) -> None:
        # Selecting from users makes "user exists" part of the same statement: no row, no link.
        rows = await self._fetch(
            "INSERT INTO links (platform, kind, linked_id, user_id) "
            "SELECT ?, ?, ?, id FROM users WHERE id = ? "
            "ON CONFLICT (platform, kind, linked_id) DO UPDATE SET user_id = excluded.user_id "
            "RETURNING linked_id",
            (platform, kind, linked_id, user_id),
        )
        if not rows:
            raise NotFound("no such user")

    async def delete_link(self, platform: str, kind: LinkKind, linked_id: str) -> bool:
        sql = "DELETE FROM links WHERE platform = ? AND kind = ? AND linked_id = ?"
        return await self._change(sql, (platform, kind, linked_id)) > 0

    async def linked_user(self, platform: str, kind: LinkKind, linked_id: str) -> str | None:
        rows = await self._fetch(
            "SELECT user_id FROM links WHERE platform = ? AND kind = ? AND linked_id = ?",
            (platform, kind, linked_id),
        )
        return rows[0]["user_id"] if rows else None

    # -- a tool call's user and connection, in one statement -------------------------------------
    async def user_with_connection(self, user_id: str) -> ConnectedUser | None:
        return await self._looked_up(self._users_by_id, user_id)

    async def linked_user_with_connection(
        self, platform: str, kind: LinkKind, linked_id: str
    ) -> ConnectedUser | None:
        return await self._looked_up(self._users_by_link, (platform, kind, linked_id))

    @staticmethod
    async def _looked_up(
        lookup: BatchedLookup[Any, sqlite3.Row] | None, key: Hashable
    ) -> ConnectedUser | None:
        if lookup is None:
            raise StoreError("store is not open")
        try:
            row = await lookup.get(key)
        except LookupsClosed:
            raise StoreError("store is not open") from None
        return None if row is None else _connected_user(row)

    # -- API keys ---------------------------------------------------------------------------------
    async def create_api_key(self, key: ApiKey) -> None:
        try:
            rows = await self._fetch(
                "INSERT INTO api_keys (id, user_id, digest, name, created_at) "
                "SELECT ?, id, ?, ?, ? FROM users WHERE id = ? RETURNING id",
                (key.id, key.digest, key.name, _epoch(key.created_at), key.user_id),
            )
        except StoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise AlreadyExists("API key id or digest already exists") from None
            raise
        if not rows:
            raise NotFound("no such user")

    async def list_api_keys(self, user_id: str) -> list[ApiKey]:
        rows = await self._fetch(
            "SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, id", (user_id,)
        )
        return [_api_key(row) for row in rows]

    async def delete_api_key(self, user_id: str, key_id: str) -> bool:
        sql = "DELETE FROM api_keys WHERE user_id = ? AND id = ?"
        return await self._change(sql, (user_id, key_id)) > 0

    async def api_key_by_digest(self, digest: str) -> ApiKey | None:
        rows = await self._fetch("SELECT * FROM api_keys WHERE digest = ?", (digest,))
        return _api_key(rows[0]) if rows else None

    # -- calendar connections ---------------------------------------------------------------------
    async def save_connection(self, connection: Connection) -> None:
        c = connection
        updated_at = time.time() if c.updated_at is None else _epoch(c.updated_at)
        rows = await self._fetch(
            "INSERT INTO google_connections (user_id, access_token, refresh_token, expiry, "
            "scopes, email, subject, status, updated_at, warnings, provider) "
            "SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM users WHERE id = ? "
            "ON CONFLICT (user_id) DO UPDATE SET "
            "access_token = excluded.access_token, refresh_token = excluded.refresh_token, "
            "expiry = excluded.expiry, scopes = excluded.scopes, email = excluded.email, "
            "subject = excluded.subject, status = excluded.status, "
            "updated_at = excluded.updated_at, warnings = excluded.warnings, "
            "provider = excluded.provider "
            "RETURNING user_id",
            (
                c.access_token,
                c.refresh_token,
                None if c.expiry is None else _epoch(c.expiry),
                json.dumps(list(c.scopes)),
                c.email,
                c.subject,
                c.status,
                updated_at,
                _warnings_json(c.warnings),
                c.provider,
                c.user_id,
            ),
        )
        if not rows:
            raise NotFound("no such user")

    async def get_connection(self, user_id: str) -> Connection | None:
        rows = await self._fetch("SELECT * FROM google_connections WHERE user_id = ?", (user_id,))
        return _connection(rows[0]) if rows else None

    async def set_connection_status(self, user_id: str, status: str) -> bool:
        changed = await self._change(
            "UPDATE google_connections SET status = ?, updated_at = ? WHERE user_id = ?",
            (status, time.time(), user_id),
        )
        return changed > 0

    async def set_calendar_warnings(
        self, user_id: str, warnings: tuple[CalendarWarning, ...]
    ) -> bool:
        changed = await self._change(
            "UPDATE google_connections SET warnings = ? WHERE user_id = ?",
            (_warnings_json(warnings), user_id),
        )
        return changed > 0

    async def delete_connection(self, user_id: str) -> bool:
        sql = "DELETE FROM google_connections WHERE user_id = ?"
        return await self._change(sql, (user_id,)) > 0

    async def list_connections(self) -> list[Connection]:
        rows = await self._fetch("SELECT * FROM google_connections ORDER BY user_id")
        return [_connection(row) for row in rows]

    # -- OAuth state (single use) -----------------------------------------------------------------
    async def put_oauth_state(self, state: OAuthState) -> None:
        await self._change(
            "INSERT OR REPLACE INTO oauth_states "
            "(state_hash, user_id, code_verifier, expires_at, link, browser, provider) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                state.state_hash,
                state.user_id,
                state.code_verifier,
                _epoch(state.expires_at),
                state.link,
                state.browser,
                state.provider,
            ),
        )

    async def consume_oauth_state(self, state_hash: str, now: datetime) -> OAuthState | None:
        # The DELETE is the single point of truth: of any number of racing callers only one
        # gets the row back. Expiry is checked afterwards so an expired state is gone too.
        rows = await self._fetch(
            "DELETE FROM oauth_states WHERE state_hash = ? "
            "RETURNING state_hash, user_id, code_verifier, expires_at, link, browser, provider",
            (state_hash,),
        )
        # Abandoned consents are never consumed; sweep them by the caller's clock so the
        # table stays small.
        await self._change("DELETE FROM oauth_states WHERE expires_at <= ?", (_epoch(now),))
        if not rows or rows[0]["expires_at"] <= _epoch(now):
            return None
        row = rows[0]
        return OAuthState(
            state_hash=row["state_hash"],
            user_id=row["user_id"],
            code_verifier=row["code_verifier"],
            expires_at=_from_epoch(row["expires_at"]),
            link=row["link"],
            browser=row["browser"],
            provider=row["provider"],
        )

    # -- leases -----------------------------------------------------------------------------------
    async def acquire_lease(
        self, name: str, holder: str, ttl_seconds: float, *, owner: str | None = None
    ) -> bool:
        now = time.time()
        # The upsert only overwrites an expired lease or our own; otherwise it changes nothing
        # and RETURNING yields no row. SQLite's write lock makes the check-and-set atomic.
        rows = await self._fetch(
            "INSERT INTO leases (name, holder, expires_at, owner) "
            "VALUES (:name, :holder, :expires, :owner) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires_at = excluded.expires_at, owner = excluded.owner "
            "WHERE leases.expires_at <= :now OR leases.holder = excluded.holder "
            "RETURNING holder",
            {
                "name": name,
                "holder": holder,
                "expires": now + ttl_seconds,
                "now": now,
                "owner": owner,
            },
            durable=False,
        )
        return bool(rows)

    async def release_lease(self, name: str, holder: str) -> None:
        sql = "DELETE FROM leases WHERE name = ? AND holder = ?"
        await self._change(sql, (name, holder), durable=False)

    # -- idempotency records ----------------------------------------------------------------------
    async def get_record(self, key: str) -> str | None:
        rows = await self._fetch(
            "SELECT value FROM records WHERE key = ? AND expires_at > ?", (key, time.time())
        )
        return rows[0]["value"] if rows else None

    async def put_record(
        self,
        key: str,
        value: str,
        ttl_seconds: float,
        *,
        owner: str | None = None,
        durable: bool = True,
    ) -> bool:
        params = _record_params(key, value, ttl_seconds, owner)
        rows = await self._fetch(_PUT_RECORD_RETURNING_KEY, params, durable=durable)
        return bool(rows)

    async def put_record_and_read(
        self,
        key: str,
        value: str,
        ttl_seconds: float,
        *,
        read: str,
        owner: str | None = None,
        durable: bool = True,
    ) -> tuple[bool, str | None]:
        # One statement when the record is stored (the usual case): RETURNING also reads
        # `read`, as it stands when the statement runs, under the same write lock.
        params = {**_record_params(key, value, ttl_seconds, owner), "read": read}
        rows = await self._fetch(_PUT_RECORD_RETURNING_READ, params, durable=durable)
        if rows:
            return True, rows[0][0]
        return False, await self.get_record(read)

    # -- retention --------------------------------------------------------------------------------
    async def purge_expired(self) -> int:
        now = time.time()
        purged = 0
        for table in ("records", "leases", "oauth_states"):
            purged += await self._change(f"DELETE FROM {table} WHERE expires_at <= ?", (now,))  # noqa: S608 - our own names
        return purged
