"""What an integrator may name things and how: one validation for the admin API, the CLI and the
settings, so each refuses exactly what the others refuse.

- User ids: 1-128 characters, letters, digits and `. _ : @ -`, starting with a letter or digit.
  They appear in URLs, logs and store keys; keep them boring.
- Assistant and phone-number ids (Vapi's, usually UUIDs): 1-128 characters, letters, digits and
  `. _ : -`, starting with a letter or digit. Nothing else can be one of Vapi's ids.
- Time zones: IANA names of a place ("America/New_York") or UTC; see
  `tools.timeparse.is_region_zone` for what is refused and why.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from vapi_calendar.tools.timeparse import is_region_zone

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


def timezone(value: str) -> str:
    if not is_region_zone(value):
        raise ValueError(
            f"{_shown(value)} is not a time zone: use an IANA name of a place, such as "
            "America/New_York or Europe/Berlin (not an abbreviation like EST or a fixed offset)"
        )
    return value


UserId = Annotated[str, AfterValidator(user_id)]
LinkedId = Annotated[str, AfterValidator(linked_id)]
TimeZone = Annotated[str, AfterValidator(timezone)]
