"""Assemble the emulator as one Starlette app, usable at the root or under a `Mount` prefix."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.applications import Starlette

from vapi_calendar.emulator import calendar, hooks, oauth
from vapi_calendar.emulator.errors import ApiError, ConsentPageError, OAuthError, handle_error
from vapi_calendar.emulator.microsoft import errors as microsoft_errors
from vapi_calendar.emulator.microsoft import graph, identity
from vapi_calendar.emulator.microsoft import hooks as microsoft_hooks
from vapi_calendar.emulator.state import EmulatorState


def create_emulator_app(
    state: EmulatorState | None = None, *, clients: Mapping[str, str] | None = None
) -> Starlette:
    """The emulator app; `clients` ({client_id: secret}) are registered on `state` up front.

    Google and Microsoft 365 are served side by side (their paths never meet): Google's
    OAuth and Calendar v3, Microsoft's identity platform (`/{tenant}/oauth2/v2.0/…`) and
    Graph (`/v1.0/me/…`). The state is exposed as `app.state.emulator` so in-process callers
    can reach it directly (`state.microsoft` for Microsoft's).
    """
    state = state or EmulatorState()
    for client_id, secret in (clients or {}).items():
        state.register_client(client_id, secret)
    app = Starlette(
        routes=[
            *oauth.make_routes(state),
            *calendar.make_routes(state),
            *hooks.make_routes(state),
            *microsoft_hooks.make_routes(state.microsoft),
            *graph.make_routes(state.microsoft),
            # Last: `/{tenant}/…` would match any first path segment.
            *identity.make_routes(state.microsoft),
        ],
        exception_handlers={
            ApiError: handle_error,
            OAuthError: handle_error,
            ConsentPageError: handle_error,
            microsoft_errors.GraphApiError: microsoft_errors.handle_error,
            microsoft_errors.EntraError: microsoft_errors.handle_error,
            microsoft_errors.SignInPageError: microsoft_errors.handle_error,
        },
    )
    app.state.emulator = state
    return app
