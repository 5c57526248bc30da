"""Google and Microsoft 365 on loopback: `python -m vapi_calendar.emulator --port 8765
--client-id X --client-secret Y --microsoft-client-id A --microsoft-client-secret B ...`."""

from __future__ import annotations

import argparse

import uvicorn

from vapi_calendar.emulator.app import create_emulator_app
from vapi_calendar.emulator.state import EmulatorState


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vapi_calendar.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--client-id", help="OAuth client to register at start-up")
    parser.add_argument("--client-secret", help="secret for --client-id")
    parser.add_argument(
        "--microsoft-client-id", help="Microsoft app registration to register at start-up"
    )
    parser.add_argument("--microsoft-client-secret", help="secret for --microsoft-client-id")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="EMAIL[=TIMEZONE]",
        help="Google account to create at start-up (repeatable)",
    )
    parser.add_argument(
        "--microsoft-account",
        action="append",
        default=[],
        metavar="EMAIL[=WINDOWS ZONE]",
        help="Microsoft account to create at start-up (repeatable)",
    )
    args = parser.parse_args(argv)
    if bool(args.client_id) != bool(args.client_secret):
        parser.error("--client-id and --client-secret go together")
    if bool(args.microsoft_client_id) != bool(args.microsoft_client_secret):
        parser.error("--microsoft-client-id and --microsoft-client-secret go together")
    state = EmulatorState({args.client_id: args.client_secret} if args.client_id else None)
    for spec in args.account:
        email, _, timezone = spec.partition("=")
        state.ensure_account(email, timezone or None)
    if args.microsoft_client_id:
        state.microsoft.register_client(args.microsoft_client_id, args.microsoft_client_secret)
    for spec in args.microsoft_account:
        email, _, timezone = spec.partition("=")
        state.microsoft.ensure_account(email, timezone=timezone or None)
    uvicorn.run(create_emulator_app(state), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
