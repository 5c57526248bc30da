"""Calendar v3 endpoints (the subset this project calls), mounted at `/calendar/v3`."""

from __future__ import annotations

import base64
import binascii
import html
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from vapi_calendar.emulator import events as ev
from vapi_calendar.emulator import recurrence
from vapi_calendar.emulator.errors import ApiError, gate, invalid_credentials
from vapi_calendar.emulator.state import SCOPE_PREFIX, AccessToken, Calendar, EmulatorState
from vapi_calendar.emulator.times import format_z

Handler = Callable[[Request], Awaitable[Response]]


def _scopes(*names: str) -> frozenset[str]:
    return frozenset(SCOPE_PREFIX + n for n in names)


FREEBUSY_SCOPES = _scopes(
    "calendar", "calendar.readonly", "calendar.freebusy", "calendar.events.freebusy"
)
EVENTS_WRITE_SCOPES = _scopes("calendar", "calendar.events", "calendar.events.owned")
EVENTS_READ_SCOPES = EVENTS_WRITE_SCOPES | _scopes(
    "calendar.readonly", "calendar.events.readonly", "calendar.events.owned.readonly"
)
SETTINGS_SCOPES = _scopes("calendar", "calendar.readonly", "calendar.settings.readonly")
# Google wants calendar(s) scopes; settings.readonly is accepted too so the project's minimal
# scope set can read the primary calendar's time zone either way.
CALENDARS_GET_SCOPES = SETTINGS_SCOPES | _scopes(
    "calendar.calendars", "calendar.calendars.readonly", "calendar.app.created"
)


def base_url(request: Request) -> str:
    """Emulator root as seen by the client, honouring a Mount prefix."""
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}".rstrip("/")


def _authorize(state: EmulatorState, request: Request, allowed: frozenset[str]) -> AccessToken:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    access = state.check_access_token(token.strip()) if scheme.lower() == "bearer" else None
    if access is None:
        raise invalid_credentials()
    if not allowed & set(access.scopes):
        raise ApiError(
            403,
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        )
    return access


def _calendar(state: EmulatorState, access: AccessToken, calendar_id: str) -> Calendar:
    calendar = state.calendar_for(access.email, calendar_id)
    if calendar is None:
        raise ApiError(404, "notFound", "Not Found")
    return calendar


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "parseError", "Parse Error") from exc


