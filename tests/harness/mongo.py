"""A real MongoDB-protocol server for tests: FerretDB (or mongod) from PATH, on loopback.

CI builds FerretDB v1.24.2 (SQLite handler, pure Go) in `.ci/run`; developers may instead point
`TEST_MONGODB_URL` at any MongoDB. Without either, the Mongo leg skips visibly, never under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import bson
import pymongo
import pytest

BINARIES = ("ferretdb", "mongod")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip with a visible reason, but fail under CI: there, a missing server is a CI bug."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the MongoDB leg must run)")
    pytest.skip(reason)


def find_binary() -> str | None:
    for name in BINARIES:
        if path := shutil.which(name):
            return path
    return None


def start_server(binary: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    """Start FerretDB or mongod on 127.0.0.1:`port`; returns once it answers a ping."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if Path(binary).name.startswith("ferretdb"):
        args = [
            binary,
            "--handler=sqlite",
            f"--sqlite-url=file:{data_dir}/",
            f"--listen-addr=127.0.0.1:{port}",
            f"--state-dir={data_dir}",
            "--debug-addr=-",  # no fixed-port metrics listener to collide on
            "--telemetry=disable",
            "--log-level=error",
        ]
    else:
        args = [binary, "--dbpath", str(data_dir), "--port", str(port), "--bind_ip", "127.0.0.1"]
    log = (data_dir / "server.log").open("ab")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_until_up(f"mongodb://127.0.0.1:{port}/", proc)
    except BaseException:
        stop_server(proc)
        raise
    return proc


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with pymongo.MongoClient(url, serverSelectionTimeoutMS=250) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} at start")
            try:
                client.admin.command("ping")
                return
            except pymongo.errors.PyMongoError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def with_database(base_url: str, name: str) -> str:
    """`base_url` with its path set to /`name` (options and credentials kept)."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def unique_database_name(prefix: str = "test") -> str:
    # MongoDB limits database names to 63 bytes; keep them short and distinct per test.
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def drop_database(url: str) -> None:
    with pymongo.MongoClient(url, serverSelectionTimeoutMS=5000) as client:
        client.drop_database(client.get_default_database().name)


def raw_bytes(url: str) -> bytes:
    """Every document of the URL's database as BSON: what a database dump would contain."""
    with pymongo.MongoClient(url, serverSelectionTimeoutMS=5000) as client:
        db = client.get_default_database()
        return b"".join(
            bson.encode(doc) for name in db.list_collection_names() for doc in db[name].find()
        )
