"""AlibabaCloudTaskEventTrigger: an asset watcher's trigger. Deterministic kwargs, one event per
task (also across triggerer restarts, through the asset state store), errors that never end the
watch; the example DAG; and a real deployment in which the watcher's event starts a DAG run.

Unit tests replace the hook by a fake and the trigger module's ``asyncio.sleep`` by a fake clock;
no HTTP. The deployment test uses ``tests/stack.py`` (api-server, scheduler, dag-processor,
triggerer, emulator; SQLite, LocalExecutor, 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from airflow.sdk import Asset, AssetWatcher
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

import airflow_aliyun_tasks.triggers as triggers_module
from airflow_aliyun_tasks.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    ServiceError,
    ThrottledError,
)
from airflow_aliyun_tasks.status import CANCELLED, FAILED, PARTIALLY_SUCCEEDED, RUNNING, SUCCEEDED, TaskStatus
from airflow_aliyun_tasks.triggers import (
    MAX_FAILURE_BACKOFF,
    AlibabaCloudTaskEventTrigger,
    AlibabaCloudTaskTrigger,
)
from airflow_versions import AIRFLOW_3_3, deserialize, serialize
from fakes import ModuleProxy
from stack import AirflowStack, wait_until

CLASSPATH = "airflow_aliyun_tasks.triggers.AlibabaCloudTaskEventTrigger"
EXAMPLE = Path(__file__).parent.parent / "example_dags" / "example_aliyun_asset_watcher.py"
JOB = {"job_id": "70ecdaec-bf21-4c11-8ecb-4f77453ceea8"}

_real_sleep = asyncio.sleep


def st(state: str, raw: str | None = None, **kw: Any) -> TaskStatus:
    return TaskStatus(service="dataworks", ids=dict(JOB), state=state, raw_status=raw, **kw)


RUN = st(RUNNING, "Running")
DONE = st(SUCCEEDED, "Success", request_id="req-ok")


def make(**overrides: Any) -> AlibabaCloudTaskEventTrigger:
    kwargs: dict[str, Any] = {"service": "dataworks", "ids": dict(JOB), "poll_interval": 10}
    kwargs.update(overrides)
    return AlibabaCloudTaskEventTrigger(**kwargs)


# --------------------------------------------------------------------------- kwargs


def test_serialize_round_trips_and_is_plain_json() -> None:
    trigger = make(
        aliyun_conn_id="aliyun_prod",
        outcomes=["success", "failed"],
        success_states=["Done"],
        failure_states=["Lost", "Broken"],
        partial_success_ok=True,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert kwargs == {
        "service": "dataworks",
        "ids": JOB,
        "aliyun_conn_id": "aliyun_prod",
        "poll_interval": 10.0,
        "outcomes": ["failed", "success"],
        "success_states": ["Done"],
        "failure_states": ["Broken", "Lost"],
        "partial_success_ok": True,
    }
    module, _, name = classpath.rpartition(".")
    assert getattr(importlib.import_module(module), name)(**kwargs).serialize() == (classpath, kwargs)
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert deserialize(serialize(kwargs)) == kwargs


def test_kwargs_as_the_dag_serialization_encodes_them_are_read_plain() -> None:
    """Airflow 3.2's triggerer gives an asset watcher's trigger its kwargs as Airflow's DAG
    serialization encoded them (a dict as ``{"__type": "dict", "__var": ...}``): the trigger
    reads them as the plain values they encode."""
    from airflow.serialization.serialized_objects import BaseSerialization

    plain = make(outcomes=["success", "failed"], success_states=("DONE",))
    encoded = make(
        ids=BaseSerialization.serialize(dict(JOB)),
        outcomes=BaseSerialization.serialize(("success", "failed")),
        success_states=BaseSerialization.serialize(("DONE",)),
    )
    assert encoded.ids == dict(JOB)
    assert encoded.serialize() == plain.serialize()
    # as Airflow 3.2's triggerer receives them: written out as JSON with str() of the enum keys
    written = {
        name: {str(k): v for k, v in value.items()}
        for name, value in {
            "ids": BaseSerialization.serialize(dict(JOB)),
            "outcomes": BaseSerialization.serialize(("success", "failed")),
        }.items()
    }
    assert set(written["ids"]) == {"Encoding.TYPE", "Encoding.VAR"}
    assert make(**written, success_states=["DONE"]).serialize() == plain.serialize()


def test_kwargs_are_deterministic() -> None:
    """Airflow identifies a watcher by a hash of class path and kwargs: equal inputs in any
    order, as any type that means the same, give the same hash."""
    a = AlibabaCloudTaskEventTrigger(
        service="mma",
        ids={"source_id": 2000017, "async_task_id": 2523},
        poll_interval=30,
        outcomes=("success", "cancelled"),
        failure_states={"B", "A"},
    )
    b = AlibabaCloudTaskEventTrigger(
        service="mma",
        ids={"async_task_id": "2523", "source_id": "2000017"},
        poll_interval=30.0,
        outcomes=["cancelled", "success", "success"],
        failure_states=["A", "B"],
    )
    assert a.serialize() == b.serialize()
    assert BaseEventTrigger.hash(*a.serialize()) == BaseEventTrigger.hash(*b.serialize())
    assert BaseEventTrigger.hash(*a.serialize()) != BaseEventTrigger.hash(*make().serialize())
    # and nothing that changes between parses: no clock, no randomness
    assert make().serialize() == make().serialize()


def test_no_credentials_in_kwargs() -> None:
    _, kwargs = make().serialize()
    text = json.dumps(kwargs).lower()
    for word in ("secret", "password", "token", "accesskey", "end_time", "time"):
        assert word not in text


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"service": "oss"}, "service"),
        ({"ids": {}}, "ids"),
        ({"ids": ["x"]}, "ids"),
        ({"outcomes": []}, "outcomes"),
        ({"outcomes": ["timeout"]}, "outcomes"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": float("nan")}, "poll_interval"),
    ],
)
def test_bad_kwargs(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        make(**overrides)
    assert excinfo.value.field == field


def test_defaults() -> None:
    trigger = make(poll_interval=60)
    assert trigger.outcomes == ["cancelled", "failed", "success"]
    assert trigger.aliyun_conn_id == "aliyun_default"
    assert trigger.supports_triggerer_queue is False
    assert isinstance(trigger, BaseEventTrigger)
    assert make(outcomes="success").outcomes == ["success"]


def test_asset_watcher_accepts_it_and_not_the_task_trigger() -> None:
    Asset("a", watchers=[AssetWatcher(name="w", trigger=make())])
    task_trigger = AlibabaCloudTaskTrigger(service="dataworks", ids=JOB, end_time=0.0)
    with pytest.raises((TypeError, ValueError)):
        Asset("b", watchers=[AssetWatcher(name="w", trigger=task_trigger)])


def test_state_key() -> None:
    assert make().state_key() == f"airflow_aliyun_tasks:dataworks:job_id={JOB['job_id']}"
    long_ids = {"async_task_id": "a" * 128, "domain_id": "b" * 128}
    key = AlibabaCloudTaskEventTrigger(service="pds", ids=long_ids).state_key()
    assert key == "airflow_aliyun_tasks:pds:async_task_id=" + "a" * 128 + "&domain_id=" + "b" * 128
    assert len(key) <= 512  # the state store's key column


# --------------------------------------------------------------------------- fakes


class FakeHook:
    def __init__(self, script: Iterable[TaskStatus | BaseException]) -> None:
        self.script = list(script)
        self.calls = 0

    async def aget_task_status(self, service: str, **ids: Any) -> TaskStatus:
        self.calls += 1
        assert (service, ids) == ("dataworks", JOB)
        await _real_sleep(0)
        if not self.script:
            raise AssertionError("polled more often than scripted")
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


class Accessor:
    """An asset's state store accessor (``aget``/``aset``), in memory."""

    def __init__(self, data: dict[str, Any] | None = None, fail: bool = False) -> None:
        self.data = dict(data or {})
        self.fail = fail
        self.reads = 0
        self.writes = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        if self.fail:
            raise RuntimeError("state store unavailable")
        return self.data.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.writes += 1
        if self.fail:
            raise RuntimeError("state store unavailable")
        self.data[key] = value


