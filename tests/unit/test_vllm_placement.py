"""The vllm backend's publication and placement logic, against fake vLLM servers.

The fakes answer the three routes the backend uses (``/v1/models``, load, unload) the way
vLLM does, and can misbehave as vLLM has been reported to: a load that answers 200 for
nothing, a server that goes down, one that comes back without its runtime loads. What a
real server does is tested in ``tests/integration/test_vllm.py``; here, several replicas.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from adapters.config import ModelSettings
from adapters.errors import AdapterNotFoundError, BackendUnavailableError
from adapters.vllm_backend import VllmBackend
from adapters.vllm_health import HealthChecks
from adapters.vllm_replicas import Replica
from wiring.settings import Settings

BASE = "base-model"


class FakeVllm:
    """One fake vLLM server: its loaded adapters by name (their path), and its failures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.adapters: dict[str, str] = {}
        self.down = False
        self.lie = False  # answer 200 to a load without loading anything (vLLM #18372)
        self.loads = 0
        self.load_gate = threading.Event()  # loads wait until it is set
        self.load_gate.set()

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/v1/models":
            data = [{"id": BASE, "root": "/models/base", "parent": None}]
            data += [{"id": n, "root": p, "parent": BASE} for n, p in self.adapters.items()]
            return httpx.Response(200, json={"object": "list", "data": data})
        body = json.loads(request.content)
        name = body["lora_name"]
        if request.url.path == "/v1/load_lora_adapter":
            self.loads += 1
            self.load_gate.wait(timeout=10)
            if name in self.adapters:
                return httpx.Response(400, json={"error": {"message": "already loaded"}})
            if self.lie:
                return httpx.Response(200, text="Success")
            if not (Path(body["lora_path"]) / "adapter_config.json").is_file():
                return httpx.Response(404, json={"error": {"message": "No adapter found"}})
            self.adapters[name] = body["lora_path"]
            return httpx.Response(200, text="Success")
        if request.url.path == "/v1/unload_lora_adapter":
            if self.adapters.pop(name, None) is None:
                return httpx.Response(404, json={"error": {"message": "not found"}})
            return httpx.Response(200, text="Success")
        return httpx.Response(404)


@pytest.fixture
def servers() -> list[FakeVllm]:
    return [FakeVllm("http://replica-1:8001"), FakeVllm("http://replica-2:8001")]


@pytest.fixture
def adapters_dir(tmp_path: Path) -> Path:
    root = tmp_path / "adapters"
    root.mkdir()
    return root


def make_backend(servers: list[FakeVllm], adapters_dir: Path) -> VllmBackend:
    settings = ModelSettings(backend="vllm", adapters_dir=adapters_dir, vllm_retry_after_s=9)
    replicas = [
        Replica(s.url, api_key="EMPTY", timeout_s=5, transport=httpx.MockTransport(s.handle))
        for s in servers
    ]
    return VllmBackend(replicas, model_dir=adapters_dir, settings=settings)


@pytest.fixture
def backend(servers: list[FakeVllm], adapters_dir: Path) -> VllmBackend:
    return make_backend(servers, adapters_dir)


