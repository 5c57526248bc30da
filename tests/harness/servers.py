"""Run real ASGI servers on loopback for tests: uvicorn in a thread, on an ephemeral port."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from vapi_calendar.server.http_server import uvicorn_config


def free_port() -> int:
    """A loopback port that was free a moment ago (for servers started as subprocesses)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bind_loopback() -> tuple[socket.socket, str]:
    """A bound socket and its base URL, for apps that must know their own address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def serve_in_thread(
    app: Any,
    *,
    sock: socket.socket | None = None,
    startup_timeout: float = 15.0,
    read_timeout_seconds: float = 15.0,
) -> Iterator[str]:
    """Serve `app` over real HTTP on 127.0.0.1 and yield its base URL (no trailing slash)."""
    if sock is None:
        sock, _ = bind_loopback()
    port = sock.getsockname()[1]
    # Same keep-alive as `vapi-calendar serve`: a test client reusing an idle connection must
    # not race the server closing it.
    config = uvicorn_config(
        app,
        read_timeout_seconds=read_timeout_seconds,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server thread died during startup (see log above)")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start in time")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def wait_until_serving(
    url: str,
    process: subprocess.Popen[Any],
    *,
    path: str = "/healthz",
    timeout: float = 30.0,
    output: Callable[[], str] = lambda: "",
) -> None:
    """Poll `url + path` until it answers 200; fail with the server's output if it dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{output()[-3000:]}")
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"server at {url} did not answer {path} in time:\n{output()[-3000:]}")
