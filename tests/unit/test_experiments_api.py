"""Experiments over HTTP with a scripted model and the real records database: admins only,
clear 4xx, arms applied and recorded on turns, sticky, measured, stopped, and deleted with
their users."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from adapters.errors import BackendUnavailableError
from api.experiments import guard_pass
from graph.experiments import Arm, choose_arm
from memory.records import experiments as records
from memory.records.tables import Turn
from tests.conftest import ADMIN_KEY, Api
from wiring.settings import ExperimentSettings

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _spec(name: str = "short", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "control": "control",
        "arms": [
            {"name": "control", "weight": 1},
            {"name": "short", "weight": 1, "settings": {"max_tokens": 3, "prompt_version": "v3"}},
        ],
        **extra,
    }


async def _say(api: Api, key: str, text: str, **extra: Any) -> dict[str, Any]:
    body = {"model": "attune", "messages": [{"role": "user", "content": text}], **extra}
    r = await api.client.post("/v1/chat/completions", json=body, headers=api.auth(key))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_only_admins_manage_experiments_and_bad_specs_get_clear_4xx(api: Api) -> None:
    _, key = api.new_user()
    r = await api.client.post("/v1/experiments", json=_spec(), headers=api.auth(key))
    assert r.status_code == 403
    assert (await api.client.get("/v1/experiments", headers=api.auth(key))).status_code == 403
    bad: list[tuple[dict[str, Any], int, str]] = [
        (_spec(control="nope"), 422, "control 'nope' is not one of the arms"),
        (
            _spec(arms=[{"name": "a", "weight": 1}, {"name": "a", "weight": 1}], control="a"),
            422,
            "unique",
        ),
        (_spec(arms=[{"name": "control", "weight": 1}]), 422, "at least 2"),
        (
            _spec(
                arms=[
                    {"name": "control", "weight": 1},
                    {"name": "x", "weight": 1, "settings": {"prompt_version": "v99"}},
                ]
            ),
            422,
            "prompt 'system' has no version 'v99'",
        ),
        (
            _spec(
                arms=[
                    {"name": "control", "weight": 1},
                    {
                        "name": "x",
                        "weight": 1,
                        "settings": {"prompt_versions": {"extraction": "v1"}},
                    },
                ]
            ),
            422,
            "does not run in a turn",
        ),
        (
            _spec(
                arms=[
                    {"name": "control", "weight": 1},
                    {"name": "x", "weight": 1, "settings": {"temprature": 1}},
                ]
            ),
            422,
            "temprature: unknown field; remove it",
        ),
        (_spec(eligibility={"group": "grp_missing"}), 422, "no group 'grp_missing'"),
        (_spec(eligibility={"users": ["usr_missing"]}), 422, "no users usr_missing"),
        (_spec(ends_at="2001-01-01T00:00:00Z"), 422, "ends_at must be later"),
        (
            _spec(
                arms=[
                    {"name": "control", "weight": 1},
                    {"name": "x", "weight": 1, "settings": {"adapter": "grp_x-sft-v1"}},
                ]
            ),
            422,
            "no adapter 'grp_x-sft-v1'",
        ),
    ]
    for body, status, message in bad:
        r = await api.client.post("/v1/experiments", json=body, headers=ADMIN)
        assert r.status_code == status, (body, r.text)
        assert message in r.text, r.text
    assert (
        await api.client.post("/v1/experiments", json=_spec(), headers=ADMIN)
    ).status_code == 201
    again = await api.client.post("/v1/experiments", json=_spec(), headers=ADMIN)
    assert again.status_code == 409 and "exists already" in again.text
    clash = await api.client.post("/v1/experiments", json=_spec("other"), headers=ADMIN)
    assert clash.status_code == 409 and "varies the same settings" in clash.text
    missing = await api.client.get("/v1/experiments/exp_nope", headers=ADMIN)
    assert missing.status_code == 404 and "no experiment" in missing.text


async def test_arms_apply_to_turns_stick_are_recorded_and_measured(api: Api, backend) -> None:
    r = await api.client.post("/v1/experiments", json=_spec(), headers=ADMIN)
    assert r.status_code == 201, r.text
    exp = r.json()
    assert exp["state"] == "running"
    arms = [Arm.model_validate(a) for a in exp["arms"]]
    users = [api.new_user(f"u{i}") for i in range(8)]
    seen: dict[str, str] = {}
    for uid, key in users:
        expected = choose_arm(exp["id"], uid, arms).name
        thread: dict[str, Any] = {}
        for text in ("hello there", "tell me more"):
            out = await _say(api, key, text, **thread)
            thread = {"thread_id": out["attune"]["thread_id"]}
            got = out["attune"]["experiments"]
            assert got == [{"experiment_id": exp["id"], "name": "short", "arm": expected}]
            if expected == "short":
                assert backend.sampling[-1]["max_tokens"] == 3
                assert out["attune"]["prompt_version"] == "v3"
            else:
                assert backend.sampling[-1]["max_tokens"] != 3
                assert out["attune"]["prompt_version"] == "v4"
        seen[uid] = expected
    assert set(seen.values()) == {"control", "short"}  # 8 users: both arms drawn (fixed ids)
    # A client's own max_tokens wins over the arm's.
    short_user = next(k for (u, k) in users if seen[u] == "short")
    await _say(api, short_user, "one more", max_tokens=7)
    assert backend.sampling[-1]["max_tokens"] == 7
    # Every prompt's version is on the turn.
    with api.services.store.session() as s:
        turn = s.exec(select(Turn).where(Turn.role == "assistant")).first()
        assert turn is not None and turn.prompt_versions is not None
        assert {"system", "extraction", "summary"} <= set(turn.prompt_versions)
    # Feedback and follow-ups reach the metrics.
    uid, key = users[0]
    last = await _say(api, key, "rate this")
    fb = await api.client.post(
        "/v1/feedback",
        json={"turn_id": last["attune"]["turn_id"], "rating": "up"},
        headers=api.auth(key),
    )
    assert fb.status_code == 201, fb.text
    shown = await api.client.get(f"/v1/experiments/{exp['name']}", headers=ADMIN)
    assert shown.status_code == 200, shown.text
    metrics = {m["arm"]: m for m in shown.json()["metrics"]}
    assert [m["arm"] for m in shown.json()["metrics"]] == ["control", "short"]
    assert sum(m["turns"] for m in metrics.values()) == 8 * 2 + 2
    mine = metrics[seen[uid]]["metrics"]
    assert mine["thumbs_up_rate"]["value"] > 0
    assert mine["follow_up_rate"]["value"] > 0  # "tell me more" followed "hello there"
    assert metrics["short"]["metrics"]["latency_p95_ms"]["diff_ci"] is not None
    # Stopped: the next turn is in no arm, and the list says so.
    stop = await api.client.post(
        f"/v1/experiments/{exp['id']}/stop", json={"reason": "done"}, headers=ADMIN
    )
    assert stop.status_code == 200 and stop.json()["state"] == "stopped"
    assert (await _say(api, key, "and now?"))["attune"]["experiments"] == []
    listed = (await api.client.get("/v1/experiments", headers=ADMIN)).json()
    assert [(e["name"], e["state"], e["stop_reason"]) for e in listed] == [
        ("short", "stopped", "done")
    ]


async def test_the_guard_rail_stops_a_failing_arm_and_its_users_leave_it(api: Api) -> None:
    spec = _spec("guarded")
    spec["arms"][1]["settings"] = {"temperature": 0.1}
    exp = (await api.client.post("/v1/experiments", json=spec, headers=ADMIN)).json()
    arms = [Arm.model_validate(a) for a in exp["arms"]]
    users = [api.new_user(f"g{i}") for i in range(40)]
    engine = api.services.engine
    for i, (uid, key) in enumerate(users):
        if choose_arm(exp["id"], uid, arms).name == "control":
            await _say(api, key, "hello")  # a real turn
        else:  # what a turn that failed leaves
            short = {exp["id"]: "short"}
            records.expose(engine, turn_id=f"turn_{i}", user_id=uid, arms=short, failed=True)
    settings = ExperimentSettings(guard_min_turns=5)
    stopped = guard_pass(engine, settings)
    assert list(stopped) == ["guarded"] and list(stopped["guarded"]) == ["short"]
    row = records.get(engine, exp["id"])
    assert row is not None and row.stopped_at is None
    assert row.stopped_arms["short"]["reason"].startswith("guard rail: error rate 1.000")
    api.services.experiments.invalidate()
    short_user = next(k for (u, k) in users if choose_arm(exp["id"], u, arms).name == "short")
    assert (await _say(api, short_user, "hi"))["attune"]["experiments"] == []
    assert guard_pass(engine, settings) == {}  # nothing new to stop


async def test_a_failed_turn_counts_against_its_arm_and_deletion_takes_exposures(
    worker_api: Api, backend
) -> None:
    api = worker_api
    spec = _spec("failing")
    spec["arms"] = [{"name": "control", "weight": 1}, {"name": "short", "weight": 1000}]
    spec["arms"][1]["settings"] = {"adapters": "off"}
    exp = (await api.client.post("/v1/experiments", json=spec, headers=ADMIN)).json()
    uid, key = api.new_user()
    backend.script = None
    original = backend.chat_model

    def broken(**kw: Any) -> Any:
        raise BackendUnavailableError("the model server fell over", retry_after_s=1)

    backend.chat_model = broken
    body = {"model": "attune", "messages": [{"role": "user", "content": "hi"}]}
    r = await api.client.post("/v1/chat/completions", json=body, headers=api.auth(key))
    assert r.status_code == 503, r.text
    backend.chat_model = original
    await _say(api, key, "hi again")
    with api.services.store.session() as s:
        rows = s.exec(select(records.ExperimentExposure)).all()
        assert sorted(e.status for e in rows) == ["error", "started"]
    shown = (await api.client.get(f"/v1/experiments/{exp['id']}", headers=ADMIN)).json()
    short = next(m for m in shown["metrics"] if m["arm"] == "short")
    assert (short["failed"], short["recorded"]) == (1, 1)
    assert short["metrics"]["error_rate"]["value"] == 0.5
    deleted = await api.client.delete(f"/v1/users/{uid}", headers=ADMIN)
    assert deleted.status_code == 202
    await api.wait_job(deleted.json()["id"])
    with api.services.store.session() as s:
        assert s.exec(select(records.ExperimentExposure)).all() == []
