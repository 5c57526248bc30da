"""In-memory state of the Microsoft emulator: app registrations, accounts, mailboxes, tokens.

Shares the Google emulator's lock discipline: every read and write under one `threading.Lock`,
never held across an await. Faults, latency and request counts go through the shared
`begin_request` of the emulator, so one set of hooks drives both providers.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# The tenant id of every personal Microsoft account (id-tokens.md: `tid`).
CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
PERSONAL_DOMAINS = frozenset({"outlook.com", "hotmail.com", "live.com", "msn.com"})
AUTH_CODE_TTL = 600.0
ACCESS_TTL = 3599  # what Entra answers as expires_in
# "Outlook service limits: 4 concurrent requests" per app and mailbox (concepts/throttling.md).
DEFAULT_MAILBOX_CONCURRENCY = 4
DEFAULT_PAGE_SIZE = 10  # calendarView / events without $top
MAX_PAGE_SIZE = 1000


def _opaque(prefix: str, size: int = 48) -> str:
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(size)).decode().rstrip("=")


def new_item_id() -> str:
    """An Outlook-style item id: base64 with upper-case letters (never our own id alphabet)."""
    return "AAMkAD" + base64.urlsafe_b64encode(secrets.token_bytes(36)).decode().rstrip("=")


def regular_id(immutable: str, folder: str) -> str:
    """The default id of an item, which changes when the item moves to another folder."""
    digest = hashlib.sha256(f"{immutable}\x00{folder}".encode()).digest()
    return "AAMkAGR" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def tenant_of(email: str) -> tuple[str, bool]:
    """(tenant id, personal?) of an account, by its domain."""
    domain = email.rsplit("@", 1)[-1]
    if domain in PERSONAL_DOMAINS:
        return CONSUMER_TENANT, True
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, domain)), False


@dataclass
class MsClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()  # empty: any
    rejected: bool = False  # the secret expired or was replaced in the portal


@dataclass
class Mailbox:
    """One account's calendars and events. Events are kept by immutable id."""

    email: str
    default_calendar: str
    calendars: dict[str, str] = field(default_factory=dict)  # id -> name
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_flight: int = 0


@dataclass
class MsAccount:
    email: str
    oid: str
    tid: str
    personal: bool
    # mailboxSettings.timeZone as Outlook keeps it: a Windows name by default, or an IANA
    # name, "" or "Customized Time Zone".
    timezone: str = "UTC"
    has_mailbox: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "oid": self.oid,
            "tid": self.tid,
            "personal": self.personal,
            "timezone": self.timezone,
            "mailbox": self.has_mailbox,
        }


@dataclass
class MsCode:
    code: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    email: str
    code_challenge: str | None
    nonce: str | None
    expires_at: float
    used: bool = False


@dataclass
class MsGrant:
    refresh_token: str
    email: str
    client_id: str
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclass
class MsAccess:
    token: str
    email: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    refresh_token: str | None
    revoked: bool = False


