"""The app and the emulator as tests use them: real servers over HTTP on loopback.

Shared helpers live here (imported by tests); `tests/conftest.py` only declares the pytest
fixtures built from them.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.servers import bind_loopback, serve_in_thread
from vapi_calendar.emulator.control import EmulatorControl
from vapi_calendar.emulator.microsoft.control import MicrosoftControl
from vapi_calendar.emulator.state import EmulatorState
from vapi_calendar.oauth.call_tokens import CallTokens
from vapi_calendar.oauth.grants import seal
from vapi_calendar.oauth.vault import TokenVault, generate_key
from vapi_calendar.ports.clock import Clock
from vapi_calendar.ports.oauth import Grant
from vapi_calendar.ports.stores import MICROSOFT, Connection, Store
from vapi_calendar.providers.microsoft.oauth import SCOPES as MICROSOFT_SCOPES
from vapi_calendar.server.app import create_app
from vapi_calendar.server.config import DEFAULT_SCOPES, Settings
from vapi_calendar.stores import store_from_url

CLIENT_ID = "test-client.apps.googleusercontent.com"
CLIENT_SECRET = "test-client-secret"
# The Microsoft Entra app registration the emulator knows (an application id is a GUID).
MS_CLIENT_ID = "7f3b1c2d-0a4e-4b5c-9d6e-8f7a6b5c4d3e"
MS_CLIENT_SECRET = "test-microsoft-secret"
VAPI_SECRET = "test-vapi-secret"
HMAC_SECRET = "test-hmac-secret"
ADMIN_TOKEN = "test-admin-token"
RETELL_API_KEY = "key_test_retell_webhook"
ELEVENLABS_TOOL_SECRET = "test-elevenlabs-tool-secret"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "vapi"
# Ana's Vapi phone number (the fixtures' README): linked to `ana` by the `app` fixture.
ANA_PHONE_NUMBER_ID = "7d1c2f0e-5a7b-4c3d-9e8f-0a1b2c3d4e5f"

# What the server's tools take as "now" in end-to-end tests (the machine's clock is never
# consulted for it), so the bookings the suite makes in 2031 stay in the future forever.
FROZEN_NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def frozen_clock() -> datetime:
    return FROZEN_NOW


def bookable_slots(count: int, *, now: datetime, tz: str = "America/New_York") -> list[str]:
    """Distinct half-hour starts on weekdays, 9:00-16:30 local, from two days after `now`
    (the server's "now": `FROZEN_NOW` for apps started here, the real time for subprocesses)."""
    zone = ZoneInfo(tz)
    day = now.astimezone(zone).date() + timedelta(days=2)
    slots: list[str] = []
    while len(slots) < count:
        if day.weekday() < 5:
            for half_hours in range(16):
                hour, minute = divmod(9 * 60 + 30 * half_hours, 60)
                slots.append(f"{day.isoformat()}T{hour:02d}:{minute:02d}:00")
        day += timedelta(days=1)
    return slots[:count]


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called `name` in a `/metrics` page whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@dataclass
class Emulator:
    url: str
    state: EmulatorState
    control: EmulatorControl  # Google's hooks, and the shared faults and request counts
    microsoft: MicrosoftControl  # Microsoft 365's hooks (faults and counts shared)


def microsoft_settings(emulator_url: str) -> dict[str, Any]:
    """Settings that add Microsoft 365 (played by the emulator) next to Google."""
    return {
        "microsoft_client_id": MS_CLIENT_ID,
        "microsoft_client_secret": MS_CLIENT_SECRET,
        "microsoft_emulator_url": emulator_url,
    }


def app_settings(tmp_path: Path, emulator_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "public_url": "http://127.0.0.1:8000",
        "database_url": f"sqlite:///{tmp_path / 'data' / 'app.db'}",
        "vapi_secret": VAPI_SECRET,
        "vapi_hmac_secret": HMAC_SECRET,
        "admin_token": ADMIN_TOKEN,
        "retell_api_key": RETELL_API_KEY,
        "elevenlabs_tool_secret": ELEVENLABS_TOOL_SECRET,
        "google_client_id": CLIENT_ID,
        "google_client_secret": CLIENT_SECRET,
        "google_emulator_url": emulator_url,
        "encryption_key": generate_key(),
        "google_threads": 8,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class App:
    url: str
    settings: Settings
    emulator: Emulator
    http: httpx.Client
    admin: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.admin = httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )

    # -- webhook ---------------------------------------------------------------------------
    def webhook(self, body: dict[str, Any] | bytes, **headers: str) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"content-type": "application/json", "x-vapi-secret": VAPI_SECRET}
        sent.update(headers)
        return self.http.post(f"{self.url}/vapi/webhook", content=content, headers=sent)

    def results(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.webhook(body)
        assert response.status_code == 200, response.text
        return response.json()["results"]

    def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        assistant_id: str = "asst_ana_haircuts",
        tool_call_id: str = "call_1",
        call: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One tool call; returns the parsed `result` JSON, or {"error": ...}."""
        body = tool_calls_message(
            [(tool_call_id, name, arguments)], assistant_id=assistant_id, call=call
        )
        (result,) = self.results(body)
        assert result["toolCallId"] == tool_call_id and result["name"] == name
        if "error" in result:
            return {"error": result["error"]}
        return json.loads(result["result"])

    def call_token(self, user_id: str) -> str:
        response = self.admin.post(f"/api/users/{user_id}/call-token")
        assert response.status_code == 200, response.text
        return str(response.json()["userToken"])

    def signed(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` with a valid `userToken` next to every `userId` in a `metadata` object, as an
        integrator that names users in call metadata sends it (CALL_METADATA_TRUST=signed)."""
        signed = copy.deepcopy(body)
        proofs = CallTokens(self.vault)

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                metadata = value.get("metadata")
                if isinstance(metadata, dict) and isinstance(metadata.get("userId"), str | int):
                    # Computed as an integrator's backend may, also for ids with no user.
                    metadata["userToken"] = proofs.issue(str(metadata["userId"]))
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(signed)
        return signed

    # -- set-up ----------------------------------------------------------------------------
    def set_up_ana(self) -> None:
        """User `ana` (America/New_York) linked (assistant `asst_ana_haircuts`, her Vapi phone
        number) and connected: the scenario of the fixtures."""
        self.create_user("ana")
        # The suite books in 2031, so the default 60-day booking horizon must not refuse it.
        self.admin.patch("/api/users/ana", json={"rules": {"bookingHorizonDays": 3650}})
        self.link("asst_ana_haircuts", "ana")
        self.link_phone_number(ANA_PHONE_NUMBER_ID, "ana")
        self.connect_google("ana", "ana@example.com")
        self.emulator.control.reset_requests()

    def set_up_ana_on_outlook(self, email: str = "ana@contoso.com") -> None:
        """`set_up_ana`, with her calendar in Microsoft 365 (the app must offer Microsoft)."""
        self.create_user("ana")
        self.admin.patch("/api/users/ana", json={"rules": {"bookingHorizonDays": 3650}})
        self.link("asst_ana_haircuts", "ana")
        self.link_phone_number(ANA_PHONE_NUMBER_ID, "ana")
        self.connect_microsoft("ana", email)
        self.emulator.control.reset_requests()

    def create_user(self, user_id: str, timezone: str = "America/New_York") -> None:
        response = self.admin.post("/api/users", json={"id": user_id, "timezone": timezone})
        assert response.status_code == 201, response.text

    def link(self, assistant_id: str, user_id: str) -> None:
        response = self.admin.put(f"/api/assistants/{assistant_id}", json={"userId": user_id})
        assert response.status_code == 200, response.text

    def link_phone_number(self, phone_number_id: str, user_id: str) -> None:
        response = self.admin.put(f"/api/phone-numbers/{phone_number_id}", json={"userId": user_id})
        assert response.status_code == 200, response.text

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`vapi-calendar ARGS` in a subprocess, on this server's database and settings."""
        assert self.settings.encryption_key is not None
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "VAPI_"))},
            "DATABASE_URL": self.settings.database_url,
            "PUBLIC_URL": self.settings.public_url,
            "ENCRYPTION_KEY": self.settings.encryption_key.get_secret_value(),
            "GOOGLE_CLIENT_ID": CLIENT_ID,
            "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
            "GOOGLE_EMULATOR_URL": self.emulator.url,
        }
        return subprocess.run(
            [sys.executable, "-m", "vapi_calendar.server.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def connect_google(self, user_id: str, email: str, *, expires_in: int = 3600) -> None:
        """Store a grant minted by the emulator, as the OAuth callback would."""
        self.emulator.control.create_account(email, timezone="America/New_York")
        minted = self.emulator.control.mint_tokens(
            email, CLIENT_ID, DEFAULT_SCOPES, expires_in=expires_in
        )
        grant = Grant(
            access_token=minted["access_token"],
            refresh_token=minted["refresh_token"],
            expiry=datetime.now(UTC) + timedelta(seconds=expires_in),
            scopes=tuple(minted["scope"].split()),
        )
        asyncio.run(self._save(seal(self.vault, user_id, grant, email=email, subject=None)))

    def connect_microsoft(
        self,
        user_id: str,
        email: str,
        *,
        timezone: str = "Eastern Standard Time",
        expires_in: int = 3600,
    ) -> None:
        """Store a Microsoft grant minted by the emulator, as the OAuth callback would."""
        self.emulator.microsoft.create_account(email, timezone=timezone)
        minted = self.emulator.microsoft.mint_tokens(
            email, MS_CLIENT_ID, MICROSOFT_SCOPES, expires_in=expires_in
        )
        grant = Grant(
            access_token=minted["access_token"],
            refresh_token=minted["refresh_token"],
            expiry=datetime.now(UTC) + timedelta(seconds=expires_in),
            scopes=tuple(minted["scope"].split()),
        )
        subject = f"{minted['tid']}/{minted['oid']}"
        connection = seal(
            self.vault, user_id, grant, email=email, subject=subject, provider=MICROSOFT
        )
        asyncio.run(self._save(connection))

    @property
    def vault(self) -> TokenVault:
        assert self.settings.encryption_key is not None
        return TokenVault.from_setting(self.settings.encryption_key.get_secret_value())

    def store(self) -> Store:
        """A second handle on the server's database, as another process would have."""
        return store_from_url(self.settings.database_url)

    async def _save(self, connection: Connection) -> None:
        store = self.store()
        await store.open()
        try:
            await store.save_connection(connection)
        finally:
            await store.close()

    def connection(self, user_id: str) -> Connection | None:
        async def read() -> Connection | None:
            store = self.store()
            await store.open()
            try:
                return await store.get_connection(user_id)
            finally:
                await store.close()

        return asyncio.run(read())


def tool_calls_message(
    calls: list[tuple[str, str, dict[str, Any]]],
    *,
    assistant_id: str | None = "asst_ana_haircuts",
    call: dict[str, Any] | None = None,
    assistant: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A minimal tool-calls message in Vapi's wire format (arguments as a JSON string)."""
    call_obj: dict[str, Any] = {"id": "call-test-1", "orgId": "org-test", "type": "webCall"}
    if assistant_id:
        call_obj["assistantId"] = assistant_id
    call_obj.update(call or {})
    message: dict[str, Any] = {
        "type": "tool-calls",
        "timestamp": 1_900_000_000_000,
        "call": call_obj,
        "toolCallList": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            for call_id, name, arguments in calls
        ],
    }
    if assistant is not None:
        message["assistant"] = assistant
    return {"message": message}


@contextmanager
def running_app(
    tmp_path: Path, emulator: Emulator, *, clock: Clock = frozen_clock, **overrides: Any
) -> Iterator[App]:
    """The real server on its own loopback port, PUBLIC_URL pointing at it."""
    sock, url = bind_loopback()
    overrides.setdefault("public_url", url)
    settings = app_settings(tmp_path, emulator.url, **overrides)
    with (
        serve_in_thread(
            create_app(settings, clock=clock),
            sock=sock,
            read_timeout_seconds=settings.request_read_timeout_seconds,
        ),
        httpx.Client(timeout=30) as http,
    ):
        running = App(url, settings, emulator, http)
        try:
            yield running
        finally:
            running.admin.close()


def load_fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())