def _conference_version(request: Request) -> int:
    try:
        return int(request.query_params.get("conferenceDataVersion", "0"))
    except ValueError as exc:
        raise ApiError(400, "invalid", "Invalid value for: conferenceDataVersion") from exc


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _page_token(offset: int, empty_served: bool) -> str:
    """Opaque to clients, as Google's are: where the next page starts."""
    raw = json.dumps([offset, empty_served]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_page_token(token: str | None) -> tuple[int, bool]:
    if not token:
        return 0, False
    try:
        offset, empty_served = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(offset), bool(empty_served)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ApiError(400, "invalid", "Invalid Value", extra={"location": "pageToken"}) from exc


def make_routes(state: EmulatorState) -> list[Route]:
    def endpoint(kind: str, allowed: frozenset[str], fn: Any) -> Handler:
        async def handle(request: Request) -> Response:
            # Like Google, act on a request once it has fully arrived, even if the client
            # hangs up while it is being processed (latency is applied after the body).
            await request.body()
            failed = await gate(state, kind)
            if failed is not None:
                return failed
            access = _authorize(state, request, allowed)
            return await fn(request, access)

        return handle

    async def freebusy(request: Request, access: AccessToken) -> Response:
        body = await _json_body(request)
        if not body.get("timeMin"):
            raise ApiError(400, "required", "Missing timeMin parameter.")
        if not body.get("timeMax"):
            raise ApiError(400, "required", "Missing timeMax parameter.")
        time_min = ev.parse_bound(body["timeMin"], "timeMin")
        time_max = ev.parse_bound(body["timeMax"], "timeMax")
        assert time_min is not None and time_max is not None
        if time_max <= time_min:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        calendars: dict[str, Any] = {}
        for item in body.get("items") or []:
            cid = str(item.get("id", ""))
            calendar = state.calendar_for(access.email, cid)
            # A calendar the caller cannot read still answers HTTP 200: its entry carries
            # `errors` ("Optional error(s) (if computation for the calendar failed)", e.g.
            # notFound, internalError) next to an empty `busy` (FreeBusyCalendar; observed for
            # calendars without access, google-reference.md §2).
            reason = state.freebusy_error(cid, calendar.id if calendar else cid)
            if calendar is None or reason is not None:
                calendars[cid] = {
                    "errors": [{"domain": "global", "reason": reason or "notFound"}],
                    "busy": [],
                }
                continue
            busy = ev.busy_intervals(
                state.list_events(calendar), calendar.timezone, time_min, time_max
            )
            calendars[cid] = {"busy": busy}
        return JSONResponse(
            {
                "kind": "calendar#freeBusy",
                "timeMin": format_z(time_min, millis=True),
                "timeMax": format_z(time_max, millis=True),
                "calendars": calendars,
            }
        )

    async def insert(request: Request, access: AccessToken) -> Response:
        calendar = _calendar(state, access, request.path_params["cid"])
        event = ev.build_new_event(
            await _json_body(request),
            calendar,
            access.email,
            base_url=base_url(request),
            conference_version=_conference_version(request),
            meet_pending=state.meet_pending(),
        )
        if not state.insert_event(calendar, event):
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        if ev.conference_pending(event):
            state.conference_created(calendar, event["id"])
        return JSONResponse(event)

    async def list_events(request: Request, access: AccessToken) -> Response:
        calendar = _calendar(state, access, request.path_params["cid"])
        params = request.query_params
        order_by = params.get("orderBy")
        single = _flag(request, "singleEvents")
        if order_by == "startTime" and not single:
            raise ApiError(
                400,
                "badRequest",
                "The requested ordering is not available for the particular query.",
            )
        if order_by not in (None, "startTime", "updated"):
            raise ApiError(400, "invalid", f"Invalid value for: orderBy: {order_by}")
        try:
            max_results = min(int(params.get("maxResults", "250")), 2500)
        except ValueError as exc:
            raise ApiError(400, "invalid", "Invalid Value") from exc
        if max_results < 1:
            raise ApiError(400, "invalid", "Invalid Value")
        offset, empty_served = _read_page_token(params.get("pageToken"))
        items = ev.filter_events(
            state.list_events(calendar),
            calendar.timezone,
            time_min=ev.parse_bound(params.get("timeMin"), "timeMin"),
            time_max=ev.parse_bound(params.get("timeMax"), "timeMax"),
            single_events=single,
            show_deleted=_flag(request, "showDeleted"),
            private_props=params.getlist("privateExtendedProperty"),
            shared_props=params.getlist("sharedExtendedProperty"),
            text=params.get("q"),
        )
        if order_by == "startTime":
            items.sort(key=ev.start_sort_key(calendar.timezone))
        elif order_by == "updated":
            items.sort(key=lambda e: e.get("updated", ""))
        # "The number of events in the resulting page may be less than this value, or none at
        # all, even if there are more events matching the query. Incomplete pages can be
        # detected by a non-empty nextPageToken field" (events.list `maxResults`). The paging
        # hook makes both happen: short pages, and empty pages that still carry a token.
        forced_size, empty_pages = state.list_paging()
        page_size = min(max_results, forced_size or max_results)
        result: dict[str, Any] = {
            "kind": "calendar#events",
            "summary": calendar.summary,
            "timeZone": calendar.timezone,
            "accessRole": "owner",
            "defaultReminders": [],
            "items": [],
        }
        if empty_pages and not empty_served:
            result["nextPageToken"] = _page_token(offset, True)
            return JSONResponse(result)
        result["items"] = items[offset : offset + page_size]
        if offset + page_size < len(items):
            result["nextPageToken"] = _page_token(offset + page_size, False)
        return JSONResponse(result)

    def _instance(calendar: Calendar, event_id: str) -> dict[str, Any] | None:
        """An occurrence of a stored series that has no exception of its own yet: it can be
        read, changed or cancelled by its instance id (a write stores it as an exception)."""
        parsed = recurrence.parse_instance_id(event_id)
        if parsed is None:
            return None
        parent = state.get_event(calendar, parsed[0])
        if parent is None:
            return None
        return recurrence.find_instance(parent, parsed[1], calendar.timezone)

    def _existing(request: Request, access: AccessToken) -> tuple[Calendar, dict[str, Any]]:
        calendar = _calendar(state, access, request.path_params["cid"])
        eid = request.path_params["eid"]
        event = state.get_event(calendar, eid) or _instance(calendar, eid)
        if event is None:
            raise ApiError(404, "notFound", "Not Found")
        return calendar, event

    async def get_event(request: Request, access: AccessToken) -> Response:
        calendar, event = _existing(request, access)
        if state.conference_read(calendar, event["id"]):
            # The asynchronous conference creation finished (see events.add_conference).
            ev.complete_conference(event)
            ev.stamp(event)
            state.put_event(calendar, event)
        return JSONResponse(event)

    async def _update(request: Request, access: AccessToken, *, replace: bool) -> Response:
        calendar, existing = _existing(request, access)
        event = ev.apply_update(
            existing,
            await _json_body(request),
            calendar,
            replace=replace,
            conference_version=_conference_version(request),
            meet_pending=state.meet_pending(),
        )
        state.put_event(calendar, event)
        if ev.conference_pending(event) and not ev.conference_pending(existing):
            state.conference_created(calendar, event["id"])
        return JSONResponse(event)

    async def patch_event(request: Request, access: AccessToken) -> Response:
        return await _update(request, access, replace=False)

    async def update_event(request: Request, access: AccessToken) -> Response:
        return await _update(request, access, replace=True)

    async def delete_event(request: Request, access: AccessToken) -> Response:
        calendar, existing = _existing(request, access)
        if existing.get("status") == "cancelled":
            raise ApiError(410, "deleted", "Resource has been deleted")
        existing["status"] = "cancelled"
        ev.stamp(existing)
        state.put_event(calendar, existing)
        return Response(status_code=204)

    async def get_calendar(request: Request, access: AccessToken) -> Response:
        calendar = _calendar(state, access, request.path_params["cid"])
        return JSONResponse(
            {
                "kind": "calendar#calendar",
                "etag": '"0"',
                "id": calendar.id,
                "summary": calendar.summary,
                "timeZone": calendar.timezone,
                "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
            }
        )

    async def get_setting(request: Request, access: AccessToken) -> Response:
        if request.path_params["setting"] != "timezone":
            raise ApiError(404, "notFound", "Not Found")
        account = state.get_account(access.email)
        return JSONResponse(
            {
                "kind": "calendar#setting",
                "etag": '"0"',
                "id": "timezone",
                "value": account.timezone if account else "UTC",
            }
        )

    events_path = "/calendar/v3/calendars/{cid}/events"
    return [
        Route(
            "/calendar/v3/freeBusy",
            endpoint("freebusy", FREEBUSY_SCOPES, freebusy),
            methods=["POST"],
        ),
        Route(
            events_path,
            endpoint("events.insert", EVENTS_WRITE_SCOPES, insert),
            methods=["POST"],
        ),
        Route(
            events_path,
            endpoint("events.list", EVENTS_READ_SCOPES, list_events),
            methods=["GET"],
        ),
        Route(
            events_path + "/{eid}",
            endpoint("events.get", EVENTS_READ_SCOPES, get_event),
            methods=["GET"],
        ),
        Route(
            events_path + "/{eid}",
            endpoint("events.patch", EVENTS_WRITE_SCOPES, patch_event),
            methods=["PATCH"],
        ),
        Route(
            events_path + "/{eid}",
            endpoint("events.update", EVENTS_WRITE_SCOPES, update_event),
            methods=["PUT"],
        ),
        Route(
            events_path + "/{eid}",
            endpoint("events.delete", EVENTS_WRITE_SCOPES, delete_event),
            methods=["DELETE"],
        ),
        Route(
            "/calendar/v3/calendars/{cid}",
            endpoint("calendars.get", CALENDARS_GET_SCOPES, get_calendar),
            methods=["GET"],
        ),
        Route(
            "/calendar/v3/users/me/settings/{setting}",
            endpoint("settings.get", SETTINGS_SCOPES, get_setting),
            methods=["GET"],
        ),
        Route("/calendar/event", _event_page(state), methods=["GET"]),
    ]


def _event_page(state: EmulatorState) -> Handler:
    """Where `htmlLink` points: a plain page so demo users can click through."""

    async def page(request: Request) -> Response:
        eid = request.query_params.get("eid", "")
        try:
            decoded = base64.urlsafe_b64decode(eid + "=" * (-len(eid) % 4)).decode()
            event_id, _, cid = decoded.partition(" ")
        except (ValueError, UnicodeDecodeError):
            event_id, cid = "", ""
        calendar = state.get_calendar(cid) if cid else None
        event = state.get_event(calendar, event_id) if calendar else None
        if event is None:
            return HTMLResponse("<h1>Event not found</h1>", status_code=404)
        when = event["start"].get("dateTime") or event["start"].get("date")
        return HTMLResponse(
            "<!doctype html><meta charset='utf-8'><title>Event</title>"
            f"<h1>{html.escape(str(event.get('summary', '(No title)')))}</h1>"
            f"<p>{html.escape(str(when))} · {html.escape(event.get('status', ''))}</p>"
            f"<pre>{html.escape(json.dumps(event, indent=2))}</pre>"
        )

    return page
