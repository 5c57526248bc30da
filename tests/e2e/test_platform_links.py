"""Links per platform and API keys through the admin API and the CLI (issue #13)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from tests.harness import mongo
from tests.harness.app import App
from tests.harness.platforms import ANA_NUMBER, api_key, mcp_answer, retell_answer, retell_request


def test_put_and_delete_a_link_per_platform(app: App) -> None:
    for platform in ("vapi", "retell", "elevenlabs"):
        response = app.admin.put(f"/api/links/{platform}/agent_1", json={"userId": "ana"})
        assert response.status_code == 200, response.text
        assert response.json() == {"platform": platform, "agentId": "agent_1", "userId": "ana"}
    assert app.admin.delete("/api/links/retell/agent_1").status_code == 204
    assert app.admin.delete("/api/links/retell/agent_1").status_code == 404
    assert app.admin.delete("/api/links/elevenlabs/agent_1").status_code == 204


def test_vapi_links_are_the_same_data_as_the_vapi_routes(app: App) -> None:
    assert app.admin.put("/api/links/vapi/asst_new", json={"userId": "ana"}).status_code == 200
    assert (
        app.call_tool(
            "checkAvailability", {"startDateTime": "2031-03-11T09:00:00"}, assistant_id="asst_new"
        )["available"]
        is True
    )
    # set_up_ana linked asst_ana_haircuts through /api/assistants: the platform route sees it.
    assert app.admin.delete("/api/links/vapi/asst_ana_haircuts").status_code == 204
    assert app.admin.delete("/api/assistants/asst_ana_haircuts").status_code == 404
    assert app.admin.delete("/api/assistants/asst_new").status_code == 204
    response = app.admin.put("/api/links/vapi/phone-numbers/pn-1", json={"userId": "ana"})
    assert response.json() == {"platform": "vapi", "phoneNumber": "pn-1", "userId": "ana"}
    assert app.admin.delete("/api/phone-numbers/pn-1").status_code == 204


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/api/links/bland/agent_1", "platform: 'bland' is not a platform"),
        ("/api/links/retell/-agent", "agentId: '-agent' is not a valid id"),
        (
            "/api/links/retell/phone-numbers/4155550199",
            "phoneNumber: '4155550199' is not a phone number",
        ),
        ("/api/links/elevenlabs/phone-numbers/+0123", "phoneNumber: '+0123' is not a phone number"),
        (
            "/api/links/vapi/phone-numbers/+14155550199",
            "phoneNumber: '+14155550199' is not a valid id",
        ),
    ],
)
def test_ids_are_validated(app: App, path: str, problem: str) -> None:
    response = app.admin.put(path, json={"userId": "ana"})
    assert response.status_code == 400
    assert response.json()["error"].startswith(problem)


def test_linking_to_an_unknown_user_is_404_and_bad_bodies_400(app: App) -> None:
    assert app.admin.put("/api/links/retell/agent_1", json={"userId": "nobody"}).status_code == 404
    response = app.admin.put("/api/links/retell/agent_1", json={"user": "ana"})
    assert response.status_code == 400 and "userId" in response.json()["error"]


def test_links_need_the_admin_token(app: App) -> None:
    response = app.http.put(f"{app.url}/api/links/retell/agent_1", json={"userId": "ana"})
    assert response.status_code == 401


def test_api_keys_are_shown_once_listed_without_the_key_and_revoked(app: App) -> None:
    created = app.admin.post("/api/users/ana/api-keys", json={"name": "vapi prod"})
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "name", "createdAt", "userId", "key"}
    assert body["key"].startswith("vcal_") and body["name"] == "vapi prod"
    listed = app.admin.get("/api/users/ana/api-keys").json()
    assert listed == {
        "userId": "ana",
        "apiKeys": [{"id": body["id"], "name": "vapi prod", "createdAt": body["createdAt"]}],
    }
    assert body["key"] not in json.dumps(listed)
    assert app.admin.delete(f"/api/users/ana/api-keys/{body['id']}").status_code == 204
    assert app.admin.delete(f"/api/users/ana/api-keys/{body['id']}").status_code == 404
    assert app.admin.get("/api/users/ana/api-keys").json()["apiKeys"] == []


def test_api_key_requests_are_checked(app: App) -> None:
    assert app.admin.post("/api/users/nobody/api-keys").status_code == 404
    assert app.admin.get("/api/users/nobody/api-keys").status_code == 404
    bad = app.admin.post("/api/users/ana/api-keys", json={"name": "x" * 101})
    assert bad.status_code == 400 and bad.json()["error"].startswith("name:")
    assert app.admin.post("/api/users/ana/api-keys", json={"key": "mine"}).status_code == 400
    assert app.admin.post("/api/users/ana/api-keys").status_code == 201  # no body: no name
    # Another user's key id cannot be revoked through this user.
    app.create_user("bob")
    bobs = app.admin.post("/api/users/bob/api-keys").json()
    assert app.admin.delete(f"/api/users/ana/api-keys/{bobs['id']}").status_code == 404


def test_only_a_digest_of_the_key_is_stored(app: App) -> None:
    key = api_key(app)
    url = app.settings.database_url
    if url.startswith("sqlite:///"):
        database = Path(url.removeprefix("sqlite:///"))
        with sqlite3.connect(database) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    else:
        raw = mongo.raw_bytes(url)
    assert hashlib.sha256(key.encode()).hexdigest().encode() in raw  # the digest is there
    assert key.encode() not in raw and key.removeprefix("vcal_").encode() not in raw


def test_deleting_a_user_deletes_its_links_and_keys(app: App) -> None:
    key = api_key(app)
    app.admin.put("/api/links/retell/agent_ana", json={"userId": "ana"})
    app.admin.put(f"/api/links/elevenlabs/phone-numbers/{ANA_NUMBER}", json={"userId": "ana"})
    assert app.admin.delete("/api/users/ana").status_code == 200
    assert (
        app.http.post(f"{app.url}/mcp", headers={"authorization": f"Bearer {key}"}).status_code
        == 401
    )
    app.create_user("ana")  # the same id again links to nothing
    assert app.admin.delete("/api/links/retell/agent_ana").status_code == 404
    assert app.admin.delete(f"/api/links/elevenlabs/phone-numbers/{ANA_NUMBER}").status_code == 404


def test_cli_links_and_api_keys(app: App) -> None:
    done = app.cli("link", "retell", "ag_cli_1", "ana")
    assert done.returncode == 0, done.stderr
    answer = retell_answer(
        app,
        "checkAvailability",
        retell_request(
            "checkAvailability", {"startDateTime": "2031-03-11T09:00:00"}, agent_id="ag_cli_1"
        ),
    )
    assert answer["available"] is True
    assert app.cli("link", "retell", "--phone-number", "415", "ana").returncode == 2
    assert app.cli("link", "elevenlabs", "--phone-number", ANA_NUMBER, "ana").returncode == 0
    assert app.cli("link", "bland", "x", "ana").returncode == 2
    assert app.cli("link", "retell", "ag_cli_2", "nobody").returncode == 1
    assert app.cli("unlink", "retell", "ag_cli_1").returncode == 0
    assert app.cli("unlink", "retell", "ag_cli_1").returncode == 1
    assert app.cli("unlink", "elevenlabs", "--phone-number", ANA_NUMBER).returncode == 0

    created = app.cli("create-api-key", "ana", "--name", "desktop")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert mcp_answer(app, key, "checkAvailability", {"startDateTime": "2031-03-11T09:00:00"})[
        "available"
    ]
    (listed,) = json.loads(app.cli("list-api-keys", "ana", "--json").stdout)["apiKeys"]
    assert listed["name"] == "desktop" and key not in json.dumps(listed)
    assert app.cli("delete-api-key", "ana", listed["id"]).returncode == 0
    assert app.cli("delete-api-key", "ana", listed["id"]).returncode == 1
    assert (
        app.http.post(f"{app.url}/mcp", headers={"authorization": f"Bearer {key}"}).status_code
        == 401
    )
    assert app.cli("create-api-key", "nobody").returncode == 1
