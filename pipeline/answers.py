"""Answering each tool call id once: a redelivered call gets the stored answer, not a second run.

Errors are never stored, so a retry after a transient failure runs again. Records live in the
store (first writer wins), so this holds across processes and restarts. They are written with
`durable=False`: they matter while calls are in flight, and the store need not wait for the
disk (a power cut or an OS crash may lose the last ones; the booking's event id still prevents
a second event, see `tools/booking.py`).
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
        self._first: bool | None = None  # this delivery took the first-attempt marker

    async def recorded(self) -> dict[str, Any] | None:
        return self._settle(await self._records.get_record(self._answer_key))

    async def claim(self) -> dict[str, Any] | None:
        """`recorded()`, taking the first-attempt marker in the same store round trip, for a
        tool that asks `first_attempt()`: it then gets its answer without another one."""
        self._first, stored = await self._records.put_record_and_read(
            self._started_key,
            "1",
            self._ttl,
            read=self._answer_key,
            owner=self._owner,
            durable=False,
        )
        return self._settle(stored)

    def _settle(self, stored: str | None) -> dict[str, Any] | None:
        if stored is None:
            return None
        self.settled = True
        answer: dict[str, Any] = json.loads(stored)
        return answer

    async def record(self, answer: dict[str, Any]) -> dict[str, Any]:
        self.settled = True
        stored = json.dumps(answer)
        if await self._records.put_record(
            self._answer_key, stored, self._ttl, owner=self._owner, durable=False
        ):
            return answer
        # A concurrent delivery of the same call finished first: its answer stands.
        return await self.recorded() or answer

    async def first_attempt(self) -> bool:
        if self._first is None:
            self._first = await self._records.put_record(
                self._started_key, "1", self._ttl, owner=self._owner, durable=False
            )
        return self._first
