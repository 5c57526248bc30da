"""`vapi-calendar vapi-tools`: every tool's definition, validated against Vapi's own SDK models."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel
from vapi import CreateFunctionToolDto
from vapi.tools import CreateToolsRequest_Function

from vapi_calendar.server.vapi.tool_definitions import parameters
from vapi_calendar.tools.arguments import parse_arguments
from vapi_calendar.tools.errors import InvalidArguments
from vapi_calendar.tools.table import BY_NAME, TOOLS, Tool

SERVER = "https://calendar.example.com"
JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # No webhook settings from the environment: the output must not depend on the machine.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAPI_")}
    return subprocess.run(
        [sys.executable, "-m", "vapi_calendar.server.cli", "vapi-tools", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def printed() -> dict[str, Any]:
    done = run_cli(
        "--server-url", SERVER, "--credential-id", "cred_123", "--timezone", "America/New_York"
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def unknown_fields(model: Any, where: str = "") -> list[str]:
    """Keys the SDK model did not recognise (its models allow extras, so check explicitly)."""
    found = [f"{where}.{key}" for key in (model.model_extra or {})]
    for name in type(model).model_fields:
        value = getattr(model, name)
        values = (
            value
            if isinstance(value, list)
            else list(value.values())
            if isinstance(value, dict)
            else [value]
        )
        for item in values:
            if isinstance(item, BaseModel):
                found += unknown_fields(item, f"{where}.{name}")
    return found


def test_every_registered_tool_has_a_definition_and_vice_versa(printed: dict) -> None:
    names = [body["function"]["name"] for body in printed["tools"]]
    assert sorted(names) == sorted(BY_NAME)
    assert len(names) == len(set(names))


def test_each_body_validates_as_vapis_create_function_tool_dto(printed: dict) -> None:
    for body in printed["tools"]:
        dto = CreateFunctionToolDto.model_validate(body)
        # The DTO leaves the discriminator to the request union (`type: "function"`).
        assert unknown_fields(dto) == [".type"], body["function"]["name"]
        request = CreateToolsRequest_Function.model_validate(body)
        assert unknown_fields(request) == [] and request.type == "function"
        assert dto.function is not None and dto.server is not None
        assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", dto.function.name)
        assert dto.server.url == SERVER + "/vapi/webhook"
        assert dto.server.credential_id == "cred_123"
        assert dto.server.timeout_seconds == 20
        kinds = [message.type for message in dto.messages or []]
        assert kinds == ["request-start", "request-response-delayed", "request-failed"]
        assert all(message.content for message in dto.messages or [])
        params = dto.function.parameters
        assert params is not None and params.type == "object"
        assert set(params.required or []) <= set(params.properties)
        for prop in params.properties.values():
            assert prop.type in JSON_TYPES and prop.description
            if prop.type == "array":
                assert prop.items is not None and prop.items.type in JSON_TYPES


def test_schemas_match_the_argument_models() -> None:
    for spec in TOOLS:
        schema = parameters(spec.arguments)
        fields = spec.arguments.model_fields
        assert set(schema["properties"]) == {f.alias for f in fields.values()}
        assert set(schema["required"]) == {f.alias for f in fields.values() if f.is_required()}
    check = parameters(next(s.arguments for s in TOOLS if s.name == "checkAvailability"))
    assert check["required"] == ["startDateTime"]
    assert check["properties"]["durationMinutes"]["type"] == "integer"
    assert "Between 5 and 720" in check["properties"]["durationMinutes"]["description"]


def test_descriptions_tell_the_llm_how_to_send_times(printed: dict) -> None:
    for body in printed["tools"]:
        if "startDateTime" in body["function"]["parameters"]["required"]:
            assert "without an offset" in body["function"]["description"]
        assert len(body["function"]["description"]) < 1000


def test_system_prompt_renders_todays_date_in_the_users_zone(printed: dict) -> None:
    prompt = printed["systemPrompt"]
    assert '{{"now" | date: "%A, %B %d, %Y, %I:%M %p", "America/New_York"}}' in prompt
    assert "findAppointments" in prompt and "yes" in prompt


def test_credential_is_optional_and_bad_input_is_refused() -> None:
    done = run_cli("--server-url", SERVER + "/vapi/webhook")
    assert done.returncode == 0, done.stderr
    (body, *_) = json.loads(done.stdout)["tools"]
    assert body["server"] == {"url": SERVER + "/vapi/webhook", "timeoutSeconds": 20}
    bad_zone = run_cli("--server-url", SERVER, "--timezone", "Mars/Olympus")
    assert bad_zone.returncode != 0 and "Mars/Olympus" in bad_zone.stderr
    bad_url = run_cli("--server-url", "calendar.example.com")
    assert bad_url.returncode != 0 and "absolute URL" in bad_url.stderr


# --- strict mode ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict() -> dict[str, Any]:
    done = run_cli("--server-url", SERVER, "--strict", "--auth", "none")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_strict_bodies_are_vapi_dtos_with_strict_functions(strict: dict) -> None:
    for body in strict["tools"]:
        dto = CreateFunctionToolDto.model_validate(body)
        assert unknown_fields(dto) == [".type", ".function.parameters.additionalProperties"]
        assert dto.function is not None and dto.function.strict is True


def test_strict_schemas_follow_openai_structured_outputs_rules(strict: dict) -> None:
    for body in strict["tools"]:
        schema = body["function"]["parameters"]
        model = BY_NAME[body["function"]["name"]].arguments
        required = {f.alias for f in model.model_fields.values() if f.is_required()}
        # Every property required, every object closed, optionals nullable (only those).
        assert set(schema["required"]) == set(schema["properties"])
        assert schema["additionalProperties"] is False
        for name, prop in schema["properties"].items():
            if name in required:
                assert isinstance(prop["type"], str), name
            else:
                assert prop["type"][1] == "null" and prop["type"][0] in JSON_TYPES, name


@pytest.mark.parametrize("spec", TOOLS, ids=lambda spec: spec.name)
def test_a_strict_call_validates_and_means_what_leaving_things_out_means(spec: Tool) -> None:
    schema = parameters(spec.arguments, strict=True)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    minimal = {name: EXAMPLES[name] for name in schema["properties"] if name in REQUIRED[spec.name]}
    as_strict = {name: minimal.get(name) for name in schema["properties"]}
    assert not list(validator.iter_errors(as_strict))
    if set(minimal) != set(as_strict):
        assert list(validator.iter_errors(minimal))  # strict: leaving one out is invalid
    assert list(validator.iter_errors({**as_strict, "extra": 1}))  # and so is an extra one
    # The server reads each null as "not given".
    assert parse_arguments(spec.arguments, as_strict) == parse_arguments(spec.arguments, minimal)


EXAMPLES = {"startDateTime": "2031-03-11T09:00:00", "eventId": "evt-1"}
REQUIRED = {
    spec.name: {f.alias for f in spec.arguments.model_fields.values() if f.is_required()}
    for spec in TOOLS
}


@pytest.mark.parametrize("spec", TOOLS, ids=lambda spec: spec.name)
def test_a_required_argument_sent_as_null_is_missing(spec: Tool) -> None:
    for name in REQUIRED[spec.name]:
        others = {other: EXAMPLES[other] for other in REQUIRED[spec.name] if other != name}
        with pytest.raises(InvalidArguments, match=f"I need {name}"):
            parse_arguments(spec.arguments, {**others, name: None})


def test_the_default_output_is_not_strict(printed: dict) -> None:
    for body in printed["tools"]:
        assert "strict" not in body["function"]
        assert "additionalProperties" not in body["function"]["parameters"]


# --- the credential body --------------------------------------------------------------------------


def test_no_credential_without_a_configured_plan(printed: dict) -> None:
    assert "credential" not in printed
    refused = run_cli("--server-url", SERVER, "--auth", "hmac")
    assert refused.returncode != 0 and "no hmac webhook credential is configured" in refused.stderr


def test_tool_level_request_failed_message_stays_for_an_unreachable_server(printed: dict) -> None:
    # Every error answer carries its own message, which Vapi prefers; the tool's is heard only
    # when this server cannot answer at all.
    for body in printed["tools"]:
        (failed,) = [m for m in body["messages"] if m["type"] == "request-failed"]
        assert failed["content"].startswith("Sorry, I")
