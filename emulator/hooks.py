"""Unauthenticated `/_emulator/*` control hooks used by tests and demo mode (JSON in, JSON out)."""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from vapi_calendar.emulator import events as ev
from vapi_calendar.emulator import recurrence
from vapi_calendar.emulator.calendar import base_url
from vapi_calendar.emulator.errors import ApiError
from vapi_calendar.emulator.hook_http import HookError, hook
from vapi_calendar.emulator.state import Calendar, EmulatorState, Fault, normalize_scopes
from vapi_calendar.emulator.times import parse_rfc3339, zone


def _timezone(name: Any) -> str | None:
    if name is None:
        return None
    zone(str(name))  # raises ValueError -> 400
    return str(name)


def _as_exception(state: EmulatorState, calendar: Calendar, body: dict[str, Any]) -> dict[str, Any]:
    """A seeded exception of a series: `recurringEventId` + `originalStartTime` name the
    occurrence; whatever the body leaves out (start, end, summary, ...) is the occurrence's."""
    parent = state.get_event(calendar, str(body["recurringEventId"]))
    if parent is None or not recurrence.is_series(parent):
        raise HookError(404, "recurringEventId names no recurring event of this calendar")
    original = body.get("originalStartTime") or {}
    if original.get("dateTime"):
        moment: Any = parse_rfc3339(str(original["dateTime"]))
    elif original.get("date"):
        moment = date.fromisoformat(str(original["date"]))
    else:
        raise HookError(400, "an exception needs originalStartTime")
    suffix = recurrence.instance_suffix(moment)
    occurrence = recurrence.find_instance(parent, suffix, calendar.timezone)
    if occurrence is None:
        raise HookError(400, "the series has no occurrence at originalStartTime")
    return {**occurrence, **{k: v for k, v in body.items() if k != "id"}}


