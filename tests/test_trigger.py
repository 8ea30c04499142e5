"""AlibabaCloudTaskTrigger: serialization, events, polling, failures, deadline, cancellation.

The hook is replaced by a fake (``AlibabaCloudTaskTrigger._hook`` is monkeypatched); no HTTP.
Most tests also replace the trigger module's clock and ``asyncio.sleep`` by a fake clock that
advances only when the trigger sleeps, so deadlines are exact and the tests take no real time.
Trigger logs go through structlog, so they are captured with ``structlog.testing.capture_logs``
(pytest's ``caplog`` does not see them).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import time
from typing import Any

import pytest
import structlog.testing
from airflow.triggers.base import TriggerEvent

import airflow_aliyun_tasks.triggers as triggers_module
from airflow_aliyun_tasks.errors import (
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
    TransportError,
)
from airflow_aliyun_tasks.services import SERVICES
from airflow_aliyun_tasks.status import (
    CANCELLED,
    FAILED,
    PARTIALLY_SUCCEEDED,
    RUNNING,
    SUCCEEDED,
    UNKNOWN,
    TaskStatus,
)
from airflow_aliyun_tasks.triggers import EVENT_STATUSES, ID_FIELDS, AlibabaCloudTaskTrigger
from airflow_versions import deserialize, serialize
from fakes import FakeHook, ModuleProxy

CLASSPATH = "airflow_aliyun_tasks.triggers.AlibabaCloudTaskTrigger"
DLF_IDS = {"async_task_id": "t-1", "catalog_id": "1234567890"}
START = 1_800_000_000.0  # the fake clock's epoch time at the start of each test

_real_sleep = asyncio.sleep
_real_time = time


def st(state: str, raw: str | None = None, **kw: Any) -> TaskStatus:
    return TaskStatus(service="dlf", ids=dict(DLF_IDS), state=state, raw_status=raw, **kw)


RUN = st(RUNNING, "Executing")
DONE = st(SUCCEEDED, "Success", request_id="req-ok")


def transient(n: int = 0) -> Exception:
    return [
        ServiceError(http_status=503, code="ServiceUnavailable", message="x"),
        TransportError("connection reset"),
        BadResponseError("not json", http_status=502),
        ThrottledError(http_status=429, code="Throttling.User", message="slow down"),
    ][n % 4]


# --------------------------------------------------------------------------- fakes


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        assert delay >= 0, f"negative sleep {delay}"
        self.sleeps.append(delay)
        self.now += delay
        await _real_sleep(0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(triggers_module, "time", ModuleProxy(_real_time, time=fake.time))
    monkeypatch.setattr(triggers_module, "asyncio", ModuleProxy(asyncio, sleep=fake.sleep))
    return fake


@pytest.fixture
def use_hook(monkeypatch: pytest.MonkeyPatch):
    def install(hook: Any) -> Any:
        monkeypatch.setattr(AlibabaCloudTaskTrigger, "_hook", lambda self: hook)
        return hook

    return install


def make(**overrides: Any) -> AlibabaCloudTaskTrigger:
    kwargs: dict[str, Any] = {
        "service": "dlf",
        "ids": dict(DLF_IDS),
        "aliyun_conn_id": "aliyun_test",
        "poll_interval": 10.0,
        "end_time": START + 3600,
    }
    kwargs.update(overrides)
    return AlibabaCloudTaskTrigger(**kwargs)


async def collect(trigger: AlibabaCloudTaskTrigger) -> list[TriggerEvent]:
    return [e async for e in trigger.run()]


def only_event(events: list[TriggerEvent]) -> dict[str, Any]:
    assert len(events) == 1, events
    event = events[0]
    assert isinstance(event, TriggerEvent)
    payload = event.payload
    assert set(payload) == {"status", "message", "task_status", "service", "ids", "polls"}
    assert payload["status"] in EVENT_STATUSES
    assert isinstance(payload["message"], str)
    # Crosses the triggerer/worker boundary: plain JSON, and Airflow's serde accepts it.
    assert json.loads(json.dumps(payload)) == payload
    assert deserialize(serialize(payload)) == payload
    return payload


# --------------------------------------------------------------------------- serialization

FULL_KWARGS: dict[str, Any] = {
    "service": "pds",
    "ids": {"async_task_id": "at-1", "domain_id": "bj1"},
    "aliyun_conn_id": "aliyun_prod",
    "poll_interval": 15.0,
    "end_time": START + 600.5,
    "max_consecutive_failures": 3,
    "initial_delay": 15.0,
    "success_states": ["Done"],
    "failure_states": ["Broken", "Lost"],
    "partial_success_ok": True,
    "region_id": "cn-shanghai",
}


def test_serialize_round_trips() -> None:
    trigger = AlibabaCloudTaskTrigger(**FULL_KWARGS)
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert kwargs == FULL_KWARGS
    # The classpath is importable and the kwargs rebuild an identical trigger.
    module_name, _, cls_name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module_name), cls_name)
    assert cls is AlibabaCloudTaskTrigger
    assert cls(**kwargs).serialize() == (classpath, kwargs)


def test_serialized_kwargs_are_plain_json_and_pass_airflow_serde() -> None:
    _, kwargs = AlibabaCloudTaskTrigger(**FULL_KWARGS).serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    encoded = serialize(kwargs)
    json.dumps(encoded)  # what the Execution API stores
    decoded = deserialize(encoded)
    assert decoded == kwargs
    assert AlibabaCloudTaskTrigger(**decoded).serialize() == (CLASSPATH, kwargs)


def test_serialize_contains_no_credentials() -> None:
    _, kwargs = AlibabaCloudTaskTrigger(**FULL_KWARGS).serialize()
    words = ("secret", "password", "token", "access_key", "accesskey", "credential", "login", "sts")
    for key in kwargs:
        assert not any(w in key.lower() for w in words), key
    text = json.dumps(kwargs).lower()
    for word in ("secret", "password", "token", "accesskey"):
        assert word not in text
    assert kwargs["aliyun_conn_id"] == "aliyun_prod"  # credentials are looked up by conn id


def test_serialize_normalizes_inputs() -> None:
    trigger = AlibabaCloudTaskTrigger(
        service="mma",
        ids={"source_id": 2000017, "async_task_id": 2523, "ignored": None},
        poll_interval=5,
        end_time=int(START),
        max_consecutive_failures=2,
        success_states=("A",),
        failure_states=iter(["B"]),
        partial_success_ok=0,
    )
    _, kwargs = trigger.serialize()
    assert kwargs["ids"] == {"source_id": "2000017", "async_task_id": "2523"}
    assert kwargs["poll_interval"] == 5.0
    assert isinstance(kwargs["poll_interval"], float)
    assert kwargs["end_time"] == START
    assert kwargs["success_states"] == ["A"]
    assert kwargs["failure_states"] == ["B"]
    assert kwargs["partial_success_ok"] is False
    assert kwargs["aliyun_conn_id"] == "aliyun_default"
    assert kwargs["initial_delay"] == 0.0
    assert AlibabaCloudTaskTrigger(**kwargs).serialize() == (CLASSPATH, kwargs)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"poll_interval": 0}, "poll_interval", id="poll-interval-zero"),
        pytest.param({"poll_interval": -1}, "poll_interval", id="poll-interval-negative"),
        pytest.param({"service": "oss"}, "service", id="unknown-service"),
        pytest.param({"max_consecutive_failures": -1}, "max_consecutive_failures", id="negative-failures"),
        pytest.param({"ids": ["t-1"]}, "ids", id="ids-not-a-mapping"),
    ],
)
def test_constructor_rejects_bad_values(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        make(**overrides)
    assert excinfo.value.field == field


@pytest.mark.parametrize("field", ["poll_interval", "end_time"])
def test_constructor_rejects_non_finite_numbers(field: str) -> None:
    with pytest.raises(ConfigurationError):
        make(**{field: math.nan})


# --------------------------------------------------------------------------- terminal states


@pytest.mark.parametrize(
    ("state", "raw", "expected"),
    [
        (SUCCEEDED, "Success", "success"),
        (FAILED, "Fail", "failed"),
        (CANCELLED, "Cancelled", "cancelled"),
    ],
)
async def test_terminal_state_yields_one_event(clock: FakeClock, use_hook, state, raw, expected) -> None:
    final = st(state, raw, message="disk full", error_code="E42", request_id="req-7", progress=0.5)
    hook = use_hook(FakeHook([final], clock))
    payload = only_event(await collect(make()))
    assert payload["status"] == expected
    assert payload["task_status"] == final.to_dict()
    assert TaskStatus.from_dict(payload["task_status"]) == final
    for part in ("E42", "disk full", "req-7", "t-1"):
        assert part in payload["message"]
    assert payload["service"] == "dlf"
    assert payload["ids"] == DLF_IDS
    assert payload["polls"] == 1
    assert hook.calls == [("dlf", DLF_IDS)]
    assert clock.sleeps == []


async def test_generator_ends_after_the_event(clock: FakeClock, use_hook) -> None:
    use_hook(FakeHook([DONE, DONE], clock))
    gen = make().run()
    first = await anext(gen)
    assert first.payload["status"] == "success"
    with pytest.raises(StopAsyncIteration):
        await anext(gen)


@pytest.mark.parametrize(("ok", "expected"), [(False, "failed"), (True, "success")])
async def test_pds_partial_success(clock: FakeClock, use_hook, ok: bool, expected: str) -> None:
    partial = TaskStatus(
        service="pds",
        ids={"async_task_id": "at-1"},
        state=PARTIALLY_SUCCEEDED,
        raw_status="PartialSucceed",
        message="3 of 5 files failed",
    )
    hook = use_hook(FakeHook([partial], clock))
    trigger = make(service="pds", ids={"async_task_id": "at-1"}, partial_success_ok=ok)
    payload = only_event(await collect(trigger))
    assert payload["status"] == expected
    assert payload["task_status"] == partial.to_dict()
    assert "3 of 5 files failed" in payload["message"]
    assert hook.calls == [("pds", {"async_task_id": "at-1"})]


@pytest.mark.parametrize(
    ("status", "kwargs", "expected"),
    [
        pytest.param(st(UNKNOWN, "DONE"), {"success_states": ["done"]}, "success", id="unknown-in-success"),
        pytest.param(
            st(UNKNOWN, "broken"), {"failure_states": ["Broken"]}, "failed", id="unknown-in-failure"
        ),
        pytest.param(st(RUNNING, "Executing"), {"success_states": ["EXECUTING"]}, "success", id="running"),
        pytest.param(st(SUCCEEDED, "Success"), {"failure_states": ["success"]}, "failed", id="overrides-map"),
    ],
)
async def test_extra_states_end_the_wait_case_insensitively(
    clock: FakeClock, use_hook, status: TaskStatus, kwargs: dict[str, Any], expected: str
) -> None:
    hook = use_hook(FakeHook([status], clock))
    payload = only_event(await collect(make(**kwargs)))
    assert payload["status"] == expected
    assert len(hook.calls) == 1


# --------------------------------------------------------------------------- polling


async def test_polls_until_terminal_with_poll_interval_between(clock: FakeClock, use_hook) -> None:
    hook = use_hook(FakeHook([RUN, RUN, DONE], clock))
    payload = only_event(await collect(make(poll_interval=7.5)))
    assert payload["status"] == "success"
    assert payload["polls"] == 3
    assert clock.sleeps == [7.5, 7.5]
    assert hook.call_times == [START, START + 7.5, START + 15.0]
    assert hook.calls == [("dlf", DLF_IDS)] * 3


async def test_initial_delay_before_first_poll(clock: FakeClock, use_hook) -> None:
    hook = use_hook(FakeHook([RUN, DONE], clock))
    payload = only_event(await collect(make(poll_interval=5.0, initial_delay=30.0)))
    assert payload["status"] == "success"
    assert clock.sleeps == [30.0, 5.0]
    assert hook.call_times == [START + 30.0, START + 35.0]


async def test_initial_delay_is_capped_by_the_deadline(clock: FakeClock, use_hook) -> None:
    hook = use_hook(FakeHook([], clock))
    payload = only_event(await collect(make(initial_delay=100.0, end_time=START + 20.0)))
    assert payload["status"] == "timeout"
    assert clock.sleeps == [20.0]
    assert hook.calls == []


async def test_real_event_loop_polls_with_short_interval(use_hook) -> None:
    """No fake clock: the trigger really sleeps between polls on the running loop."""
    hook = use_hook(FakeHook([RUN, RUN, DONE]))
    started = time.monotonic()
    payload = only_event(await collect(make(poll_interval=0.01, end_time=time.time() + 30)))
    elapsed = time.monotonic() - started
    assert payload["status"] == "success"
    assert payload["polls"] == 3
    assert len(hook.calls) == 3
    assert 0.015 <= elapsed < 5
    gaps = [b - a for a, b in zip(hook.call_times, hook.call_times[1:], strict=False)]
    assert all(g >= 0.005 for g in gaps), gaps


def test_triggers_of_a_class_share_one_logger() -> None:
    """One logger per trigger class, not one per waiting trigger; a logger given to one trigger
    (its ``_log``) still wins, and a subclass's triggers log under the subclass's name."""
    from airflow_aliyun_tasks.triggers import AlibabaCloudTaskEventTrigger

    a, b = make(), make(ids={"async_task_id": "t-2", "catalog_id": "1"})
    assert a.log is b.log
    assert getattr(a.log, "_logger_factory_args", None) == (
        "airflow_aliyun_tasks.triggers.AlibabaCloudTaskTrigger",
    )
    watcher = AlibabaCloudTaskEventTrigger(service="dlf", ids=DLF_IDS)
    assert watcher.log is AlibabaCloudTaskEventTrigger(service="dlf", ids={"async_task_id": "t-9"}).log
    assert watcher.log is not a.log

    class Sub(AlibabaCloudTaskTrigger):
        pass

    sub = Sub(service="dlf", ids=DLF_IDS)
    assert sub.log is not a.log
    assert getattr(sub.log, "_logger_factory_args", None) == (f"{__name__}.Sub",)
    assert make().log is a.log  # the subclass did not replace its parent's
    own = structlog.get_logger("one trigger's own")
    c = make()
    c._log = own
    assert c.log is own
    assert make().log is a.log


async def test_lines_of_triggers_sharing_a_logger_carry_their_own_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The triggerer tells triggers' lines apart by the context variables it binds in each
    trigger's task (``trigger_id``, the task instance), which a shared logger merges per line."""
    import structlog.contextvars

    monkeypatch.setattr(AlibabaCloudTaskTrigger, "_hook", lambda self: FakeHook([RUN, RUN, DONE]))

    async def run_trigger(trigger_id: int) -> list[TriggerEvent]:
        structlog.contextvars.bind_contextvars(trigger_id=trigger_id)
        return await collect(make(poll_interval=0.01, end_time=time.time() + 30))

    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        results = await asyncio.gather(*(asyncio.create_task(run_trigger(i)) for i in range(3)))
    assert [only_event(events)["status"] for events in results] == ["success"] * 3
    running = sorted(e["trigger_id"] for e in logs if ": running" in e["event"])
    done = sorted(e["trigger_id"] for e in logs if ": succeeded" in e["event"])
    assert running == done == [0, 1, 2]  # one line per change, each under its own trigger