class MicrosoftState:
    def __init__(
        self,
        *,
        begin_request: Callable[[str], Any],
        clock: Callable[[], float],
    ) -> None:
        self._lock = threading.Lock()
        self.begin_request = begin_request  # the shared fault / latency / counting gate
        self.clock = clock
        self.clients: dict[str, MsClient] = {}
        self._init_mutable()

    def _init_mutable(self) -> None:
        self.accounts: dict[str, MsAccount] = {}
        self.mailboxes: dict[str, Mailbox] = {}
        self.codes: dict[str, MsCode] = {}
        self.grants: dict[str, MsGrant] = {}
        self.access_tokens: dict[str, MsAccess] = {}
        self.page_size: int | None = None
        self.join_url_pending_reads = 0
        self.pending_join: dict[str, int] = {}
        self.mailbox_concurrency: int | None = DEFAULT_MAILBOX_CONCURRENCY
        self.retire_used_refresh_tokens = False
        self.admin_consent_tenants: set[str] = set()

    def reset(self) -> None:
        with self._lock:
            self._init_mutable()
            for client in self.clients.values():
                client.rejected = False

    # ---- settings -----------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        with self._lock:
            return {
                "page_size": self.page_size,
                "join_url_pending_reads": self.join_url_pending_reads,
                "mailbox_concurrency": self.mailbox_concurrency,
                "retire_used_refresh_tokens": self.retire_used_refresh_tokens,
                "admin_consent_tenants": sorted(self.admin_consent_tenants),
            }

    def configure(self, changes: dict[str, Any]) -> None:
        with self._lock:
            if "page_size" in changes:
                size = changes["page_size"]
                self.page_size = None if size is None else max(1, int(size))
            if "join_url_pending_reads" in changes:
                self.join_url_pending_reads = max(0, int(changes["join_url_pending_reads"]))
            if "mailbox_concurrency" in changes:
                limit = changes["mailbox_concurrency"]
                self.mailbox_concurrency = None if limit is None else max(1, int(limit))
            if "retire_used_refresh_tokens" in changes:
                self.retire_used_refresh_tokens = bool(changes["retire_used_refresh_tokens"])
            if "admin_consent_tenants" in changes:
                self.admin_consent_tenants = set(changes["admin_consent_tenants"] or ())

    # ---- app registrations and accounts ---------------------------------------------------

    def register_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str] = ()
    ) -> MsClient:
        with self._lock:
            client = MsClient(client_id, client_secret, tuple(redirect_uris))
            self.clients[client_id] = client
            return client

    def get_client(self, client_id: str) -> MsClient | None:
        with self._lock:
            return self.clients.get(client_id)

    def set_client_rejected(self, client_id: str, rejected: bool) -> bool:
        with self._lock:
            client = self.clients.get(client_id)
            if client is None:
                return False
            client.rejected = rejected
            return True

    def ensure_account(
        self,
        email: str,
        *,
        timezone: str | None = None,
        has_mailbox: bool | None = None,
    ) -> MsAccount:
        key = email.strip().lower()
        with self._lock:
            account = self.accounts.get(key)
            if account is None:
                tid, personal = tenant_of(key)
                account = MsAccount(
                    email=key,
                    oid=str(uuid.uuid4()),
                    tid=tid,
                    personal=personal,
                    timezone="UTC" if timezone is None else timezone,
                )
                self.accounts[key] = account
                default = new_item_id()
                self.mailboxes[key] = Mailbox(key, default, {default: "Calendar"})
            elif timezone is not None:
                account.timezone = timezone
            if has_mailbox is not None:
                account.has_mailbox = has_mailbox
            return account

    def get_account(self, email: str) -> MsAccount | None:
        with self._lock:
            return self.accounts.get(email.strip().lower())

    def first_account_email(self) -> str | None:
        with self._lock:
            return next(iter(self.accounts), None)

    def mailbox(self, email: str) -> Mailbox | None:
        with self._lock:
            return self.mailboxes.get(email.strip().lower())

    def add_calendar(self, email: str, name: str, calendar_id: str | None = None) -> str:
        with self._lock:
            mailbox = self.mailboxes[email.strip().lower()]
            cid = calendar_id or new_item_id()
            mailbox.calendars[cid] = name
            return cid

    def needs_admin_consent(self, tid: str) -> bool:
        with self._lock:
            return tid in self.admin_consent_tenants or "*" in self.admin_consent_tenants

    # ---- mailbox concurrency ----------------------------------------------------------------

    def enter_mailbox(self, mailbox: Mailbox) -> bool:
        """Count a request in flight; False (and not counted) above the concurrency limit."""
        with self._lock:
            limit = self.mailbox_concurrency
            if limit is not None and mailbox.in_flight >= limit:
                return False
            mailbox.in_flight += 1
            return True

    def leave_mailbox(self, mailbox: Mailbox) -> None:
        with self._lock:
            mailbox.in_flight -= 1

    # ---- events -------------------------------------------------------------------------

    def events(self, mailbox: Mailbox) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in mailbox.events.values()]

    def find_event(self, mailbox: Mailbox, any_id: str) -> dict[str, Any] | None:
        """By immutable or current regular id."""
        with self._lock:
            if any_id in mailbox.events:
                return dict(mailbox.events[any_id])
            for event in mailbox.events.values():
                if regular_id(event["_id"], event["_folder"]) == any_id:
                    return dict(event)
            return None

    def put_event(self, mailbox: Mailbox, event: dict[str, Any]) -> None:
        with self._lock:
            mailbox.events[event["_id"]] = event

    def by_transaction(
        self, mailbox: Mailbox, calendar_id: str, txid: str
    ) -> dict[str, Any] | None:
        with self._lock:
            for event in mailbox.events.values():
                if event.get("transactionId") == txid and event["_folder"] == calendar_id:
                    return dict(event)
            return None

    def online_meeting_created(self, event_id: str) -> None:
        with self._lock:
            if self.join_url_pending_reads > 0:
                self.pending_join[event_id] = self.join_url_pending_reads

    def join_url_ready(self, event_id: str, *, read: bool) -> bool:
        """Whether the join URL exists yet; a read (`GET`) counts toward it."""
        with self._lock:
            left = self.pending_join.get(event_id)
            if left is None:
                return True
            if not read:
                return False
            if left > 1:
                self.pending_join[event_id] = left - 1
                return False
            del self.pending_join[event_id]
            return True

    # ---- OAuth --------------------------------------------------------------------------

    def create_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        scopes: tuple[str, ...],
        email: str,
        code_challenge: str | None,
        nonce: str | None,
    ) -> MsCode:
        with self._lock:
            code = MsCode(
                code=_opaque("M.C5"),
                client_id=client_id,
                redirect_uri=redirect_uri,
                scopes=scopes,
                email=email,
                code_challenge=code_challenge,
                nonce=nonce,
                expires_at=self.clock() + AUTH_CODE_TTL,
            )
            self.codes[code.code] = code
            return code

    def redeem_code(self, code: str) -> MsCode | None:
        with self._lock:
            found = self.codes.get(code)
            if found is None or found.used or found.expires_at < self.clock():
                return None
            found.used = True
            return found

    def issue_tokens(
        self,
        *,
        email: str,
        client_id: str,
        scopes: tuple[str, ...],
        expires_in: int = ACCESS_TTL,
        with_refresh_token: bool = True,
    ) -> tuple[MsAccess, MsGrant | None]:
        with self._lock:
            return self._issue(email, client_id, scopes, expires_in, with_refresh_token)

    def _issue(
        self,
        email: str,
        client_id: str,
        scopes: tuple[str, ...],
        expires_in: int,
        with_refresh_token: bool,
    ) -> tuple[MsAccess, MsGrant | None]:
        grant: MsGrant | None = None
        if with_refresh_token:
            grant = MsGrant(_opaque("M.C5_BAY."), email, client_id, scopes)
            self.grants[grant.refresh_token] = grant
        access = MsAccess(
            token=_opaque("EwBIA8l6BAAU"),
            email=email,
            client_id=client_id,
            scopes=scopes,
            expires_at=self.clock() + expires_in,
            refresh_token=grant.refresh_token if grant else None,
        )
        self.access_tokens[access.token] = access
        return access, grant

    def refresh(self, refresh_token: str, client_id: str) -> tuple[MsAccess, MsGrant] | str:
        """A new access token and a new refresh token (always rotated), or an error code."""
        with self._lock:
            grant = self.grants.get(refresh_token)
            if grant is None or grant.revoked or grant.client_id != client_id:
                return "invalid_grant"
            if self.retire_used_refresh_tokens:
                grant.revoked = True
            access, rotated = self._issue(grant.email, client_id, grant.scopes, ACCESS_TTL, True)
            assert rotated is not None
            return access, rotated

    def check_access_token(self, token: str) -> MsAccess | None:
        with self._lock:
            access = self.access_tokens.get(token)
            if access is None or access.revoked or access.expires_at <= self.clock():
                return None
            return access

    def expire_access_tokens(self, email: str) -> int:
        key = email.lower()
        with self._lock:
            count = 0
            for access in self.access_tokens.values():
                if access.email == key and access.expires_at > self.clock() - 1:
                    access.expires_at = self.clock() - 1
                    count += 1
            return count

    def revoke_grants(self, email: str) -> int:
        """As if the user removed the app or an admin revoked their sessions."""
        key = email.lower()
        with self._lock:
            count = 0
            for grant in self.grants.values():
                if grant.email == key and not grant.revoked:
                    grant.revoked = True
                    count += 1
            for access in self.access_tokens.values():
                if access.email == key:
                    access.revoked = True
            return count
