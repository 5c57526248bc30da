"""Vapi's webhook credentials over real HTTP: bearer, every HMAC option, and the OAuth2 plan.

Requests are made the way Vapi documents each plan (`tests.harness.vapi`, independent of the
server's code), from the credential body `vapi-calendar vapi-tools` prints for Vapi's
credential API; OAuth2 tokens are fetched by a real client-credentials client
(requests-oauthlib). A refused webhook gets 401 before anything runs.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

from tests.harness.app import App, Emulator, running_app, tool_calls_message
from tests.harness.vapi import bearer_plan_headers, hmac_plan_headers
from vapi_calendar.oauth.vault import generate_key

CHECK = tool_calls_message(
    [("call_cred_1", "checkAvailability", {"startDateTime": "2031-03-11T09:00:00"})]
)
BODY = json.dumps(CHECK).encode()
CLIENT_ID = "vapi-webhooks"
CLIENT_SECRET = "oauth2-client-secret-0123456789"
BASE64_SECRET = base64.b64encode(b"\x00binary secret\xff").decode()

# Settings (named after Vapi's plan fields) → a credential Vapi can hold.
HMAC_SETTINGS: dict[str, dict[str, Any]] = {
    "sha512-base64-own-headers": {
        "vapi_hmac_algorithm": "sha512",
        "vapi_hmac_signature_encoding": "base64",
        "vapi_hmac_signature_header": "X-Vapi-Signature",
        "vapi_hmac_timestamp_header": "X-Vapi-Timestamp",
        "vapi_hmac_signature_prefix": "v1=",
    },
    "sha1-body-only": {"vapi_hmac_algorithm": "sha1", "vapi_hmac_include_timestamp": False},
    "svix-style": {
        "vapi_hmac_secret": BASE64_SECRET,
        "vapi_hmac_secret_is_base64": True,
        "vapi_hmac_signature_header": "svix-signature",
        "vapi_hmac_timestamp_header": "svix-timestamp",
        "vapi_hmac_message_id_header": "svix-id",
        "vapi_hmac_signature_prefix": "v1,",
        "vapi_hmac_signature_encoding": "base64",
        "vapi_hmac_payload_format": "{svix-id}.{timestamp}.{body}",
    },
    "method-and-url": {"vapi_hmac_payload_format": "{method} {url} {timestamp}.{body}"},
}


def printed_credential(settings: dict[str, Any], server_url: str, auth: str) -> dict[str, Any]:
    """`vapi-calendar vapi-tools --auth …` with these settings in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAPI_")}
    env |= {name.upper(): str(value) for name, value in settings.items() if value is not None}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vapi_calendar.server.cli",
            "vapi-tools",
            "--server-url",
            server_url,
            "--auth",
            auth,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    credential: dict[str, Any] = json.loads(done.stdout)["credential"]
    return credential


@pytest.fixture
def serve(tmp_path: Path, emulator: Emulator) -> Iterator[Any]:
    """Start the server with the given settings (only the webhook plans given)."""
    numbers = itertools.count()
    with ExitStack() as servers:

        def start(**settings: Any) -> App:
            values = {"vapi_secret": None, "vapi_hmac_secret": None, **settings}
            directory = tmp_path / f"server-{next(numbers)}"
            running = servers.enter_context(running_app(directory, emulator, **values))
            running.set_up_ana()
            return running

        yield start