def make_routes(state: EmulatorState) -> list[Route]:
    async def clients(request: Request, body: dict[str, Any]) -> Any:
        client = state.register_client(
            str(body["client_id"]), str(body["client_secret"]), body.get("redirect_uris") or ()
        )
        return {"client_id": client.client_id}

    async def accounts(request: Request, body: dict[str, Any]) -> Any:
        account = state.ensure_account(
            str(body["email"]), _timezone(body.get("timezone")), body.get("sub")
        )
        return account.to_json()

    async def get_account(request: Request, body: dict[str, Any]) -> Any:
        account = state.get_account(request.path_params["email"])
        if account is None:
            raise HookError(404, "unknown account")
        return account.to_json()

    async def add_calendar(request: Request, body: dict[str, Any]) -> Any:
        try:
            calendar = state.add_calendar(
                request.path_params["email"],
                str(body["id"]),
                body.get("summary"),
                _timezone(body.get("timeZone")),
            )
        except KeyError as exc:
            raise HookError(404, "unknown account") from exc
        return calendar.to_json()

    async def tokens(request: Request, body: dict[str, Any]) -> Any:
        client_id = str(body["client_id"])
        if state.get_client(client_id) is None:
            raise HookError(404, f"unknown client {client_id!r}; register it first")
        account = state.ensure_account(str(body["email"]))
        scopes = body.get("scopes") or []
        if isinstance(scopes, str):
            scopes = scopes.split()
        expires_in = int(body.get("expires_in", 3600))
        access, grant = state.issue_tokens(
            email=account.email,
            client_id=client_id,
            scopes=normalize_scopes(scopes),
            expires_in=expires_in,
        )
        assert grant is not None
        return {
            "access_token": access.token,
            "refresh_token": grant.refresh_token,
            "expires_in": expires_in,
            "scope": " ".join(access.scopes),
        }

    async def expire_access(request: Request, body: dict[str, Any]) -> Any:
        return {"expired": state.expire_access_tokens(str(body["email"]))}

    async def revoke_grants(request: Request, body: dict[str, Any]) -> Any:
        return {"revoked": state.revoke_grants(str(body["email"]))}

    async def seed_event(request: Request, body: dict[str, Any]) -> Any:
        cid = request.path_params["cid"]
        calendar = state.get_calendar(cid)
        if calendar is None and "@" in cid:
            state.ensure_account(cid)
            calendar = state.get_calendar(cid)
        if calendar is None:
            raise HookError(404, f"unknown calendar {cid!r}")
        try:
            version = int(request.query_params.get("conferenceDataVersion", "1"))
        except ValueError as exc:
            raise HookError(400, "conferenceDataVersion must be an integer") from exc
        exception = _as_exception(state, calendar, body) if body.get("recurringEventId") else None
        event = ev.build_new_event(
            {k: v for k, v in (exception or body).items() if not (exception and k == "id")},
            calendar,
            calendar.owner,
            base_url=base_url(request),
            conference_version=version,
        )
        if exception is not None:
            event["id"], event["iCalUID"] = exception["id"], exception["iCalUID"]
        if not state.insert_event(calendar, event):
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        return event

    async def list_events(request: Request, body: dict[str, Any]) -> Any:
        calendar = state.get_calendar(request.path_params["cid"])
        if calendar is None:
            raise HookError(404, "unknown calendar")
        return state.list_events(calendar)

    async def add_fault(request: Request, body: dict[str, Any]) -> Any:
        probability = body.get("probability")
        if probability is not None and not 0 <= float(probability) <= 1:
            raise HookError(400, "probability must be within 0..1")
        status = body.get("status")
        state.add_fault(
            Fault(
                kind=str(body["kind"]),
                status=int(status) if status is not None else None,
                error=body.get("error"),
                error_description=body.get("error_description"),
                body=body.get("body"),
                times=int(body.get("times", 1)),
                probability=float(probability) if probability is not None else None,
                latency_ms=int(body.get("latency_ms") or 0),
                headers={str(k): str(v) for k, v in (body.get("headers") or {}).items()},
            )
        )
        return {}

    async def clear_faults(request: Request, body: dict[str, Any]) -> Any:
        state.clear_faults()
        return {}

    async def latency(request: Request, body: dict[str, Any]) -> Any:
        state.set_latency(
            int(body["ms"]), body.get("kind"), jitter_ms=int(body.get("jitter_ms") or 0)
        )
        return {}

    async def requests(request: Request, body: dict[str, Any]) -> Any:
        return state.request_counts()

    async def reset_requests(request: Request, body: dict[str, Any]) -> Any:
        state.reset_requests()
        return {}

    async def reset(request: Request, body: dict[str, Any]) -> Any:
        state.reset()
        return {}

    async def settings(request: Request, body: dict[str, Any]) -> Any:
        if "rotate_refresh_tokens" in body:
            state.set_rotate_refresh_tokens(bool(body["rotate_refresh_tokens"]))
        if "list_page_size" in body or "list_empty_pages" in body:
            size = body.get("list_page_size")
            if size is not None and int(size) < 1:
                raise HookError(400, "list_page_size must be at least 1")
            state.set_list_paging(
                int(size) if size is not None else None, bool(body.get("list_empty_pages"))
            )
        if "meet_pending_reads" in body:
            reads = int(body["meet_pending_reads"])
            if reads < 0:
                raise HookError(400, "meet_pending_reads must be 0 or more")
            state.set_meet_pending_reads(reads)
        page_size, empty_pages = state.list_paging()
        return {
            "rotate_refresh_tokens": state.rotate_refresh_tokens,
            "list_page_size": page_size,
            "list_empty_pages": empty_pages,
            "meet_pending_reads": state.meet_pending_reads,
        }

    async def freebusy_error(request: Request, body: dict[str, Any]) -> Any:
        reason = body.get("reason")
        state.set_freebusy_error(str(body["calendar_id"]), str(reason) if reason else None)
        return {}

    async def client_rejected(request: Request, body: dict[str, Any]) -> Any:
        client_id = request.path_params["client_id"]
        if state.get_client(client_id) is None:
            raise HookError(404, f"unknown client {client_id!r}")
        state.set_client_rejected(client_id, bool(body.get("rejected", True)))
        return {}

    p = "/_emulator"
    return [
        Route(f"{p}/clients", hook(clients), methods=["POST"]),
        Route(f"{p}/accounts", hook(accounts), methods=["POST"]),
        Route(f"{p}/accounts/{{email}}", hook(get_account), methods=["GET"]),
        Route(f"{p}/accounts/{{email}}/calendars", hook(add_calendar), methods=["POST"]),
        Route(f"{p}/tokens", hook(tokens), methods=["POST"]),
        Route(f"{p}/expire-access-tokens", hook(expire_access), methods=["POST"]),
        Route(f"{p}/revoke-grants", hook(revoke_grants), methods=["POST"]),
        Route(f"{p}/calendars/{{cid}}/events", hook(seed_event), methods=["POST"]),
        Route(f"{p}/calendars/{{cid}}/events", hook(list_events), methods=["GET"]),
        Route(f"{p}/faults", hook(add_fault), methods=["POST"]),
        Route(f"{p}/faults", hook(clear_faults), methods=["DELETE"]),
        Route(f"{p}/latency", hook(latency), methods=["POST"]),
        Route(f"{p}/requests", hook(requests), methods=["GET"]),
        Route(f"{p}/reset-requests", hook(reset_requests), methods=["POST"]),
        Route(f"{p}/reset", hook(reset), methods=["POST"]),
        Route(f"{p}/settings", hook(settings), methods=["POST"]),
        Route(f"{p}/freebusy-errors", hook(freebusy_error), methods=["POST"]),
        Route(f"{p}/clients/{{client_id}}/rejected", hook(client_rejected), methods=["POST"]),
    ]
