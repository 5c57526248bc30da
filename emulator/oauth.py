"""Google's OAuth 2.0 endpoints: authorize (consent page), token, revoke, userinfo."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from vapi_calendar.emulator.consent import render_consent
from vapi_calendar.emulator.errors import ConsentPageError, OAuthError, gate
from vapi_calendar.emulator.state import (
    DEFAULT_ACCESS_TTL,
    IDENTITY_SCOPES,
    AccessToken,
    Client,
    EmulatorState,
    normalize_scopes,
)

ISSUER = "https://accounts.google.com"
# Parameters the consent form carries through its hidden fields.
AUTH_PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "access_type",
    "prompt",
    "include_granted_scopes",
    "login_hint",
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def s256(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode()).digest())


def make_id_token(*, client: Client, sub: str, email: str, now: float) -> str:
    """An HS256 JWT keyed with the client secret: verifiable by the app, unlike Google's RS256."""
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "iss": ISSUER,
        "azp": client.client_id,
        "aud": client.client_id,
        "sub": sub,
        "email": email,
        "email_verified": True,
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = hmac.new(client.client_secret.encode(), signing_input.encode(), "sha256").digest()
    return signing_input + "." + _b64url(signature)


def parse_form(raw: bytes) -> dict[str, str]:
    """First value of each field; python-multipart is not a dependency, forms are urlencoded."""
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit(parts._replace(query=query))


@dataclass(frozen=True)
class AuthRequest:
    client: Client
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    access_type: str
    force_consent: bool
    include_granted_scopes: bool
    login_hint: str
    params: dict[str, str]


def _bad_request(detail: str) -> ConsentPageError:
    return ConsentPageError(400, "400: invalid_request", detail)


def parse_auth_request(state: EmulatorState, params: dict[str, str]) -> AuthRequest:
    """Validate authorize parameters; errors are shown in the browser, as Google does."""
    client = state.get_client(params.get("client_id", ""))
    if client is None:
        raise ConsentPageError(400, "401: invalid_client", "The OAuth client was not found.")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise _bad_request("Missing required parameter: redirect_uri")
    if client.redirect_uris and redirect_uri not in client.redirect_uris:
        raise ConsentPageError(
            400,
            "400: redirect_uri_mismatch",
            f"The redirect URI in the request, {redirect_uri}, does not match the ones "
            "authorized for the OAuth client.",
        )
    if params.get("response_type") != "code":
        raise _bad_request(f"Invalid response_type: {params.get('response_type', '')}")
    scopes = normalize_scopes(params.get("scope", "").split())
    if not scopes:
        raise _bad_request("Missing required parameter: scope")
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or None
    if challenge is not None and method != "S256":
        raise _bad_request(f"Invalid code_challenge_method: {method or 'plain'} (only S256)")
    if challenge is None and method is not None:
        raise _bad_request("Missing required parameter: code_challenge")
    access_type = params.get("access_type") or "online"
    if access_type not in ("online", "offline"):
        raise _bad_request(f"Invalid access_type: {access_type}")
    return AuthRequest(
        client=client,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=params.get("state"),
        code_challenge=challenge,
        access_type=access_type,
        force_consent="consent" in params.get("prompt", "").split(),
        include_granted_scopes=params.get("include_granted_scopes") == "true",
        login_hint=params.get("login_hint", ""),
        params={k: params[k] for k in AUTH_PARAMS if k in params},
    )


def _client_auth(state: EmulatorState, request: Request, form: dict[str, str]) -> Client:
    """HTTP Basic (requests-oauthlib) or form fields (google-auth); RFC 6749 allows both."""
    client_id, secret = form.get("client_id"), form.get("client_secret")
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError as exc:
            raise OAuthError(401, "invalid_client", "Unauthorized") from exc
        client_id, secret = unquote_plus(user), unquote_plus(password)
    if not client_id:
        raise OAuthError(400, "invalid_request", "Could not determine client ID from request.")
    client = state.get_client(client_id)
    if client is None:
        raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
    if not hmac.compare_digest((secret or "").encode(), client.client_secret.encode()):
        raise OAuthError(401, "invalid_client", "Unauthorized")
    if state.client_rejected(client.client_id):
        # The control hook's "secret rotated/revoked in the console" mode: Google answers 401
        # invalid_client "Unauthorized" (observed, google-reference.md §5).
        raise OAuthError(401, "invalid_client", "Unauthorized")
    return client


def _wants_id_token(scopes: tuple[str, ...]) -> bool:
    return bool(IDENTITY_SCOPES & set(scopes))


