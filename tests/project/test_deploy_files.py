"""Dockerfile and docker-compose.yml, checked without a Docker engine.

No engine exists where the suite runs, so the files are parsed and their promises checked: the
services, environment, healthchecks and ports; a slim non-root final stage without build tools;
and healthcheck commands that really pass against a running server.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.app import Emulator, running_app
from vapi_calendar.server.config import Settings
from vapi_calendar.stores import store_from_url
from vapi_calendar.stores.mongo import MongoStore

ROOT = Path(__file__).resolve().parent.parent.parent
MONGO_URL = "mongodb://mongo:27017/vapi_calendar"


@pytest.fixture
def server_url(tmp_path: Path, emulator: Emulator) -> Iterator[str]:
    with running_app(tmp_path, emulator) as app:
        yield app.url


# -- docker-compose.yml --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the "KEY=value" list form
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _env_files(service: dict[str, Any]) -> list[str]:
    files = service.get("env_file", [])
    files = [files] if isinstance(files, str | dict) else files
    return [f if isinstance(f, str) else f["path"] for f in files]


def _healthcheck_argv(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return list(test)


def test_compose_runs_the_app_on_mongo_7(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"app", "mongo"}
    assert services["mongo"]["image"] == "mongo:7"
    app = services["app"]
    assert app["build"] in (".", {"context": "."})
    assert app["depends_on"] == {"mongo": {"condition": "service_healthy"}}


def test_compose_configures_the_app_through_dot_env(compose: dict[str, Any]) -> None:
    app = compose["services"]["app"]
    assert _env_files(app) == [".env"]
    env = _environment(app)
    assert env == {"DATABASE_URL": MONGO_URL}
    # Every variable set here is a real setting, and the URL selects the MongoDB store.
    assert {key.lower() for key in env} <= set(Settings.model_fields)
    store = store_from_url(env["DATABASE_URL"])
    assert isinstance(store, MongoStore) and store.database_name == "vapi_calendar"


def test_compose_keeps_mongo_data_in_a_named_volume(compose: dict[str, Any]) -> None:
    mounts = compose["services"]["mongo"]["volumes"]
    assert "mongo-data:/data/db" in mounts
    assert "mongo-data" in compose["volumes"]


def test_compose_publishes_only_the_app(compose: dict[str, Any]) -> None:
    assert compose["services"]["app"]["ports"] == ["8000:8000"]
    assert "ports" not in compose["services"]["mongo"]  # reachable on the compose network only


def test_compose_healthchecks(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        check = service["healthcheck"]
        assert {"interval", "timeout", "retries"} <= set(check)
    app = _healthcheck_argv(compose["services"]["app"])
    assert app[:2] == ["CMD", "python"] and "http://127.0.0.1:8000/healthz" in app[-1]
    mongo = _healthcheck_argv(compose["services"]["mongo"])
    assert mongo[:2] == ["CMD", "mongosh"] and "ping" in mongo[-1]


def test_compose_app_healthcheck_passes_against_a_running_server(
    compose: dict[str, Any], server_url: str
) -> None:
    argv = _healthcheck_argv(compose["services"]["app"])[1:]
    _run_healthcheck(argv, server_url)


# -- Dockerfile ------------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _exec_form(arguments: str) -> list[str]:
    argv = json.loads(arguments)
    assert isinstance(argv, list), "use the exec (JSON) form"
    return argv


def test_dockerfile_builds_a_wheel_then_installs_it_into_a_slim_stage() -> None:
    build, final = _stages()
    assert re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim AS build", build[0][1])
    assert any(i == "RUN" and "pip wheel" in a for i, a in build)
    assert re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim", final[0][1])
    (install,) = [a for i, a in final if i == "RUN" and "pip install" in a]
    assert "--no-index" in install and "from=build" in install  # offline, from the wheels


def test_dockerfile_final_stage_has_no_build_tools_and_runs_unprivileged() -> None:
    final = _stages()[-1]
    runs = " ".join(a for i, a in final if i == "RUN")
    for tool in ("apt-get", "apk", "gcc", "build-essential", "pip wheel", "make "):
        assert tool not in runs
    users = [a for i, a in final if i == "USER"]
    assert users and users[-1] not in ("root", "0")
    position = {i: n for n, (i, _) in enumerate(final)}
    assert position["USER"] < position["CMD"]


def test_dockerfile_copies_every_package_the_wheel_needs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    needed = folders | {"pyproject.toml", "README.md"}
    copied = {
        source.strip("./")
        for instruction, arguments in _stages()[0]
        if instruction == "COPY"
        for source in arguments.split()[:-1]
    }
    assert needed <= copied
    # .dockerignore excludes everything else (.venv, .env, data, tests) from the context.
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignored[0] == "*"
    for name in needed:
        assert f"!{name}/" in ignored or f"!{name}" in ignored, name


def test_dockerfile_runs_what_make_runs() -> None:
    final = _stages()[-1]
    cmd = _exec_form(next(a for i, a in final if i == "CMD"))
    assert cmd[:2] == ["vapi-calendar", "serve"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - inside the container
    assert cmd[cmd.index("--port") + 1] == "8000"
    assert ("EXPOSE", "8000") in final
    makefile = (ROOT / "Makefile").read_text()
    run_recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "vapi-calendar serve --host $(HOST) --port $(PORT)" in run_recipe
    assert "pip install --quiet -e ." in makefile  # the same package, editable for development


def test_dockerfile_healthcheck_passes_against_a_running_server(server_url: str) -> None:
    final = _stages()[-1]
    (healthcheck,) = [a for i, a in final if i == "HEALTHCHECK"]
    options, _, command = healthcheck.partition(" CMD ")
    assert {"--interval", "--timeout", "--retries"} <= {
        o.split("=")[0] for o in shlex.split(options)
    }
    argv = _exec_form(command)
    assert argv[0] == "python" and "http://127.0.0.1:8000/healthz" in argv[-1]
    _run_healthcheck(argv, server_url)


def _run_healthcheck(argv: list[str], url: str) -> None:
    """Run the check's Python against the test server (the container's port is 8000)."""
    assert argv[0] == "python"
    argv = [sys.executable, *(a.replace("http://127.0.0.1:8000", url) for a in argv[1:])]
    assert subprocess.run(argv, timeout=10, check=False).returncode == 0
    dead = [a.replace(url, "http://127.0.0.1:9") for a in argv]  # and fails when down
    assert subprocess.run(dead, timeout=10, check=False, capture_output=True).returncode != 0
