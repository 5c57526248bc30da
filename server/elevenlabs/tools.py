"""POST /elevenlabs/tools/{toolName}: check the tool secret → parse → the pipeline → answer.

ElevenLabs signs only its post-call webhooks, not tool calls: a webhook tool authenticates with
the headers it is configured to send. The printed tools send `Authorization` from a workspace
secret whose value is `Bearer <ELEVENLABS_TOOL_SECRET>`; it is compared in constant time, and
anything else is 401 before anything runs. Without `ELEVENLABS_TOOL_SECRET` every call is
refused.

After that, always 200: ElevenLabs' default error handling ("auto") hides a non-2xx answer
from the agent, which would then guess. Every failure is a sentence in the JSON answer
(`server/model_answers.py`), even a body that is not JSON.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vapi_calendar.server.elevenlabs.protocol import parse_tool_call
from vapi_calendar.server.http import json_error
from vapi_calendar.server.model_answers import answer
from vapi_calendar.server.services import Services
from vapi_calendar.support.bearer import bearer_token
from vapi_calendar.support.signing import same

TOOLS_PATH = "/elevenlabs/tools"


def _authenticated(services: Services, request: Request) -> bool:
    secret = services.settings.elevenlabs_tool_secret
    presented = bearer_token(request.headers.get("authorization"))
    return (
        secret is not None and presented is not None and same(presented, secret.get_secret_value())
    )


async def elevenlabs_tool(request: Request) -> Response:
    services: Services = request.app.state.services
    if not _authenticated(services, request):
        return json_error(401, "unauthorized: a valid tool secret is required")
    body = await request.body()
    (outcome,) = await services.pipeline.answer(parse_tool_call(request.path_params["tool"], body))
    return JSONResponse(answer(outcome))
