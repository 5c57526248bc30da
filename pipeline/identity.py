"""Whose calendar a call touches — decided from what the integrator and the platform set, never
from tool arguments (those come from the LLM)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from vapi_calendar.pipeline.calls import Authenticated, Claim, IdentitySource
from vapi_calendar.ports.identity import IdentityProofs
from vapi_calendar.ports.stores import CallerStore, ConnectedUser
from vapi_calendar.tools.errors import UserNotLinked

log = logging.getLogger(__name__)

MISSING_USER = (
    "This assistant is linked to a user that does not exist, so I cannot reach a calendar."
)


async def resolve_user(
    sources: Iterable[IdentitySource], callers: CallerStore, proofs: IdentityProofs | None
) -> ConnectedUser:
    """The first source that names a user decides (the platform adapter orders them); the
    user's connection is read with it, in the same round trip where the store allows.

    A user named in metadata counts only with a valid proof (`proofs`; None trusts any claim):
    metadata can be set by whoever starts a call, e.g. a web widget's visitor. A claim without
    one is refused, not skipped, so a forged id never falls through to a stored link quietly.
    A user named in metadata that does not exist is an integrator's misconfiguration and is
    reported, never silently replaced by a later source; a stored link whose user is gone is
    skipped. A user an adapter authenticated (an API key) is taken as it is.
    """
    for source in sources:
        if isinstance(source, Authenticated):
            if (found := await callers.user_with_connection(source.user_id)) is None:
                raise UserNotLinked(MISSING_USER)
            return found
        if isinstance(source, Claim):
            if proofs is not None and not (
                source.token and proofs.valid(source.user_id, source.token)
            ):
                log.warning(
                    "call metadata named a user without a valid userToken; refused",
                    extra={"source": source.source, "claimed_user_id": source.user_id},
                )
                raise UserNotLinked()
            if (found := await callers.user_with_connection(source.user_id)) is None:
                raise UserNotLinked(MISSING_USER)
            return found
        else:
            found = await callers.linked_user_with_connection(
                source.platform, source.kind, source.id
            )
            if found is not None:
                return found
    raise UserNotLinked()