def _unknown_warnings(logs: list[dict[str, Any]]) -> list[str]:
    return [
        e["event"]
        for e in logs
        if e.get("log_level") == "warning" and "is not one this package knows" in e["event"]
    ]


async def test_unknown_raw_status_keeps_waiting_and_warns_once_per_value(clock: FakeClock, use_hook) -> None:
    script = [st(UNKNOWN, "Weird"), st(UNKNOWN, "Weird"), st(UNKNOWN, "Odd"), st(UNKNOWN, "Weird")]
    script += [st(UNKNOWN, None), st(UNKNOWN, None), RUN, DONE]
    hook = use_hook(FakeHook(script, clock))
    with structlog.testing.capture_logs() as logs:
        payload = only_event(await collect(make(poll_interval=1.0)))
    assert payload["status"] == "success"
    assert payload["polls"] == len(hook.calls) == 8
    warnings = _unknown_warnings(logs)
    assert len(warnings) == 3, warnings
    assert sum("'Weird'" in w for w in warnings) == 1
    assert sum("'Odd'" in w for w in warnings) == 1
    assert sum("None" in w for w in warnings) == 1
    assert all("success_states" in w for w in warnings)


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("n", [0, 1, 2, 3])
async def test_transient_errors_up_to_the_limit_are_tolerated(clock: FakeClock, use_hook, n: int) -> None:
    hook = use_hook(FakeHook([transient(n), transient(n + 1), DONE], clock))
    with structlog.testing.capture_logs() as logs:
        payload = only_event(await collect(make(max_consecutive_failures=2, poll_interval=3.0)))
    assert payload["status"] == "success"
    assert payload["polls"] == 1  # successful polls only
    assert len(hook.calls) == 3
    assert clock.sleeps == [3.0, 3.0]  # failed polls are spaced by poll_interval too
    poll_failed = [
        e["event"] for e in logs if e.get("log_level") == "warning" and "poll failed" in e["event"]
    ]
    assert len(poll_failed) == 2
    assert "(1/2)" in poll_failed[0]
    assert "(2/2)" in poll_failed[1]


