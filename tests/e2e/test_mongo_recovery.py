"""The server starts while MongoDB is down, reports it on /readyz, and recovers without restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.harness import mongo
from tests.harness.app import Emulator, running_app
from tests.harness.servers import free_port


def _wait_for_status(http: httpx.Client, url: str, status: int, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(url)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_server_starts_without_mongodb_and_recovers_when_it_appears(
    tmp_path: Path, emulator: Emulator
) -> None:
    binary = mongo.find_binary()
    if binary is None:
        # Needs a server binary it can start late on a chosen port (TEST_MONGODB_URL is not enough).
        mongo.unavailable("MongoDB recovery test: put ferretdb/mongod on PATH")
        return
    port = free_port()
    url = f"mongodb://127.0.0.1:{port}/recovery?serverSelectionTimeoutMS=500"
    with running_app(tmp_path, emulator, database_url=url) as app:  # nothing listens yet
        assert app.http.get(f"{app.url}/healthz").status_code == 200
        down = app.http.get(f"{app.url}/readyz")
        assert down.status_code == 503
        assert down.json()["database"] == "unreachable"
        failed = app.admin.post("/api/users", json={"id": "ana", "timezone": "UTC"})
        assert failed.status_code >= 500

        proc = mongo.start_server(binary, port, tmp_path / "mongodb")
        try:
            up = _wait_for_status(app.http, f"{app.url}/readyz", 200, timeout=30)
            assert up.status_code == 200, up.text
            app.create_user("ana")  # the same process, now writing to MongoDB
            assert app.admin.get("/api/users/ana").status_code == 200
        finally:
            mongo.stop_server(proc)

        gone = _wait_for_status(app.http, f"{app.url}/readyz", 503, timeout=30)
        assert gone.status_code == 503
