"""The admin API's OpenAPI 3.1 description, generated from the route table (`admin.OPERATIONS`)
and the pydantic models that validate its requests and render its answers: nothing here is
written by hand that the code could contradict.

Served at GET /api/openapi.json (no token needed: it holds only shapes). JSON Schema comes from
pydantic (`models_json_schema`, draft 2020-12, which OpenAPI 3.1 uses as it is).
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vapi_calendar.server.admin import OPENAPI_PATH, OPERATIONS, PATH_PARAMS, Operation
from vapi_calendar.server.admin_models import ErrorBody

REF = "#/components/schemas/{model}"
SECURITY_SCHEME = "adminToken"

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "The body or a path parameter is not valid; the message names it",
    401: "No valid admin bearer token (or none is configured on the server)",
    413: "The body is larger than MAX_BODY_BYTES",
}


def _package_version() -> str:
    try:
        return version("vapi-calendar")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def _json(schema_ref: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema_ref}}}


def _operation(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    error = refs[(ErrorBody, "serialization")]
    responses: dict[str, Any] = {}
    if op.answer is None:
        responses[str(op.status)] = {"description": _STATUS_TEXT[op.status]}
    else:
        responses[str(op.status)] = _json(
            refs[(op.answer, "serialization")], _STATUS_TEXT[op.status]
        )
        if op.links:
            responses[str(op.status)]["links"] = {
                name: {"operationId": link.operation_id, "parameters": dict(link.parameters)}
                for name, link in op.links.items()
            }
    if op.can_be_bad:
        responses["400"] = _json(error, _STATUS_TEXT[400])
    responses["401"] = _json(error, _STATUS_TEXT[401])
    for status, description in sorted(op.refusals.items()):
        responses[str(status)] = _json(error, description)
    if op.body is not None:
        responses["413"] = _json(error, _STATUS_TEXT[413])
    described: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": PATH_PARAMS[name].description,
                "schema": dict(PATH_PARAMS[name].schema),
            }
            for name in op.path_params
        ],
        "responses": dict(sorted(responses.items())),
    }
    if op.handler.__doc__:
        described["description"] = " ".join(op.handler.__doc__.split())
    if op.body is not None:
        described["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    return described


@cache
def admin_api_description() -> dict[str, Any]:
    models: set[tuple[type[BaseModel], JsonSchemaMode]] = {(ErrorBody, "serialization")}
    for op in OPERATIONS:
        if op.body is not None:
            models.add((op.body, "validation"))
        if op.answer is not None:
            models.add((op.answer, "serialization"))
    ordered = sorted(models, key=lambda pair: (pair[0].__name__, pair[1]))
    refs, definitions = models_json_schema(ordered, ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vapi-calendar admin API",
            "version": _package_version(),
            "description": "Users, their calendar connections and API keys, and which user each "
            "platform's agent or phone number acts for. Every operation needs the admin bearer "
            "token (ADMIN_TOKEN; demo mode generates one and prints it). Errors are "
            '{"error": "<what is wrong>"}.',
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {SECURITY_SCHEME: {"type": "http", "scheme": "bearer"}},
        },
        "security": [{SECURITY_SCHEME: []}],
    }


async def openapi_document(request: Request) -> Response:
    return JSONResponse(admin_api_description())


route = Route(OPENAPI_PATH, openapi_document, methods=["GET"])