async def test_one_transient_error_too_many_yields_error(clock: FakeClock, use_hook) -> None:
    hook = use_hook(FakeHook([RUN, transient(0), transient(1), transient(2), DONE], clock))
    payload = only_event(await collect(make(max_consecutive_failures=2)))
    assert payload["status"] == "error"
    assert "3 polls in a row failed" in payload["message"]
    assert "limit 2" in payload["message"]
    assert "not json" in payload["message"]  # the last error
    assert payload["task_status"] == RUN.to_dict()  # the last good poll
    assert payload["polls"] == 1
    assert len(hook.calls) == 4


async def test_zero_failures_allowed(clock: FakeClock, use_hook) -> None:
    use_hook(FakeHook([transient(1)], clock))
    payload = only_event(await collect(make(max_consecutive_failures=0)))
    assert payload["status"] == "error"
    assert "limit 0" in payload["message"]
    assert payload["task_status"] is None


async def test_a_successful_poll_resets_the_failure_count(clock: FakeClock, use_hook) -> None:
    script = [transient(0), transient(1), RUN, transient(2), transient(3), DONE]
    hook = use_hook(FakeHook(script, clock))
    payload = only_event(await collect(make(max_consecutive_failures=2)))
    assert payload["status"] == "success"
    assert len(hook.calls) == 6
    assert payload["polls"] == 2


