"""One engine, every platform (issue #13): the same guarantees whichever platform asks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from tests.harness.app import App, tool_calls_message
from tests.harness.platforms import (
    RETELL_AGENT,
    api_key,
    mcp_calls,
    retell_answer,
    retell_request,
)

SLOT = {"startDateTime": "2031-03-11T10:00:00", "summary": "Haircut"}


def test_the_same_slot_booked_at_once_through_vapi_retell_and_mcp_makes_one_event(
    app: App,
) -> None:
    app.admin.put(f"/api/links/retell/{RETELL_AGENT}", json={"userId": "ana"})
    key = api_key(app)
    start = threading.Barrier(3)

    def vapi() -> dict[str, Any]:
        start.wait()
        return app.call_tool("scheduleAppointment", SLOT, tool_call_id="vapi-1")

    def retell() -> dict[str, Any]:
        start.wait()
        body = retell_request("scheduleAppointment", SLOT, call_id="retell-1")
        return retell_answer(app, "scheduleAppointment", body)

    def mcp() -> dict[str, Any]:
        start.wait()
        (result,) = asyncio.run(
            mcp_calls(app.url, key, [("scheduleAppointment", SLOT)], headers={"X-Call-Id": "mcp-1"})
        )
        return dict(result.structured_content or {})

    answers: dict[str, dict[str, Any]] = {}

    def run(name: str, work: Callable[[], dict[str, Any]]) -> None:
        answers[name] = work()

    threads = [
        threading.Thread(target=run, args=(name, work))
        for name, work in (("vapi", vapi), ("retell", retell), ("mcp", mcp))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == ["mcp", "retell", "vapi"]
    booked = [name for name, answer in answers.items() if answer.get("booked") is True]
    refused = [answer for answer in answers.values() if answer.get("booked") is False]
    assert len(booked) == 1, answers
    assert len(refused) == 2 and all(a["reason"] == "busy" for a in refused), answers
    (event,) = app.emulator.control.events("ana@example.com")
    assert event["start"]["dateTime"].startswith("2031-03-11T10:00:00")


def test_a_vapi_webhook_still_answers_after_the_others(app: App) -> None:
    """The Vapi webhook is untouched by the other adapters: the same body, the same answer."""
    body = tool_calls_message(
        [("c1", "checkAvailability", {"startDateTime": "2031-03-11T09:00:00"})]
    )
    (result,) = app.results(body)
    assert '"available":true' in result["result"]
