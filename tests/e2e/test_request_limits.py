"""Limits that hold before authentication (issue #11): header size, read deadline, call count,
and a client that hangs up mid-request. Raw sockets, because well-behaved HTTP clients cannot
misbehave on purpose."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.harness.app import VAPI_SECRET, App, Emulator, running_app, tool_calls_message

READ_TIMEOUT = 1.0


@pytest.fixture
def strict(tmp_path: Path, emulator: Emulator) -> Iterator[App]:
    with running_app(tmp_path, emulator, request_read_timeout_seconds=READ_TIMEOUT) as app:
        yield app


@contextmanager
def raw(app: App) -> Iterator[socket.socket]:
    address = urlsplit(app.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        yield sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed:
    a server that closes with our bytes still unread sends one)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def test_headers_over_64_kib_are_refused_without_being_buffered(strict: App) -> None:
    with raw(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: ")
        try:
            for _ in range(200):  # up to 12.8 MB, refused long before
                sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed on us: that is the point
        answer = read_all(sock)
    # 431 when the answer gets out before the reset our unread bytes cause; closed either way.
    assert answer.startswith(b"HTTP/1.1 431") or answer == b"", answer[:80]
    assert httpx.get(f"{strict.url}/healthz", timeout=10).status_code == 200


def test_headers_under_the_limit_are_fine(strict: App) -> None:
    response = httpx.get(f"{strict.url}/healthz", headers={"x-big": "a" * (60 * 1024)}, timeout=10)
    assert response.status_code == 200


def test_a_request_that_never_finishes_is_closed_after_the_read_timeout(strict: App) -> None:
    with raw(strict) as idle, raw(strict) as partial, raw(strict) as short_body:
        partial.sendall(b"POST /vapi/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: appli")
        short_body.sendall(
            b'POST /vapi/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"message"'
        )
        started = time.monotonic()
        for sock in (idle, partial, short_body):
            assert read_all(sock) == b""  # closed, with nothing to say to a half request
        waited = time.monotonic() - started
    # Closed by the server (recv returned), not by our 30 s socket timeout.
    assert waited < 25
    assert httpx.get(f"{strict.url}/healthz", timeout=10).status_code == 200


def test_many_unfinished_requests_hold_nothing_for_long(strict: App) -> None:
    socks = []
    try:
        for _ in range(200):
            address = urlsplit(strict.url)
            sock = socket.create_connection((address.hostname, address.port), timeout=30)
            sock.sendall(b"POST /vapi/webhook HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)
        assert httpx.get(f"{strict.url}/healthz", timeout=10).status_code == 200
        for sock in socks:
            assert read_all(sock) == b""  # closed without an answer
    finally:
        for sock in socks:
            sock.close()


def test_a_client_that_hangs_up_mid_upload_is_logged_at_info(
    strict: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = json.dumps(tool_calls_message([("c1", "checkAvailability", {})])).encode()
    with raw(strict) as sock:
        sock.sendall(
            b"POST /vapi/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"X-Vapi-Secret: {VAPI_SECRET}\r\nContent-Length: {len(body) + 500}\r\n\r\n".encode()
            + body[:20]
        )
    # Hung up. The next request proves the server has moved on; then read what it logged.
    assert httpx.get(f"{strict.url}/healthz", timeout=10).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        "disconnected" in r.getMessage() for r in caplog.records
    ):
        time.sleep(0.05)
    assert any("client disconnected" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not [r for r in caplog.records if " 500 " in r.getMessage()]


def test_at_most_32_tool_calls_per_message(strict: App) -> None:
    calls = [
        (f"c{n}", "checkAvailability", {"startDateTime": "2031-03-11T09:00"}) for n in range(33)
    ]
    response = strict.webhook(tool_calls_message(calls))
    assert response.status_code == 400
    assert response.json() == {
        "error": "a message may carry at most 32 tool calls, this one has 33"
    }
    assert strict.emulator.control.requests() == {}
