"""The admin API against its own OpenAPI description, with schemathesis.

The description is served by the app (`/api/openapi.json`, generated from the route table and
the pydantic models that validate requests and render answers). Schemathesis reads it from the
running server and sends what it generates over real HTTP on loopback: examples, coverage of
every boundary, fuzzing, then stateful sequences along the description's links (create a user,
then read, change, link and delete it). Every answer must be a documented status with a body
that matches its schema, never a 5xx; invalid requests must be refused; operations must refuse
a request without the token.

The run's settings (bounded examples, a fixed seed, the one check left out and why) are in
`schemathesis.toml` beside this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.app import ADMIN_TOKEN, App, Emulator, running_app

# Examples, seed and checks: what is left out, and why, is said there.
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture
def served(tmp_path: Path, emulator: Emulator) -> Iterator[App]:
    with running_app(tmp_path, emulator) as app:
        app.set_up_ana()  # a connected user, so reads and disconnects meet a real connection
        yield app


def test_the_description_is_openapi_3_1_and_public(served: App) -> None:
    response = httpx.get(f"{served.url}/api/openapi.json")  # no token
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    # Every route the README's admin table lists, each with its token requirement.
    assert document["security"] == [{"adminToken": []}]
    assert "/api/users/{user_id}/connect-link" in document["paths"]
    created = document["paths"]["/api/users"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"]["$ref"].endswith("/UserAnswer")
    # The request bodies are the models that validate them.
    update = document["components"]["schemas"]["UpdateUser"]
    assert update["additionalProperties"] is False


def test_answers_match_the_description_and_nothing_is_a_server_error(
    served: App, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{served.url}/api/openapi.json",
        "--url",
        served.url,
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--report",
        "ndjson",
        "--report-dir",
        str(report),
    ]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"}
    # Run from the test's own directory: schemathesis keeps a cache in its working directory.
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=env, check=False, cwd=tmp_path
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-20000:]
    # It really ran: every operation was tested, stateful sequences too.
    assert "Stateful" in output or "stateful" in output, output[-5000:]
    events = [json.loads(line) for path in report.glob("*.ndjson") for line in path.open()]
    assert events, "schemathesis wrote no report"
