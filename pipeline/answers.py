"""Answering each tool call id once: a redelivered call gets the stored answer, not a second run.

Errors are never stored, so a retry after a transient failure runs again. Records live in the
store (first writer wins), so this holds across processes and restarts.
"""

from __future__ import annotations

import json
from typing import Any

from vapi_calendar.ports.stores import RecordStore


class CallAnswers:
    """The answer record of one tool call (`tools.context.Answers`).

    Answers hold what callers said and heard (names, times), so they are kept only as long as a
    redelivery can plausibly arrive (`retention_seconds`, ANSWER_RETENTION_HOURS) and belong to
    the user: deleting the user deletes them.
    """

    def __init__(
        self,
        records: RecordStore,
        kind: str,
        user_id: str,
        tool_call_id: str,
        *,
        retention_seconds: float,
    ) -> None:
        self._records = records
        self._owner = user_id
        self._ttl = retention_seconds
        self._answer_key = f"{kind}-answer:{user_id}:{tool_call_id}"
        self._started_key = f"{kind}-started:{user_id}:{tool_call_id}"
        self.settled = False  # an answer is on record for this call (ours or an earlier one)

    async def recorded(self) -> dict[str, Any] | None:
        stored = await self._records.get_record(self._answer_key)
        if stored is None:
            return None
        self.settled = True
        answer: dict[str, Any] = json.loads(stored)
        return answer

    async def record(self, answer: dict[str, Any]) -> dict[str, Any]:
        self.settled = True
        stored = json.dumps(answer)
        if await self._records.put_record(self._answer_key, stored, self._ttl, owner=self._owner):
            return answer
        # A concurrent delivery of the same call finished first: its answer stands.
        return await self.recorded() or answer

    async def first_attempt(self) -> bool:
        return await self._records.put_record(self._started_key, "1", self._ttl, owner=self._owner)
