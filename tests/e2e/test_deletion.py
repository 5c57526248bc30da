"""Nothing outlives its owner (issue #11): deleting a user leaves none of its text in the database.

A user books, looks up appointments (both answers are stored for redeliveries), starts a consent
and leaves a lease behind; after `DELETE /api/users/{id}` the database files (SQLite: the file,
its write-ahead log and shared memory; MongoDB: every document) hold none of it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.harness import mongo
from tests.harness.app import App
from tests.harness.consent import connect_link

USER = "qx81-deletion-user"
SUMMARY = "Zebra Unicorn Checkup"
NAME = "Quentin Zebulon"
CALLER = {"customer": {"number": "+14155559876"}}


def database_bytes(app: App, tmp_path: Path) -> bytes:
    if app.settings.database_url.startswith("mongodb"):
        return mongo.raw_bytes(app.settings.database_url)
    return b"".join(p.read_bytes() for p in sorted((tmp_path / "data").glob("app.db*")))


def leave_a_lease(app: App) -> None:
    async def take() -> None:
        store = app.store()
        await store.open()
        try:
            assert await store.acquire_lease(f"refresh:{USER}", "crashed", 600, owner=USER)
        finally:
            await store.close()

    asyncio.run(take())


def test_deleting_a_user_leaves_none_of_its_text_in_the_database(app: App, tmp_path: Path) -> None:
    app.create_user(USER)
    app.admin.patch(f"/api/users/{USER}", json={"rules": {"bookingHorizonDays": 3650}})
    app.link("asst_qx81", USER)
    app.connect_google(USER, "qx81@example.com")
    booked = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": "2031-03-11T10:00:00", "summary": SUMMARY, "attendeeName": NAME},
        assistant_id="asst_qx81",
        tool_call_id="qx-book",
        call=CALLER,
    )
    assert booked["booked"] is True, booked
    found = app.call_tool("findAppointments", {}, assistant_id="asst_qx81", call=CALLER)
    assert found["count"] == 1
    with httpx.Client(timeout=30) as browser:  # a consent started and never finished
        assert browser.post(connect_link(app, USER)).status_code == 303
    leave_a_lease(app)
    before = database_bytes(app, tmp_path)
    for text in (SUMMARY, USER):  # the stored answers hold the title the caller heard
        assert text.encode() in before, text  # the scan sees what is there

    response = app.admin.delete(f"/api/users/{USER}")
    assert response.status_code == 200 and response.json()["deleted"] is True

    after = database_bytes(app, tmp_path)
    assert after, "the database should still hold the other user"
    for text in (SUMMARY, NAME, USER, "qx81@example.com"):
        assert text.encode() not in after, f"{text!r} is still readable in the database"
    # The other user is untouched.
    assert app.admin.get("/api/users/ana").status_code == 200
