"""Run one message's tool calls: resolve → validate → open the calendar → run → answer once.

Every tool call gets its own outcome, in call order; nothing a tool does can fail the others.
The per-call budget is both a deadline the calendar adapter reads (to decide whether a retry
still fits) and a hard stop, so the caller hears a sentence instead of silence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vapi_calendar.pipeline.answers import CallAnswers
from vapi_calendar.pipeline.calls import ToolCall, ToolOutcome, ToolRequest
from vapi_calendar.pipeline.identity import resolve_user
from vapi_calendar.ports.calendar import CalendarAccess
from vapi_calendar.ports.clock import Clock
from vapi_calendar.ports.identity import IdentityProofs
from vapi_calendar.ports.locks import Locks
from vapi_calendar.ports.stores import CallerStore, ConnectedUser, RecordStore
from vapi_calendar.support.budget import time_budget
from vapi_calendar.support.keyed import KeyedSemaphore, WaitTimeout
from vapi_calendar.support.log_line import add_to_request_line
from vapi_calendar.support.metrics import Metrics, tool_label
from vapi_calendar.tools.arguments import parse_arguments
from vapi_calendar.tools.context import ToolContext
from vapi_calendar.tools.errors import (
    InvalidArguments,
    ToolError,
    TooSlow,
    Unexpected,
    UnknownTool,
    UserBusy,
)
from vapi_calendar.tools.table import BY_NAME, Tool

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    budget_seconds: float  # every tool call answers within this
    calls_per_user: int  # tool calls one user may have in flight
    # How long a call over the per-user cap waits for a place before answering "busy".
    wait_seconds: float
    # How long answers are kept for redeliveries (ANSWER_RETENTION_HOURS).
    answer_retention_seconds: float = 24 * 3600


class ToolPipeline:
    def __init__(
        self,
        *,
        callers: CallerStore,
        records: RecordStore,
        calendars: CalendarAccess,
        locks: Locks,
        proofs: IdentityProofs | None,
        metrics: Metrics,
        clock: Clock,
        limits: Limits,
        tools: Sequence[Tool] | None = None,
    ) -> None:
        self._callers = callers
        self._records = records
        self._calendars = calendars
        self._locks = locks
        self._proofs = proofs
        self._metrics = metrics
        self._clock = clock
        self._limits = limits
        self._tools = BY_NAME if tools is None else {tool.name: tool for tool in tools}
        # The cap guards the shared Google threads: one tenant cannot take every one.
        self._per_user = KeyedSemaphore(limits.calls_per_user)
        # Metric children looked up once (a label lookup takes a lock each time).
        self._observe_user_slot_wait = metrics.lock_wait_seconds.labels(lock="user_slot").observe
        self._counted: dict[tuple[str, str], tuple[Any, Any]] = {}

    async def answer(self, request: ToolRequest) -> list[ToolOutcome]:
        started = time.perf_counter()
        user: ConnectedUser | ToolError
        try:
            user = await resolve_user(request.identity, self._callers, self._proofs)
        except ToolError as exc:
            user = exc
        if len(request.calls) == 1:  # the usual message: no task to create for it
            outcomes = [await self._answer_one(request, request.calls[0], user)]
        else:
            outcomes = await asyncio.gather(
                *(self._answer_one(request, c, user) for c in request.calls)
            )
        answered: dict[str, object] = {
            "platform": request.platform,
            "call_id": request.call.call_id,
            "tools": [c.name for c in request.calls],
            "user_id": user.user.id if isinstance(user, ConnectedUser) else None,
            "outcomes": ["error" if o.error is not None else "ok" for o in outcomes],
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        # On the request's own log line when there is one (one line per webhook), else its own.
        if not add_to_request_line("tool calls answered", answered):
            log.info("tool calls answered", extra=answered)
        return list(outcomes)

    async def _answer_one(
        self, request: ToolRequest, call: ToolCall, user: ConnectedUser | ToolError
    ) -> ToolOutcome:
        budget = self._limits.budget_seconds
        label = tool_label(call.name, self._tools)
        started = time.perf_counter()
        outcome = "ok"
        self._metrics.tool_calls_in_flight.inc()
        try:
            # The deadline (for retries deep down) and the hard stop share one budget.
            with time_budget(budget):
                async with asyncio.timeout(budget):
                    result = await self._run(request, call, user)
            return ToolOutcome(call.id, call.name, result=result)
        except ToolError as exc:
            outcome = "busy" if isinstance(exc, UserBusy) else "error"
            return ToolOutcome(call.id, call.name, error=exc)
        except TimeoutError:
            outcome = "timeout"
            log.warning("tool call exceeded its time budget", extra={"tool": label})
            return ToolOutcome(call.id, call.name, error=TooSlow())
        except Exception:
            outcome = "unexpected"
            log.exception("tool call failed unexpectedly", extra={"tool": label})
            return ToolOutcome(call.id, call.name, error=Unexpected())
        finally:
            self._metrics.tool_calls_in_flight.dec()
            if (counted := self._counted.get((label, outcome))) is None:
                counted = self._counted[label, outcome] = (
                    self._metrics.tool_calls.labels(tool=label, outcome=outcome),
                    self._metrics.tool_seconds.labels(tool=label),
                )
            counted[0].inc()
            counted[1].observe(time.perf_counter() - started)

    async def _run(
        self, request: ToolRequest, call: ToolCall, found: ConnectedUser | ToolError
    ) -> dict[str, Any]:
        tool = self._tools.get(call.name)
        if tool is None:
            raise UnknownTool(f"The calendar action {call.name[:64]!r} is not available.")
        if call.arguments_error:
            raise InvalidArguments(call.arguments_error)
        if isinstance(found, ToolError):
            raise found
        user = found.user
        # Arguments first: a call that cannot run must not cost a token refresh.
        args = parse_arguments(tool.arguments, dict(call.arguments))
        answers = CallAnswers(
            self._records,
            tool.answer_key or tool.name,
            user.id,
            call.id,
            retention_seconds=self._limits.answer_retention_seconds,
        )
        # An id derived from the arguments is also the id of the same question asked again
        # later in the conversation: only a tool that needs its answer to stay idempotent
        # (a booking) answers from the record then; the others simply run again.
        keeps_answer = tool.answer_key is not None and not (call.derived_id and tool.idempotent)
        if keeps_answer:
            look = answers.claim if tool.marks_attempts else answers.recorded
            if (recorded := await look()) is not None:
                return recorded
        calendar = await self._calendars.open(user.id, found.connection)
        context = ToolContext(
            user=user,
            calendar=calendar,
            locks=self._locks,
            answers=answers,
            call=request.call,
            tool_call_id=call.id,
            now=self._clock(),
        )
        # Waiting for a token refresh (one shared refresh per user) takes no place under the
        # cap, so it happens above.
        try:
            async with self._per_user.hold(
                user.id,
                wait_seconds=self._limits.wait_seconds,
                on_contended_wait=self._observe_user_slot_wait,
            ):
                result = await tool.run(context, args)
        except WaitTimeout:
            raise UserBusy() from None
        if keeps_answer and not answers.settled:
            result = await answers.record(result)
        return result
