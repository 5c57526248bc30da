"""`vapi-calendar serve` as a real process, configured only by its environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from tests.harness.servers import free_port, wait_until_serving


@dataclass
class Served:
    url: str
    port: int
    output: str = field(default="")
    lines: list[str] = field(default_factory=list)  # printed so far, while it runs

    def so_far(self) -> str:
        return "".join(self.lines)


@contextmanager
def serve_process(cwd: Path, **env: str) -> Iterator[Served]:
    """Start the CLI server with a clean environment; collect its output as it comes."""
    port = free_port()
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("GOOGLE_", "MICROSOFT_", "VAPI_", "DATABASE_", "PUBLIC_", "ENCRYPTION_", "ADMIN_")
        )
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "vapi_calendar.server.cli", "serve", "--port", str(port)],
        cwd=cwd,  # a fresh directory: no .env, the default SQLite path
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = Served(f"http://127.0.0.1:{port}", port)
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: served.lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        wait_until_serving(served.url, process, output=served.so_far)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=30)
        served.output = served.so_far()


def check_availability_body(assistant_id: str, start: str | None = None) -> dict:
    # Tomorrow 9:00 in the demo user's zone: booking rules (60-day horizon) refuse far dates,
    # and the demo user is open every day, 9:00-17:00, with tomorrow's first event at 10:00.
    tomorrow = (datetime.now(ZoneInfo("America/New_York")) + timedelta(days=1)).date()
    return {
        "message": {
            "type": "tool-calls",
            "call": {"id": "c", "assistantId": assistant_id},
            "toolCallList": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {
                        "name": "checkAvailability",
                        "arguments": {"startDateTime": start or f"{tomorrow}T09:00:00"},
                    },
                }
            ],
        }
    }


def schedule_body(assistant_id: str, summary: str) -> dict:
    tomorrow = (datetime.now(ZoneInfo("America/New_York")) + timedelta(days=1)).date()
    arguments = {"startDateTime": f"{tomorrow}T16:30:00", "summary": summary}
    function = {"name": "scheduleAppointment", "arguments": arguments}
    call = {"id": "t2", "type": "function", "function": function}
    return {
        "message": {
            "type": "tool-calls",
            "call": {"id": "c2", "assistantId": assistant_id},
            "toolCallList": [call],
        }
    }


def answer(url: str, start: str, tool_call_id: str, assistant: str = "demo-assistant") -> dict:
    body = check_availability_body(assistant, start)
    body["message"]["toolCallList"][0]["id"] = tool_call_id
    (result,) = httpx.post(f"{url}/vapi/webhook", json=body, timeout=30).json()["results"]
    return json.loads(result["result"])


def test_demo_mode_serves_tool_calls_against_the_bundled_emulator(tmp_path: Path) -> None:
    with serve_process(tmp_path) as served:
        response = httpx.post(
            f"{served.url}/vapi/webhook",
            json=check_availability_body("demo-assistant"),
            timeout=30,
        )
        (result,) = response.json()["results"]
        assert '"available":true' in result["result"]
        # The seeded series and the all-day event are read as a real calendar would be.
        today = datetime.now(ZoneInfo("America/New_York")).date()
        tomorrow, offsite = today + timedelta(days=1), today + timedelta(days=2)
        stand_up = answer(served.url, f"{tomorrow}T10:00:00", "t2")
        assert stand_up["available"] is False and stand_up["reason"] == "busy"
        all_day = answer(served.url, f"{offsite}T09:00:00", "t3")
        assert all_day["available"] is False and all_day["reason"] == "busy"
        later = answer(served.url, f"{offsite + timedelta(days=1)}T10:00:00", "t4")
        assert later["available"] is False  # the stand-up again, the day after the offsite
        assert (tmp_path / "data" / "vapi-calendar.db").exists()
        key_file = tmp_path / "data" / "encryption.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
    assert "DEMO MODE" in served.output
    assert re.search(rf"curl -s http://127\.0\.0\.1:{served.port}/vapi/webhook", served.output)
    assert key_file.read_text().strip() not in served.output  # the key is never printed


def test_demo_mode_plays_outlook_too_and_a_newcomer_connects_without_credentials(
    tmp_path: Path,
) -> None:
    today = datetime.now(ZoneInfo("America/New_York")).date()
    tomorrow, offsite = today + timedelta(days=1), today + timedelta(days=2)
    with serve_process(tmp_path) as served:
        outlook = "demo-outlook-assistant"
        free = answer(served.url, f"{tomorrow}T09:00:00", "o1", outlook)
        assert free["available"] is True and free["timeZone"] == "America/New_York"
        stand_up = answer(served.url, f"{tomorrow}T10:00:00", "o2", outlook)
        assert stand_up["available"] is False and stand_up["reason"] == "busy"
        focus = answer(served.url, f"{tomorrow}T14:00:00", "o3", outlook)
        assert focus["available"] is True  # shown as free in Outlook
        all_day = answer(served.url, f"{offsite}T09:00:00", "o4", outlook)
        assert all_day["available"] is False

        # The banner's connect link, walked as a browser would, with Microsoft's sign-in.
        with httpx.Client() as browser:
            link = re.search(r"(http://127\.0\.0\.1:\d+/connect/\S+)", served.so_far())
            assert link is not None
            landing = browser.get(link.group(1))
            assert (
                'id="connect-microsoft"' in landing.text and 'id="connect-google"' in landing.text
            )
            start = browser.post(link.group(1), data={"provider": "microsoft"})
            sign_in = browser.get(start.headers["location"])
            form = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', sign_in.text))
            form = {k: v.replace("&amp;", "&") for k, v in form.items()}
            decided = browser.post(
                start.headers["location"].split("?")[0],
                data={**form, "email": "newcomer@contoso.example", "action": "accept"},
            )
            connected = browser.get(decided.headers["location"])
            assert connected.status_code == 200 and "Outlook calendar" in connected.text
        mine = answer(served.url, f"{tomorrow}T09:00:00", "n1", "newcomer-assistant")
        assert "available" in mine, mine
    assert "demo-outlook" in served.output and "newcomer" in served.output


def test_logs_never_contain_credentials(tmp_path: Path) -> None:
    admin = "admin-token-that-must-not-be-logged"
    secret = "webhook-secret-that-must-not-be-logged"
    with serve_process(
        tmp_path, ADMIN_TOKEN=admin, VAPI_SECRET=secret, LOG_LEVEL="debug"
    ) as served:
        auth = {"authorization": f"Bearer {admin}"}
        link = httpx.post(f"{served.url}/api/users/demo/connect-link", headers=auth).json()
        token = link["url"].rsplit("/", 1)[1]
        with httpx.Client() as browser:  # keeps the consent's cookie, as a browser would
            assert browser.get(link["url"]).status_code == 200
            start = browser.post(link["url"], data={"provider": "google"})
            state = re.search(r"state=([^&]+)", start.headers["location"]).group(1)
            callback = f"{served.url}/oauth/google/callback?state={state}&code=CODE-MUST-NOT-LOG"
            assert browser.get(callback).status_code == 502  # the emulator never issued it
        ok = httpx.post(
            f"{served.url}/vapi/webhook",
            json=check_availability_body("demo-assistant"),
            headers={"x-vapi-secret": secret},
            timeout=30,
        )
        assert ok.status_code == 200
        booked = httpx.post(
            f"{served.url}/vapi/webhook",
            json=schedule_body("demo-assistant", "Root canal for Quentin Zebulon"),
            headers={"x-vapi-secret": secret},
            timeout=30,
        )
        assert '"booked":true' in booked.json()["results"][0]["result"], booked.text
        denied = httpx.post(
            f"{served.url}/vapi/webhook", json={}, headers={"x-vapi-secret": secret + "x"}
        )
        assert denied.status_code == 401
    output = served.output
    assert "GET /connect/<token> 200" in output  # requests are logged, redacted
    for credential in (admin, secret, token, state, "CODE-MUST-NOT-LOG", "ya29.", "EwBIA8l6"):
        assert credential not in output, f"{credential[:12]}… leaked into the log"
    # Nor what a caller said: the stored answer holds the title, the database loggers are quiet.
    assert "Quentin Zebulon" not in output and "Root canal" not in output
    # Log lines are JSON objects (the demo banner is plain text on purpose).
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [entry for entry in logged if entry["logger"] == "vapi_calendar.access"]
    assert access and all(entry["request_id"] and "ms" in entry for entry in access)
    (answered,) = [
        entry
        for entry in logged
        if entry["msg"] == "tool calls answered" and entry["call_id"] == "c"
    ]
    assert answered["user_id"] == "demo" and answered["outcomes"] == ["ok"]
    assert answered["tools"] == ["checkAvailability"] and answered["call_id"] == "c"
    assert answered["request_id"] in {entry["request_id"] for entry in access}


def test_other_platforms_log_no_credential_nor_what_a_caller_said(tmp_path: Path) -> None:
    """Retell, ElevenLabs and MCP at LOG_LEVEL=debug: no secret, key or signature, and none of
    the arguments (the MCP SDK logs its JSON-RPC messages at DEBUG)."""
    import asyncio

    from tests.harness.platforms import mcp_calls, retell_sign

    admin, retell_key, tool_secret = "admin-must-not-log", "retell-must-not-log", "el-must-not-log"
    with serve_process(
        tmp_path,
        ADMIN_TOKEN=admin,
        RETELL_API_KEY=retell_key,
        ELEVENLABS_TOOL_SECRET=tool_secret,
        LOG_LEVEL="debug",
    ) as served:
        auth = {"authorization": f"Bearer {admin}"}
        key = httpx.post(f"{served.url}/api/users/demo/api-keys", headers=auth).json()["key"]
        for platform in ("retell", "elevenlabs"):
            link = httpx.put(
                f"{served.url}/api/links/{platform}/ag_demo", json={"userId": "demo"}, headers=auth
            )
            assert link.status_code == 200
        tomorrow = (datetime.now(ZoneInfo("America/New_York")) + timedelta(days=1)).date()

        def args(hour: int, who: str) -> dict:
            return {"startDateTime": f"{tomorrow}T{hour}:00:00", "summary": f"Root canal for {who}"}

        (mcp,) = asyncio.run(
            mcp_calls(
                served.url,
                key,
                [("scheduleAppointment", args(14, "Quentin Zebulon"))],
                headers={"X-Call-Id": "call-mcp-log"},
            )
        )
        assert mcp.is_error is False
        body = json.dumps(
            {
                "name": "scheduleAppointment",
                "call": {"call_id": "call-retell-log", "agent_id": "ag_demo"},
                "args": args(15, "Xavier Quimby"),
            }
        ).encode()
        signature = retell_sign(body, api_key=retell_key)
        retell = httpx.post(
            f"{served.url}/retell/functions/scheduleAppointment",
            content=body,
            headers={"x-retell-signature": signature, "content-type": "application/json"},
            timeout=30,
        )
        assert retell.status_code == 200 and "booked" in retell.json()
        eleven = httpx.post(
            f"{served.url}/elevenlabs/tools/scheduleAppointment",
            json={**args(16, "Yolanda Wexford"), "system__agent_id": "ag_demo"},
            headers={"authorization": f"Bearer {tool_secret}"},
            timeout=30,
        )
        assert eleven.status_code == 200 and "booked" in eleven.json()
    output = served.output
    for credential in (admin, retell_key, tool_secret, key, signature):
        assert credential not in output, f"{credential[:12]}… leaked into the log"
    for said in ("Quentin Zebulon", "Xavier Quimby", "Yolanda Wexford", "Root canal"):
        assert said not in output
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    platforms = {e.get("platform") for e in logged if e["msg"] == "tool calls answered"}
    assert platforms == {"mcp", "retell", "elevenlabs"}
