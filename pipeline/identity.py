"""Whose calendar a call touches — decided from what the integrator and the platform set, never
from tool arguments (those come from the LLM)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from vapi_calendar.pipeline.calls import Authenticated, Claim, IdentitySource
from vapi_calendar.ports.identity import IdentityProofs
from vapi_calendar.ports.stores import LinkStore, User, UserStore
from vapi_calendar.tools.errors import UserNotLinked

log = logging.getLogger(__name__)

MISSING_USER = (
    "This assistant is linked to a user that does not exist, so I cannot reach a calendar."
)


async def resolve_user(
    sources: Iterable[IdentitySource],
    users: UserStore,
    links: LinkStore,
    proofs: IdentityProofs | None,
) -> User:
    """The first source that names a user decides (the platform adapter orders them).

    A user named in metadata counts only with a valid proof (`proofs`; None trusts any claim):
    metadata can be set by whoever starts a call, e.g. a web widget's visitor. A claim without
    one is refused, not skipped, so a forged id never falls through to a stored link quietly.
    A user named in metadata that does not exist is an integrator's misconfiguration and is
    reported, never silently replaced by a later source; a stored link whose user is gone is
    skipped. A user an adapter authenticated (an API key) is taken as it is.
    """
    for source in sources:
        if isinstance(source, Authenticated):
            if (user := await users.get_user(source.user_id)) is None:
                raise UserNotLinked(MISSING_USER)
            return user
        if isinstance(source, Claim):
            if proofs is not None and not (
                source.token and proofs.valid(source.user_id, source.token)
            ):
                log.warning(
                    "call metadata named a user without a valid userToken; refused",
                    extra={"source": source.source, "claimed_user_id": source.user_id},
                )
                raise UserNotLinked()
            user = await users.get_user(source.user_id)
            if user is None:
                raise UserNotLinked(MISSING_USER)
            return user
        else:
            user_id = await links.linked_user(source.platform, source.kind, source.id)
            if user_id and (user := await users.get_user(user_id)) is not None:
                return user
    raise UserNotLinked()
