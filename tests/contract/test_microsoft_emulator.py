"""The Microsoft emulator answers as Microsoft's reference says, checked with plain HTTP.

The adapter is only as honest as the emulator it is tested against, so the awkward parts are
pinned here, each with the reference it follows: the v2.0 authorization-code flow with PKCE
(v2-oauth2-auth-code-flow), refresh-token rotation, Graph's error shape (concepts/errors.md),
calendarView paging, ids that change on a folder move without `Prefer: IdType="ImmutableId"`
(outlook-immutable-id), extended properties only on `$expand`
(singlevaluelegacyextendedproperty-get), `transactionId`, `/cancel` (event-cancel) and
throttling (concepts/throttling.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.harness.servers import serve_in_thread
from vapi_calendar.emulator.app import create_emulator_app
from vapi_calendar.emulator.microsoft.control import MicrosoftControl, MicrosoftControlError
from vapi_calendar.emulator.state import EmulatorState

CLIENT_ID = "5a1f0c9e-3b2d-4e6f-8a7b-9c0d1e2f3a4b"
SECRET = "emulator-secret"
REDIRECT = "http://127.0.0.1:9/oauth/microsoft/callback"
ALICE = "alice@contoso.com"
PROP = "String {ffd7214e-8fa6-57f8-8fd2-00530338a333} Name vapiCalendar.eventId"
IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}
SCOPES = "offline_access openid email Calendars.ReadWrite MailboxSettings.Read"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, MicrosoftControl]]:
    state = EmulatorState()
    state.microsoft.register_client(CLIENT_ID, SECRET)
    with serve_in_thread(create_emulator_app(state)) as url, MicrosoftControl(url) as control:
        yield url, control


@pytest.fixture
def ms(served: tuple[str, MicrosoftControl]) -> Iterator[tuple[str, MicrosoftControl]]:
    url, control = served
    httpx.post(f"{url}/_emulator/reset")
    control.create_account(ALICE, timezone="Pacific Standard Time")
    yield url, control


def graph(url: str, token: str, **headers: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{url}/v1.0", headers={"authorization": f"Bearer {token}", **headers}, timeout=10
    )


def token_for(control: MicrosoftControl, scopes: str = SCOPES) -> str:
    return str(control.mint_tokens(ALICE, CLIENT_ID, scopes.split())["access_token"])


def when(local: str) -> dict[str, str]:
    return {"dateTime": local, "timeZone": "Pacific Standard Time"}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize(url: str, challenge: str, *, action: str = "accept", tenant: str = "common") -> str:
    """Walk the sign-in page as a browser; the redirect it answers with."""
    query = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "response_mode": "query",
        "scope": SCOPES,
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "nonce": "n-1",
    }
    page = httpx.get(f"{url}/{tenant}/oauth2/v2.0/authorize", params=query)
    assert page.status_code == 200
    form = {
        unescape(k): unescape(v)
        for k, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    }
    answer = httpx.post(
        f"{url}/{tenant}/oauth2/v2.0/authorize", data={**form, "email": ALICE, "action": action}
    )
    assert answer.status_code == 302
    return str(answer.headers["location"])


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# -- identity platform ------------------------------------------------------------------------


def test_code_flow_with_pkce_issues_tokens_and_an_id_token(
    ms: tuple[str, MicrosoftControl],
) -> None:
    url, _ = ms
    verifier, challenge = pkce()
    redirect = urlsplit(authorize(url, challenge))
    params = {k: v[0] for k, v in parse_qs(redirect.query).items()}
    assert f"{redirect.scheme}://{redirect.netloc}{redirect.path}" == REDIRECT
    assert params["state"] == "st-1" and params["code"] and params["session_state"]
    form = {
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    token = httpx.post(f"{url}/common/oauth2/v2.0/token", data=form)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert body["refresh_token"]  # offline_access
    assert "https://graph.microsoft.com/Calendars.ReadWrite" in body["scope"].split()
    id_claims = claims(body["id_token"])
    assert id_claims["preferred_username"] == ALICE and id_claims["email"] == ALICE
    assert id_claims["nonce"] == "n-1" and id_claims["aud"] == CLIENT_ID
    assert id_claims["tid"] and id_claims["oid"]

    # A code is used once.
    again = httpx.post(f"{url}/common/oauth2/v2.0/token", data=form)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_a_wrong_verifier_or_secret_is_refused_as_entra_does(
    ms: tuple[str, MicrosoftControl],
) -> None:
    url, _ = ms
    _, challenge = pkce()
    code = parse_qs(urlsplit(authorize(url, challenge)).query)["code"][0]
    form = {
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": "not-the-verifier",
    }
    wrong = httpx.post(f"{url}/common/oauth2/v2.0/token", data=form).json()
    assert wrong["error"] == "invalid_grant"
    assert wrong["error_description"].startswith("AADSTS") and wrong["error_codes"]
    assert {"trace_id", "correlation_id", "timestamp"} <= set(wrong)
    secret = httpx.post(f"{url}/common/oauth2/v2.0/token", data={**form, "client_secret": "x"})
    assert secret.status_code == 401 and secret.json()["error"] == "invalid_client"


def test_a_declined_sign_in_redirects_with_the_error_and_the_state(
    ms: tuple[str, MicrosoftControl],
) -> None:
    url, _ = ms
    _, challenge = pkce()
    params = parse_qs(urlsplit(authorize(url, challenge, action="cancel")).query)
    assert params["error"] == ["access_denied"] and params["state"] == ["st-1"]
    assert params["error_description"][0].startswith("AADSTS65004")


def test_an_unknown_app_is_shown_in_the_browser_not_redirected(
    ms: tuple[str, MicrosoftControl],
) -> None:
    url, _ = ms
    page = httpx.get(
        f"{url}/common/oauth2/v2.0/authorize",
        params={"client_id": "nobody", "response_type": "code", "redirect_uri": REDIRECT},
    )
    assert page.status_code == 400 and "AADSTS700016" in page.text


def test_refresh_tokens_rotate_on_every_refresh(ms: tuple[str, MicrosoftControl]) -> None:
    url, control = ms
    minted = control.mint_tokens(ALICE, CLIENT_ID, SCOPES.split())
    form = {
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "grant_type": "refresh_token",
        "refresh_token": minted["refresh_token"],
        "scope": SCOPES,
    }
    first = httpx.post(f"{url}/common/oauth2/v2.0/token", data=form).json()
    assert first["refresh_token"] != minted["refresh_token"]
    # Entra keeps an old refresh token usable until it expires; the hook retires it at once.
    assert httpx.post(f"{url}/common/oauth2/v2.0/token", data=form).status_code == 200
    control.configure(retire_used_refresh_tokens=True)
    newest = {**form, "refresh_token": first["refresh_token"]}
    assert httpx.post(f"{url}/common/oauth2/v2.0/token", data=newest).status_code == 200
    retired = httpx.post(f"{url}/common/oauth2/v2.0/token", data=newest)
    assert retired.status_code == 400 and retired.json()["error"] == "invalid_grant"


# -- Graph -------------------------------------------------------------------------------------


def test_graph_errors_have_graphs_shape(ms: tuple[str, MicrosoftControl]) -> None:
    url, control = ms
    with graph(url, "not-a-token") as client:
        refused = client.get("/me/mailboxSettings")
    assert refused.status_code == 401 and "WWW-Authenticate" in refused.headers
    error = refused.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])
    # Without the scope, 403 ErrorAccessDenied.
    with graph(url, token_for(control, "openid Calendars.ReadWrite")) as client:
        denied = client.get("/me/mailboxSettings")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "ErrorAccessDenied"
    control.create_account(ALICE, mailbox=False)
    with graph(url, token_for(control)) as client:
        missing = client.get("/me/calendar/calendarView", params={"startDateTime": "x"})
    assert missing.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"


def test_mailbox_settings_answer_a_windows_zone(ms: tuple[str, MicrosoftControl]) -> None:
    url, control = ms
    with graph(url, token_for(control)) as client:
        answer = client.get("/me/mailboxSettings", params={"$select": "timeZone"}).json()
    assert answer["timeZone"] == "Pacific Standard Time" and "workingHours" not in answer


def test_calendar_view_pages_in_utc_and_needs_its_window(ms: tuple[str, MicrosoftControl]) -> None:
    url, control = ms
    for hour in range(8, 20):
        control.seed_event(
            ALICE,
            {
                "subject": f"At {hour}",
                "start": when(f"2031-03-11T{hour:02d}:00:00"),
                "end": when(f"2031-03-11T{hour:02d}:30:00"),
            },
        )
    # An offset is honoured; a value without one is UTC ("interpreted as UTC").
    window = {"startDateTime": "2031-03-11T00:00:00-07:00", "endDateTime": "2031-03-12T12:00:00"}
    with graph(url, token_for(control)) as client:
        assert client.get("/me/calendar/calendarView").json()["error"]["code"] == (
            "ErrorInvalidParameter"
        )
        first = client.get("/me/calendar/calendarView", params=window).json()
        assert len(first["value"]) == 10  # the default page
        rest = client.get(first["@odata.nextLink"]).json()
        late = client.get(
            "/me/calendar/calendarView",
            params={"startDateTime": "2031-03-12T00:00:00Z", "endDateTime": "2031-03-12T12:00:00Z"},
        ).json()
    assert "@odata.nextLink" not in rest
    subjects = [e["subject"] for e in first["value"] + rest["value"]]
    assert subjects == [f"At {hour}" for hour in range(8, 20)]
    # Answered in UTC: 8:00 Pacific Daylight Time is 15:00 UTC.
    assert first["value"][0]["start"] == {
        "dateTime": "2031-03-11T15:00:00.0000000",
        "timeZone": "UTC",
    }
    # From 17:00 Pacific on, the 11th is the 12th in UTC.
    assert [e["subject"] for e in late["value"]] == ["At 17", "At 18", "At 19"]


def test_ids_change_on_a_folder_move_unless_immutable(ms: tuple[str, MicrosoftControl]) -> None:
    url, control = ms
    body = {
        "subject": "Move me",
        "start": when("2031-03-11T10:00:00"),
        "end": when("2031-03-11T11:00:00"),
    }
    with (
        graph(url, token_for(control)) as plain,
        graph(url, token_for(control), **IMMUTABLE) as fixed,
    ):
        created = fixed.post("/me/events", json=body).json()
        regular = plain.get(f"/me/events/{created['id']}").json()["id"]
        assert regular != created["id"]
        assert plain.delete(f"/me/events/{regular}").status_code == 204
        # The item now sits in Deleted Items: its regular id changed, its immutable id did not.
        assert plain.get(f"/me/events/{regular}").status_code == 404
        assert fixed.get(f"/me/events/{created['id']}").status_code == 200
        assert fixed.get(f"/me/calendar/events/{created['id']}").status_code == 404


def test_extended_properties_come_back_only_when_expanded(
    ms: tuple[str, MicrosoftControl],
) -> None:
    url, control = ms
    body = {
        "subject": "Tagged",
        "start": when("2031-03-11T10:00:00"),
        "end": when("2031-03-11T11:00:00"),
        "singleValueExtendedProperties": [{"id": PROP, "value": "ours0001"}],
    }
    with graph(url, token_for(control), **IMMUTABLE) as client:
        created = client.post("/me/calendar/events", json=body)
        assert created.status_code == 201
        # A create answers in the zone it was written in, without extended properties.
        item = created.json()
        assert item["start"]["timeZone"] == "Pacific Standard Time"
        assert "singleValueExtendedProperties" not in item
        assert "singleValueExtendedProperties" not in client.get(f"/me/events/{item['id']}").json()
        expand = f"singleValueExtendedProperties($filter=id eq '{PROP}')"
        read = client.get(f"/me/events/{item['id']}", params={"$expand": expand}).json()
        assert read["singleValueExtendedProperties"] == [{"id": PROP, "value": "ours0001"}]
        found = client.get(
            "/me/calendar/events",
            params={
                "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP}' "
                "and ep/value eq 'OURS0001')",  # values compare without case
            },
        ).json()["value"]
        assert [e["id"] for e in found] == [item["id"]]
        refused = client.get("/me/calendar/events", params={"$filter": "subject eq 'x'"})
        assert refused.status_code == 400


def test_a_transaction_id_makes_one_event(ms: tuple[str, MicrosoftControl]) -> None:
    url, control = ms
    body = {
        "subject": "Once",
        "start": when("2031-03-11T10:00:00"),
        "end": when("2031-03-11T11:00:00"),
        "transactionId": "tx-0001",
    }
    with graph(url, token_for(control), **IMMUTABLE) as client:
        first = client.post("/me/events", json=body)
        again = client.post("/me/events", json=body)
        other = client.post("/me/events", json={**body, "subject": "Different"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 400
    assert other.json()["error"]["code"] == "ErrorDuplicateTransactionId"
    assert len(control.events(ALICE)) == 1


def test_only_the_organizer_cancels_and_a_cancelled_meeting_leaves_the_calendar(
    ms: tuple[str, MicrosoftControl],
) -> None:
    url, control = ms
    theirs = control.seed_event(
        ALICE,
        {
            "subject": "Theirs",
            "isOrganizer": False,
            "start": when("2031-03-11T09:00:00"),
            "end": when("2031-03-11T09:30:00"),
        },
    )
    meeting = {
        "subject": "Ours",
        "start": when("2031-03-11T10:00:00"),
        "end": when("2031-03-11T11:00:00"),
        "attendees": [{"emailAddress": {"address": "sam@example.com"}, "type": "required"}],
    }
    with graph(url, token_for(control), **IMMUTABLE) as client:
        refused = client.post(f"/me/events/{theirs['id']}/cancel", json={"comment": "no"})
        assert refused.status_code == 400
        ours = client.post("/me/events", json=meeting).json()
        assert (
            client.post(f"/me/events/{ours['id']}/cancel", json={"comment": "x"}).status_code == 202
        )
        window = {"startDateTime": "2031-03-11T00:00:00Z", "endDateTime": "2031-03-12T12:00:00Z"}
        view = client.get("/me/calendar/calendarView", params=window).json()["value"]
    assert [e["subject"] for e in view] == ["Theirs"]
    (cancelled,) = [e for e in control.events(ALICE) if e["subject"] == "Ours"]
    assert cancelled["isCancelled"] and cancelled["folder"] == "deleteditems"


def test_a_mailbox_takes_four_requests_at_once(ms: tuple[str, MicrosoftControl]) -> None:
    url, control = ms
    token = token_for(control)
    control.set_latency(800, "graph.mailboxSettings")

    def one(_: int) -> httpx.Response:
        with graph(url, token) as client:
            return client.get("/me/mailboxSettings")

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(one, range(6)))
    throttled = [a for a in answers if a.status_code == 429]
    assert len(throttled) >= 1 and len(answers) - len(throttled) >= 4
    assert all(a.headers["Retry-After"] == "1" for a in throttled)
    assert throttled[0].json()["error"]["code"] == "ApplicationThrottled"


def test_faults_take_graphs_shape_and_headers(ms: tuple[str, MicrosoftControl]) -> None:
    url, control = ms
    control.add_fault("graph.events.create", 503, headers={"Retry-After": "7"})
    body = {
        "subject": "x",
        "start": when("2031-03-11T10:00:00"),
        "end": when("2031-03-11T11:00:00"),
    }
    with graph(url, token_for(control)) as client:
        failed = client.post("/me/events", json=body)
        assert failed.status_code == 503 and failed.headers["Retry-After"] == "7"
        assert failed.json()["error"]["code"] == "ServiceUnavailable"
        assert client.post("/me/events", json=body).status_code == 201
    assert control.requests()["graph.events.create"] == 2
    with pytest.raises(MicrosoftControlError):
        control.seed_event(ALICE, {"subject": "no times"})


def test_mounted_under_a_prefix_next_links_keep_it(tmp_path: object) -> None:
    state = EmulatorState()
    state.microsoft.register_client(CLIENT_ID, SECRET)
    outer = Starlette(routes=[Mount("/emulator", app=create_emulator_app(state))])
    with serve_in_thread(outer) as root, MicrosoftControl(f"{root}/emulator") as control:
        control.create_account(ALICE, timezone="UTC")
        for hour in range(3):
            control.seed_event(
                ALICE,
                {
                    "subject": str(hour),
                    "start": {"dateTime": f"2031-03-11T1{hour}:00:00", "timeZone": "UTC"},
                    "end": {"dateTime": f"2031-03-11T1{hour}:30:00", "timeZone": "UTC"},
                },
            )
        window = {"startDateTime": "2031-03-11T00:00:00Z", "endDateTime": "2031-03-12T00:00:00Z"}
        query = urlencode({**window, "$top": "2"})
        with graph(f"{root}/emulator", token_for(control)) as client:
            first = client.get(f"/me/calendar/calendarView?{query}").json()
            assert first["@odata.nextLink"].startswith(f"{root}/emulator/v1.0/")
            assert len(client.get(first["@odata.nextLink"]).json()["value"]) == 1
