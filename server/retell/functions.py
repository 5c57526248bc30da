"""POST /retell/functions/{toolName}: verify Retell's signature → parse → the pipeline → answer.

`X-Retell-Signature` is checked on the raw body before anything else (401 otherwise, with
nothing run): `v=<unix ms>,d=<hex HMAC-SHA256 of body + ms>` keyed with `RETELL_API_KEY`, within
five minutes, as retell-sdk's `verify` does (`support.signing.retell_signature_valid`). Without
`RETELL_API_KEY` every call is refused.

The answer is a 200 whose body is the JSON Retell hands its LLM (`server/model_answers.py`):
Retell treats a non-2xx as a failed function (and may retry it), so failures are sentences in
a 200 too. Only transport problems get other codes: 401, 400 for a body that is not JSON.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vapi_calendar.server.http import json_error
from vapi_calendar.server.model_answers import answer
from vapi_calendar.server.retell.protocol import MalformedRequest, parse_function_call
from vapi_calendar.server.services import Services
from vapi_calendar.support.signing import retell_signature_valid

SIGNATURE_HEADER = "X-Retell-Signature"
FUNCTIONS_PATH = "/retell/functions"


def _authenticated(services: Services, request: Request, body: bytes) -> bool:
    api_key = services.settings.retell_api_key
    signature = request.headers.get(SIGNATURE_HEADER)
    if api_key is None or not signature:
        return False
    now_ms = int(time.time() * 1000)
    return retell_signature_valid(body, api_key.get_secret_value(), signature, now_ms)


async def retell_function(request: Request) -> Response:
    services: Services = request.app.state.services
    body = await request.body()
    if not _authenticated(services, request, body):
        return json_error(401, "unauthorized: invalid or missing X-Retell-Signature")
    try:
        tool_request = parse_function_call(request.path_params["tool"], body, request.headers)
    except MalformedRequest as exc:
        return json_error(400, str(exc))
    (outcome,) = await services.pipeline.answer(tool_request)
    return JSONResponse(answer(outcome))