@pytest.mark.parametrize(
    ("error", "text"),
    [
        pytest.param(
            AuthenticationError(
                http_status=401, code="InvalidAccessKeyId.NotFound", message="bad key", request_id="r-1"
            ),
            "InvalidAccessKeyId.NotFound",
            id="authentication",
        ),
        pytest.param(
            PermissionDeniedError(http_status=403, code="Forbidden.RAM", message="denied"),
            "Forbidden.RAM",
            id="permission",
        ),
        pytest.param(
            NotFoundError(http_status=404, code="TaskNotFound", message="no such task"),
            "TaskNotFound",
            id="not-found",
        ),
        pytest.param(ConfigurationError("region_id", "is required"), "region_id: is required", id="config"),
        pytest.param(RuntimeError("kaboom"), "kaboom", id="plain-runtime-error"),
    ],
)
async def test_permanent_error_yields_error_immediately(clock: FakeClock, use_hook, error, text) -> None:
    hook = use_hook(FakeHook([RUN, error, DONE], clock))
    payload = only_event(await collect(make(max_consecutive_failures=5)))
    assert payload["status"] == "error"
    assert text in payload["message"]
    assert "t-1" in payload["message"]
    assert payload["task_status"] == RUN.to_dict()
    assert len(hook.calls) == 2


