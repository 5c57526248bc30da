"""The browser consent page, a small stand-in for Google's account chooser + granular consent."""

from __future__ import annotations

import html
from collections.abc import Mapping

from vapi_calendar.emulator.state import IDENTITY_SCOPES, SCOPE_PREFIX

_DESCRIPTIONS = {
    "calendar": "See, edit, share, and permanently delete all the calendars you can access",
    "calendar.readonly": "See and download any calendar you can access",
    "calendar.freebusy": "See the availability on Google Calendars you have access to",
    "calendar.events": "View and edit events on all your calendars",
    "calendar.events.owned": "See, create, change, and delete events on calendars you own",
    "calendar.events.readonly": "View events on all your calendars",
    "calendar.settings.readonly": "View your Calendar settings",
}

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f1f3f4;margin:0}
main{max-width:30rem;margin:3rem auto;background:#fff;border-radius:8px;padding:2rem;
box-shadow:0 1px 3px rgba(0,0,0,.2)}
h1{font-size:1.4rem;margin:0 0 .5rem}.muted{color:#5f6368;font-size:.9rem}
label{display:block;margin:.6rem 0}input[type=email]{width:100%;padding:.5rem;font-size:1rem;
box-sizing:border-box}fieldset{border:1px solid #dadce0;border-radius:6px;margin:1rem 0}
.buttons{display:flex;gap:1rem;justify-content:flex-end}
button{padding:.6rem 1.4rem;font-size:1rem;border-radius:4px;border:1px solid #dadce0;
cursor:pointer}#allow{background:#1a73e8;color:#fff;border-color:#1a73e8}
"""


def describe(scope: str) -> str:
    short = scope.removeprefix(SCOPE_PREFIX)
    return _DESCRIPTIONS.get(short, short)


def render_consent(
    *,
    action: str,
    params: Mapping[str, str],
    client_id: str,
    email: str,
    scopes: tuple[str, ...],
) -> str:
    """Form that POSTs back to `action` carrying every original query parameter."""
    esc = html.escape
    hidden = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in params.items()
    )
    boxes = []
    for scope in scopes:
        if scope in IDENTITY_SCOPES:
            continue
        boxes.append(
            f'<label><input type="checkbox" name="granted_scope" value="{esc(scope)}" checked> '
            f"{esc(describe(scope))} <span class='muted'>({esc(scope)})</span></label>"
        )
    permissions = (
        f"<fieldset><legend>Select what the app can access</legend>{''.join(boxes)}</fieldset>"
        if boxes
        else ""
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>Sign in - Google Accounts (emulator)</title>"
        f"<style>{_STYLE}</style></head><body><main>"
        "<h1>Sign in with Google</h1>"
        f"<p class='muted'>to continue to <code id='client-id'>{esc(client_id)}</code> "
        "(Google emulator)</p>"
        f'<form method="post" action="{esc(action)}">{hidden}'
        '<label>Email<input type="email" name="email" id="email" required '
        f'value="{esc(email)}"></label>'
        "<p class='muted'>Your name, email address and profile are always shared.</p>"
        f"{permissions}"
        '<div class="buttons">'
        '<button type="submit" name="action" value="deny" id="deny">Deny</button>'
        '<button type="submit" name="action" value="allow" id="allow">Allow</button>'
        "</div></form></main></body></html>"
    )