def assert_answered(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert json.loads(result["result"])["timeZone"] == "America/New_York"


def post(app: App, headers: dict[str, str], body: bytes = BODY) -> httpx.Response:
    return app.http.post(
        f"{app.url}/vapi/webhook",
        content=body,
        headers={"content-type": "application/json", **headers},
    )


@pytest.mark.parametrize("name", sorted(HMAC_SETTINGS))
def test_hmac_plans_from_the_printed_credential(serve: Any, name: str) -> None:
    settings = {"vapi_hmac_secret": "hmac-secret-for-" + name, **HMAC_SETTINGS[name]}
    app = serve(**settings)
    credential = printed_credential(settings, app.url, "hmac")
    assert credential["provider"] == "webhook"
    plan = credential["authenticationPlan"]
    url = f"{app.url}/vapi/webhook"
    headers = hmac_plan_headers(plan, BODY, timestamp=str(int(time.time())), url=url)

    assert_answered(post(app, headers))

    tampered = post(app, headers, BODY.replace(b"09:00", b"10:00"))
    assert tampered.status_code == 401
    assert tampered.json() == {"error": "unauthorized: invalid signature"}
    assert app.emulator.control.requests() == {"freebusy": 1}  # only the good one ran


def test_the_url_signed_is_the_public_url(serve: Any) -> None:
    app = serve(vapi_hmac_secret="s", **HMAC_SETTINGS["method-and-url"])
    plan = printed_credential(
        {"vapi_hmac_secret": "s", **HMAC_SETTINGS["method-and-url"]}, app.url, "hmac"
    )["authenticationPlan"]
    now = str(int(time.time()))
    wrong = hmac_plan_headers(plan, BODY, timestamp=now, url="http://elsewhere/vapi/webhook")
    assert post(app, wrong).status_code == 401
    right = hmac_plan_headers(plan, BODY, timestamp=now, url=f"{app.url}/vapi/webhook")
    assert_answered(post(app, right))


@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        (
            {"vapi_bearer_header_name": "X-Api-Key", "vapi_bearer_prefix_enabled": False},
            {"Authorization": "Bearer bearer-secret"},
        ),
        ({"vapi_bearer_prefix_enabled": False}, {"Authorization": "Bearer bearer-secret"}),
        ({}, {"Authorization": "bearer-secret"}),
    ],
    ids=["own-header-no-prefix", "no-prefix", "vapi-defaults"],
)
def test_bearer_plans_from_the_printed_credential(
    serve: Any, settings: dict[str, Any], refused: dict[str, str]
) -> None:
    settings = {"vapi_secret": "bearer-secret", **settings}
    app = serve(**settings)
    plan = printed_credential(settings, app.url, "bearer")["authenticationPlan"]
    assert_answered(post(app, bearer_plan_headers(plan)))
    assert_answered(post(app, {"X-Vapi-Secret": "bearer-secret"}))  # the legacy header
    assert post(app, refused).status_code == 401


# --- OAuth2 ---------------------------------------------------------------------------------------


@pytest.fixture
def oauth_app(serve: Any, monkeypatch: pytest.MonkeyPatch) -> App:
    # oauthlib refuses plain-HTTP token URLs unless told this is a test on loopback.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    app: App = serve(
        vapi_oauth2_client_id=CLIENT_ID,
        vapi_oauth2_client_secret=CLIENT_SECRET,
        vapi_oauth2_scope="webhooks",
        vapi_oauth2_token_seconds=900,
    )
    return app


def fetch_token(app: App, *, in_body: bool) -> dict[str, Any]:
    plan = printed_credential(
        {
            "vapi_oauth2_client_id": CLIENT_ID,
            "vapi_oauth2_client_secret": CLIENT_SECRET,
            "vapi_oauth2_scope": "webhooks",
        },
        app.url,
        "oauth2",
    )["authenticationPlan"]
    session = OAuth2Session(client=BackendApplicationClient(client_id=plan["clientId"]))
    token: dict[str, Any] = session.fetch_token(
        token_url=plan["url"],
        client_id=plan["clientId"],
        client_secret=plan["clientSecret"],
        include_client_id=in_body,
    )
    return token


