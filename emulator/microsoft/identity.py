"""The Microsoft identity platform's v2.0 endpoints: authorize (a sign-in page), token, discovery.

As v2-oauth2-auth-code-flow describes them:
- authorize takes `client_id`, `response_type=code`, `redirect_uri`, `scope`, `state`,
  `code_challenge` (S256), `response_mode=query`, `prompt`; it answers by redirecting with
  `code` and `state` (and `session_state`), or with `error` and `error_description`.
- token takes the client secret in the form body (HTTP Basic works too), checks PKCE on the
  code, and answers `access_token`, `expires_in`, `scope`, `refresh_token` (with
  `offline_access`) and `id_token` (with `openid`). Refresh tokens rotate on every refresh: the
  answer always carries a new one (the old stays usable unless the hook says otherwise).
- errors are `{"error", "error_description": "AADSTS…", "error_codes", …}`, 400, or 401
  `invalid_client` for a wrong secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from vapi_calendar.emulator.microsoft.errors import EntraError, SignInPageError, gate
from vapi_calendar.emulator.microsoft.state import (
    ACCESS_TTL,
    MicrosoftState,
    MsAccess,
    MsClient,
)

GRAPH = "https://graph.microsoft.com/"
OIDC_SCOPES = frozenset({"openid", "email", "profile", "offline_access"})
AUTH_PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "nonce",
    "login_hint",
)
_STYLE = """
body{font-family:"Segoe UI",system-ui,sans-serif;background:#f2f2f2;margin:0}
main{max-width:27rem;margin:3rem auto;background:#fff;padding:2.5rem;
box-shadow:0 2px 6px rgba(0,0,0,.2)}h1{font-size:1.5rem;font-weight:600;margin:0 0 1rem}
.muted{color:#605e5c;font-size:.9rem}input[type=email]{width:100%;padding:.5rem;font-size:1rem;
box-sizing:border-box;border:0;border-bottom:1px solid #666}ul{padding-left:1.2rem}
.buttons{display:flex;gap:.6rem;justify-content:flex-end;margin-top:1.5rem}
button{padding:.4rem 1.6rem;font-size:1rem;border:0;cursor:pointer;background:#ccc}
#accept{background:#0067b8;color:#fff}
"""
_PERMISSIONS = {
    "calendars.readwrite": "Have full access to your calendars",
    "calendars.read": "Read your calendars",
    "mailboxsettings.read": "Read your mailbox settings",
    "offline_access": "Maintain access to data you have given it access to",
    "openid": "Sign you in",
    "email": "View your email address",
    "profile": "View your basic profile",
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def s256(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode()).digest())


def short_scope(scope: str) -> str:
    """`https://graph.microsoft.com/Calendars.ReadWrite` → `Calendars.ReadWrite`."""
    return scope[len(GRAPH) :] if scope.lower().startswith(GRAPH) else scope


def parse_form(raw: bytes) -> dict[str, list[str]]:
    return parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit(parts._replace(query=query))


def make_id_token(state: MicrosoftState, access: MsAccess, nonce: str | None) -> str:
    """An id_token as Entra shapes it (claims of id-token-claims-reference); the signature is
    a placeholder, as clients take the token straight from the token endpoint over TLS."""
    account = state.get_account(access.email)
    assert account is not None
    now = int(state.clock())
    header = {"typ": "JWT", "alg": "RS256", "kid": "emulator"}
    claims: dict[str, Any] = {
        "aud": access.client_id,
        "iss": f"https://login.microsoftonline.com/{account.tid}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "name": account.email.split("@")[0].title(),
        "oid": account.oid,
        "preferred_username": account.email,
        "sub": _b64url(hashlib.sha256(f"{account.oid}:{access.client_id}".encode()).digest()),
        "tid": account.tid,
        "ver": "2.0",
    }
    if "email" in {s.lower() for s in access.scopes}:
        claims["email"] = account.email
    if nonce:
        claims["nonce"] = nonce
    return ".".join(
        (
            _b64url(json.dumps(header, separators=(",", ":")).encode()),
            _b64url(json.dumps(claims, separators=(",", ":")).encode()),
            _b64url(b"emulator-signature"),
        )
    )


def _auth_request(state: MicrosoftState, params: dict[str, str]) -> tuple[MsClient, str]:
    client = state.get_client(params.get("client_id", ""))
    if client is None:
        raise SignInPageError(
            700016,
            f"Application with identifier '{params.get('client_id', '')}' was not found in "
            "the directory.",
        )
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri or (client.redirect_uris and redirect_uri not in client.redirect_uris):
        raise SignInPageError(
            50011,
            f"The redirect URI '{redirect_uri}' specified in the request does not match the "
            "redirect URIs configured for the application.",
        )
    if params.get("response_type") != "code":
        raise SignInPageError(
            900144, "The request body must contain the following parameter: 'response_type'."
        )
    if params.get("response_mode", "query") != "query":
        raise SignInPageError(900144, "The emulator answers with response_mode=query only.")
    if not params.get("scope", "").split():
        raise SignInPageError(900144, "The request must contain a 'scope' parameter.")
    if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
        raise SignInPageError(
            501491, "Invalid code_challenge_method: the emulator accepts S256 only."
        )
    return client, redirect_uri


def render_sign_in(action: str, params: dict[str, str], email: str) -> str:
    esc = html.escape
    hidden = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in params.items()
    )
    asked = [s for s in params.get("scope", "").split()]
    permissions = "".join(
        f"<li>{esc(_PERMISSIONS.get(short_scope(s).lower(), short_scope(s)))}</li>" for s in asked
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>Sign in to your account (Microsoft emulator)</title>"
        f"<style>{_STYLE}</style></head><body><main>"
        "<h1>Sign in</h1>"
        f"<p class='muted'>to continue to <code id='client-id'>{esc(params['client_id'])}"
        "</code> (Microsoft identity platform emulator)</p>"
        f'<form method="post" action="{esc(action)}">{hidden}'
        '<label>Email, phone, or Skype<input type="email" name="email" id="email" required '
        f'value="{esc(email)}"></label>'
        "<h2 class='muted'>Permissions requested</h2>"
        f"<ul id='permissions'>{permissions}</ul>"
        '<div class="buttons">'
        '<button type="submit" name="action" value="cancel" id="cancel">Cancel</button>'
        '<button type="submit" name="action" value="accept" id="accept">Accept</button>'
        "</div></form></main></body></html>"
    )


def make_routes(state: MicrosoftState) -> list[Route]:
    async def authorize_page(request: Request) -> Response:
        failed = await gate(state, "entra.authorize")
        if failed is not None:
            return failed
        params = dict(request.query_params)
        _auth_request(state, params)
        email = params.get("login_hint") or state.first_account_email() or ""
        carried = {k: params[k] for k in AUTH_PARAMS if k in params}
        return HTMLResponse(render_sign_in(request.url.path, carried, email))

    async def authorize_submit(request: Request) -> Response:
        failed = await gate(state, "entra.authorize")
        if failed is not None:
            return failed
        form = {k: v[0] for k, v in parse_form(await request.body()).items()}
        client, redirect_uri = _auth_request(state, form)
        reply = {"state": form["state"]} if "state" in form else {}
        if form.get("action") != "accept":
            error = {
                "error": "access_denied",
                "error_description": "AADSTS65004: User declined to consent to access the app.",
            }
            return RedirectResponse(with_query(redirect_uri, {**error, **reply}), 302)
        email = form.get("email", "").strip().lower()
        if "@" not in email:
            raise SignInPageError(50034, "The user account does not exist in the directory.")
        account = state.ensure_account(email)
        if state.needs_admin_consent(account.tid) and not account.personal:
            # The tenant lets users consent to nothing this app asks for: "Need admin approval".
            error = {
                "error": "consent_required",
                "error_description": (
                    "AADSTS90094: An administrator of the organization has set a policy that "
                    "prevents you from granting the app the permissions it is requesting."
                ),
            }
            return RedirectResponse(with_query(redirect_uri, {**error, **reply}), 302)
        code = state.create_code(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scopes=tuple(form.get("scope", "").split()),
            email=account.email,
            code_challenge=form.get("code_challenge") or None,
            nonce=form.get("nonce") or None,
        )
        params = {"code": code.code, **reply, "session_state": account.oid}
        return RedirectResponse(with_query(redirect_uri, params), 302)

    def client_of(request: Request, form: dict[str, str]) -> MsClient:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                raise EntraError("invalid_client", status=401) from None
            client_id, secret = unquote_plus(user), unquote_plus(password)
        if not client_id:
            raise EntraError(
                "invalid_request",
                "The request body must contain the following parameter: 'client_id'.",
            )
        client = state.get_client(client_id)
        if client is None:
            raise EntraError("unauthorized_client", status=400)
        if not secret:
            raise EntraError(
                "invalid_client",
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
                status=401,
            )
        if client.rejected or not hmac.compare_digest(
            secret.encode(), client.client_secret.encode()
        ):
            raise EntraError("invalid_client", status=401)
        return client

    def token_body(access: MsAccess, refresh: str | None, nonce: str | None) -> dict[str, Any]:
        scopes = [s for s in access.scopes if s.lower() not in OIDC_SCOPES]
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(
                [GRAPH + short_scope(s) for s in scopes]
                + [s for s in access.scopes if s.lower() in ("openid", "email", "profile")]
            ),
            "expires_in": ACCESS_TTL,
            "ext_expires_in": ACCESS_TTL,
            "access_token": access.token,
        }
        if refresh is not None:
            body["refresh_token"] = refresh
        if "openid" in {s.lower() for s in access.scopes}:
            body["id_token"] = make_id_token(state, access, nonce)
        return body

    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_form(await request.body()).items()}
        grant_type = form.get("grant_type", "")
        kind = {
            "authorization_code": "entra.token.authorization_code",
            "refresh_token": "entra.token.refresh_token",
        }.get(grant_type, "entra.token.other")
        failed = await gate(state, kind)
        if failed is not None:
            return failed
        client = client_of(request, form)
        if grant_type == "authorization_code":
            code = state.redeem_code(form.get("code", ""))
            if code is None or code.client_id != client.client_id:
                raise EntraError(
                    "invalid_grant", "The provided authorization code or refresh token has expired."
                )
            if form.get("redirect_uri") != code.redirect_uri:
                raise EntraError(
                    "invalid_grant",
                    "The reply URL specified in the request does not match the reply URL "
                    "configured for the application.",
                )
            if code.code_challenge is not None and not hmac.compare_digest(
                s256(form.get("code_verifier", "")), code.code_challenge
            ):
                raise EntraError(
                    "invalid_grant",
                    "The code_verifier does not match the code_challenge supplied in the "
                    "authorization request for PKCE.",
                )
            offline = "offline_access" in {s.lower() for s in code.scopes}
            access, grant = state.issue_tokens(
                email=code.email,
                client_id=client.client_id,
                scopes=code.scopes,
                with_refresh_token=offline,
            )
            return JSONResponse(
                token_body(access, grant.refresh_token if grant else None, code.nonce)
            )
        if grant_type == "refresh_token":
            outcome = state.refresh(form.get("refresh_token", ""), client.client_id)
            if isinstance(outcome, str):
                raise EntraError(
                    "invalid_grant",
                    "The refresh token has expired due to inactivity or was revoked.",
                )
            access, rotated = outcome
            return JSONResponse(token_body(access, rotated.refresh_token, None))
        raise EntraError(
            "unsupported_grant_type", f"The provided grant_type '{grant_type}' is not supported."
        )

    async def discovery(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        base = str(request.url).split(f"/{tenant}/v2.0/")[0]
        return JSONResponse(
            {
                "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
                "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "code_challenge_methods_supported": ["plain", "S256"],
            }
        )

    return [
        Route("/{tenant}/oauth2/v2.0/authorize", authorize_page, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/authorize", authorize_submit, methods=["POST"]),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", discovery, methods=["GET"]),
    ]
