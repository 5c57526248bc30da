"""The admin API: bearer-protected, 400s that name the field, never a 500."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.harness.app import ADMIN_TOKEN, App, Emulator, running_app


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer nope"}, {"authorization": "test-admin-token"}],
    ids=["none", "wrong", "no-scheme"],
)
def test_admin_api_requires_the_token(app: App, headers: dict) -> None:
    response = httpx.post(f"{app.url}/api/users", json={"id": "eve"}, headers=headers)
    assert response.status_code == 401
    assert app.admin.get("/api/users/eve").status_code == 404  # nothing was created


def test_without_admin_token_everything_is_refused_and_the_401_says_why(
    tmp_path: Path, emulator: Emulator
) -> None:
    """Outside demo mode nothing generates a token: without ADMIN_TOKEN the API fails closed,
    and says so (and nothing else) to whoever knocks."""
    with running_app(tmp_path, emulator, admin_token=None) as app:
        for headers in ({}, {"authorization": f"Bearer {ADMIN_TOKEN}"}):
            response = httpx.post(f"{app.url}/api/users", json={"id": "eve"}, headers=headers)
            assert response.status_code == 401
            assert response.json() == {
                "error": "unauthorized: no admin token is configured on this server "
                "(set ADMIN_TOKEN)"
            }
        assert not (tmp_path / "data" / "admin.token").exists()
        # The description stays readable: it is the API's shape, not its data.
        assert httpx.get(f"{app.url}/api/openapi.json").status_code == 200


def test_unknown_paths_and_methods_under_api_answer_json(app: App) -> None:
    missing = app.admin.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json() == {"error": "no such path"}
    wrong = app.admin.put("/api/users/ana")
    assert wrong.status_code == 405 and wrong.json() == {"error": "method not allowed"}
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) >= {"GET", "PATCH", "DELETE"}


def test_create_and_read_a_user(app: App) -> None:
    response = app.admin.post("/api/users", json={"id": "carol", "timezone": "Europe/Paris"})
    assert response.status_code == 201
    assert response.json()["google"] == {
        "connected": False,
        "status": "not_connected",
        "email": None,
        "warnings": [],
    }
    user = app.admin.get("/api/users/carol").json()
    assert user["id"] == "carol" and user["timezone"] == "Europe/Paris"
    connected = app.admin.get("/api/users/ana").json()["google"]
    assert connected == {
        "connected": True,
        "status": "connected",
        "email": "ana@example.com",
        "warnings": [],
    }


def test_user_defaults_to_the_configured_timezone(app: App) -> None:
    assert app.admin.post("/api/users", json={"id": "dan"}).json()["timezone"] == "UTC"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"timezone": "UTC"}, "id"),
        ({"id": "x", "timezone": "Mars/Olympus"}, "timezone"),
        ({"id": "has space"}, "id"),
        ({"id": "x", "extra": 1}, "extra"),
        ("not an object", "body"),
    ],
)
def test_bad_user_bodies_get_400_naming_the_field(app: App, body: object, needle: str) -> None:
    response = app.admin.post("/api/users", json=body)
    assert response.status_code == 400
    assert needle in response.json()["error"]


def test_invalid_json_gets_400(app: App) -> None:
    response = app.admin.post("/api/users", content=b"{nope")
    assert response.status_code == 400


def test_duplicate_user_gets_409(app: App) -> None:
    assert app.admin.post("/api/users", json={"id": "ana"}).status_code == 409


def test_link_and_unlink_assistants(app: App) -> None:
    assert app.admin.put("/api/assistants/a1", json={"userId": "nobody"}).status_code == 404
    assert app.admin.put("/api/assistants/a1", json={"userId": "ana"}).json() == {
        "assistantId": "a1",
        "userId": "ana",
    }
    result = app.call_tool(
        "checkAvailability", {"startDateTime": "2031-03-11T09:00:00"}, assistant_id="a1"
    )
    assert "available" in result
    assert app.admin.delete("/api/assistants/a1").status_code == 204
    assert app.admin.delete("/api/assistants/a1").status_code == 404
    result = app.call_tool(
        "checkAvailability", {"startDateTime": "2031-03-11T09:00:00"}, assistant_id="a1"
    )
    assert "not linked" in result["error"]


def test_deleting_a_user_revokes_and_forgets_everything(app: App) -> None:
    response = app.admin.delete("/api/users/ana")
    assert response.json() == {"deleted": True, "revoked": True}
    assert app.emulator.control.requests().get("revoke") == 1
    assert app.admin.get("/api/users/ana").status_code == 404
    assert app.connection("ana") is None
    result = app.call_tool("checkAvailability", {"startDateTime": "2031-03-11T09:00:00"})
    assert "not linked" in result["error"]  # the assistant link went with the user
    assert app.admin.delete("/api/users/ana").status_code == 404