# --------------------------------------------------------------------------- deadline


async def test_deadline_in_the_past_times_out_without_polling(clock: FakeClock, use_hook) -> None:
    hook = use_hook(FakeHook([DONE], clock))
    payload = only_event(await collect(make(end_time=START - 1)))
    assert payload["status"] == "timeout"
    assert payload["task_status"] is None
    assert payload["polls"] == 0
    assert "unpolled" in payload["message"]
    assert hook.calls == []
    assert all(s == 0 for s in clock.sleeps)


async def test_deadline_reached_while_running(clock: FakeClock, use_hook) -> None:
    hook = use_hook(FakeHook([RUN] * 10, clock))
    payload = only_event(await collect(make(poll_interval=10.0, end_time=START + 25.0)))
    assert payload["status"] == "timeout"
    assert payload["task_status"] == RUN.to_dict()
    assert payload["polls"] == 3
    assert "still running at the deadline" in payload["message"]
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START + 25.0))
    assert deadline in payload["message"]
    # Sleeps are capped so the trigger never oversleeps the deadline.
    assert clock.sleeps == [10.0, 10.0, 5.0]
    assert clock.now == START + 25.0
    assert hook.call_times == [START, START + 10.0, START + 20.0]


async def test_deadline_with_real_clock(use_hook) -> None:
    hook = use_hook(FakeHook([RUN] * 50))
    started = time.monotonic()
    payload = only_event(await collect(make(poll_interval=0.02, end_time=time.time() + 0.1)))
    elapsed = time.monotonic() - started
    assert payload["status"] == "timeout"
    assert 0.05 <= elapsed < 5
    assert 1 <= len(hook.calls) <= 10


