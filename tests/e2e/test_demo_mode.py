"""`vapi-calendar serve` as a real process, configured only by its environment."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from tests.harness.app import FIXTURES
from tests.harness.servers import free_port, wait_until_serving

BANNER_END = "=" * 75 + "\n"


@dataclass
class Served:
    url: str
    port: int
    output: str = field(default="")
    lines: list[str] = field(default_factory=list)  # printed so far, while it runs

    def so_far(self) -> str:
        return "".join(self.lines)

    def banner(self, timeout: float = 60.0) -> str:
        """The demo banner, once printed in full (after the server answers: the demo books its
        appointment through its own emulator first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.so_far()
            if "DEMO MODE" in text and BANNER_END in text.split("DEMO MODE", 1)[1]:
                return text.split("DEMO MODE", 1)[1].split(BANNER_END, 1)[0]
            time.sleep(0.05)
        raise AssertionError(f"no demo banner:\n{self.so_far()[-3000:]}")


def clean_environment(**env: str) -> dict[str, str]:
    """The test's environment without any of the server's settings, plus `env`."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("GOOGLE_", "MICROSOFT_", "VAPI_", "DATABASE_", "PUBLIC_", "ENCRYPTION_", "ADMIN_")
        )
    }
    return {**clean, **env}


@contextmanager
def serve_process(cwd: Path, port: int | None = None, **env: str) -> Iterator[Served]:
    """Start the CLI server with a clean environment; collect its output as it comes."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "vapi_calendar.server.cli", "serve", "--port", str(port)],
        cwd=cwd,  # a fresh directory: no .env, the default SQLite path
        env=clean_environment(**env),
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
        banner = served.banner()
    assert f"export URL=http://127.0.0.1:{served.port} " in banner
    assert 'curl -s "$URL/vapi/webhook"' in banner
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
    # One line per request: the webhook's access line is the tool calls' line.
    assert [e for e in logged if e.get("request_id") == answered["request_id"]] == [answered]
    assert answered["logger"] == "vapi_calendar.access" and answered["status"] == 200
    assert answered["method"] == "POST" and answered["path"] == "/vapi/webhook"


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
    platforms = {
        e.get("platform")
        for e in logged
        # (the demo's own booking, made at start for its caller, is a Vapi tool call)
        if e["msg"] == "tool calls answered" and not str(e["call_id"]).startswith("demo-call-")
    }
    assert platforms == {"mcp", "retell", "elevenlabs"}


# -- the newcomer's path: the README's quickstart, from the banner's own commands -------------


def banner_commands(banner: str) -> tuple[dict[str, str], list[str]]:
    """The banner's `export NAME=value ...` line and its curl commands, as printed."""
    (export,) = [line for line in banner.splitlines() if line.startswith("export ")]
    variables = dict(word.split("=", 1) for word in shlex.split(export)[1:])
    return variables, [line for line in banner.splitlines() if line.startswith("curl ")]


def run_curl(command: str, variables: dict[str, str]) -> httpx.Response:
    """What `curl` would send for a banner command, sent with httpx: the banner's commands use
    only -s, -X, -H and -d, and "$NAME" expansions of the export line (checked here, so a
    command this cannot reproduce exactly fails the test instead of being guessed at)."""
    words = shlex.split(command)  # the shell's quoting; expansions are done below
    assert words[0] == "curl"
    method, url, headers, data = None, None, {}, None
    it = iter(words[1:])
    for word in it:
        if word == "-s":
            continue
        if word == "-X":
            method = next(it)
        elif word == "-H":
            name, value = next(it).split(":", 1)
            headers[name.strip()] = value.strip()
        elif word == "-d":
            data = next(it)
        else:
            assert not word.startswith("-"), f"curl option not expected: {word}"
            url = word

    def expand(text: str) -> str:
        return re.sub(r"\$(\w+)", lambda m: variables[m.group(1)], text)

    assert url is not None
    # Single-quoted bodies are not expanded by a shell: only URL and headers are.
    if data is not None:
        headers.setdefault("content-type", "application/x-www-form-urlencoded")  # curl's -d
    return httpx.request(
        method or ("POST" if data is not None else "GET"),
        expand(url),
        headers={name: expand(value) for name, value in headers.items()},
        content=data,
        timeout=30,
    )


def test_the_quickstart_from_the_banner_answers_every_tool_and_the_admin_api(
    tmp_path: Path,
) -> None:
    # What the README's quickstart tells a newcomer to do, in its order.
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    steps = ["make run", "export URL=… ADMIN_TOKEN=…", "five tool commands", "admin commands"]
    positions = [quickstart.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), positions
    with serve_process(tmp_path) as served:
        banner = served.banner()
        variables, commands = banner_commands(banner)
        assert variables["URL"] == served.url
        # The admin token is generated into the data directory, like the encryption key.
        token_file = tmp_path / "data" / "admin.token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        assert variables["ADMIN_TOKEN"] == token_file.read_text().strip()
        assert len(variables["ADMIN_TOKEN"]) >= 40

        answers = [run_curl(command, variables) for command in commands]
        assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
        tools = {}
        for answer in answers[:5]:
            (result,) = answer.json()["results"]
            assert "error" not in result, result
            tools[result["name"]] = json.loads(result["result"])
        assert tools["checkAvailability"]["slots"]
        assert tools["scheduleAppointment"]["booked"] is True
        # The appointment the demo booked for its caller is found, moved and cancelled.
        found = tools["findAppointments"]["appointments"]
        assert [a["summary"] for a in found] == ["Haircut", "Beard trim"]
        assert tools["rescheduleAppointment"]["rescheduled"] is True
        assert tools["cancelAppointment"]["cancelled"] is True
        assert tools["cancelAppointment"]["eventId"] == found[0]["eventId"]

        created, linked, link = (a.json() for a in answers[5:])
        assert created["id"] == "sam" and created["calendar"]["status"] == "not_connected"
        assert linked == {"assistantId": "sam-assistant", "userId": "sam"}
        opened = httpx.get(link["url"])
        assert opened.status_code == 200 and 'id="connect-google"' in opened.text
        described = httpx.get(f"{served.url}/api/openapi.json").json()
        assert "/api/users" in described["paths"]


def test_serve_json_says_the_same_as_the_banner(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "vapi_calendar.server.cli", "serve", "--port", str(port), "--json"],
        cwd=tmp_path,
        env=clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert announced["url"] == f"http://127.0.0.1:{port}"
    demo = announced["demo"]
    assert demo["adminToken"] == (tmp_path / "data" / "admin.token").read_text().strip()
    assert demo["eventId"] and len(demo["commands"]) == 8


# Tool-call fixtures whose answer against the demo is an error on purpose, and why.
DELIBERATE_ERRORS = {
    # The fixture exists to show an assistant linked to nobody.
    "tool_calls_unlinked_assistant.json": "This assistant is not linked to a user",
    # A partial copy from Vapi's dashboard: its call names no user (fixtures README).
    "keey_pretty_string_arguments.json": "This assistant is not linked to a user",
    # It cancels an appointment of the recorded call, which this calendar never had.
    "wanda_squad_saved_members_sip.json": "I could not find that appointment.",
}


def test_the_bundled_fixtures_replayed_against_a_fresh_demo_are_answered(tmp_path: Path) -> None:
    files = sorted(FIXTURES.glob("*.json")) + sorted((FIXTURES / "variants").glob("*.json"))
    with serve_process(tmp_path) as served:
        served.banner()
        replayed = subprocess.run(
            [
                sys.executable,
                "-m",
                "vapi_calendar.server.cli",
                "replay",
                *map(str, files),
                "--url",
                f"{served.url}/vapi/webhook",
                "--relative-to-now",
                "--json",
            ],
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert replayed.returncode == 0, replayed.stderr
    answered = 0
    for entry in json.loads(replayed.stdout)["answers"]:
        name = Path(entry["file"]).name
        assert entry["status"] == 200, entry
        for result in entry["answer"].get("results", []):
            answered += 1
            if "error" in result:
                assert name in DELIBERATE_ERRORS, (name, result["error"])
                assert result["error"].startswith(DELIBERATE_ERRORS[name])
            else:
                assert json.loads(result["result"]).get("reason") != "beyondHorizon"
    assert answered >= 15


def test_a_second_server_on_a_busy_port_stops_at_once_and_touches_nothing(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    with serve_process(first) as served:
        served.banner()
        before = {p.name: p.stat().st_mtime_ns for p in (first / "data").iterdir()}
        for cwd in (first, second):
            again = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "vapi_calendar.server.cli",
                    "serve",
                    "--port",
                    str(served.port),
                ],
                cwd=cwd,
                env=clean_environment(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert again.returncode == 2
            (line,) = again.stderr.strip().splitlines()
            assert f"port {served.port}" in line and "in use" in line
            assert "DEMO MODE" not in again.stdout + again.stderr
        assert not (second / "data").exists()
        assert {p.name: p.stat().st_mtime_ns for p in (first / "data").iterdir()}.keys() >= (
            before.keys()
        )
        assert (first / "data" / "admin.token").stat().st_mtime_ns == before["admin.token"]
        # The first server's demo user still answers.
        assert answer(served.url, f"{_tomorrow()}T09:00:00", "busy-1")["available"] is True


def _tomorrow() -> str:
    return str((datetime.now(ZoneInfo("America/New_York")) + timedelta(days=1)).date())