def make_routes(state: EmulatorState) -> list[Route]:
    async def authorize_page(request: Request) -> Response:
        failed = await gate(state, "authorize")
        if failed is not None:
            return failed
        auth = parse_auth_request(state, dict(request.query_params))
        email = auth.login_hint or state.first_account_email() or ""
        page = render_consent(
            action=request.url.path,
            params=auth.params,
            client_id=auth.client.client_id,
            email=email,
            scopes=auth.scopes,
        )
        return Response(page, media_type="text/html")

    async def authorize_submit(request: Request) -> Response:
        failed = await gate(state, "authorize")
        if failed is not None:
            return failed
        raw = await request.body()
        parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        form = {k: v[0] for k, v in parsed.items()}
        auth = parse_auth_request(state, form)
        state_param = {"state": auth.state} if auth.state is not None else {}
        if form.get("action") != "allow":
            return RedirectResponse(
                with_query(auth.redirect_uri, {"error": "access_denied", **state_param}),
                status_code=302,
            )
        email = form.get("email", "").strip().lower()
        if "@" not in email:
            raise _bad_request("Enter a valid email address.")
        account = state.ensure_account(email)
        # Granular consent: identity scopes always, the rest only if still ticked.
        ticked = set(normalize_scopes(parsed.get("granted_scope", [])))
        granted = tuple(s for s in auth.scopes if s in IDENTITY_SCOPES or s in ticked)
        code = state.create_code(
            client_id=auth.client.client_id,
            redirect_uri=auth.redirect_uri,
            scopes=granted,
            email=account.email,
            code_challenge=auth.code_challenge,
            access_type=auth.access_type,
            force_consent=auth.force_consent,
            include_granted_scopes=auth.include_granted_scopes,
        )
        params = {**state_param, "code": code.code, "scope": " ".join(code.scopes)}
        return RedirectResponse(with_query(auth.redirect_uri, params), status_code=302)

    async def token(request: Request) -> Response:
        form = parse_form(await request.body())
        grant_type = form.get("grant_type", "")
        kind = {
            "authorization_code": "token.authorization_code",
            "refresh_token": "token.refresh_token",
        }.get(grant_type, "token.other")
        failed = await gate(state, kind)
        if failed is not None:
            return failed
        client = _client_auth(state, request, form)
        if grant_type == "authorization_code":
            return _exchange_code(client, form)
        if grant_type == "refresh_token":
            return _refresh(client, form)
        raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _exchange_code(client: Client, form: dict[str, str]) -> Response:
        if not form.get("code"):
            raise OAuthError(400, "invalid_request", "Missing required parameter: code")
        code = state.redeem_code(form["code"])
        if code is None or code.client_id != client.client_id:
            raise OAuthError(400, "invalid_grant", "Bad Request")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        if code.code_challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                raise OAuthError(400, "invalid_grant", "Missing code verifier.")
            if not hmac.compare_digest(s256(verifier), code.code_challenge):
                raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
        access, grant = state.issue_tokens(
            email=code.email,
            client_id=client.client_id,
            scopes=code.scopes,
            with_refresh_token=code.issue_refresh_token,
        )
        body = _token_body(client, access)
        if grant is not None:
            body["refresh_token"] = grant.refresh_token
        return JSONResponse(body)

    def _refresh(client: Client, form: dict[str, str]) -> Response:
        if not form.get("refresh_token"):
            raise OAuthError(400, "invalid_request", "Missing required parameter: refresh_token")
        scopes = normalize_scopes(form.get("scope", "").split()) or None
        outcome = state.refresh(form["refresh_token"], client.client_id, scopes)
        if outcome == "invalid_scope":
            raise OAuthError(400, "invalid_scope", "Bad Request")
        if outcome == "unauthorized_client":
            raise OAuthError(401, "unauthorized_client", "Unauthorized")
        if isinstance(outcome, str):
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        access, _grant, rotated = outcome
        body = _token_body(client, access)
        if rotated is not None:
            body["refresh_token"] = rotated
        return JSONResponse(body)

    def _token_body(client: Client, access: AccessToken) -> dict[str, object]:
        body: dict[str, object] = {
            "access_token": access.token,
            "expires_in": DEFAULT_ACCESS_TTL,
            "scope": " ".join(access.scopes),
            "token_type": "Bearer",
        }
        if _wants_id_token(access.scopes):
            account = state.get_account(access.email)
            body["id_token"] = make_id_token(
                client=client,
                sub=account.sub if account else access.email,
                email=access.email,
                now=state.clock(),
            )
        return body

    async def revoke(request: Request) -> Response:
        failed = await gate(state, "revoke")
        if failed is not None:
            return failed
        form = parse_form(await request.body())
        token_value = form.get("token") or request.query_params.get("token", "")
        if not token_value or not state.revoke_token(token_value):
            raise OAuthError(400, "invalid_token", "Token expired or revoked")
        return JSONResponse({})

    async def userinfo(request: Request) -> Response:
        failed = await gate(state, "userinfo")
        if failed is not None:
            return failed
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        access = state.check_access_token(value.strip()) if scheme.lower() == "bearer" else None
        if access is None:
            raise OAuthError(401, "invalid_request", "Invalid Credentials")
        account = state.get_account(access.email)
        return JSONResponse(
            {
                "sub": account.sub if account else access.email,
                "email": access.email,
                "email_verified": True,
            }
        )

    return [
        Route("/o/oauth2/v2/auth", authorize_page, methods=["GET"]),
        Route("/o/oauth2/v2/auth", authorize_submit, methods=["POST"]),
        Route("/token", token, methods=["POST"]),
        Route("/revoke", revoke, methods=["POST"]),
        Route("/v1/userinfo", userinfo, methods=["GET", "POST"]),
    ]
