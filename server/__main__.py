"""`python -m vapi_calendar.server`: the `vapi-calendar` command."""

from vapi_calendar.server.cli import main

main()
