"""Windows time-zone names ⇄ IANA, through tzlocal's CLDR-generated tables.

Outlook stores a mailbox's zone as a Windows name ("Pacific Standard Time"); Graph's
`mailboxSettings.timeZone` can also hold an IANA name ("When updating the preferred time zone
for a user, specify it in the Windows or Internet Assigned Numbers Authority (IANA) time zone …
format", user-update-mailboxsettings). Writing an event, Graph accepts "any of the time zones
supported by Windows" and only a fixed list of IANA names (dateTimeTimeZone), so events are
written with the Windows name. `tzlocal.windows_tz` is generated from CLDR's windowsZones
(territory 001) — a maintained mapping rather than a table of our own.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz


def iana_zone(name: str | None) -> str | None:
    """The IANA zone a Graph time-zone name stands for; None for a custom or unknown one
    ("Customized Time Zone", "tzone://Microsoft/Custom", an empty string)."""
    if not name:
        return None
    if name in win_tz:
        return win_tz[name]
    if "/" in name or name == "UTC":
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return None
        return name
    return None


def windows_zone(name: str) -> str | None:
    """The Windows name Outlook shows an IANA zone as; None when CLDR has no mapping."""
    return tz_win.get(name)
