"""Persona over HTTP with a scripted model: real-time adaptation, profile edits, history,
restore, forgetting, prompt versions, and one user never reaching another's profile."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from memory.records.tables import ProfileChange, Turn
from tests.conftest import ADMIN_KEY, Api, open_api
from wiring.settings import Settings


def _chat(content: str, **extra):
    return {"model": "attune", "messages": [{"role": "user", "content": content}], **extra}


async def _say(api: Api, key: str, text: str, **extra) -> dict[str, Any]:
    r = await api.client.post(
        "/v1/chat/completions", json=_chat(text, **extra), headers=api.auth(key)
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _system(backend) -> str:
    return str(backend.calls[-1][0].text)


async def test_captain_coder_holds_across_threads_and_restarts_and_is_revoked(
    settings: Settings, backend
) -> None:
    async for api in open_api(settings, backend):
        uid, key = api.new_user()
        first = await _say(api, key, "From now on call me Captain Coder and answer like a pirate.")
        system = _system(backend)
        assert "Address the user as Captain Coder." in system  # shapes this very turn
        assert "Talk like a pirate." in system
        await _say(api, key, "what's a good name for a boat?")  # a new thread
        assert "Address the user as Captain Coder." in _system(backend)
        r = await api.client.get(f"/v1/users/{uid}/profile", headers=api.auth(key))
        profile = r.json()
        assert (profile["preferred_name"], profile["tone"]) == ("Captain Coder", "like a pirate")
        assert profile["version"] == 1
    async for api in open_api(settings, backend):  # the server restarted
        await _say(api, key, "morning!")
        assert "Address the user as Captain Coder." in _system(backend)
        await _say(api, key, "You can stop calling me Captain. Drop the pirate act.")
        system = _system(backend)
        assert "Address the user as" not in system and "Talk like" not in system
        assert "call me Captain Coder" not in system.split("echo:")[0]  # not recalled either
        r = await api.client.get(f"/v1/users/{uid}/profile/history", headers=api.auth(key))
        changes = r.json()["changes"]
        assert [(c["version"], c["field"]) for c in changes] == [
            (2, "preferred_name"),
            (2, "tone"),
            (1, "preferred_name"),
            (1, "tone"),
        ]
        set_name = changes[2]
        assert set_name["new_value"] == "Captain Coder" and set_name["old_value"] is None
        assert set_name["reason"].startswith('asked to be called "Captain Coder"')
        with api.services.store.session() as s:
            source = s.get(Turn, set_name["source_turn_id"])
            assert source is not None and source.role == "user"
            assert source.thread_id == first["attune"]["thread_id"]
        # Undo the revocation: version 1 again, as a new version 3.
        r = await api.client.post(
            f"/v1/users/{uid}/profile/restore", json={"version": 1}, headers=api.auth(key)
        )
        assert r.status_code == 200, r.text
        assert (r.json()["version"], r.json()["preferred_name"]) == (3, "Captain Coder")
        v2 = await api.client.get(f"/v1/users/{uid}/profile/versions/2", headers=api.auth(key))
        assert v2.json()["profile"] == {}


async def test_patch_edits_any_field_and_instruction(api: Api, backend) -> None:
    uid, key = api.new_user()
    await _say(api, key, "From now on, end every answer with a question.")
    profile = (await api.client.get(f"/v1/users/{uid}/profile", headers=api.auth(key))).json()
    (rule,) = profile["instructions"]
    assert rule["text"] == "End every answer with a question" and rule["source_turn_id"]
    r = await api.client.patch(
        f"/v1/users/{uid}/profile",
        json={
            "language": "French",
            "formatting": {"emoji": False},
            "verbosity": "brief",
            "interests": ["chess", "sailing"],
            "instructions": {"add": ["Use metric units"], "remove": [rule["id"]]},
            "reason": "cleaning up",
        },
        headers=api.auth(key),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["text"] for i in body["instructions"]] == ["Use metric units"]
    assert body["formatting"] == {"emoji": False} and body["language"] == "French"
    await _say(api, key, "hello")
    system = _system(backend)
    for needle in ("Always answer in French", "Never use emoji", "Use metric units", "chess"):
        assert needle in system
    assert "End every answer with a question" not in system
    r = await api.client.patch(
        f"/v1/users/{uid}/profile",
        json={"language": None, "formatting": None},
        headers=api.auth(key),
    )
    assert r.json()["language"] is None and r.json()["formatting"] == {}
    with api.services.store.session() as s:
        reasons = set(s.exec(select(ProfileChange.reason).where(ProfileChange.user_id == uid)))
    assert "cleaning up" in reasons


async def test_bad_profile_edits_are_clear_4xx(api: Api) -> None:
    uid, key = api.new_user()
    url = f"/v1/users/{uid}/profile"
    for body, where in [
        ({"formality": "loud"}, "formality"),
        ({"style": {"avg_words": 3}}, "style"),
        ({"instructions": {"add": [""]}}, "instructions"),
        ({"interests": ["x"] * 31}, "interests"),
        ({"preferred_name": "x" * 101}, "preferred_name"),
    ]:
        r = await api.client.patch(url, json=body, headers=api.auth(key))
        assert r.status_code == 422, (body, r.text)
        assert where in r.text
    r = await api.client.patch(
        url, json={"instructions": {"remove": ["ins_nope"]}}, headers=api.auth(key)
    )
    assert r.status_code == 404 and "ins_nope" in r.json()["error"]["message"]
    r = await api.client.post(f"{url}/restore", json={"version": 7}, headers=api.auth(key))
    assert r.status_code == 404 and "no version 7" in r.json()["error"]["message"]
    r = await api.client.post(f"{url}/restore", json={"version": -1}, headers=api.auth(key))
    assert r.status_code == 422
    r = await api.client.post(f"/v1/users/{uid}/instruction-blocks/rollback", headers=api.auth(key))
    assert r.status_code == 409 and "no active instruction block" in r.text


async def test_one_user_never_reaches_another_users_profile(api: Api) -> None:
    alice, alice_key = api.new_user("alice")
    _, bob_key = api.new_user("bob")
    await _say(api, alice_key, "Call me Ally.")
    for method, path in [
        ("GET", "profile"),
        ("PATCH", "profile"),
        ("GET", "profile/history"),
        ("GET", "profile/versions/1"),
        ("POST", "profile/restore"),
        ("GET", "instruction-blocks"),
    ]:
        body = {"version": 0} if path.endswith("restore") else {}
        r = await api.client.request(
            method, f"/v1/users/{alice}/{path}", json=body, headers=api.auth(bob_key)
        )
        assert r.status_code in (403, 404), (path, r.status_code)
        assert "Ally" not in r.text
    r = await api.client.get(f"/v1/users/{alice}/profile", headers=api.auth(ADMIN_KEY))
    assert r.json()["preferred_name"] == "Ally"


async def test_forget_that_removes_the_memory_before_recall(api: Api, backend) -> None:
    uid, key = api.new_user()
    for text in ("I live in Paris", "I have a cat named Biscuit"):
        r = await api.client.post(
            f"/v1/users/{uid}/memories", json={"kind": "fact", "text": text}, headers=api.auth(key)
        )
        assert r.status_code == 201, r.text
    await _say(api, key, "Forget that I live in Paris.")
    r = await api.client.get(f"/v1/users/{uid}/memories?kind=fact", headers=api.auth(key))
    assert [m["text"] for m in r.json()["data"]] == ["I have a cat named Biscuit"]
    assert "I live in Paris" not in _system(backend).split("earlier conversations")[-1]


async def test_preview_shows_the_effect_without_storing_it(api: Api) -> None:
    uid, key = api.new_user()
    r = await api.client.post(
        f"/v1/users/{uid}/prompt/preview",
        json={"messages": [{"role": "user", "content": "Always answer in German."}]},
        headers=api.auth(key),
    )
    assert r.status_code == 200, r.text
    assert "Always answer in German" in r.json()["system_prompt"]
    assert r.json()["profile_updates"][0]["field"] == "language"
    profile = (await api.client.get(f"/v1/users/{uid}/profile", headers=api.auth(key))).json()
    assert profile["version"] == 0 and profile["language"] is None


async def test_deleting_the_source_turn_removes_what_it_set(worker_api: Api) -> None:
    api = worker_api
    uid, key = api.new_user()
    await _say(api, key, "Call me Captain.")
    await _say(api, key, "Always answer in Spanish.")
    history = (
        await api.client.get(f"/v1/users/{uid}/profile/history", headers=api.auth(key))
    ).json()["changes"]
    name_turn = next(c["source_turn_id"] for c in history if c["field"] == "preferred_name")
    r = await api.client.delete(f"/v1/users/{uid}/turns/{name_turn}", headers=api.auth(key))
    assert r.status_code in (202, 204), r.text
    if r.status_code == 202:
        await api.wait_job(r.json()["id"])
    profile = (await api.client.get(f"/v1/users/{uid}/profile", headers=api.auth(key))).json()
    assert profile["preferred_name"] is None and profile["language"] == "Spanish"
    export = (await api.client.get(f"/v1/users/{uid}/export", headers=api.auth(key))).json()
    for part in ("profile", "profile_history", "profile_versions"):
        assert "Captain" not in str(export[part]), part
    assert name_turn not in {t["id"] for t in export["turns"]}
    assert "Spanish" in str(export["profile_versions"])


async def test_prompt_versions_are_listed_and_shown(api: Api) -> None:
    _, key = api.new_user()
    r = await api.client.get("/v1/prompts", headers=api.auth(key))
    system = next(p for p in r.json()["data"] if p["name"] == "system")
    assert system["active"] == "v4" and system["versions"][:4] == ["v1", "v2", "v3", "v4"]
    r = await api.client.get("/v1/prompts/system/v1", headers=api.auth(key))
    assert r.json()["active"] is False and "preferred_name" in r.json()["variables"]
    r = await api.client.get("/v1/prompts/system/v9", headers=api.auth(key))
    assert r.status_code == 404 and "v9" in r.json()["error"]["message"]
    assert (await api.client.get("/v1/prompts")).status_code == 401


async def test_revoking_a_tone_invalidates_the_distilled_instruction(worker_api: Api) -> None:
    api = worker_api
    uid, key = api.new_user()
    await _say(api, key, "From now on talk like a pirate.")
    await api.drain_jobs()

    async def pirate_rules(valid_only: bool) -> list[dict[str, Any]]:
        invalid = "false" if valid_only else "true"
        r = await api.client.get(
            f"/v1/users/{uid}/memories?kind=instruction&include_invalid={invalid}",
            headers=api.auth(key),
        )
        return [m for m in r.json()["data"] if "pirate" in m["text"]]

    assert await pirate_rules(valid_only=True)
    await _say(api, key, "Drop the pirate act.")
    assert await pirate_rules(valid_only=True) == []
    (kept,) = await pirate_rules(valid_only=False)
    assert kept["invalid_at"] is not None  # retired, kept as history
