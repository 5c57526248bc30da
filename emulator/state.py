"""In-memory state of the Google emulator.

Every read and write goes through `EmulatorState` under one `threading.Lock`: the ASGI handlers
run on the server's event loop while tests poke the same object from their own threads (directly
or through the control hooks). Critical sections are tiny and never await, so the lock never
blocks the loop for long.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vapi_calendar.emulator.microsoft.state import MicrosoftState

SCOPE_PREFIX = "https://www.googleapis.com/auth/"

# Google answers with the canonical form of these OpenID aliases, which is what makes oauthlib
# raise "Scope has changed" unless OAUTHLIB_RELAX_TOKEN_SCOPE is set; mirror that.
SCOPE_ALIASES = {
    "email": SCOPE_PREFIX + "userinfo.email",
    "profile": SCOPE_PREFIX + "userinfo.profile",
}
# Identity scopes are granted with the sign-in itself; the consent page has no checkbox for them.
IDENTITY_SCOPES = frozenset({"openid", *SCOPE_ALIASES.values()})

AUTH_CODE_TTL = 600.0
DEFAULT_ACCESS_TTL = 3599


def normalize_scope(scope: str) -> str:
    return SCOPE_ALIASES.get(scope, scope)


def normalize_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Canonicalise and de-duplicate, keeping the caller's order."""
    out: list[str] = []
    for scope in scopes:
        canonical = normalize_scope(scope)
        if canonical and canonical not in out:
            out.append(canonical)
    return tuple(out)


def _token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


@dataclass
class Client:
    client_id: str
    client_secret: str
    # Empty = accept any redirect URI (the emulator has no console to register them in).
    redirect_uris: tuple[str, ...] = ()


@dataclass
class Account:
    email: str
    sub: str
    timezone: str = "UTC"

    def to_json(self) -> dict[str, Any]:
        return {"email": self.email, "sub": self.sub, "timezone": self.timezone}


@dataclass
class Calendar:
    id: str
    owner: str  # account email
    summary: str
    timezone: str
    # Insertion-ordered; cancelled events stay so reused ids and 410s behave like Google.
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.owner,
            "summary": self.summary,
            "timeZone": self.timezone,
        }


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    email: str
    code_challenge: str | None
    issue_refresh_token: bool
    expires_at: float
    used: bool = False


@dataclass
class Grant:
    """A refresh token and what it allows."""

    refresh_token: str
    email: str
    client_id: str
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclass
class AccessToken:
    token: str
    email: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    refresh_token: str | None
    revoked: bool = False


@dataclass
class Fault:
    kind: str
    status: int | None  # None = latency only, the request then succeeds
    error: str | None = None
    error_description: str | None = None
    body: Any = None
    times: int = 1
    probability: float | None = None
    latency_ms: int = 0
    headers: dict[str, str] | None = None  # extra response headers, e.g. Retry-After


@dataclass
class FaultDecision:
    """What `EmulatorState.begin_request` tells a handler to do before its real work."""

    delay_s: float = 0.0
    fault: Fault | None = None


