"""The Retell and ElevenLabs fixtures are what those platforms send.

Retell's call objects validate against retell-sdk's own models (`PhoneCallResponse`,
`WebCallResponse`, discriminated by `call_type`), which refuse a call missing a required field.
ElevenLabs has no model for a webhook tool's body (it is the tool's own `request_body_schema`):
each fixture validates against the schema `elevenlabs-tools` prints for its tool, read as
JSON Schema, and its system variables are exactly those ElevenLabs fills in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
from retell.types import PhoneCallResponse, WebCallResponse

from vapi_calendar.server.elevenlabs.protocol import SYSTEM_VARIABLES
from vapi_calendar.server.elevenlabs.tool_definitions import request_body_schema
from vapi_calendar.server.tool_schemas import parameters
from vapi_calendar.tools.table import BY_NAME

FIXTURES = Path(__file__).parent.parent / "fixtures"
RETELL = sorted((FIXTURES / "retell").glob("*.json"))
ELEVENLABS = sorted((FIXTURES / "elevenlabs").glob("*.json"))
CALL_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "phone_call": PhoneCallResponse,
    "web_call": WebCallResponse,
}


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def tool_of(path: Path) -> str:
    return path.name.split(".")[0]


def test_there_are_fixtures_of_every_kind() -> None:
    names = [p.name for p in RETELL]
    assert any("phone_call" in n for n in names) and any("web_call" in n for n in names)
    assert any("outbound" in n for n in names) and any("args_only" in n for n in names)
    assert len(ELEVENLABS) >= 2


@pytest.mark.parametrize("path", RETELL, ids=lambda p: p.name)
def test_retell_fixture_matches_retells_models(path: Path) -> None:
    body = load(path)
    assert tool_of(path) in BY_NAME
    if "call" not in body:  # "Payload: args only": the body is the arguments
        jsonschema.validate(body, parameters(BY_NAME[tool_of(path)].arguments))
        return
    assert set(body) == {"name", "call", "args"}
    assert body["name"] == tool_of(path)
    call = CALL_MODELS[body["call"]["call_type"]].model_validate(body["call"])
    assert call.call_id and call.agent_id
    jsonschema.validate(body["args"], parameters(BY_NAME[tool_of(path)].arguments))


@pytest.mark.parametrize("missing", ["call_id", "agent_id", "from_number"])
def test_retells_models_refuse_a_call_missing_a_required_field(missing: str) -> None:
    call = load(FIXTURES / "retell" / "checkAvailability.phone_call.json")["call"]
    del call[missing]
    with pytest.raises(pydantic.ValidationError):
        PhoneCallResponse.model_validate(call)


@pytest.mark.parametrize("path", ELEVENLABS, ids=lambda p: p.name)
def test_elevenlabs_fixture_matches_the_printed_tool_schema(path: Path) -> None:
    body = load(path)
    schema = request_body_schema(BY_NAME[tool_of(path)].arguments)
    closed = {**schema, "additionalProperties": False}
    jsonschema.validate(body, closed)
    for key in body:
        if key.startswith("system__"):
            assert key in SYSTEM_VARIABLES
            assert schema["properties"][key]["dynamic_variable"] == key