def adapter(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    return path


def fresh(backend: VllmBackend) -> None:
    """Forget the cached model lists, as time passing would."""
    for replica in backend.replicas:
        replica._models = None
        replica._down_until = 0.0


def test_publish_loads_on_every_replica_and_verifies(
    backend: VllmBackend, servers: list[FakeVllm], tmp_path: Path
):
    path = adapter(tmp_path / "published", "u1-sft-v1")
    backend.publish("u1-sft-v1", path)
    backend.publish("u1-sft-v1", path)  # again: changes nothing
    assert all(s.adapters == {"u1-sft-v1": str(path.resolve())} for s in servers)
    assert backend.placements["u1-sft-v1"].replicas == {s.url for s in servers}
    assert backend.has_adapter("u1-sft-v1") is True


def test_a_load_answered_200_but_not_listed_is_refused_everywhere(
    backend: VllmBackend, servers: list[FakeVllm], tmp_path: Path
):
    servers[1].lie = True
    with pytest.raises(AdapterNotFoundError):
        backend.publish("u1-sft-v1", adapter(tmp_path, "u1-sft-v1"))
    assert all(not s.adapters for s in servers)  # nothing half-published stays loaded
    assert backend.has_adapter("u1-sft-v1") is False


def test_a_directory_without_an_adapter_is_refused(backend: VllmBackend, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterNotFoundError):
        backend.publish("u1-sft-v1", tmp_path / "empty")
    with pytest.raises(AdapterNotFoundError):
        backend.publish("../escape", tmp_path / "empty")


def test_requests_go_only_to_replicas_holding_the_adapter(
    backend: VllmBackend, servers: list[FakeVllm], tmp_path: Path
):
    servers[1].down = True
    backend.publish("u1-sft-v1", adapter(tmp_path, "u1-sft-v1"))
    servers[1].down = False
    fresh(backend)
    urls = {
        backend.chat_model(adapter="u1-sft-v1", max_tokens=4, temperature=0).openai_api_base  # type: ignore[attr-defined]
        for _ in range(4)
    }
    assert urls == {f"{servers[0].url}/v1"}
    base = {
        backend.chat_model(adapter=None, max_tokens=4, temperature=0).openai_api_base  # type: ignore[attr-defined]
        for _ in range(4)
    }
    assert base == {f"{s.url}/v1" for s in servers}  # the base model: every replica


def test_a_replica_that_lost_its_loads_gets_them_back_on_demand(
    backend: VllmBackend, servers: list[FakeVllm], tmp_path: Path
):
    path = adapter(tmp_path, "u1-sft-v1")
    backend.publish("u1-sft-v1", path)
    for server in servers:
        server.adapters.clear()  # restarted
    fresh(backend)
    assert backend.has_adapter("u1-sft-v1") is True
    assert sum("u1-sft-v1" in s.adapters for s in servers) == 1  # one load, not a stampede


def test_an_adapter_in_the_adapters_dir_loads_by_name(
    backend: VllmBackend, servers: list[FakeVllm], adapters_dir: Path
):
    adapter(adapters_dir, "g1-sft-v2")
    assert backend.has_adapter("g1-sft-v2") is True
    assert backend.has_adapter("no-such-adapter") is False
    with pytest.raises(AdapterNotFoundError):
        backend.chat_model(adapter="no-such-adapter", max_tokens=4, temperature=0)


def test_an_unpublished_adapter_is_never_served_again_even_by_a_replica_that_missed_it(
    backend: VllmBackend, servers: list[FakeVllm], adapters_dir: Path
):
    path = adapter(adapters_dir, "u1-sft-v1")
    backend.publish("u1-sft-v1", path)
    servers[1].down = True
    assert backend.unpublish("u1-sft-v1") is True
    servers[1].down = False
    fresh(backend)
    assert "u1-sft-v1" in servers[1].adapters  # missed the unload while down
    assert backend.has_adapter("u1-sft-v1") is False  # files still on disk, too
    with pytest.raises(AdapterNotFoundError):
        backend.chat_model(adapter="u1-sft-v1", max_tokens=4, temperature=0)
    assert backend.unpublish("u1-sft-v1") is True  # the straggler lets go
    assert not servers[1].adapters
    backend.publish("u1-sft-v1", path)  # publishing again serves it again
    assert backend.has_adapter("u1-sft-v1") is True


def test_with_every_replica_down_requests_are_refused_with_retry_after(
    backend: VllmBackend, servers: list[FakeVllm]
):
    for server in servers:
        server.down = True
    with pytest.raises(BackendUnavailableError) as refused:
        backend.chat_model(adapter=None, max_tokens=4, temperature=0)
    assert refused.value.retry_after_s == 9
    assert all(s.url in str(refused.value) for s in servers)
    assert backend.has_adapter("u1-sft-v1") is False
    with pytest.raises(BackendUnavailableError):
        backend.publish("u1-sft-v1", Path("/nowhere"))


def test_beyond_capacity_the_least_recently_used_user_adapter_is_unloaded(
    servers: list[FakeVllm], adapters_dir: Path
):
    backend = make_backend(servers[:1], adapters_dir)
    backend.settings.vllm_adapters_per_replica = 2
    server = servers[0]
    group, old, recent = "team-sft-v1", "usr_old-sft-v1", "usr_recent-sft-v1"
    for name in (group, old, recent):
        backend.publish(name, adapter(adapters_dir, name))
    # Over capacity at once: the oldest user adapter goes, the group adapter stays pinned.
    assert set(server.adapters) == {group, recent}
    # The evicted one still serves: the request loads it, and the least recent goes.
    fresh(backend)
    assert backend.has_adapter(old) is True
    assert set(server.adapters) == {group, old}


def test_a_load_past_the_deadline_is_not_waited_for_and_finishes_in_the_background(
    backend: VllmBackend, servers: list[FakeVllm], adapters_dir: Path
):
    backend.settings.vllm_load_deadline_s = 0.05
    adapter(adapters_dir, "usr_slow-sft-v1")
    for server in servers:
        server.load_gate.clear()
    assert backend.has_adapter("usr_slow-sft-v1") is False  # the route falls back meanwhile
    assert backend.has_adapter("usr_slow-sft-v1") is False  # one load in flight, not two
    pending = backend._loading["usr_slow-sft-v1"]
    for server in servers:
        server.load_gate.set()
    pending.result(timeout=10)
    assert backend.has_adapter("usr_slow-sft-v1") is True
    assert sum(s.loads for s in servers) == 1


def test_a_users_adapter_lives_on_its_home_replica_and_its_requests_go_there(
    backend: VllmBackend, servers: list[FakeVllm], tmp_path: Path
):
    names = [f"usr_{i}-sft-v1" for i in range(12)]
    for name in names:
        backend.publish(name, adapter(tmp_path, name))
    homes = {n: backend.home_order(n, backend.replicas)[0].url for n in names}
    for server in servers:
        assert set(server.adapters) == {n for n in names if homes[n] == server.url}
    assert len(set(homes.values())) == 2  # both replicas are home to some
    for name in names[:4]:
        chat = backend.chat_model(adapter=name, max_tokens=4, temperature=0)
        assert chat.openai_api_base == f"{homes[name]}/v1"  # type: ignore[attr-defined]


def test_with_its_home_down_a_users_adapter_goes_to_the_next_replica(
    backend: VllmBackend, servers: list[FakeVllm], tmp_path: Path
):
    name = "usr_x-sft-v1"
    home, second = backend.home_order(name, backend.replicas)
    next(s for s in servers if s.url == home.url).down = True
    backend.publish(name, adapter(tmp_path, name))
    assert [s.url for s in servers if name in s.adapters] == [second.url]


def test_hot_adapters_go_everywhere_and_stay_when_room_is_made(
    servers: list[FakeVllm], adapters_dir: Path
):
    backend = make_backend(servers, adapters_dir)
    backend.settings.vllm_hot = "usr_star"
    backend.settings.vllm_adapters_per_replica = 1
    star, other = "usr_star-sft-v3", "usr_other-sft-v1"
    backend.publish(star, adapter(adapters_dir, star))
    assert all(star in s.adapters for s in servers)
    backend.publish(other, adapter(adapters_dir, other))  # over capacity on its home
    assert all(star in s.adapters for s in servers)  # the hot one stays pinned
    assert backend.pinned(star) and backend.pinned("team-sft-v1") and not backend.pinned(other)


def test_a_health_pass_gives_replicas_back_what_they_lost_or_missed(
    backend: VllmBackend, servers: list[FakeVllm], tmp_path: Path
):
    servers[1].down = True
    backend.publish("grp-sft-v1", adapter(tmp_path, "grp-sft-v1"))  # pinned: every replica
    servers[1].down = False
    assert "grp-sft-v1" not in servers[1].adapters  # it was down: it missed the group adapter
    backend.publish("usr_a-sft-v1", adapter(tmp_path, "usr_a-sft-v1"))  # its home replica
    backend.publish("usr_b-sft-v1", adapter(tmp_path, "usr_b-sft-v1"))
    backend.unpublish("usr_b-sft-v1")  # retired: never loaded again
    (home,) = backend.placements["usr_a-sft-v1"].replicas
    for server in servers:  # both restart: runtime loads are gone
        server.adapters.clear()

    assert backend.reconcile() == 3  # the group adapter twice, the user's at home
    assert all("grp-sft-v1" in s.adapters for s in servers)
    assert [s.url for s in servers if "usr_a-sft-v1" in s.adapters] == [home]
    assert not any("usr_b-sft-v1" in s.adapters for s in servers)
    assert backend.reconcile() == 0  # nothing left to do


def test_a_health_pass_never_half_loads_an_adapter_whose_files_are_gone(
    backend: VllmBackend, servers: list[FakeVllm], tmp_path: Path
):
    path = adapter(tmp_path, "grp-sft-v1")
    backend.publish("grp-sft-v1", path)
    (path / "adapter_config.json").unlink()
    servers[0].adapters.clear()
    servers[1].down = True  # a replica that does not answer is skipped, not an error
    assert backend.reconcile() == 0
    assert servers[0].adapters == {}
    assert backend.placements["grp-sft-v1"].replicas == {servers[1].url}


def test_health_checks_run_every_interval_survive_a_failed_pass_and_stop() -> None:
    calls: list[int] = []
    second = threading.Event()

    def check() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("replica list unreadable")
        second.set()

    checks = HealthChecks(check, 0.01)
    assert second.wait(timeout=10)  # the failure did not end the loop
    checks.stop()
    done = len(calls)
    second.clear()
    assert not second.wait(timeout=0.1) and len(calls) == done  # stopped


class RecordedPlacements:
    """A placement log that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def placed(self, adapter: str, replica: str, state: str, path: str) -> None:
        self.events.append((adapter, replica.split("//")[1], state))

    def forgotten(self, adapter: str) -> None:
        self.events.append((adapter, "forgotten"))


def test_every_placement_change_reaches_the_placement_log(
    servers: list[FakeVllm], adapters_dir: Path, tmp_path: Path
):
    backend = make_backend(servers, adapters_dir)
    backend.settings = backend.settings.model_copy(update={"vllm_adapters_per_replica": 1})
    log = RecordedPlacements()
    backend.placement_log = log
    servers[1].down = True
    backend.publish("grp-a-v1", adapter(tmp_path, "grp-a-v1"))  # pinned, replica 2 down
    servers[1].down = False
    backend.publish("usr_x-sft-v1", adapter(tmp_path, "usr_x-sft-v1"))
    backend.publish("usr_y-sft-v1", adapter(tmp_path, "usr_y-sft-v1"))
    backend.reconcile()
    backend.unpublish("usr_y-sft-v1")

    assert log.events == [
        ("grp-a-v1", "replica-1:8001", "loaded"),  # replica 2 was down
        ("usr_x-sft-v1", "replica-2:8001", "loaded"),  # its home replica
        # usr_y shares that home and its one slot: usr_x is evicted, and recorded so
        ("usr_x-sft-v1", "replica-2:8001", "evicted"),
        ("usr_y-sft-v1", "replica-2:8001", "loaded"),
        ("grp-a-v1", "replica-2:8001", "loaded"),  # the health pass: what replica 2 missed
        ("usr_y-sft-v1", "forgotten"),  # unpublished: its rows go
    ]


def test_the_core_stops_the_health_checks_of_the_backend_it_built_only(
    settings: Settings, servers: list[FakeVllm], adapters_dir: Path
) -> None:
    from wiring.services import build_core

    settings.model.backend = "vllm"
    settings.model.vllm_urls = "http://127.0.0.1:9"  # nothing listens: never contacted here
    core = build_core(settings)
    built = core.backend()
    assert isinstance(built, VllmBackend) and running(built)  # started
    assert built.placement_log is not None  # it records in the shared table
    core.close()
    assert not running(built)  # stopped with the core

    given = make_backend(servers, adapters_dir)
    given.start_health_checks(60)
    other = build_core(settings, backend=given)
    other.close()
    assert running(given)  # the caller's backend is the caller's to close
    given.close()


def running(backend: VllmBackend) -> bool:
    """Whether the backend's health checks run."""
    return backend._health is not None
