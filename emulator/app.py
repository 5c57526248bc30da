"""Assemble the emulator as one Starlette app, usable at the root or under a `Mount` prefix."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.applications import Starlette

from vapi_calendar.emulator import calendar, hooks, oauth
from vapi_calendar.emulator.errors import ApiError, ConsentPageError, OAuthError, handle_error
from vapi_calendar.emulator.state import EmulatorState


def create_emulator_app(
    state: EmulatorState | None = None, *, clients: Mapping[str, str] | None = None
) -> Starlette:
    """The emulator app; `clients` ({client_id: secret}) are registered on `state` up front.

    The state is exposed as `app.state.emulator` so in-process callers can reach it directly.
    """
    state = state or EmulatorState()
    for client_id, secret in (clients or {}).items():
        state.register_client(client_id, secret)
    app = Starlette(
        routes=[
            *oauth.make_routes(state),
            *calendar.make_routes(state),
            *hooks.make_routes(state),
        ],
        exception_handlers={
            ApiError: handle_error,
            OAuthError: handle_error,
            ConsentPageError: handle_error,
        },
    )
    app.state.emulator = state
    return app
