"""Pytest fixtures: a real emulator, a real app server, each database backend.

Helpers tests import live in `tests/harness/`; this file only declares fixtures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import mongo
from tests.harness.app import (
    CLIENT_ID,
    CLIENT_SECRET,
    MS_CLIENT_ID,
    MS_CLIENT_SECRET,
    App,
    Emulator,
    microsoft_settings,
    running_app,
)
from tests.harness.servers import free_port, serve_in_thread
from vapi_calendar.emulator.app import create_emulator_app
from vapi_calendar.emulator.control import EmulatorControl
from vapi_calendar.emulator.microsoft.control import MicrosoftControl
from vapi_calendar.emulator.state import EmulatorState


@pytest.fixture(scope="session")
def _emulator_server() -> Iterator[Emulator]:
    state = EmulatorState(clients={CLIENT_ID: CLIENT_SECRET})
    state.microsoft.register_client(MS_CLIENT_ID, MS_CLIENT_SECRET)
    with (
        serve_in_thread(create_emulator_app(state)) as url,
        EmulatorControl(url) as control,
        MicrosoftControl(url) as microsoft,
    ):
        yield Emulator(url, state, control, microsoft)


@pytest.fixture
def emulator(_emulator_server: Emulator) -> Emulator:
    """The session's emulator, emptied for this test (registered clients are kept)."""
    _emulator_server.control.reset()
    return _emulator_server


@pytest.fixture
def app(tmp_path: Path, emulator: Emulator, database_url: str) -> Iterator[App]:
    """A running server with user `ana` (America/New_York) linked (assistant
    `asst_ana_haircuts`, her Vapi phone number) and connected."""
    with running_app(tmp_path, emulator, database_url=database_url) as running:
        running.set_up_ana()
        yield running


@pytest.fixture
def outlook(tmp_path: Path, emulator: Emulator, database_url: str) -> Iterator[App]:
    """`app` with Ana's calendar in Microsoft 365 / Outlook (the server offers both providers):
    user `ana` (America/New_York), her assistant and Vapi phone number linked, connected."""
    overrides = microsoft_settings(emulator.url)
    with running_app(tmp_path, emulator, database_url=database_url, **overrides) as running:
        running.set_up_ana_on_outlook()
        yield running


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
    binary = mongo.find_binary()
    if binary is None:
        mongo.unavailable(
            "MongoDB leg: set TEST_MONGODB_URL or put ferretdb/mongod on PATH (see .ci/run)"
        )
        return
    data_dir = tmp_path_factory.mktemp("mongodb")
    port = free_port()
    proc = mongo.start_server(binary, port, data_dir)
    try:
        yield f"mongodb://127.0.0.1:{port}/"
    finally:
        mongo.stop_server(proc)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'app.db'}"
        return
    base: str = request.getfixturevalue("mongodb_url")
    url = mongo.with_database(base, mongo.unique_database_name())
    try:
        yield url
    finally:
        mongo.drop_database(url)