@pytest.mark.parametrize("in_body", [False, True], ids=["http-basic", "form-body"])
def test_oauth2_client_credentials_then_webhooks_with_the_token(
    oauth_app: App, in_body: bool
) -> None:
    token = fetch_token(oauth_app, in_body=in_body)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 900
    assert token["scope"] == ["webhooks"]
    assert_answered(post(oauth_app, {"Authorization": f"Bearer {token['access_token']}"}))
    forged = token["access_token"][:-3] + "abc"
    response = post(oauth_app, {"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized: invalid token"}


def test_a_token_from_another_server_is_refused(oauth_app: App, serve: Any) -> None:
    other = serve(
        vapi_oauth2_client_id=CLIENT_ID,
        vapi_oauth2_client_secret=CLIENT_SECRET,
        encryption_key=generate_key(),
    )
    token = fetch_token(other, in_body=False)["access_token"]
    assert_answered(post(other, {"Authorization": f"Bearer {token}"}))
    response = post(oauth_app, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert oauth_app.emulator.control.requests() == {"freebusy": 1}


def token_request(
    app: App, form: dict[str, str] | str, *, basic: tuple[str, str] | None = None, **headers: str
) -> httpx.Response:
    sent = {"content-type": "application/x-www-form-urlencoded", **headers}
    if basic:
        sent["authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
    content = form if isinstance(form, str) else httpx.QueryParams(form).__str__()
    return app.http.post(f"{app.url}/oauth/token", content=content, headers=sent)


GOOD = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


@pytest.mark.parametrize(
    ("form", "kwargs", "status", "error"),
    [
        ({**GOOD, "client_secret": "wrong"}, {}, 401, "invalid_client"),
        ({**GOOD, "client_id": "someone"}, {}, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, {}, 401, "invalid_client"),
        (
            {"grant_type": "client_credentials"},
            {"basic": (CLIENT_ID, "wrong")},
            401,
            "invalid_client",
        ),
        ({**GOOD, "grant_type": "password"}, {}, 400, "unsupported_grant_type"),
        ({k: v for k, v in GOOD.items() if k != "grant_type"}, {}, 400, "invalid_request"),
        ({**GOOD, "scope": "admin"}, {}, 400, "invalid_scope"),
        (GOOD, {"basic": (CLIENT_ID, CLIENT_SECRET)}, 400, "invalid_request"),  # two methods
        (
            "grant_type=client_credentials&grant_type=client_credentials"
            f"&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}",
            {},
            400,
            "invalid_request",
        ),
        (json.dumps(GOOD), {"content-type": "application/json"}, 400, "invalid_request"),
    ],
    ids=[
        "wrong-secret",
        "wrong-client",
        "no-credentials",
        "wrong-basic",
        "other-grant",
        "no-grant",
        "scope-not-allowed",
        "two-methods",
        "repeated-parameter",
        "json-body",
    ],
)
def test_token_endpoint_errors_are_rfc_6749(
    oauth_app: App, form: Any, kwargs: dict[str, Any], status: int, error: str
) -> None:
    response = token_request(oauth_app, form, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and set(body) == {"error", "error_description"}
    assert CLIENT_SECRET not in response.text and "wrong" not in body["error_description"]
    assert response.headers["cache-control"] == "no-store"
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


def test_token_response_is_not_cached_and_grants_the_configured_scope(oauth_app: App) -> None:
    response = token_request(oauth_app, GOOD)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["scope"] == "webhooks"


def test_token_endpoint_without_oauth2_configured(app: App) -> None:
    response = token_request(app, GOOD)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert app.http.get(f"{app.url}/oauth/token").status_code == 405


def test_replay_signs_with_the_configured_hmac_plan(serve: Any) -> None:
    settings = dict(HMAC_SETTINGS["svix-style"])  # its secret is given as VAPI_HMAC_SECRET
    app = serve(**settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAPI_")}
    env |= {name.upper(): str(value) for name, value in settings.items()}
    fixture = (
        Path(__file__).parent.parent / "fixtures" / "vapi" / "tool_calls_check_availability.json"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vapi_calendar.server.cli",
            "replay",
            str(fixture),
            "--url",
            f"{app.url}/vapi/webhook",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "HTTP 200" in done.stderr and '"toolCallId": "call_check_1"' in done.stdout