async def test_terminal_status_wins_over_a_deadline_passed_during_the_poll(
    clock: FakeClock, use_hook
) -> None:
    class SlowHook(FakeHook):
        async def aget_task_status(self, service: str, **ids: Any) -> TaskStatus:
            clock.now += 100  # the call took longer than the time left
            return await super().aget_task_status(service, **ids)

    use_hook(SlowHook([DONE], clock))
    payload = only_event(await collect(make(end_time=START + 50)))
    assert payload["status"] == "success"


# --------------------------------------------------------------------------- cancellation


async def _assert_no_other_tasks() -> None:
    for _ in range(3):
        await _real_sleep(0)
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_cancel_while_the_hook_call_blocks(use_hook) -> None:
    entered = asyncio.Event()
    never = asyncio.Event()
    cancelled: list[bool] = []

    class BlockingHook:
        calls = 0

        async def aget_task_status(self, service: str, **ids: Any) -> TaskStatus:
            BlockingHook.calls += 1
            entered.set()
            try:
                await never.wait()
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            raise AssertionError("never set")

    use_hook(BlockingHook())
    gen = make(end_time=time.time() + 60).run()

    async def first() -> TriggerEvent:
        return await anext(gen)

    task = asyncio.create_task(first())
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == [True]
    assert BlockingHook.calls == 1
    await gen.aclose()
    await _assert_no_other_tasks()


async def test_cancel_while_sleeping_between_polls(use_hook) -> None:
    hook = use_hook(FakeHook([RUN]))
    gen = make(poll_interval=3600.0, end_time=time.time() + 7200).run()

    async def first() -> TriggerEvent:
        return await anext(gen)

    task = asyncio.create_task(first())
    for _ in range(50):
        await _real_sleep(0)
        if hook.calls:
            break
    await _real_sleep(0.01)
    assert len(hook.calls) == 1
    assert not task.done()
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1
    await gen.aclose()
    await _assert_no_other_tasks()


async def test_cancel_during_initial_delay(use_hook) -> None:
    hook = use_hook(FakeHook([DONE]))
    gen = make(initial_delay=3600.0, end_time=time.time() + 7200).run()

    async def first() -> TriggerEvent:
        return await anext(gen)

    task = asyncio.create_task(first())
    await _real_sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hook.calls == []
    await gen.aclose()
    await _assert_no_other_tasks()


def test_cancel_on_kill_round_trips_and_is_serialized_only_when_set() -> None:
    plain = AlibabaCloudTaskTrigger(
        service="emr_serverless_spark", ids={"workspace_id": "w", "job_run_id": "jr"}
    )
    assert "cancel_on_kill" not in plain.serialize()[1]  # a sensor's trigger row is unchanged
    trigger = AlibabaCloudTaskTrigger(
        service="emr_serverless_spark", ids={"workspace_id": "w", "job_run_id": "jr"}, cancel_on_kill=True
    )
    classpath, kwargs = trigger.serialize()
    assert kwargs["cancel_on_kill"] is True
    assert AlibabaCloudTaskTrigger(**kwargs).serialize() == (classpath, kwargs)


# --------------------------------------------------------------------------- what a waiting trigger keeps

#: CPython's limit on the keys of instance dicts that share their keys (``SHARED_KEYS_MAX_SIZE``):
#: an instance with more attributes gets a dict of its own (1.5 KB instead of about 300 bytes).
SHARED_KEYS_MAX = 30


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_trigger_keeps_its_attributes_in_a_shared_key_dict(service: str) -> None:
    """Every id of the registry is a trigger attribute (Airflow renders templated ids into
    attributes of the same name), but a trigger sets only the ids it was given: the ids it was
    not given read the class's None. With all of them set, the tenth service took a trigger past
    CPython's 30 shared keys, and each of thousands of waiting triggers carried a 1.5 KB dict."""
    spec = SERVICES[service]
    trigger = AlibabaCloudTaskTrigger(
        service=service,
        region_id="cn-hangzhou",
        cancel_on_kill=True,
        cancel_also=[{p.name: "other" for p in spec.ids}],
        **{p.name: "1" for p in spec.ids},
    )
    assert len(vars(trigger)) <= SHARED_KEYS_MAX, sorted(vars(trigger))
    for name in ID_FIELDS:  # every id reads as before: given, or None
        given = name in {p.name for p in spec.ids}
        assert getattr(trigger, name) == ("1" if given else None)
        assert (name in vars(trigger)) == given
    assert trigger.task_ids() == {p.name: "1" for p in spec.ids}
    rebuilt = AlibabaCloudTaskTrigger(**trigger.serialize()[1])
    assert rebuilt.serialize() == trigger.serialize()
