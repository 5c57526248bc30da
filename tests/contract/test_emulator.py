"""The Google emulator, exercised through the real Google libraries over real HTTP."""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httplib2
import httpx
import pytest
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.harness.servers import serve_in_thread
from vapi_calendar.emulator.app import create_emulator_app
from vapi_calendar.emulator.control import EmulatorControl, EmulatorControlError
from vapi_calendar.emulator.state import EmulatorState

CLIENT_ID = "test-client.apps.googleusercontent.com"
CLIENT_SECRET = "test-secret"
REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"
ALICE = "alice@example.com"
G = "https://www.googleapis.com/auth/"
FREEBUSY, EVENTS_OWNED, SETTINGS = (
    G + "calendar.freebusy",
    G + "calendar.events.owned",
    G + "calendar.settings.readonly",
)
APP_SCOPES = ["openid", "email", FREEBUSY, EVENTS_OWNED, SETTINGS]


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator_state() -> EmulatorState:
    return EmulatorState(clients={CLIENT_ID: CLIENT_SECRET})


@pytest.fixture(scope="module")
def base(emulator_state: EmulatorState) -> Iterator[str]:
    with serve_in_thread(create_emulator_app(emulator_state)) as url:
        yield url


@pytest.fixture
def control(base: str) -> Iterator[EmulatorControl]:
    with EmulatorControl(base) as ctl:
        ctl.reset()
        ctl.create_account(ALICE, timezone="America/New_York")
        yield ctl


@pytest.fixture
def oauth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")


# ---- helpers --------------------------------------------------------------------------------


def make_flow(root: str, **kwargs: Any) -> Flow:
    config = {
        "web": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "auth_uri": root + "/o/oauth2/v2/auth",
            "token_uri": root + "/token",
            "redirect_uris": [REDIRECT_URI],
        }
    }
    return Flow.from_client_config(config, scopes=APP_SCOPES, redirect_uri=REDIRECT_URI, **kwargs)


class _FormParser(HTMLParser):
    """Collects the consent form the way a browser would submit it."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: list[tuple[str, str]] = []
        self.checkboxes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a["action"]
        elif tag == "input" and a.get("type") == "checkbox":
            self.checkboxes.append(a["value"])
        elif tag == "input":
            self.fields.append((a["name"], a.get("value", "")))


def consent(
    auth_url: str,
    *,
    action: str = "allow",
    email: str | None = None,
    untick: tuple[str, ...] = (),
) -> str:
    """Load the consent page, submit it, and return the redirect's Location."""
    with httpx.Client() as http:
        page = http.get(auth_url)
        assert page.status_code == 200, page.text
        form = _FormParser()
        form.feed(page.text)
        fields = [(k, email if k == "email" and email else v) for k, v in form.fields]
        fields += [("granted_scope", s) for s in form.checkboxes if s not in untick]
        fields.append(("action", action))
        # A real browser form body: repeated granted_scope fields, urlencoded.
        answer = http.post(
            str(page.url.join(form.action)),
            content=str(httpx.QueryParams(fields)).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code in (302, 303), answer.text
        return answer.headers["location"]


def connect_via_browser(root: str) -> tuple[Flow, dict[str, Any]]:
    flow = make_flow(root)
    auth_url, state = flow.authorization_url(prompt="consent", login_hint=ALICE, state="st-1")
    location = consent(auth_url)
    callback = make_flow(root, state=state, code_verifier=flow.code_verifier)
    token = callback.fetch_token(authorization_response=location)
    return callback, token


def creds_for(base: str, grant: dict[str, Any], scopes: list[str] | None = None) -> Credentials:
    return Credentials(
        grant["access_token"],
        refresh_token=grant.get("refresh_token"),
        token_uri=base + "/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scopes=scopes,
    )


def calendar(base: str, creds: Credentials) -> Any:
    return build(
        "calendar",
        "v3",
        credentials=creds,
        cache_discovery=False,
        client_options={"api_endpoint": base + "/calendar/v3/"},
    )


def connected(base: str, control: EmulatorControl, scopes: list[str] = APP_SCOPES) -> Any:
    return calendar(base, creds_for(base, control.mint_tokens(ALICE, CLIENT_ID, scopes)))


def reason(err: HttpError) -> str:
    return json.loads(err.content)["error"]["errors"][0]["reason"]


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def timed(day: int, hour: int, minute: int = 0, zone: str = "-05:00") -> dict[str, str]:
    return {"dateTime": f"2030-01-{day:02d}T{hour:02d}:{minute:02d}:00{zone}"}


# ---- OAuth ------------------------------------------------------------------------------------


def test_browser_flow_with_real_flow_class(base: str, control: EmulatorControl, oauth_env: None):
    flow, token = connect_via_browser(base)
    assert token["token_type"] == "Bearer"
    assert token["refresh_token"]
    assert 3500 < token["expires_in"] <= 3600
    granted = token["scope"]
    assert FREEBUSY in granted and EVENTS_OWNED in granted and "openid" in granted
    # Google canonicalises the "email" alias; apps must compare canonical names.
    assert G + "userinfo.email" in granted
    claims = jwt_claims(token["id_token"])
    assert claims["email"] == ALICE and claims["aud"] == CLIENT_ID and claims["email_verified"]
    info = httpx.get(
        base + "/v1/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}
    ).json()
    assert info == {"sub": claims["sub"], "email": ALICE, "email_verified": True}
    assert flow.credentials.token == token["access_token"]
    counts = control.requests()
    assert counts["authorize"] == 2 and counts["token.authorization_code"] == 1


def test_code_is_single_use_and_pkce_enforced(
    base: str, control: EmulatorControl, oauth_env: None
) -> None:
    flow = make_flow(base)
    auth_url, state = flow.authorization_url(prompt="consent", state="st-2")
    location = consent(auth_url, email=ALICE)
    wrong = make_flow(base, state=state, code_verifier="x" * 64)
    with pytest.raises(InvalidGrantError, match="Invalid code verifier"):
        wrong.fetch_token(authorization_response=location)
    # The failed attempt burnt the code, just as a replay would.
    right = make_flow(base, state=state, code_verifier=flow.code_verifier)
    with pytest.raises(InvalidGrantError):
        right.fetch_token(authorization_response=location)

    auth_url, state = flow.authorization_url(prompt="consent", state="st-3")
    location = consent(auth_url)
    forgetful = make_flow(base, state=state, autogenerate_code_verifier=False)
    with pytest.raises(InvalidGrantError, match="Missing code verifier"):
        forgetful.fetch_token(authorization_response=location)

    auth_url, state = flow.authorization_url(prompt="consent", state="st-4")
    location = consent(auth_url)
    ok = make_flow(base, state=state, code_verifier=flow.code_verifier)
    ok.fetch_token(authorization_response=location)
    with pytest.raises(InvalidGrantError):
        make_flow(base, state=state, code_verifier=flow.code_verifier).fetch_token(
            authorization_response=location
        )


def test_deny_and_granular_consent(base: str, control: EmulatorControl, oauth_env: None) -> None:
    flow = make_flow(base)
    auth_url, _ = flow.authorization_url(state="st-deny")
    query = parse_qs(urlsplit(consent(auth_url, action="deny")).query)
    assert query == {"error": ["access_denied"], "state": ["st-deny"]}

    auth_url, state = flow.authorization_url(prompt="consent", state="st-5")
    location = consent(auth_url, untick=(EVENTS_OWNED,), email="new.person@example.org")
    token = make_flow(base, state=state, code_verifier=flow.code_verifier).fetch_token(
        authorization_response=location
    )
    assert EVENTS_OWNED not in token["scope"] and FREEBUSY in token["scope"]
    assert jwt_claims(token["id_token"])["email"] == "new.person@example.org"
    assert control.get_account("new.person@example.org")["timezone"] == "UTC"


def test_refresh_token_only_on_first_consent_or_prompt(
    base: str, control: EmulatorControl, oauth_env: None
) -> None:
    flow = make_flow(base)
    for state, prompt, expect_refresh in (
        ("a", None, True),
        ("b", None, False),
        ("c", "consent", True),
    ):
        kwargs = {"prompt": prompt} if prompt else {}
        auth_url, _ = flow.authorization_url(state=state, login_hint=ALICE, **kwargs)
        token = make_flow(base, state=state, code_verifier=flow.code_verifier).fetch_token(
            authorization_response=consent(auth_url)
        )
        assert ("refresh_token" in token) is expect_refresh, state


def test_authorize_rejects_bad_requests(base: str, control: EmulatorControl) -> None:
    auth = base + "/o/oauth2/v2/auth"
    good = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": FREEBUSY,
    }
    unknown = httpx.get(auth, params=good | {"client_id": "nope"})
    assert unknown.status_code == 400 and "invalid_client" in unknown.text
    plain = httpx.get(
        auth, params=good | {"code_challenge": "abc", "code_challenge_method": "plain"}
    )
    assert plain.status_code == 400 and "code_challenge_method" in plain.text
    assert httpx.get(auth, params=good | {"scope": ""}).status_code == 400
    page = httpx.get(auth, params=good | {"login_hint": "bob@example.com"})
    assert page.status_code == 200
    assert 'id="allow"' in page.text and 'id="deny"' in page.text and CLIENT_ID in page.text
    assert 'value="bob@example.com"' in page.text


