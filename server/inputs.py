"""What an integrator may name things and how: one validation for the admin API, the CLI and the
settings, so each refuses exactly what the others refuse.

- User ids: 1-128 characters, letters, digits and `. _ : @ -`, starting with a letter or digit.
  They appear in URLs, logs and store keys; keep them boring.
- Assistant and phone-number ids (Vapi's, usually UUIDs): 1-128 characters, letters, digits and
  `. _ : -`, starting with a letter or digit. Nothing else can be one of Vapi's ids.
- Agent ids of Retell and ElevenLabs: the same as assistant ids.
- Phone numbers of Retell and ElevenLabs agents (links): E.164, `+` and 2-15 digits, as both
  platforms send them (`to_number`, `system__called_number`). Vapi's are linked by their id.
- Platforms that can be linked: `vapi`, `retell`, `elevenlabs`.
- API key names: up to 100 printable characters (a label for the integrator).
- Time zones: IANA names of a place ("America/New_York") or UTC; see
  `tools.timeparse.is_region_zone` for what is refused and why.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

from vapi_calendar.tools.timeparse import is_region_zone

PLATFORMS = ("vapi", "retell", "elevenlabs")
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
LINKED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_SHOWN = 64  # how much of a refused value a message repeats


def _shown(value: str) -> str:
    return repr(value[:_SHOWN] + ("…" if len(value) > _SHOWN else ""))


def user_id(value: str) -> str:
    if not USER_ID.fullmatch(value):
        raise ValueError(
            f"{_shown(value)} is not a valid user id: use 1-128 letters, digits or . _ : @ -, "
            "starting with a letter or digit"
        )
    return value


def linked_id(value: str) -> str:
    """An assistant or phone-number id."""
    if not LINKED_ID.fullmatch(value):
        raise ValueError(
            f"{_shown(value)} is not a valid id: use 1-128 letters, digits or . _ : -, "
            "starting with a letter or digit"
        )
    return value


def platform(value: str) -> str:
    if value not in PLATFORMS:
        raise ValueError(f"{_shown(value)} is not a platform: use one of {', '.join(PLATFORMS)}")
    return value


def phone_number(value: str) -> str:
    """A phone number in E.164 (Retell's and ElevenLabs' links)."""
    if not E164.fullmatch(value):
        raise ValueError(
            f"{_shown(value)} is not a phone number: use E.164, a + and 2-15 digits, "
            "e.g. +14155550123"
        )
    return value


def platform_phone_number(platform_name: str, value: str) -> str:
    """What names a phone number on a platform: Vapi's id, the others' E.164 number."""
    return linked_id(value) if platform_name == "vapi" else phone_number(value)


def key_name(value: str) -> str:
    if len(value) > 100 or not value.isprintable():
        raise ValueError("use up to 100 printable characters")
    return value


def timezone(value: str) -> str:
    if not is_region_zone(value):
        raise ValueError(
            f"{_shown(value)} is not a time zone: use an IANA name of a place, such as "
            "America/New_York or Europe/Berlin (not an abbreviation like EST or a fixed offset)"
        )
    return value


# How each is described in JSON Schema (the admin API's OpenAPI description): the same rules,
# while the validators above keep the messages.
USER_ID_SCHEMA = {"type": "string", "pattern": f"^{USER_ID.pattern}$", "maxLength": 128}
LINKED_ID_SCHEMA = {"type": "string", "pattern": f"^{LINKED_ID.pattern}$", "maxLength": 128}
TIMEZONE_SCHEMA = {
    "type": "string",
    "description": "an IANA time zone of a place (America/New_York, Europe/Berlin) or UTC",
    "examples": ["America/New_York", "Europe/Berlin", "UTC"],
}

UserId = Annotated[str, AfterValidator(user_id), WithJsonSchema(USER_ID_SCHEMA)]
LinkedId = Annotated[str, AfterValidator(linked_id), WithJsonSchema(LINKED_ID_SCHEMA)]
KeyName = Annotated[
    str, AfterValidator(key_name), WithJsonSchema({"type": "string", "maxLength": 100})
]
TimeZone = Annotated[str, AfterValidator(timezone), WithJsonSchema(TIMEZONE_SCHEMA)]