class Store:
    """Shape of Airflow's ``AssetStateStoreAccessors``: accessors by asset name."""

    def __init__(self, **by_name: Accessor) -> None:
        self._by_name = by_name
        self._by_uri: dict[str, Accessor] = {}


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)
        await _real_sleep(0)

    monkeypatch.setattr(triggers_module, "asyncio", ModuleProxy(asyncio, sleep=fake_sleep))
    return recorded


@pytest.fixture
def idle(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``_idle`` returns at once (and says so), so that ``run()`` can be collected to the end."""
    calls: list[str] = []

    async def fake_idle() -> None:
        calls.append("idle")

    monkeypatch.setattr(AlibabaCloudTaskEventTrigger, "_idle", staticmethod(fake_idle))
    return calls


def use(
    trigger: AlibabaCloudTaskEventTrigger, hook: FakeHook, store: Any = None
) -> AlibabaCloudTaskEventTrigger:
    trigger._hook = lambda: hook  # type: ignore[method-assign]
    trigger.asset_state_store = store
    return trigger


async def collect(trigger: AlibabaCloudTaskEventTrigger) -> list[TriggerEvent]:
    return [e async for e in trigger.run()]


# --------------------------------------------------------------------------- one event per task


async def test_one_event_when_the_task_ends_then_idles(sleeps: list[float], idle: list[str]) -> None:
    hook = FakeHook([RUN, RUN, DONE])
    events = await collect(use(make(), hook))
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "success"
    assert payload["task_status"] == DONE.to_dict()
    assert payload["service"] == "dataworks"
    assert payload["ids"] == JOB
    assert payload["polls"] == 3
    assert "succeeded" in payload["message"]
    assert json.loads(json.dumps(payload)) == payload
    assert deserialize(serialize(payload)) == payload
    assert hook.calls == 3
    assert sleeps == [10.0, 10.0]
    assert idle == ["idle"]  # never returns on its own: a returning watcher is started again


async def test_idle_waits_until_cancelled() -> None:
    waiter = asyncio.create_task(AlibabaCloudTaskEventTrigger._idle())
    for _ in range(5):
        await _real_sleep(0)
    assert not waiter.done()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (st(FAILED, "Fail", message="bad spec"), "failed"),
        (st(CANCELLED, "Cancel"), "cancelled"),
    ],
)
async def test_failure_and_cancellation_are_events_by_default(
    status: TaskStatus, expected: str, sleeps: list[float], idle: list[str]
) -> None:
    events = await collect(use(make(), FakeHook([status])))
    assert [e.payload["status"] for e in events] == [expected]


async def test_unreported_outcome_is_recorded_without_an_event(sleeps: list[float], idle: list[str]) -> None:
    store = Store(asset=Accessor())
    events = await collect(use(make(outcomes=["success"]), FakeHook([RUN, st(FAILED, "Fail")]), store))
    assert events == []
    assert store._by_name["asset"].data == {
        make().state_key(): {"outcome": "failed", "raw_status": "Fail", "reported": False}
    }
    assert idle == ["idle"]


async def test_partial_success_and_extra_states(sleeps: list[float], idle: list[str]) -> None:
    partial = TaskStatus(service="dataworks", ids=dict(JOB), state=PARTIALLY_SUCCEEDED, raw_status="Partial")
    events = await collect(use(make(partial_success_ok=True), FakeHook([partial])))
    assert [e.payload["status"] for e in events] == ["success"]
    odd = st("unknown", "Finished")
    events = await collect(use(make(success_states=["Finished"]), FakeHook([odd])))
    assert [e.payload["status"] for e in events] == ["success"]


async def test_the_end_is_recorded_in_every_watched_asset_after_the_event(
    sleeps: list[float], idle: list[str]
) -> None:
    store = Store(a=Accessor(), b=Accessor())
    trigger = use(make(), FakeHook([RUN, DONE]), store)
    gen = trigger.run()
    first = await gen.__anext__()
    assert first.payload["status"] == "success"
    # yielded first, recorded right after (when the triggerer asks for the next event)
    assert store._by_name["a"].writes == 0
    assert [e async for e in gen] == []
    record = {"outcome": "success", "raw_status": "Success", "reported": True}
    for accessor in store._by_name.values():
        assert accessor.data == {trigger.state_key(): record}


async def test_a_recorded_task_is_not_polled_or_reported_again(sleeps: list[float], idle: list[str]) -> None:
    """A fresh run of the same watcher (the triggerer restarted, or the watcher moved to another
    triggerer) finds the record and yields nothing."""
    trigger = make()
    store = Store(a=Accessor({trigger.state_key(): {"outcome": "success", "reported": True}}))
    hook = FakeHook([])
    with structlog.testing.capture_logs() as logs:
        events = await collect(use(trigger, hook, store))
    assert events == []
    assert hook.calls == 0
    assert idle == ["idle"]
    assert any("already ended and recorded" in entry["event"] for entry in logs)


async def test_a_second_run_after_the_first_reports_nothing(sleeps: list[float], idle: list[str]) -> None:
    store = Store(a=Accessor())
    first = await collect(use(make(), FakeHook([RUN, DONE]), store))
    second = await collect(use(make(), FakeHook([]), store))
    assert (len(first), len(second)) == (1, 0)


async def test_record_in_any_watched_asset_counts(sleeps: list[float], idle: list[str]) -> None:
    trigger = make()
    store = Store(a=Accessor(), b=Accessor({trigger.state_key(): {"outcome": "success"}}))
    assert await collect(use(trigger, FakeHook([]), store)) == []


async def test_a_broken_state_store_does_not_stop_the_watch(sleeps: list[float], idle: list[str]) -> None:
    store = Store(a=Accessor(fail=True))
    with structlog.testing.capture_logs() as logs:
        events = await collect(use(make(), FakeHook([DONE]), store))
    assert [e.payload["status"] for e in events] == ["success"]
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert any("could not read the asset state store" in w for w in warnings)
    assert any("could not record" in w for w in warnings)


async def test_a_hanging_state_store_times_out(
    sleeps: list[float], idle: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Hanging(Accessor):
        async def aget(self, key: str, default: Any = None) -> Any:
            await asyncio.Event().wait()

    monkeypatch.setattr(triggers_module, "STATE_STORE_TIMEOUT", 0.01)
    events = await collect(use(make(), FakeHook([DONE]), Store(a=Hanging())))
    assert [e.payload["status"] for e in events] == ["success"]


async def test_without_a_state_store(sleeps: list[float], idle: list[str]) -> None:
    trigger = make()
    # set by the triggerer for watchers (Airflow 3.3+); older versions have no such attribute
    assert getattr(trigger, "asset_state_store", None) is None
    with structlog.testing.capture_logs() as logs:
        events = await collect(use(trigger, FakeHook([DONE]), None))
    assert len(events) == 1
    warned = [e for e in logs if "no asset state store" in e["event"]]
    assert len(warned) == 1, logs
    assert warned[0]["log_level"] == "warning"


async def test_with_a_state_store_nothing_is_said_about_it(sleeps: list[float], idle: list[str]) -> None:
    with structlog.testing.capture_logs() as logs:
        events = await collect(use(make(), FakeHook([DONE]), Store(asset=Accessor())))
    assert len(events) == 1
    assert not [e for e in logs if "no asset state store" in e["event"]]


# --------------------------------------------------------------------------- errors never end the watch


async def test_transient_and_permanent_errors_back_off_and_keep_watching(
    sleeps: list[float], idle: list[str]
) -> None:
    script: list[Any] = [
        ServiceError(http_status=503, code="ServiceUnavailable", message="x"),
        ThrottledError(http_status=400, code="Throttling.User", message="slow down"),
        AuthenticationError(http_status=404, code="InvalidAccessKeyId.NotFound", message="no such key"),
        NotFoundError(http_status=404, code="InvalidJob.NotFound", message="no such job"),
        RUN,
        ServiceError(http_status=500, code="InternalError", message="x"),
        DONE,
    ]
    with structlog.testing.capture_logs() as logs:
        events = await collect(use(make(poll_interval=10), FakeHook(script)))
    assert [e.payload["status"] for e in events] == ["success"]
    # doubling from the poll interval; a successful poll resets it
    assert sleeps == [10.0, 20.0, 40.0, 80.0, 10.0, 10.0]
    levels = [(e["log_level"], e["event"]) for e in logs if "poll failed" in e["event"]]
    assert [lvl for lvl, _ in levels] == ["warning", "warning", "error", "error", "warning"]
    assert "no such key" in levels[2][1]


def test_backoff_is_capped() -> None:
    trigger = make(poll_interval=10)
    assert [trigger._backoff(n) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert trigger._backoff(50) == MAX_FAILURE_BACKOFF
    slow = make(poll_interval=3600)
    assert slow._backoff(5) == 3600.0


# --------------------------------------------------------------------------- the example DAG


def test_example_dag_parses_with_a_watcher(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_versions import dagbag

    monkeypatch.setenv("ALIYUN_EXAMPLE_DATAWORKS_JOB_ID", "job-from-env")
    monkeypatch.setenv("ALIYUN_EXAMPLE_POLL_INTERVAL", "5")
    bag = dagbag(str(EXAMPLE))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["example_aliyun_asset_watcher"]
    assets = list(dag.timetable.asset_condition.objects)
    assert [a.name for a in assets] == ["aliyun_dataworks_import"]
    (watcher,) = assets[0].watchers
    assert watcher.name == "dataworks_import_finished"
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == CLASSPATH
    assert kwargs["ids"] == {"job_id": "job-from-env"}
    assert kwargs["poll_interval"] == 5.0
    assert kwargs["outcomes"] == ["success"]


# --------------------------------------------------------------------------- a real triggerer

WATCHED_JOB = "aw-import-0001"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    dags = tmp_path_factory.mktemp("watcher_dags")
    shutil.copy(EXAMPLE, dags / EXAMPLE.name)
    env = {"ALIYUN_EXAMPLE_DATAWORKS_JOB_ID": WATCHED_JOB, "ALIYUN_EXAMPLE_POLL_INTERVAL": "1"}
    with AirflowStack(dags_folder=dags, name="watcher", env=env) as deployment:
        # the job exists before the watcher starts polling it
        deployment.add_tasks([{"service": "dataworks", "job_id": WATCHED_JOB, "statuses": ["Running"]}])
        deployment.wait_for_dags(["example_aliyun_asset_watcher"])
        yield deployment


def _polls(stack: AirflowStack) -> int:
    for task in stack.emulator_stats()["tasks"]:
        if task["ids"] == {"job_id": WATCHED_JOB}:
            return int(task["polls"])
    return 0


def _asset_id(stack: AirflowStack) -> int:
    assets = stack.api("GET", "assets", params={"name_pattern": "aliyun_dataworks_import"})["assets"]
    return int(next(a["id"] for a in assets if a["name"] == "aliyun_dataworks_import"))


def _events(stack: AirflowStack, asset_id: int) -> list[dict[str, Any]]:
    """Asset events, read from the database. (``GET /api/v2/assets/events`` of Airflow 3.3.2 answers
    HTTP 500 while a DAG run the event created has not started yet: its response model requires
    the run's ``start_date``.)"""
    rows = stack.query("SELECT id, extra FROM asset_event WHERE asset_id = :a ORDER BY id", a=asset_id)
    for row in rows:
        if isinstance(row["extra"], str):
            row["extra"] = json.loads(row["extra"])
    return rows


def _api_events(stack: AirflowStack, asset_id: int) -> list[dict[str, Any]]:
    return list(stack.api("GET", "assets/events", params={"asset_id": asset_id})["asset_events"])


def _runs(stack: AirflowStack) -> list[dict[str, Any]]:
    return list(stack.api("GET", "dags/example_aliyun_asset_watcher/dagRuns")["dag_runs"])


@pytest.mark.airflow
def test_real_triggerer_asset_event_starts_the_dag_once(stack: AirflowStack) -> None:
    asset_id = wait_until(lambda: _asset_id(stack), timeout=120, what="the watched asset")
    # The watcher runs in the triggerer and polls the job while it runs.
    wait_until(lambda: _polls(stack) >= 2, timeout=180, what="the watcher to poll the job")
    assert _events(stack, asset_id) == []
    assert _runs(stack) == []

    # The job finishes: one asset event, one DAG run scheduled on the asset.
    stack.add_tasks([{"service": "dataworks", "job_id": WATCHED_JOB, "statuses": ["Success"]}])
    events = wait_until(lambda: _events(stack, asset_id), timeout=120, what="the asset event")
    assert len(events) == 1
    extra = events[0]["extra"]
    assert extra["from_trigger"] is True
    assert extra["payload"]["status"] == "success"
    assert extra["payload"]["ids"] == {"job_id": WATCHED_JOB}
    assert extra["payload"]["task_status"]["raw_status"] == "Success"
    run = wait_until(
        lambda: [r for r in _runs(stack) if r["state"] == "success"], timeout=240, what="the DAG run"
    )[0]
    assert run["run_type"] == "asset_triggered"
    api_events = _api_events(stack, asset_id)  # the run has started: the REST API answers
    assert [e["extra"] for e in api_events] == [extra]
    assert [r["dag_id"] for r in api_events[0]["created_dagruns"]] == ["example_aliyun_asset_watcher"]
    log = stack.triggerers[0].log_path
    if not AIRFLOW_3_3:
        # No asset state store: the watcher said once that a restart would report the end again.
        assert log.read_text(errors="replace").count("no asset state store (it arrived in Airflow 3.3)") == 1
    xcom = stack.api(
        "GET",
        f"dags/example_aliyun_asset_watcher/dagRuns/{run['dag_run_id']}/taskInstances/use_the_import/"
        "xcomEntries/return_value",
    )
    value = xcom["value"] if isinstance(xcom["value"], list) else json.loads(xcom["value"])
    assert value == [{"ids": {"job_id": WATCHED_JOB}, "status": "success"}]
    if not AIRFLOW_3_3:
        return  # the rest is the asset state store's

    # The end is recorded in the asset's state store, visible through the REST API.
    key = f"airflow_aliyun_tasks:dataworks:job_id={WATCHED_JOB}"
    entry = wait_until(
        lambda: stack.api("GET", f"assets/{asset_id}/state-store/{key}"), timeout=60, what="the record"
    )
    value = entry["value"] if isinstance(entry["value"], dict) else json.loads(entry["value"])
    assert value == {"outcome": "success", "raw_status": "Success", "reported": True}
    polls_at_end = _polls(stack)
    # The watcher did not return after its event (a watcher that returns is started again about a
    # second later, and a fresh run would have logged finding the record).
    assert "already ended and recorded" not in log.read_text(errors="replace")

    # A triggerer restart starts the watcher from scratch: it finds the record, does not poll,
    # and no second asset event or DAG run appears.
    stack.restart_triggerer(0)
    log = stack.triggerers[0].log_path
    wait_until(
        lambda: "already ended and recorded" in log.read_text(errors="replace"),
        timeout=180,
        what="the restarted watcher to find the record",
    )
    assert _polls(stack) == polls_at_end
    assert len(_events(stack, asset_id)) == 1
    assert len(_api_events(stack, asset_id)) == 1
    assert len(_runs(stack)) == 1
    print(
        f"asset event extra: {json.dumps(extra)[:300]}...\n"
        f"state store {key!r}: {value}\n"
        f"polls: {polls_at_end} before the restart, {_polls(stack)} after"
    )