def test_token_endpoint_errors(base: str, control: EmulatorControl) -> None:
    token_url = base + "/token"
    form = {"grant_type": "refresh_token", "refresh_token": "nope", "client_id": CLIENT_ID}
    bad_secret = httpx.post(token_url, data=form | {"client_secret": "wrong"})
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"
    unknown = httpx.post(token_url, data=form | {"client_secret": CLIENT_SECRET})
    assert unknown.status_code == 400
    assert unknown.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }
    basic = httpx.post(token_url, data={"grant_type": "password"}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert basic.status_code == 400 and basic.json()["error"] == "unsupported_grant_type"
    missing = httpx.post(
        token_url, data={"grant_type": "authorization_code"}, auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


def test_refresh_revoke_and_rotation(base: str, control: EmulatorControl) -> None:
    grant = control.mint_tokens(ALICE, CLIENT_ID, APP_SCOPES, expires_in=0)
    creds = creds_for(base, grant, APP_SCOPES)
    creds.refresh(GoogleRequest())
    assert creds.token != grant["access_token"]
    assert creds.refresh_token == grant["refresh_token"]
    assert creds.id_token and jwt_claims(creds.id_token)["email"] == ALICE

    control.set_rotate_refresh_tokens(True)
    creds.refresh(GoogleRequest())
    assert creds.refresh_token != grant["refresh_token"]
    stale = creds_for(base, grant)
    with pytest.raises(RefreshError) as stale_err:
        stale.refresh(GoogleRequest())
    assert stale_err.value.args[1]["error"] == "invalid_grant"
    control.set_rotate_refresh_tokens(False)

    control.revoke_grants(ALICE)
    with pytest.raises(RefreshError) as revoked:
        creds.refresh(GoogleRequest())
    assert revoked.value.args[1]["error"] == "invalid_grant"
    assert not revoked.value.retryable

    second = control.mint_tokens(ALICE, CLIENT_ID, [FREEBUSY])
    assert httpx.post(base + "/revoke", data={"token": second["refresh_token"]}).json() == {}
    gone = httpx.get(
        base + "/v1/userinfo", headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    assert gone.status_code == 401
    again = httpx.post(base + "/revoke", params={"token": second["refresh_token"]})
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_token",
        "error_description": "Token expired or revoked",
    }


# ---- Calendar ---------------------------------------------------------------------------------


def test_freebusy(base: str, control: EmulatorControl) -> None:
    control.seed_event(ALICE, {"summary": "a", "start": timed(2, 10), "end": timed(2, 11)})
    control.seed_event(
        ALICE, {"summary": "overlap", "start": timed(2, 10, 30), "end": timed(2, 12)}
    )
    control.seed_event(
        ALICE,
        {
            "summary": "free",
            "start": timed(2, 13),
            "end": timed(2, 14),
            "transparency": "transparent",
        },
    )
    control.seed_event(
        ALICE,
        {"summary": "gone", "start": timed(2, 15), "end": timed(2, 16), "status": "cancelled"},
    )
    control.seed_event(
        ALICE,
        {
            "summary": "local",
            "start": {"dateTime": "2030-01-02T17:00:00", "timeZone": "Europe/Paris"},
            "end": {"dateTime": "2030-01-02T18:00:00", "timeZone": "Europe/Paris"},
        },
    )
    control.seed_event(
        ALICE,
        {"summary": "all day", "start": {"date": "2030-01-03"}, "end": {"date": "2030-01-04"}},
    )
    service = connected(base, control, [FREEBUSY])
    result = (
        service.freebusy()
        .query(
            body={
                "timeMin": "2030-01-02T15:15:00Z",  # 10:15 in New York: clips the first event
                "timeMax": "2030-01-03T12:00:00Z",
                "timeZone": "America/New_York",
                "items": [{"id": ALICE}, {"id": "primary"}, {"id": "bob@example.com"}],
            }
        )
        .execute()
    )
    assert result["kind"] == "calendar#freeBusy"
    # 10:00-12:00 New York and 17:00-18:00 Paris merge; all-day = New York midnight onwards.
    expected = [
        {"start": "2030-01-02T15:15:00Z", "end": "2030-01-02T17:00:00Z"},
        {"start": "2030-01-03T05:00:00Z", "end": "2030-01-03T12:00:00Z"},
    ]
    assert result["calendars"][ALICE]["busy"] == expected
    assert result["calendars"]["primary"]["busy"] == expected
    assert result["calendars"]["bob@example.com"] == {
        "errors": [{"domain": "global", "reason": "notFound"}],
        "busy": [],
    }
    with pytest.raises(HttpError) as empty:
        service.freebusy().query(
            body={"timeMin": "2030-01-02T00:00:00Z", "timeMax": "2030-01-02T00:00:00Z"}
        ).execute()
    assert empty.value.status_code == 400 and reason(empty.value) == "timeRangeEmpty"


def test_insert_with_client_id_and_duplicate(base: str, control: EmulatorControl) -> None:
    service = connected(base, control)
    body = {
        "id": "vapibooking0001",
        "summary": "Haircut",
        "start": {"dateTime": "2030-01-05T09:00:00", "timeZone": "America/New_York"},
        "end": {"dateTime": "2030-01-05T09:30:00", "timeZone": "America/New_York"},
        "attendees": [{"email": "caller@example.com", "displayName": "Caller"}],
        "extendedProperties": {"private": {"vapiCalendar": "1", "booking": "b-1"}},
        "conferenceData": {
            "createRequest": {"requestId": "r-1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}
        },
    }
    created = (
        service.events()
        .insert(calendarId="primary", body=body, sendUpdates="all", conferenceDataVersion=1)
        .execute()
    )
    assert created["id"] == "vapibooking0001" and created["status"] == "confirmed"
    assert created["start"]["dateTime"] == "2030-01-05T09:00:00-05:00"
    assert created["organizer"] == {"email": ALICE, "self": True}
    assert created["creator"] == {"email": ALICE, "self": True}
    assert created["hangoutLink"].startswith("https://meet.google.com/")
    assert created["conferenceData"]["entryPoints"][0]["uri"] == created["hangoutLink"]
    assert created["extendedProperties"] == body["extendedProperties"]
    assert created["htmlLink"].startswith(base + "/calendar/event?eid=")
    assert created["etag"] and created["iCalUID"] and created["created"] and created["updated"]
    assert httpx.get(created["htmlLink"]).status_code == 200

    with pytest.raises(HttpError) as dup:
        service.events().insert(calendarId=ALICE, body=body).execute()
    assert dup.value.status_code == 409 and reason(dup.value) == "duplicate"
    assert json.loads(dup.value.content)["error"]["message"] == (
        "The requested identifier already exists."
    )

    for bad_id in ("UPPERCASE1", "abcw1", "abc"):
        with pytest.raises(HttpError) as invalid:
            service.events().insert(calendarId="primary", body=body | {"id": bad_id}).execute()
        assert invalid.value.status_code == 400 and reason(invalid.value) == "invalid"
    with pytest.raises(HttpError) as backwards:
        service.events().insert(
            calendarId="primary",
            body={"start": timed(5, 10), "end": timed(5, 10)},
        ).execute()
    assert reason(backwards.value) == "timeRangeEmpty"
    with pytest.raises(HttpError) as other:
        service.events().insert(calendarId="bob@example.com", body=body).execute()
    assert other.value.status_code == 404 and reason(other.value) == "notFound"
    plain = (
        service.events()
        .insert(
            calendarId="primary",
            body={
                "summary": "no meet",
                "start": timed(6, 10),
                "end": timed(6, 11),
                "conferenceData": body["conferenceData"],
            },
        )
        .execute()
    )
    assert "hangoutLink" not in plain and "conferenceData" not in plain
    assert len(plain["id"]) >= 5


def test_list_semantics(base: str, control: EmulatorControl) -> None:
    tagged = {"private": {"vapiCalendar": "1", "assistant": "a1"}}
    control.seed_event(
        ALICE,
        {
            "id": "late0",
            "summary": "Late",
            "start": timed(7, 15),
            "end": timed(7, 16),
            "extendedProperties": tagged,
        },
    )
    control.seed_event(
        ALICE,
        {
            "id": "morning0",
            "summary": "Early dentist",
            "start": timed(7, 9),
            "end": timed(7, 10),
            "location": "Main St",
            "extendedProperties": {"private": {"vapiCalendar": "1"}},
        },
    )
    control.seed_event(
        ALICE,
        {
            "id": "noon0",
            "summary": "Lunch",
            "start": timed(7, 12),
            "end": timed(7, 13),
            "attendees": [{"email": "Pat@Example.com"}],
            "status": "cancelled",
        },
    )
    service = connected(base, control)
    events = service.events()

    def ids(**kwargs: Any) -> list[str]:
        return [e["id"] for e in events.list(calendarId="primary", **kwargs).execute()["items"]]

    assert ids() == ["late0", "morning0"]
    assert ids(singleEvents=True, orderBy="startTime") == ["morning0", "late0"]
    # timeMin bounds the END exclusively; timeMax bounds the START exclusively.
    assert ids(timeMin="2030-01-07T10:00:00-05:00", singleEvents=True) == ["late0"]
    assert ids(timeMin="2030-01-07T09:59:00-05:00", singleEvents=True, orderBy="startTime") == [
        "morning0",
        "late0",
    ]
    assert ids(timeMax="2030-01-07T15:00:00-05:00") == ["morning0"]
    assert ids(timeMax="2030-01-07T15:01:00-05:00") == ["late0", "morning0"]
    assert ids(privateExtendedProperty="vapiCalendar=1") == ["late0", "morning0"]
    assert ids(privateExtendedProperty=["vapiCalendar=1", "assistant=a1"]) == ["late0"]
    assert ids(privateExtendedProperty="assistant=other") == []
    assert ids(q="DENTIST") == ["morning0"] and ids(q="main st") == ["morning0"]
    assert ids(q="pat@example", showDeleted=True) == ["noon0"]
    assert ids(showDeleted=True, singleEvents=True, orderBy="startTime") == [
        "morning0",
        "noon0",
        "late0",
    ]
    page = events.list(calendarId="primary", maxResults=1).execute()
    assert [e["id"] for e in page["items"]] == ["late0"] and page["timeZone"] == "America/New_York"
    rest = events.list(
        calendarId="primary", maxResults=1, pageToken=page["nextPageToken"]
    ).execute()
    assert [e["id"] for e in rest["items"]] == ["morning0"] and "nextPageToken" not in rest
    with pytest.raises(HttpError) as bad_order:
        events.list(calendarId="primary", orderBy="startTime").execute()
    assert bad_order.value.status_code == 400


def test_get_patch_update_delete(base: str, control: EmulatorControl) -> None:
    service = connected(base, control)
    events = service.events()
    created = events.insert(
        calendarId="primary",
        body={"summary": "Call", "start": timed(8, 10), "end": timed(8, 11), "description": "d"},
    ).execute()
    eid = created["id"]
    assert events.get(calendarId="primary", eventId=eid).execute()["summary"] == "Call"
    patched = events.patch(
        calendarId="primary", eventId=eid, body={"summary": "Call (moved)"}, sendUpdates="none"
    ).execute()
    assert patched["summary"] == "Call (moved)" and patched["description"] == "d"
    assert patched["etag"] != created["etag"]
    replaced = events.update(
        calendarId="primary",
        eventId=eid,
        body={"summary": "Replaced", "start": timed(8, 12), "end": timed(8, 13)},
    ).execute()
    assert "description" not in replaced and replaced["id"] == eid and replaced["sequence"] == 1
    assert events.delete(calendarId="primary", eventId=eid, sendUpdates="all").execute() == ""
    assert events.get(calendarId="primary", eventId=eid).execute()["status"] == "cancelled"
    with pytest.raises(HttpError) as gone:
        events.delete(calendarId="primary", eventId=eid).execute()
    assert gone.value.status_code == 410 and reason(gone.value) == "deleted"
    with pytest.raises(HttpError) as missing:
        events.get(calendarId="primary", eventId="doesnotexist").execute()
    assert missing.value.status_code == 404 and reason(missing.value) == "notFound"
    # A cancelled id still blocks re-insertion.
    with pytest.raises(HttpError) as dup:
        events.insert(
            calendarId="primary", body={"id": eid, "start": timed(9, 1), "end": timed(9, 2)}
        ).execute()
    assert reason(dup.value) == "duplicate"
    stored = control.events(ALICE)
    assert [(e["id"], e["status"]) for e in stored] == [(eid, "cancelled")]


def test_settings_calendars_and_secondary(base: str, control: EmulatorControl) -> None:
    control.add_calendar(ALICE, "team@group.calendar.google.com", "Team", "Europe/Berlin")
    control.create_account("bob@example.com", "Asia/Tokyo")
    service = connected(base, control)
    setting = service.settings().get(setting="timezone").execute()
    assert setting["kind"] == "calendar#setting" and setting["value"] == "America/New_York"
    primary = service.calendars().get(calendarId="primary").execute()
    assert primary["kind"] == "calendar#calendar" and primary["id"] == ALICE
    assert primary["timeZone"] == "America/New_York"
    team = service.calendars().get(calendarId="team@group.calendar.google.com").execute()
    assert team["summary"] == "Team" and team["timeZone"] == "Europe/Berlin"
    with pytest.raises(HttpError) as foreign:
        service.calendars().get(calendarId="bob@example.com").execute()
    assert foreign.value.status_code == 404
    created = (
        service.events()
        .insert(
            calendarId="team@group.calendar.google.com",
            body={"start": {"date": "2030-02-01"}, "end": {"date": "2030-02-02"}},
        )
        .execute()
    )
    assert created["organizer"]["email"] == "team@group.calendar.google.com"


def test_scope_and_token_failures(base: str, control: EmulatorControl) -> None:
    freebusy_only = connected(base, control, [FREEBUSY])
    with pytest.raises(HttpError) as forbidden:
        freebusy_only.events().list(calendarId="primary").execute()
    assert (
        forbidden.value.status_code == 403 and reason(forbidden.value) == "insufficientPermissions"
    )
    with pytest.raises(HttpError) as no_settings:
        freebusy_only.settings().get(setting="timezone").execute()
    assert no_settings.value.status_code == 403

    grant = control.mint_tokens(ALICE, CLIENT_ID, APP_SCOPES)
    control.expire_access_tokens(ALICE)
    raw = httpx.get(
        base + "/calendar/v3/users/me/settings/timezone",
        headers={"Authorization": f"Bearer {grant['access_token']}"},
    )
    assert raw.status_code == 401
    error = raw.json()["error"]
    assert error["status"] == "UNAUTHENTICATED" and error["errors"][0]["reason"] == "authError"
    assert httpx.get(base + "/calendar/v3/calendars/primary").status_code == 401

    # With no client-side expiry the library learns from the 401, refreshes once, retries.
    control.reset_requests()
    service = calendar(base, creds_for(base, grant))
    assert service.settings().get(setting="timezone").execute()["value"] == "America/New_York"
    assert control.requests() == {"settings.get": 2, "token.refresh_token": 1}

    expired = calendar(base, Credentials(grant["access_token"]))
    with pytest.raises(HttpError) as unauthorized:
        expired.settings().get(setting="timezone").execute(http=httplib2.Http())
    assert unauthorized.value.status_code == 401


def test_fault_injection_and_latency(base: str, control: EmulatorControl) -> None:
    service = connected(base, control, [FREEBUSY])
    query = {
        "timeMin": "2030-01-01T00:00:00Z",
        "timeMax": "2030-01-02T00:00:00Z",
        "items": [{"id": ALICE}],
    }
    control.add_fault("freebusy", 429)
    with pytest.raises(HttpError) as limited:
        service.freebusy().query(body=query).execute()
    assert limited.value.status_code == 429
    detail = json.loads(limited.value.content)["error"]["errors"][0]
    assert detail == {
        "domain": "usageLimits",
        "reason": "rateLimitExceeded",
        "message": "Rate Limit Exceeded",
    }
    assert service.freebusy().query(body=query).execute()["calendars"][ALICE]["busy"] == []

    control.add_fault("freebusy", 503, times=2)
    for _ in range(2):
        with pytest.raises(HttpError) as backend:
            service.freebusy().query(body=query).execute()
        assert backend.value.status_code == 503 and reason(backend.value) == "backendError"
    service.freebusy().query(body=query).execute()

    control.add_fault("freebusy", 500, probability=1.0)
    for _ in range(3):
        with pytest.raises(HttpError):
            service.freebusy().query(body=query).execute()
    control.clear_faults()
    service.freebusy().query(body=query).execute()

    grant = control.mint_tokens(ALICE, CLIENT_ID, [FREEBUSY])
    control.add_fault("token.refresh_token", 400, "invalid_grant")
    with pytest.raises(RefreshError) as refresh_err:
        creds_for(base, grant).refresh(GoogleRequest())
    assert refresh_err.value.args[1] == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }
    creds_for(base, grant).refresh(GoogleRequest())  # the fault was consumed

    control.set_latency(150, kind="freebusy")
    control.add_fault("freebusy", None, latency_ms=100)
    started = time.monotonic()
    service.freebusy().query(body=query).execute()
    assert time.monotonic() - started >= 0.25
    control.clear_faults()
    started = time.monotonic()
    service.freebusy().query(body=query).execute()
    assert time.monotonic() - started < 0.15

    counts = control.requests()
    assert counts["freebusy"] == 11 and counts["token.refresh_token"] == 2
    control.reset_requests()
    assert control.requests() == {}
    with pytest.raises(EmulatorControlError):
        control.add_fault("freebusy", 500, probability=2.0)


def test_latency_jitter_spreads_each_requests_delay_within_its_bounds(
    base: str, control: EmulatorControl
) -> None:
    # The benchmark's stand-in: a fixed delay would answer callers who asked together in the
    # same instant; with a jitter each request draws its own delay.
    state = EmulatorState(rng=random.Random(7))  # noqa: S311 - latency dice, not crypto
    state.set_latency(100, jitter_ms=50)
    state.set_latency(10, kind="freebusy")
    delays = [state.begin_request("freebusy").delay_s for _ in range(400)]
    assert all(0.06 <= d <= 0.16 for d in delays)
    assert min(delays) < 0.07 and max(delays) > 0.15  # drawn over the whole range
    assert len(set(delays)) > 300
    assert {state.begin_request("events.insert").delay_s for _ in range(50)} != {0.1}
    state.clear_faults()
    assert state.begin_request("freebusy").delay_s == 0

    with pytest.raises(EmulatorControlError, match="jitter_ms <= ms"):
        control.set_latency(20, jitter_ms=30)
    with pytest.raises(EmulatorControlError, match="ms >= 0"):
        control.set_latency(-1)
    control.set_latency(20, jitter_ms=20)
    control.clear_faults()


def test_control_hooks_validate_input(base: str, control: EmulatorControl) -> None:
    with pytest.raises(EmulatorControlError, match="unknown client"):
        control.mint_tokens(ALICE, "unregistered", [FREEBUSY])
    with pytest.raises(EmulatorControlError, match="unknown account"):
        control.add_calendar("nobody@example.com", "x")
    with pytest.raises(EmulatorControlError):
        control.create_account("tz@example.com", "Mars/Olympus")
    control.register_client("other-client", "s3cret")
    assert control.mint_tokens(ALICE, "other-client", [FREEBUSY])["access_token"]


# ---- Mounted under a prefix (demo mode) ---------------------------------------------------------


def test_mounted_under_prefix(oauth_env: None) -> None:
    app = Starlette(
        routes=[Mount("/emulator", app=create_emulator_app(clients={CLIENT_ID: CLIENT_SECRET}))]
    )
    with serve_in_thread(app) as host, EmulatorControl(host + "/emulator") as ctl:
        root = host + "/emulator"
        ctl.create_account(ALICE, "Europe/London")
        ctl.seed_event(
            ALICE,
            {
                "start": {"dateTime": "2030-03-01T09:00:00Z"},
                "end": {"dateTime": "2030-03-01T10:00:00Z"},
            },
        )
        _, token = connect_via_browser(root)
        service = calendar(root, creds_for(root, token))
        busy = (
            service.freebusy()
            .query(
                body={
                    "timeMin": "2030-03-01T00:00:00Z",
                    "timeMax": "2030-03-02T00:00:00Z",
                    "items": [{"id": "primary"}],
                }
            )
            .execute()["calendars"]["primary"]["busy"]
        )
        assert busy == [{"start": "2030-03-01T09:00:00Z", "end": "2030-03-01T10:00:00Z"}]
        created = (
            service.events()
            .insert(
                calendarId="primary",
                body={"start": {"date": "2030-03-02"}, "end": {"date": "2030-03-03"}},
            )
            .execute()
        )
        assert created["htmlLink"].startswith(root + "/calendar/event?eid=")
        assert ctl.requests()["freebusy"] == 1


# ---- Fidelity: paging, recurrence, event types, per-calendar errors, Meet, OAuth client ---------


def test_list_pages_may_be_short_or_empty_and_still_carry_a_token(
    base: str, control: EmulatorControl
) -> None:
    for number in range(3):
        control.seed_event(
            ALICE, {"id": f"paged{number}", "start": timed(9, 9 + number), "end": timed(9, 12)}
        )
    control.set_list_paging(1, empty_pages=True)
    events = connected(base, control).events()
    request = events.list(calendarId="primary", singleEvents=True, orderBy="startTime")
    sizes, ids = [], []
    while request is not None:  # google-api-python-client's own paging helper
        page = request.execute()
        sizes.append(len(page["items"]))
        ids += [e["id"] for e in page["items"]]
        request = events.list_next(request, page)
    assert sizes == [0, 1, 0, 1, 0, 1]  # "less than maxResults, or none at all"
    assert ids == ["paged0", "paged1", "paged2"]

    control.set_list_paging(None)
    assert len(events.list(calendarId="primary").execute()["items"]) == 3
    with pytest.raises(HttpError) as bad:
        events.list(calendarId="primary", pageToken="not-a-token").execute()
    assert bad.value.status_code == 400


def _series(control: EmulatorControl) -> dict[str, Any]:
    """Daily 10:00-11:00 New York, Mon 2030-01-07 to Fri 01-11, without Tue (EXDATE)."""
    return control.seed_event(
        ALICE,
        {
            "id": "standup0",
            "summary": "Stand-up",
            "start": {"dateTime": "2030-01-07T10:00:00", "timeZone": "America/New_York"},
            "end": {"dateTime": "2030-01-07T11:00:00", "timeZone": "America/New_York"},
            "recurrence": [
                "RRULE:FREQ=DAILY;COUNT=5",
                "EXDATE;TZID=America/New_York:20300108T100000",
            ],
        },
    )


def test_recurring_series_expand_with_their_exceptions(base: str, control: EmulatorControl) -> None:
    _series(control)
    # Wednesday moved to 14:00 (a modified exception, as the owner would make it).
    control.seed_event(
        ALICE,
        {
            "recurringEventId": "standup0",
            "originalStartTime": {
                "dateTime": "2030-01-09T10:00:00-05:00",
                "timeZone": "America/New_York",
            },
            "start": timed(9, 14),
            "end": timed(9, 15),
        },
    )
    service = connected(base, control)
    events = service.events()
    week = {"timeMin": "2030-01-06T00:00:00Z", "timeMax": "2030-01-13T00:00:00Z"}

    def instances(**kwargs: Any) -> list[dict[str, Any]]:
        return events.list(
            calendarId="primary", singleEvents=True, orderBy="startTime", **week, **kwargs
        ).execute()["items"]

    listed = instances()
    assert [e["start"]["dateTime"] for e in listed] == [
        "2030-01-07T10:00:00-05:00",
        "2030-01-09T14:00:00-05:00",
        "2030-01-10T10:00:00-05:00",
        "2030-01-11T10:00:00-05:00",
    ]
    assert {e["recurringEventId"] for e in listed} == {"standup0"}
    assert all("recurrence" not in e for e in listed)
    moved = listed[1]
    assert moved["originalStartTime"]["dateTime"] == "2030-01-09T10:00:00-05:00"

    # Deleting one occurrence through the API makes a cancelled exception (recurring-events
    # guide), addressed by the id the listing gave: ids are opaque, never built.
    thursday = listed[2]["id"]
    assert events.get(calendarId="primary", eventId=thursday).execute()["summary"] == "Stand-up"
    events.delete(calendarId="primary", eventId=thursday).execute()
    assert [e["id"] for e in instances()] == [listed[0]["id"], moved["id"], listed[3]["id"]]
    assert thursday in [e["id"] for e in instances(showDeleted=True)]

    # Unexpanded: the series itself plus its exceptions, the cancelled one included even
    # without showDeleted ("Cancelled instances of recurring events ... will still be
    # included if showDeleted and singleEvents are both False").
    raw = events.list(calendarId="primary", **week).execute()["items"]
    by_id = {e["id"]: e for e in raw}
    assert by_id["standup0"]["recurrence"][0] == "RRULE:FREQ=DAILY;COUNT=5"
    assert by_id[thursday]["status"] == "cancelled" and by_id[moved["id"]]["status"] == "confirmed"

    busy = (
        service.freebusy()
        .query(body={**week, "items": [{"id": "primary"}]})
        .execute()["calendars"]["primary"]["busy"]
    )
    assert busy == [
        {"start": "2030-01-07T15:00:00Z", "end": "2030-01-07T16:00:00Z"},
        {"start": "2030-01-09T19:00:00Z", "end": "2030-01-09T20:00:00Z"},
        {"start": "2030-01-11T15:00:00Z", "end": "2030-01-11T16:00:00Z"},
    ]


def test_a_series_keeps_its_wall_clock_time_across_dst_and_needs_a_zone(
    base: str, control: EmulatorControl
) -> None:
    service = connected(base, control)
    series = {
        "summary": "Weekly",
        "start": {"dateTime": "2030-03-04T10:00:00", "timeZone": "America/New_York"},
        "end": {"dateTime": "2030-03-04T10:30:00", "timeZone": "America/New_York"},
        "recurrence": ["RRULE:FREQ=WEEKLY;UNTIL=20300320T000000Z"],
    }
    created = service.events().insert(calendarId="primary", body=series).execute()
    assert created["recurrence"] == series["recurrence"] and "recurringEventId" not in created
    busy = (
        service.freebusy()
        .query(
            body={
                "timeMin": "2030-03-01T00:00:00Z",
                "timeMax": "2030-04-01T00:00:00Z",
                "items": [{"id": "primary"}],
            }
        )
        .execute()["calendars"]["primary"]["busy"]
    )
    # 10:00 EST, then 10:00 EDT after the clocks changed on 2030-03-10.
    assert [b["start"] for b in busy] == [
        "2030-03-04T15:00:00Z",
        "2030-03-11T14:00:00Z",
        "2030-03-18T14:00:00Z",
    ]
    zoneless = {**series, "start": timed(4, 10), "end": timed(4, 11)}
    with pytest.raises(HttpError) as missing_zone:
        service.events().insert(calendarId="primary", body=zoneless).execute()
    assert missing_zone.value.status_code == 400
    with pytest.raises(HttpError) as bad_rule:
        service.events().insert(
            calendarId="primary", body={**series, "recurrence": ["RRULE:FREQ=SOMETIMES"]}
        ).execute()
    assert bad_rule.value.status_code == 400


def test_declined_invitations_and_transparent_event_types_are_not_busy(
    base: str, control: EmulatorControl
) -> None:
    service = connected(base, control)
    insert = service.events().insert

    def make(hour: int, **extra: Any) -> dict[str, Any]:
        body = {"summary": f"at {hour}", "start": timed(14, hour), "end": timed(14, hour + 1)}
        return insert(calendarId="primary", body={**body, **extra}).execute()

    declined = make(
        8,
        attendees=[
            {"email": "boss@example.com", "organizer": True},
            {"email": ALICE, "responseStatus": "declined", "self": False},
        ],
    )
    # `self` is read-only: Google marks the attendee that is this calendar.
    mine = [a for a in declined["attendees"] if a.get("self")]
    assert [a["email"] for a in mine] == [ALICE]
    assert declined["attendees"][0]["responseStatus"] == "needsAction"
    make(9, attendees=[{"email": ALICE, "responseStatus": "accepted"}])
    ooo = make(10, eventType="outOfOffice")
    assert ooo["transparency"] == "opaque" and ooo["eventType"] == "outOfOffice"
    make(12, eventType="focusTime")
    where = make(13, eventType="workingLocation")
    assert where["transparency"] == "transparent"
    insert(
        calendarId="primary",
        body={
            "summary": "Birthday",
            "eventType": "birthday",
            "start": {"date": "2030-01-14"},
            "end": {"date": "2030-01-15"},
            "recurrence": ["RRULE:FREQ=YEARLY"],
        },
    ).execute()

    busy = (
        service.freebusy()
        .query(
            body={
                "timeMin": "2030-01-14T05:00:00Z",
                "timeMax": "2030-01-15T05:00:00Z",
                "items": [{"id": "primary"}],
            }
        )
        .execute()["calendars"]["primary"]["busy"]
    )
    # 9:00 accepted, 10:00 out of office, 12:00 focus time (EST = UTC-5).
    assert busy == [
        {"start": "2030-01-14T14:00:00Z", "end": "2030-01-14T16:00:00Z"},
        {"start": "2030-01-14T17:00:00Z", "end": "2030-01-14T18:00:00Z"},
    ]

    for bad in (
        {
            "eventType": "outOfOffice",
            "start": {"date": "2030-01-15"},
            "end": {"date": "2030-01-16"},
        },
        {"eventType": "workingLocation", "transparency": "opaque"},
        {"eventType": "fromGmail"},
        {"eventType": "party"},
    ):
        with pytest.raises(HttpError) as refused:
            insert(
                calendarId="primary", body={"start": timed(15, 9), "end": timed(15, 10), **bad}
            ).execute()
        assert refused.value.status_code == 400, bad


def test_all_day_events_are_busy_over_the_day_in_the_calendars_zone(
    base: str, control: EmulatorControl
) -> None:
    control.add_calendar(ALICE, "tokyo@group.calendar.google.com", "Tokyo", "Asia/Tokyo")
    for calendar_id in ("tokyo@group.calendar.google.com", ALICE):
        control.seed_event(
            calendar_id,
            {"summary": "Holiday", "start": {"date": "2030-01-03"}, "end": {"date": "2030-01-04"}},
        )
        control.seed_event(
            calendar_id,
            {
                "summary": "Shown as free",
                "transparency": "transparent",
                "start": {"date": "2030-01-05"},
                "end": {"date": "2030-01-06"},
            },
        )
    service = connected(base, control, [FREEBUSY])
    answer = (
        service.freebusy()
        .query(
            body={
                "timeMin": "2030-01-01T00:00:00Z",
                "timeMax": "2030-01-08T00:00:00Z",
                "timeZone": "Europe/London",  # the answer's zone, not the event's day
                "items": [{"id": "tokyo@group.calendar.google.com"}, {"id": "primary"}],
            }
        )
        .execute()["calendars"]
    )
    assert answer["tokyo@group.calendar.google.com"]["busy"] == [
        {"start": "2030-01-02T15:00:00Z", "end": "2030-01-03T15:00:00Z"}
    ]
    assert answer["primary"]["busy"] == [
        {"start": "2030-01-03T05:00:00Z", "end": "2030-01-04T05:00:00Z"}
    ]


def test_freebusy_reports_calendars_it_cannot_read_per_calendar(
    base: str, control: EmulatorControl
) -> None:
    control.add_calendar(ALICE, "shared@group.calendar.google.com", "Shared")
    control.seed_event(ALICE, {"start": timed(2, 10), "end": timed(2, 11)})
    service = connected(base, control, [FREEBUSY])
    body = {
        "timeMin": "2030-01-02T00:00:00Z",
        "timeMax": "2030-01-03T00:00:00Z",
        "items": [{"id": "primary"}, {"id": "shared@group.calendar.google.com"}],
    }
    control.set_freebusy_error("shared@group.calendar.google.com", "internalError")
    answer = service.freebusy().query(body=body).execute()["calendars"]  # still HTTP 200
    assert answer["shared@group.calendar.google.com"] == {
        "errors": [{"domain": "global", "reason": "internalError"}],
        "busy": [],
    }
    assert answer["primary"]["busy"] == [
        {"start": "2030-01-02T15:00:00Z", "end": "2030-01-02T16:00:00Z"}
    ]
    control.set_freebusy_error(ALICE, "notFound")  # "primary" resolves to the same calendar
    answer = service.freebusy().query(body=body).execute()["calendars"]
    assert answer["primary"]["errors"] == [{"domain": "global", "reason": "notFound"}]
    control.set_freebusy_error(ALICE, None)
    control.set_freebusy_error("shared@group.calendar.google.com", None)
    answer = service.freebusy().query(body=body).execute()["calendars"]
    assert "errors" not in answer["primary"] and "errors" not in answer[body["items"][1]["id"]]


def test_meet_links_can_be_pending_and_arrive_on_a_later_read(
    base: str, control: EmulatorControl
) -> None:
    control.set_meet_pending(2)
    events = connected(base, control).events()
    created = events.insert(
        calendarId="primary",
        body={
            "id": "meetpending1",
            "start": timed(5, 9),
            "end": timed(5, 10),
            "conferenceData": {
                "createRequest": {
                    "requestId": "r-2",
                    "conferenceSolutionKey": {"type": "hangoutsMeet"},
                }
            },
        },
        conferenceDataVersion=1,
    ).execute()
    assert created["conferenceData"]["createRequest"]["status"] == {"statusCode": "pending"}
    assert "hangoutLink" not in created and "entryPoints" not in created["conferenceData"]
    first = events.get(calendarId="primary", eventId="meetpending1").execute()
    assert first["conferenceData"]["createRequest"]["status"]["statusCode"] == "pending"
    second = events.get(calendarId="primary", eventId="meetpending1").execute()
    assert second["conferenceData"]["createRequest"]["status"]["statusCode"] == "success"
    video = second["conferenceData"]["entryPoints"][0]
    assert video["entryPointType"] == "video" and video["uri"] == second["hangoutLink"]


def test_token_endpoint_refuses_a_rejected_client_or_another_clients_token(
    base: str, control: EmulatorControl
) -> None:
    grant = control.mint_tokens(ALICE, CLIENT_ID, APP_SCOPES, expires_in=0)
    control.set_client_rejected(CLIENT_ID)
    with pytest.raises(RefreshError) as rejected:
        creds_for(base, grant).refresh(GoogleRequest())
    assert rejected.value.args[1] == {
        "error": "invalid_client",
        "error_description": "Unauthorized",
    }
    assert not rejected.value.retryable
    control.set_client_rejected(CLIENT_ID, False)
    creds_for(base, grant).refresh(GoogleRequest())

    control.register_client("other-client", "other-secret")
    foreign = control.mint_tokens(ALICE, "other-client", APP_SCOPES)
    with pytest.raises(RefreshError) as wrong_client:
        creds_for(base, foreign).refresh(GoogleRequest())
    assert wrong_client.value.args[1]["error"] == "unauthorized_client"
