"""``attune experiments`` as a real process on a real records database."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_cli import attune

SPEC = {
    "name": "short-replies",
    "control": "control",
    "arms": [
        {"name": "control", "weight": 1},
        {"name": "short", "weight": 1, "settings": {"max_tokens": 64}},
    ],
}


def test_create_list_show_and_stop(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    created = attune(["experiments", "create", str(spec)], tmp_path)
    assert created.returncode == 0, created.stderr
    assert "created exp_" in created.stdout and "2 arms, control control" in created.stdout
    again = attune(["experiments", "create", "-"], tmp_path, stdin=json.dumps(SPEC))
    assert again.returncode == 2 and "exists already" in again.stderr
    bad = attune(["experiments", "create", "-"], tmp_path, stdin='{"name": "x", "arms": []}')
    assert bad.returncode == 2 and "invalid spec at" in bad.stderr
    missing = attune(["experiments", "create", str(tmp_path / "nope.json")], tmp_path)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    listed = attune(["experiments", "list"], tmp_path)
    assert "short-replies" in listed.stdout and "running" in listed.stdout
    shown = attune(["experiments", "show", "short-replies"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "arm control: 0 turns from 0 users" in shown.stdout
    assert "thumbs_up_rate" in shown.stdout
    as_json = json.loads(
        attune(["experiments", "show", "short-replies", "--json"], tmp_path).stdout
    )
    assert [m["arm"] for m in as_json["metrics"]] == ["control", "short"]
    stopped = attune(["experiments", "stop", "short-replies", "--reason", "enough"], tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in attune(["experiments", "list"], tmp_path).stdout
    unknown = attune(["experiments", "show", "nope"], tmp_path)
    assert unknown.returncode == 2 and "no experiment 'nope'" in unknown.stderr
