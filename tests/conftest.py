"""Shared fixtures: a real emulator and a real app server, both over HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.app import create_emulator_app
from emulator.control import EmulatorControl
from emulator.state import EmulatorState
from oauth.credentials import Grant, seal_grant
from oauth.vault import TokenVault, generate_key
from server.app import create_app
from server.config import DEFAULT_SCOPES, Settings
from server.store import Store, store_from_url
from tests import mongo_server
from tests.servers import bind_loopback, free_port, serve_in_thread

CLIENT_ID = "test-client.apps.googleusercontent.com"
CLIENT_SECRET = "test-client-secret"
VAPI_SECRET = "test-vapi-secret"
HMAC_SECRET = "test-hmac-secret"
ADMIN_TOKEN = "test-admin-token"
FIXTURES = Path(__file__).parent / "fixtures" / "vapi"


@dataclass
class Emulator:
    url: str
    state: EmulatorState
    control: EmulatorControl


@pytest.fixture(scope="session")
def _emulator_server() -> Iterator[Emulator]:
    state = EmulatorState(clients={CLIENT_ID: CLIENT_SECRET})
    with serve_in_thread(create_emulator_app(state)) as url, EmulatorControl(url) as control:
        yield Emulator(url, state, control)


@pytest.fixture
def emulator(_emulator_server: Emulator) -> Emulator:
    """The session's emulator, emptied for this test (registered clients are kept)."""
    _emulator_server.control.reset()
    return _emulator_server


def app_settings(tmp_path: Path, emulator_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "public_url": "http://127.0.0.1:8000",
        "database_url": f"sqlite:///{tmp_path / 'data' / 'app.db'}",
        "vapi_secret": VAPI_SECRET,
        "vapi_hmac_secret": HMAC_SECRET,
        "admin_token": ADMIN_TOKEN,
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

    # -- set-up ----------------------------------------------------------------------------
    def create_user(self, user_id: str, timezone: str = "America/New_York") -> None:
        response = self.admin.post("/api/users", json={"id": user_id, "timezone": timezone})
        assert response.status_code == 201, response.text

    def link(self, assistant_id: str, user_id: str) -> None:
        response = self.admin.put(f"/api/assistants/{assistant_id}", json={"userId": user_id})
        assert response.status_code == 200, response.text

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
        asyncio.run(self._save(seal_grant(self.vault, user_id, grant, email=email, subject=None)))

    @property
    def vault(self) -> TokenVault:
        assert self.settings.encryption_key is not None
        return TokenVault.from_setting(self.settings.encryption_key.get_secret_value())

    def store(self) -> Store:
        """A second handle on the server's database, as another process would have."""
        return store_from_url(self.settings.database_url)

    async def _save(self, connection: Any) -> None:
        store = self.store()
        await store.open()
        try:
            await store.save_connection(connection)
        finally:
            await store.close()

    def connection(self, user_id: str) -> Any:
        async def read() -> Any:
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
def running_app(tmp_path: Path, emulator: Emulator, **overrides: Any) -> Iterator[App]:
    """The real server on its own loopback port, PUBLIC_URL pointing at it."""
    sock, url = bind_loopback()
    settings = app_settings(tmp_path, emulator.url, public_url=url, **overrides)
    with (
        serve_in_thread(create_app(settings), sock=sock),
        httpx.Client(timeout=30) as http,
    ):
        running = App(url, settings, emulator, http)
        try:
            yield running
        finally:
            running.admin.close()


@pytest.fixture
def app(tmp_path: Path, emulator: Emulator, database_url: str) -> Iterator[App]:
    """A running server with user `ana` (America/New_York) linked and connected."""
    with running_app(tmp_path, emulator, database_url=database_url) as running:
        running.create_user("ana")
        # The suite books in 2031, so the default 60-day booking horizon must not refuse it.
        running.admin.patch("/api/users/ana", json={"rules": {"bookingHorizonDays": 3650}})
        running.link("asst_ana_haircuts", "ana")
        running.connect_google("ana", "ana@example.com")
        emulator.control.reset_requests()
        yield running


def load_fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


# == Database backends (MongoDB issue #4) =========================================================
# `app` (and so every end-to-end webhook test) runs once per backend. The Mongo leg needs a
# MongoDB-protocol server: TEST_MONGODB_URL, else `ferretdb`/`mongod` from PATH started here.

BACKENDS = ["sqlite", "mongo"]


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a MongoDB-protocol server for this session (per-test databases go on it)."""
    if url := os.environ.get("TEST_MONGODB_URL"):
        yield url
        return
    binary = mongo_server.find_binary()
    if binary is None:
        mongo_server.unavailable(
            "MongoDB leg: set TEST_MONGODB_URL or put ferretdb/mongod on PATH (see .ci/run)"
        )
        return
    data_dir = tmp_path_factory.mktemp("mongodb")
    port = free_port()
    proc = mongo_server.start_server(binary, port, data_dir)
    try:
        yield f"mongodb://127.0.0.1:{port}/"
    finally:
        mongo_server.stop_server(proc)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'app.db'}"
        return
    base: str = request.getfixturevalue("mongodb_url")
    url = mongo_server.with_database(base, mongo_server.unique_database_name())
    try:
        yield url
    finally:
        mongo_server.drop_database(url)
