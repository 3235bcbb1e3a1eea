"""The audit log: admin actions, deletions and adapter promotions, with ids and no content."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_KEY, Api


async def _audit(api: Api, **params: Any) -> dict[str, Any]:
    r = await api.client.get("/v1/admin/audit", params=params, headers=api.auth(ADMIN_KEY))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_admin_actions_and_deletions_are_audited_without_content(api: Api) -> None:
    r = await api.client.post(
        "/v1/users",
        json={"name": "Secret Agent Name"},
        headers={**api.auth(ADMIN_KEY), "X-Request-ID": "req-audit-1"},
    )
    assert r.status_code == 201, r.text
    created = r.json()["id"]
    uid, key = api.new_user("bob")
    chat = {"model": "attune", "messages": [{"role": "user", "content": "the canary text"}]}
    assert (
        await api.client.post("/v1/chat/completions", json=chat, headers=api.auth(key))
    ).status_code == 200
    # A user deleting themselves: the key is revoked by the request it made.
    r = await api.client.delete(f"/v1/users/{uid}", headers=api.auth(key))
    assert r.status_code == 202, r.text
    # Refused: an admin route without the admin key.
    assert (await api.client.get("/v1/admin/users", headers=api.auth("nope"))).status_code == 401
    assert (await api.client.get("/metrics", headers=api.auth(ADMIN_KEY))).status_code == 200

    page = await _audit(api)
    entries = page["data"]
    assert page["total"] == len(entries) == 3, entries  # no chat, no /metrics scrape
    refused, deleted, made = entries  # newest first
    assert made["actor"] == "admin" and made["method"] == "POST" and made["route"] == "/v1/users"
    assert made["status"] == 201 and made["request_id"] == "req-audit-1"
    assert deleted["actor"] == "user" and deleted["user_id"] == uid and deleted["key_id"]
    assert deleted["route"] == "/v1/users/{user_id}" and deleted["target"] == {"user_id": uid}
    assert deleted["method"] == "DELETE" and deleted["status"] == 202
    assert refused["actor"] == "anonymous" and refused["status"] == 401
    assert refused["route"] == "/v1/admin/users"
    dumped = str(entries)
    assert "Secret Agent" not in dumped and "canary" not in dumped and created not in dumped


async def test_the_audit_log_is_paged_and_admin_only(api: Api) -> None:
    for _ in range(3):
        await api.client.get("/v1/admin/users", headers=api.auth(ADMIN_KEY))
    first = await _audit(api, limit=2)
    assert first["limit"] == 2 and len(first["data"]) == 2 and first["total"] >= 3
    rest = await _audit(api, limit=2, before=first["next_before"])
    ids = [e["id"] for e in first["data"] + rest["data"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids) == 3
    assert rest["next_before"] is None  # the first page's own entry is newer: not on it
    _, key = api.new_user()
    r = await api.client.get("/v1/admin/audit", headers=api.auth(key))
    assert r.status_code == 403
    bad = await api.client.get(
        "/v1/admin/audit", params={"offset": 10**20}, headers=api.auth(ADMIN_KEY)
    )
    assert bad.status_code in (400, 422)


def test_promotions_rollbacks_and_deletes_are_audited_admin_reads_too() -> None:
    from api.audit import is_audited
    from api.routes import admin, health, training

    routes = {
        (r.path, m): r
        for m_ in (admin, health, training)
        for r in m_.router.routes
        for m in getattr(r, "methods", ())
    }
    assert is_audited(routes["/v1/users/{user_id}/adapters/{adapter_id}/promote", "POST"], "POST")
    assert is_audited(routes["/v1/users/{user_id}/adapters/rollback", "POST"], "POST")
    assert is_audited(routes["/v1/admin/users", "GET"], "GET")
    assert not is_audited(routes["/metrics", "GET"], "GET")
    assert not is_audited(routes["/v1/users/{user_id}/adapters", "GET"], "GET")
