"""Tool arguments as the LLM sends them, validated into models with one-sentence errors."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from vapi_calendar.support.validation import first_error
from vapi_calendar.tools.errors import InvalidArguments


class ToolArguments(BaseModel):
    """Tool arguments as the LLM sends them (camelCase, unknown keys ignored)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", str_strip_whitespace=True
    )

    @model_validator(mode="before")
    @classmethod
    def _null_is_not_given(cls, data: Any) -> Any:
        """`null` means "not given", for every argument: strict-mode schemas make each optional
        argument required and nullable, so a model sends null for what it leaves out. A
        required argument sent as null is then reported as missing ("I need …")."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


A = TypeVar("A", bound=ToolArguments)


def parse_arguments(model: type[A], arguments: dict[str, Any]) -> A:
    """Validate, turning the first problem into a sentence the assistant can act on."""
    try:
        return model.model_validate(arguments)
    except ValidationError as exc:
        error = first_error(exc)
        field = error.dotted(empty="arguments")
        if error.kind == "missing":
            raise InvalidArguments(f"I need {field} to do that.") from None
        raise InvalidArguments(f"The value for {field} is not valid: {error.message}.") from None