class EmulatorState:
    def __init__(
        self,
        clients: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self.clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - fault dice, not crypto
        self.clients: dict[str, Client] = {}
        for client_id, secret in (clients or {}).items():
            self.clients[client_id] = Client(client_id, secret)
        # Microsoft 365, served by the same app through the same fault and counting gate.
        self.microsoft = MicrosoftState(begin_request=self.begin_request, clock=clock)
        self._init_mutable()

    def _init_mutable(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.calendars: dict[str, Calendar] = {}
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        # (email, client_id) pairs with a live grant: Google skips the refresh token on re-consent.
        self.consented: dict[tuple[str, str], set[str]] = {}
        self.faults: list[Fault] = []
        # Added delay per request kind (None: every kind): milliseconds, give or take up to
        # the jitter, drawn uniformly for each request.
        self.latency_ms: dict[str | None, tuple[int, int]] = {}
        self.requests: dict[str, int] = {}
        self.rotate_refresh_tokens = False
        # events.list pages: at most this many items per page (None = what maxResults asks),
        # and with `list_empty_pages` an empty page carrying nextPageToken before each page.
        self.list_page_size: int | None = None
        self.list_empty_pages = False
        # freeBusy answers these calendars (id as sent, or the resolved id) with a per-calendar
        # error of this reason instead of their busy time.
        self.freebusy_errors: dict[str, str] = {}
        # Meet conferences stay `pending` for this many events.get reads after the write.
        self.meet_pending_reads = 0
        self.pending_conferences: dict[tuple[str, str], int] = {}
        # OAuth clients whose secret the token endpoint refuses (`invalid_client`).
        self.rejected_clients: set[str] = set()

    # ---- housekeeping -------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything except registered OAuth clients (Microsoft's included)."""
        with self._lock:
            self._init_mutable()
        self.microsoft.reset()

    def reset_requests(self) -> None:
        with self._lock:
            self.requests = {}

    def request_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.requests)

    def set_rotate_refresh_tokens(self, rotate: bool) -> None:
        with self._lock:
            self.rotate_refresh_tokens = rotate

    def set_list_paging(self, page_size: int | None, empty_pages: bool) -> None:
        with self._lock:
            self.list_page_size = page_size
            self.list_empty_pages = empty_pages

    def list_paging(self) -> tuple[int | None, bool]:
        with self._lock:
            return self.list_page_size, self.list_empty_pages

    def set_freebusy_error(self, calendar_id: str, reason: str | None) -> None:
        with self._lock:
            if reason is None:
                self.freebusy_errors.pop(calendar_id, None)
            else:
                self.freebusy_errors[calendar_id] = reason

    def freebusy_error(self, *calendar_ids: str) -> str | None:
        with self._lock:
            for cid in calendar_ids:
                if cid in self.freebusy_errors:
                    return self.freebusy_errors[cid]
            return None

    def set_meet_pending_reads(self, reads: int) -> None:
        with self._lock:
            self.meet_pending_reads = reads

    def meet_pending(self) -> bool:
        with self._lock:
            return self.meet_pending_reads > 0

    def set_client_rejected(self, client_id: str, rejected: bool) -> None:
        with self._lock:
            if rejected:
                self.rejected_clients.add(client_id)
            else:
                self.rejected_clients.discard(client_id)

    def client_rejected(self, client_id: str) -> bool:
        with self._lock:
            return client_id in self.rejected_clients

    # ---- faults and latency -------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def set_latency(self, ms: int, kind: str | None = None, *, jitter_ms: int = 0) -> None:
        """Delay each request (of `kind`, or of every kind) by `ms` ± up to `jitter_ms`.

        A fixed delay answers callers who asked together in the same instant, so their next
        requests come back together too; a jitter spreads them the way a real service does.
        """
        if ms < 0 or not 0 <= jitter_ms <= ms:
            raise ValueError("latency needs ms >= 0 and 0 <= jitter_ms <= ms")
        with self._lock:
            self.latency_ms[kind] = (ms, jitter_ms)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = []
            self.latency_ms = {}

    def begin_request(self, kind: str) -> FaultDecision:
        """Count the request and decide whether a fault or latency applies to it."""
        with self._lock:
            self.requests[kind] = self.requests.get(kind, 0) + 1
            delay_ms = self._added_latency_ms(None) + self._added_latency_ms(kind)
            chosen: Fault | None = None
            for fault in self.faults:
                if fault.kind != kind:
                    continue
                if fault.probability is not None:
                    if self._rng.random() < fault.probability:
                        chosen = fault
                        break
                    continue
                if fault.times > 0:
                    fault.times -= 1
                    chosen = fault
                    break
            self.faults = [f for f in self.faults if f.probability is not None or f.times > 0]
            if chosen is not None:
                delay_ms += chosen.latency_ms
            return FaultDecision(delay_s=delay_ms / 1000.0, fault=chosen)

    def _added_latency_ms(self, kind: str | None) -> float:
        ms, jitter = self.latency_ms.get(kind, (0, 0))
        return ms + self._rng.uniform(-jitter, jitter) if jitter else float(ms)

    # ---- clients and accounts -----------------------------------------------------------

    def register_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str] = ()
    ) -> Client:
        with self._lock:
            client = Client(client_id, client_secret, tuple(redirect_uris))
            self.clients[client_id] = client
            return client

    def get_client(self, client_id: str) -> Client | None:
        with self._lock:
            return self.clients.get(client_id)

    def ensure_account(
        self, email: str, timezone: str | None = None, sub: str | None = None
    ) -> Account:
        """Create the account (with its primary calendar) or update its timezone."""
        key = email.strip().lower()
        with self._lock:
            account = self.accounts.get(key)
            if account is None:
                account = Account(
                    email=key,
                    sub=sub or str(10**20 + secrets.randbelow(9 * 10**20)),
                    timezone=timezone or "UTC",
                )
                self.accounts[key] = account
                self.calendars[key] = Calendar(key, key, key, account.timezone)
            elif timezone:
                account.timezone = timezone
                self.calendars[key].timezone = timezone
            return account

    def get_account(self, email: str) -> Account | None:
        with self._lock:
            return self.accounts.get(email.strip().lower())

    def first_account_email(self) -> str | None:
        with self._lock:
            return next(iter(self.accounts), None)

    def add_calendar(
        self, email: str, calendar_id: str, summary: str | None, timezone: str | None
    ) -> Calendar:
        account = self.get_account(email)
        if account is None:
            raise KeyError(email)
        with self._lock:
            calendar = Calendar(
                calendar_id, account.email, summary or calendar_id, timezone or account.timezone
            )
            self.calendars[calendar_id] = calendar
            return calendar

    def calendar_for(self, email: str, calendar_id: str) -> Calendar | None:
        """The calendar `calendar_id` if `email` owns it (`primary` = the account's own)."""
        key = email.lower()
        cid = key if calendar_id == "primary" else calendar_id
        with self._lock:
            calendar = self.calendars.get(cid) or self.calendars.get(cid.lower())
            if calendar is None or calendar.owner != key:
                return None
            return calendar

    def get_calendar(self, calendar_id: str) -> Calendar | None:
        with self._lock:
            return self.calendars.get(calendar_id) or self.calendars.get(calendar_id.lower())

    # ---- events -------------------------------------------------------------------------

    def insert_event(self, calendar: Calendar, event: dict[str, Any]) -> bool:
        """Store a new event; False if its id was ever used in this calendar."""
        with self._lock:
            if event["id"] in calendar.events:
                return False
            calendar.events[event["id"]] = event
            return True

    def get_event(self, calendar: Calendar, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            event = calendar.events.get(event_id)
            return dict(event) if event is not None else None

    def put_event(self, calendar: Calendar, event: dict[str, Any]) -> None:
        with self._lock:
            calendar.events[event["id"]] = event

    def list_events(self, calendar: Calendar) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in calendar.events.values()]

    def conference_created(self, calendar: Calendar, event_id: str) -> None:
        """A write asked for a conference: pending for the configured number of reads."""
        with self._lock:
            if self.meet_pending_reads > 0:
                self.pending_conferences[(calendar.id, event_id)] = self.meet_pending_reads

    def conference_read(self, calendar: Calendar, event_id: str) -> bool:
        """An events.get of a pending conference: True when this read completes it."""
        with self._lock:
            key = (calendar.id, event_id)
            left = self.pending_conferences.get(key)
            if left is None:
                return False
            if left > 1:
                self.pending_conferences[key] = left - 1
                return False
            del self.pending_conferences[key]
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
        access_type: str,
        force_consent: bool,
        include_granted_scopes: bool,
    ) -> AuthCode:
        with self._lock:
            previous = self.consented.get((email, client_id))
            if include_granted_scopes and previous:
                scopes = normalize_scopes([*scopes, *sorted(previous)])
            # Google hands out a refresh token on first consent, or always with prompt=consent.
            issue_refresh = access_type == "offline" and (force_consent or previous is None)
            code = AuthCode(
                code=_token("4/0Aemu"),
                client_id=client_id,
                redirect_uri=redirect_uri,
                scopes=scopes,
                email=email,
                code_challenge=code_challenge,
                issue_refresh_token=issue_refresh,
                expires_at=self.clock() + AUTH_CODE_TTL,
            )
            self.codes[code.code] = code
            return code

    def redeem_code(self, code: str) -> AuthCode | None:
        """Mark the code used and return it; None if unknown, used or expired."""
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
        expires_in: int = DEFAULT_ACCESS_TTL,
        with_refresh_token: bool = True,
    ) -> tuple[AccessToken, Grant | None]:
        with self._lock:
            grant: Grant | None = None
            if with_refresh_token:
                grant = Grant(_token("1//0emu"), email, client_id, scopes)
                self.grants[grant.refresh_token] = grant
            access = AccessToken(
                token=_token("ya29.emu"),
                email=email,
                client_id=client_id,
                scopes=scopes,
                expires_at=self.clock() + expires_in,
                refresh_token=grant.refresh_token if grant else None,
            )
            self.access_tokens[access.token] = access
            self.consented.setdefault((email, client_id), set()).update(scopes)
            return access, grant

    def refresh(
        self, refresh_token: str, client_id: str, scopes: tuple[str, ...] | None
    ) -> tuple[AccessToken, Grant, str | None] | str:
        """New access token for a live grant, or an OAuth error code.

        Returns (access token, grant, rotated refresh token or None).
        """
        with self._lock:
            grant = self.grants.get(refresh_token)
            if grant is None or grant.revoked:
                return "invalid_grant"
            if grant.client_id != client_id:
                # A refresh token issued to another OAuth client: Google answers 401
                # unauthorized_client (observed, google-reference.md §5).
                return "unauthorized_client"
            if scopes and not set(scopes) <= set(grant.scopes):
                return "invalid_scope"
            rotated: str | None = None
            if self.rotate_refresh_tokens:
                # The old token dies, so a client that drops the new one finds out quickly.
                grant.revoked = True
                grant = Grant(_token("1//0emu"), grant.email, grant.client_id, grant.scopes)
                self.grants[grant.refresh_token] = grant
                rotated = grant.refresh_token
            access = AccessToken(
                token=_token("ya29.emu"),
                email=grant.email,
                client_id=client_id,
                scopes=scopes or grant.scopes,
                expires_at=self.clock() + DEFAULT_ACCESS_TTL,
                refresh_token=grant.refresh_token,
            )
            self.access_tokens[access.token] = access
            return access, grant, rotated

    def check_access_token(self, token: str) -> AccessToken | None:
        with self._lock:
            access = self.access_tokens.get(token)
            if access is None or access.revoked or access.expires_at <= self.clock():
                return None
            return access

    def revoke_token(self, token: str) -> bool:
        """Revoke a token and, like Google, the whole grant it belongs to."""
        with self._lock:
            refresh_token: str | None = None
            if token in self.grants and not self.grants[token].revoked:
                refresh_token = token
            elif token in self.access_tokens and not self.access_tokens[token].revoked:
                access = self.access_tokens[token]
                access.revoked = True
                refresh_token = access.refresh_token
            else:
                return False
            if refresh_token is not None:
                grant = self.grants[refresh_token]
                grant.revoked = True
                self.consented.pop((grant.email, grant.client_id), None)
                for access in self.access_tokens.values():
                    if access.refresh_token == refresh_token:
                        access.revoked = True
            return True

    def expire_access_tokens(self, email: str) -> int:
        key = email.lower()
        with self._lock:
            count = 0
            past = self.clock() - 1
            for access in self.access_tokens.values():
                if access.email == key and access.expires_at > past:
                    access.expires_at = past
                    count += 1
            return count

    def revoke_grants(self, email: str) -> int:
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
            for pair in [p for p in self.consented if p[0] == key]:
                del self.consented[pair]
            return count
