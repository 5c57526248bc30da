"""`vapi-calendar serve` with nothing configured: demo mode, as `make run` starts it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_mode_serves_tool_calls_against_the_bundled_emulator(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GOOGLE_", "VAPI_", "DATABASE_", "PUBLIC_", "ENCRYPTION_"))
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        cwd=tmp_path,  # a fresh directory: no .env, the default SQLite path
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)

        # The banner's own example request works, unauthenticated, in demo mode only.
        body = {
            "message": {
                "type": "tool-calls",
                "call": {"id": "c", "assistantId": "demo-assistant"},
                "toolCallList": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {
                            "name": "checkAvailability",
                            "arguments": {"startDateTime": "2031-03-11T09:00:00"},
                        },
                    }
                ],
            }
        }
        (result,) = httpx.post(f"{base}/vapi/webhook", json=body, timeout=30).json()["results"]
        assert '"available":true' in result["result"]
        assert (tmp_path / "data" / "vapi-calendar.db").exists()
        key_file = tmp_path / "data" / "encryption.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "DEMO MODE" in output
    assert re.search(rf"curl -s http://127\.0\.0\.1:{port}/vapi/webhook", output)
    assert key_file.read_text().strip() not in output  # the key is never printed
