"""Whose calendar a call touches — decided from what the integrator and Vapi set, never the LLM."""

from __future__ import annotations

from server.store import Store, User
from server.vapi import CallInfo
from tools.errors import UserNotLinked


async def resolve_user(call: CallInfo, store: Store) -> User:
    """Per-call override metadata, then the assistant's metadata, then the stored link.

    The first source that names a user decides; a named user that does not exist is an
    integrator's misconfiguration and is reported, never silently replaced by a later source.
    """
    for named in (call.override_user_id, call.assistant_user_id):
        if named:
            user = await store.get_user(named)
            if user is None:
                raise UserNotLinked(
                    "This assistant is linked to a user that does not exist, "
                    "so I cannot reach a calendar."
                )
            return user
    if call.assistant_id:
        user_id = await store.user_for_assistant(call.assistant_id)
        if user_id and (user := await store.get_user(user_id)) is not None:
            return user
    raise UserNotLinked()
