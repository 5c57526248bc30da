"""The admin API's bodies, both ways: the models that validate what an integrator sends and the
models every answer is rendered through. `server/openapi.py` describes the API from exactly
these classes, so the description cannot drift from what is validated and answered.

Answers keep the JSON shapes documented in the README's admin API table (camelCase keys).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    SerializerFunctionWrapHandler,
    create_model,
    model_serializer,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from vapi_calendar.server.inputs import KeyName, TimeZone, UserId
from vapi_calendar.tools.rules import BookingRules

# -- requests ----------------------------------------------------------------------------------

# (Optional[...] rather than `| None`: the annotations are runtime values here.)
# What a rules update may hold: every booking rule, each optional, null resetting it. Only for
# the description: the update itself is merged into the stored rules and validated by
# `tools.rules` (`merge_rules`), whose messages name the field as an owner writes it.
RulesPatch = create_model(  # type: ignore[call-overload]
    "RulesPatch",
    __config__=ConfigDict(alias_generator=to_camel, extra="forbid"),
    __doc__="Booking rules to change: a key sent replaces the stored one, null resets it.",
    **{
        name: (
            Optional[Annotated[(info.annotation, *info.metadata)]]  # noqa: UP045
            if info.metadata
            else Optional[info.annotation],  # noqa: UP045
            Field(default=None, description=info.description),
        )
        for name, info in BookingRules.model_fields.items()
    },
)


class DescribedAs:
    """Annotates a field to be described (JSON Schema) as another model, validated as it is."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(self.model.__pydantic_core_schema__)


class Request(BaseModel):
    """A request body: exactly the fields described, each of exactly its JSON type (strict: no
    0 for false, no "5" for 5)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class CreateUser(Request):
    id: UserId
    timezone: TimeZone | None = Field(
        default=None,
        description="IANA name of a place, or UTC; omitted: the calendar's at connect time",
    )


class UpdateUser(Request):
    """A partial update: only the fields sent change; `rules` keys merge into the stored ones."""

    timezone: TimeZone | None = None
    rules: Annotated[dict[str, Any], DescribedAs(RulesPatch)] | None = None


class LinkUser(Request):
    """The body of every link: which user an agent, assistant or phone number acts for."""

    user_id: UserId = Field(alias="userId")


class NewApiKey(Request):
    name: KeyName = Field(default="", description="a label to tell the user's keys apart")


class ConnectLinkOptions(Request):
    # The link may connect a different account (or provider) than the one connected now.
    allow_account_change: bool = Field(default=False, alias="allowAccountChange")


# -- answers -----------------------------------------------------------------------------------


class Answer(BaseModel):
    """An answer body: camelCase keys; the fields named in `omitted_when_none` are left out of
    the JSON rather than sent as null (an optional detail, such as `revokeError`)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    omitted_when_none: ClassVar[frozenset[str]] = frozenset()

    # No return annotation: pydantic would describe the answer by it (Any) instead of the fields.
    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler):
        data = handler(self)
        for key in self.omitted_when_none:
            if data.get(key, "") is None:
                del data[key]
        return data

    def json_body(self) -> dict[str, Any]:
        body: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return body


DateTimeText = str  # an ISO 8601 date-time with offset, exactly as the store's datetime prints


def _date_time(description: str = "") -> Any:
    return Field(json_schema_extra={"format": "date-time"}, description=description or None)


class ErrorBody(Answer):
    error: str = Field(description="what is wrong, naming the field or path parameter")


class CalendarWarning(Answer):
    calendar_id: str
    reason: str
    since: DateTimeText = _date_time()


ConnectionStatus = Literal["not_connected", "connected", "needs_reconnect", "undecryptable"]


class ConnectionState(Answer):
    connected: bool
    status: ConnectionStatus
    email: str | None
    warnings: list[CalendarWarning] = Field(
        description="calendars the user's rules read that cannot be read right now"
    )


class CalendarState(ConnectionState):
    provider: Literal["google", "microsoft"] | None


class UserAnswer(Answer):
    id: str
    timezone: str
    created_at: DateTimeText = _date_time()
    rules: BookingRules | None = Field(
        description="the effective booking rules (defaults filled in); null if the stored ones "
        "are not valid"
    )
    calendar: CalendarState
    google: ConnectionState = Field(
        description="kept for integrations written before Microsoft 365: the Google "
        "connection, if that is what the user has"
    )


class DeletedUser(Answer):
    omitted_when_none = frozenset({"revokeError"})
    deleted: Literal[True]
    revoked: bool | None = Field(description="null when the user had no calendar connection")
    revoke_error: str | None = None


class Disconnected(Answer):
    omitted_when_none = frozenset({"revokeError"})
    disconnected: Literal[True]
    revoked: bool
    revoke_error: str | None = None


class ConnectLinkAnswer(Answer):
    url: str
    expires_at: DateTimeText = _date_time("when the link stops working (the link's own expiry)")
    allow_account_change: bool


class CallToken(Answer):
    user_id: str
    user_token: str


class ApiKeyInfo(Answer):
    id: str
    name: str
    created_at: DateTimeText = _date_time()


class IssuedApiKey(ApiKeyInfo):
    user_id: str
    key: str = Field(description="the key itself, shown this once: only its digest is stored")


class ApiKeyList(Answer):
    user_id: str
    api_keys: list[ApiKeyInfo]


Platform = Literal["vapi", "retell", "elevenlabs"]


class AgentLink(Answer):
    platform: Platform
    agent_id: str
    user_id: str


class PhoneNumberLink(Answer):
    platform: Platform
    phone_number: str
    user_id: str


class AssistantLink(Answer):
    assistant_id: str
    user_id: str


class VapiPhoneNumberLink(Answer):
    phone_number_id: str
    user_id: str
