"""HTML pages the end user sees. Autoescaped templates, no scripts, strict headers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

_templates = Environment(
    loader=PackageLoader("vapi_calendar.server", "templates"),
    autoescape=select_autoescape(["html"]),
)


def page(
    template: str, *, status: int = 200, form_targets: tuple[str, ...] = (), **context: Any
) -> HTMLResponse:
    # The consent form's POST ends in a redirect to the provider (Google, Microsoft), and
    # browsers apply form-action to that redirect too, so the providers' origins must be allowed.
    origins = " ".join(
        dict.fromkeys(f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in form_targets if u)
    )
    headers = {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",  # the callback URL carries a code; never leak it
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'unsafe-inline'; "
            f"form-action 'self' {origins}; frame-ancestors 'none'; base-uri 'none'"
        ),
    }
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=headers)
