"""The four sensors: construction, deferral, resumption, soft_fail, poke mode, cheap import.

No database and no HTTP: the ``hook`` property of :class:`AlibabaCloudTaskSensor` is replaced by a
fake with a scripted sync ``get_task_status``. Sensor logs go through structlog, so they are
captured with ``structlog.testing.capture_logs``.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import pytest
import structlog.testing
from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_aliyun_tasks.errors import (
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    ServiceError,
    ThrottledError,
    TransportError,
)
from airflow_aliyun_tasks.sensors import (
    AdbSparkAppSensor,
    AlibabaCloudTaskFailedError,
    AlibabaCloudTaskSensor,
    DataWorksJobSensor,
    DataWorksWorkflowInstanceSensor,
    DlfAsyncTaskSensor,
    EmrServerlessSparkJobRunSensor,
    FcAsyncTaskSensor,
    FlinkJobSensor,
    MmaAsyncTaskSensor,
    PaiDlcJobSensor,
    PdsAsyncTaskSensor,
)
from airflow_aliyun_tasks.status import (
    CANCELLED,
    FAILED,
    PARTIALLY_SUCCEEDED,
    RUNNING,
    SUCCEEDED,
    UNKNOWN,
    TaskStatus,
)
from airflow_versions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
    deserialize,
    serialize,
)

try:
    from airflow.sdk import conf
except ImportError:  # pragma: no cover - Airflow < 3.2
    from airflow.configuration import conf  # type: ignore[assignment,no-redef]


# --------------------------------------------------------------------------- the four sensors

SENSORS: dict[str, dict[str, Any]] = {
    "dlf": {
        "cls": DlfAsyncTaskSensor,
        "kwargs": {"async_task_id": "t-1", "catalog_id": "1234567890"},
        "ids": {"async_task_id": "t-1", "catalog_id": "1234567890"},
        "template_fields": ("async_task_id", "catalog_id", "region_id"),
    },
    "dataworks": {
        "cls": DataWorksJobSensor,
        "kwargs": {"job_id": "job-9"},
        "ids": {"job_id": "job-9"},
        "template_fields": ("job_id", "region_id"),
    },
    "mma": {
        "cls": MmaAsyncTaskSensor,
        "kwargs": {"source_id": 2000017, "async_task_id": "2523"},
        "ids": {"source_id": "2000017", "async_task_id": "2523"},
        "template_fields": ("source_id", "async_task_id", "region_id"),
    },
    "pds": {
        "cls": PdsAsyncTaskSensor,
        "kwargs": {"async_task_id": "at-1", "domain_id": "bj1"},
        "ids": {"async_task_id": "at-1", "domain_id": "bj1"},
        "template_fields": ("async_task_id", "domain_id", "region_id"),
    },
    "emr_serverless_spark": {
        "cls": EmrServerlessSparkJobRunSensor,
        "kwargs": {"workspace_id": "w-1", "job_run_id": "jr-1"},
        "ids": {"workspace_id": "w-1", "job_run_id": "jr-1"},
        "template_fields": ("workspace_id", "job_run_id", "region_id"),
    },
    "dataworks_workflow": {
        "cls": DataWorksWorkflowInstanceSensor,
        "kwargs": {"workflow_instance_id": 1234},
        "ids": {"workflow_instance_id": "1234"},
        "template_fields": ("workflow_instance_id", "region_id"),
    },
    "pai_dlc": {
        "cls": PaiDlcJobSensor,
        "kwargs": {"job_id": "dlc1a2b3c4d5e6f"},
        "ids": {"job_id": "dlc1a2b3c4d5e6f"},
        "template_fields": ("job_id", "region_id"),
    },
    "adb_spark": {
        "cls": AdbSparkAppSensor,
        "kwargs": {"app_id": "s202204191546hzpread6a896000abcd"},
        "ids": {"app_id": "s202204191546hzpread6a896000abcd"},
        "template_fields": ("app_id", "region_id"),
    },
    "flink_job": {
        "cls": FlinkJobSensor,
        "kwargs": {"workspace_id": "a14bd5d90a", "namespace": "default-namespace", "job_id": "5af678c0"},
        "ids": {"workspace_id": "a14bd5d90a", "namespace": "default-namespace", "job_id": "5af678c0"},
        "template_fields": ("workspace_id", "namespace", "job_id", "region_id"),
    },
    "fc_async_task": {
        "cls": FcAsyncTaskSensor,
        "kwargs": {
            "function_name": "etl",
            "async_task_id": "airflow-1",
            "qualifier": "prod",
            "account_id": None,
        },
        "ids": {"function_name": "etl", "async_task_id": "airflow-1", "qualifier": "prod"},
        "template_fields": ("function_name", "async_task_id", "qualifier", "account_id", "region_id"),
    },
}
SERVICES = list(SENSORS)


def test_every_service_of_the_registry_has_a_sensor_here() -> None:
    from airflow_aliyun_tasks.services import SERVICES as REGISTRY

    assert list(REGISTRY) == SERVICES


def make(service: str = "dlf", **overrides: Any) -> AlibabaCloudTaskSensor:
    spec = SENSORS[service]
    kwargs: dict[str, Any] = {"task_id": f"wait_{service}", **spec["kwargs"]}
    kwargs.update(overrides)
    return spec["cls"](**kwargs)


def st(service: str, state: str, raw: str | None = None, **kw: Any) -> TaskStatus:
    return TaskStatus(service=service, ids=dict(SENSORS[service]["ids"]), state=state, raw_status=raw, **kw)


class FakeHook:
    """Sync ``get_task_status`` walking ``script``: TaskStatus returned, exceptions raised."""

    def __init__(self, script: Iterable[TaskStatus | BaseException]) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_task_status(self, service: str, **ids: Any) -> TaskStatus:
        self.calls.append((service, ids))
        if not self.script:
            raise AssertionError("the sensor polled more often than the test scripted")
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


@pytest.fixture
def use_hook(monkeypatch: pytest.MonkeyPatch) -> Callable[[Iterable[Any]], FakeHook]:
    def install(script: Iterable[Any]) -> FakeHook:
        fake = FakeHook(script)
        monkeypatch.setattr(AlibabaCloudTaskSensor, "hook", property(lambda self: fake))
        return fake

    return install


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize("service", SERVICES)
def test_sensor_construction(service: str) -> None:
    spec = SENSORS[service]
    sensor = make(
        service,
        aliyun_conn_id="aliyun_x",
        success_states=("Done",),
        failure_states=["Broken"],
        max_consecutive_failures=7,
        poke_interval=12,
        timeout=300,
        deferrable=True,
    )
    assert isinstance(sensor, BaseSensorOperator)
    assert sensor.service == service
    assert type(sensor).service == service
    assert tuple(type(sensor).template_fields) == spec["template_fields"]
    assert sensor.task_ids() == spec["kwargs"]
    assert sensor.aliyun_conn_id == "aliyun_x"
    assert sensor.success_states == ["Done"]
    assert sensor.failure_states == ["Broken"]
    assert sensor.max_consecutive_failures == 7
    assert sensor.poke_interval == 12
    assert sensor.timeout == 300
    assert sensor.deferrable is True
    for name in spec["template_fields"]:
        assert getattr(sensor, name) == spec["kwargs"].get(name)


@pytest.mark.parametrize("service", SERVICES)
def test_sensor_defaults(service: str) -> None:
    sensor = make(service)
    assert sensor.aliyun_conn_id == "aliyun_default"
    assert sensor.success_states == []
    assert sensor.failure_states == []
    assert sensor.max_consecutive_failures == 5
    assert sensor.partial_success_ok is False


def test_optional_ids_are_left_out() -> None:
    dlf = DlfAsyncTaskSensor(task_id="w", async_task_id="t-1")
    assert dlf.task_ids() == {"async_task_id": "t-1", "catalog_id": None}
    assert dlf._ids() == {"async_task_id": "t-1"}
    pds = PdsAsyncTaskSensor(task_id="w", async_task_id="at-1", domain_id="")
    assert pds._ids() == {"async_task_id": "at-1"}
    mma = MmaAsyncTaskSensor(task_id="w", source_id=1, async_task_id=2)
    assert mma._ids() == {"source_id": "1", "async_task_id": "2"}


def test_pds_partial_success_ok_flag() -> None:
    assert PdsAsyncTaskSensor(task_id="w", async_task_id="a", partial_success_ok=True).partial_success_ok
    assert not PdsAsyncTaskSensor(task_id="w", async_task_id="a").partial_success_ok


def test_base_class_has_no_ids() -> None:
    class Incomplete(AlibabaCloudTaskSensor):
        service = "dlf"

    with pytest.raises(NotImplementedError):
        Incomplete(task_id="w").task_ids()


def test_failed_error_is_a_fail_exception() -> None:
    assert issubclass(AlibabaCloudTaskFailedError, AirflowFailException)
    assert issubclass(AlibabaCloudTaskFailedError, AirflowException)


def test_deferrable_default_follows_config() -> None:
    default = inspect.signature(AlibabaCloudTaskSensor.__init__).parameters["deferrable"].default
    assert default is conf.getboolean("operators", "default_deferrable", fallback=False)
    assert make().deferrable is default
    assert make(deferrable=not default).deferrable is (not default)


# --------------------------------------------------------------------------- fresh interpreter

_PROBE = """
import inspect, json, sys
import airflow_aliyun_tasks.sensors as s
heavy = ["alibabacloud_credentials", "aiohttp", "httpx_aiohttp", "airflow_aliyun_tasks.hooks",
         "airflow_aliyun_tasks.client", "airflow_aliyun_tasks.triggers", "airflow_aliyun_tasks.credentials"]
loaded = [m for m in heavy if m in sys.modules]
default = inspect.signature(s.AlibabaCloudTaskSensor.__init__).parameters["deferrable"].default
instance = s.DlfAsyncTaskSensor(task_id="w", async_task_id="t-1").deferrable
loaded_after = [m for m in heavy if m in sys.modules]
print(json.dumps({"loaded": loaded, "loaded_after": loaded_after, "default": default, "instance": instance}))
"""


@pytest.mark.airflow  # a fresh interpreter imports Airflow
@pytest.mark.parametrize("setting", ["true", "false"])
def test_fresh_import_is_cheap_and_reads_default_deferrable(tmp_path, setting: str) -> None:
    env = dict(os.environ)
    env.update(
        {
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": setting,
            "AIRFLOW_HOME": str(tmp_path),
        }
    )
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert result["loaded_after"] == []  # constructing a sensor stays cheap too
    assert result["default"] is (setting == "true")
    assert result["instance"] is (setting == "true")


# --------------------------------------------------------------------------- deferrable execute()


@pytest.mark.parametrize("service", SERVICES)
def test_execute_defers_while_running(use_hook, service: str) -> None:
    spec = SENSORS[service]
    hook = use_hook([st(service, RUNNING, "Running")])
    sensor = make(
        service,
        deferrable=True,
        aliyun_conn_id="aliyun_x",
        poke_interval=12,
        timeout=600,
        max_consecutive_failures=3,
        success_states=["Done"],
        failure_states=["Broken"],
    )
    before = time.time()
    with pytest.raises(TaskDeferred) as excinfo:
        sensor.execute(context={})
    after = time.time()
    deferred = excinfo.value
    assert hook.calls == [(service, spec["ids"])]
    assert deferred.method_name == "execute_complete"
    assert deferred.kwargs is None
    assert isinstance(deferred.timeout, timedelta)
    assert timedelta(seconds=595) <= deferred.timeout <= timedelta(seconds=600)

    from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger

    trigger = deferred.trigger
    assert isinstance(trigger, AlibabaCloudTaskTrigger)
    assert trigger.service == service
    assert trigger.ids == spec["ids"]
    assert trigger.aliyun_conn_id == "aliyun_x"
    assert trigger.poll_interval == 12.0
    assert trigger.initial_delay == 12.0
    assert before + 600 <= trigger.end_time <= after + 600
    assert trigger.max_consecutive_failures == 3
    assert trigger.success_states == ["Done"]
    assert trigger.failure_states == ["Broken"]
    assert trigger.partial_success_ok is False
    # What the worker sends to the Execution API.
    _, kwargs = trigger.serialize()
    assert deserialize(serialize(kwargs)) == kwargs
    json.dumps(kwargs)


def test_execute_defers_pds_with_partial_success_ok(use_hook) -> None:
    use_hook([st("pds", RUNNING, "Running")])
    sensor = make("pds", deferrable=True, partial_success_ok=True)
    with pytest.raises(TaskDeferred) as excinfo:
        sensor.execute(context={})
    assert excinfo.value.trigger.partial_success_ok is True


def test_execute_defers_after_a_transient_first_poke(use_hook) -> None:
    use_hook([ServiceError(http_status=503, code="ServiceUnavailable", message="x")])
    with pytest.raises(TaskDeferred):
        make(deferrable=True).execute(context={})


@pytest.mark.parametrize("service", SERVICES)
def test_execute_returns_without_deferring_when_already_succeeded(use_hook, service: str) -> None:
    done = st(service, SUCCEEDED, "Success", request_id="req-1")
    use_hook([done])
    assert make(service, deferrable=True).execute(context={}) == done.to_dict()


@pytest.mark.parametrize(("state", "word"), [(FAILED, "failed"), (CANCELLED, "cancelled")])
def test_execute_fails_without_deferring_when_already_failed(use_hook, state: str, word: str) -> None:
    use_hook([st("dlf", state, "Fail", message="disk full", error_code="E42", request_id="req-7")])
    with pytest.raises(AlibabaCloudTaskFailedError) as excinfo:
        make(deferrable=True).execute(context={})
    text = str(excinfo.value)
    assert word in text
    for part in ("disk full", "E42", "req-7", "t-1"):
        assert part in text


def test_execute_raises_a_permanent_first_poke_error(use_hook) -> None:
    use_hook([AuthenticationError(http_status=401, code="InvalidAccessKeyId.NotFound", message="bad")])
    with pytest.raises(AuthenticationError):
        make(deferrable=True).execute(context={})


# --------------------------------------------------------------------------- execute_complete


def event(status: str, message: str = "dlf async_task_id=t-1: something", **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "status": status,
        "message": message,
        "task_status": None,
        "service": "dlf",
        "ids": {"async_task_id": "t-1"},
        "polls": 3,
    }
    payload.update(extra)
    return payload


DONE_DICT = st("dlf", SUCCEEDED, "Success", request_id="req-1").to_dict()


def test_execute_complete_success_returns_the_task_status() -> None:
    result = make().execute_complete({}, event("success", task_status=DONE_DICT))
    assert result == DONE_DICT


@pytest.mark.parametrize(("status", "word"), [("failed", "failed"), ("cancelled", "cancelled")])
def test_execute_complete_failed_or_cancelled(status: str, word: str) -> None:
    msg = "dlf async_task_id=t-1: failed, error code E42: disk full [RequestId: req-7]"
    with pytest.raises(AlibabaCloudTaskFailedError) as excinfo:
        make().execute_complete({}, event(status, msg))
    assert word in str(excinfo.value)
    assert msg in str(excinfo.value)


def test_execute_complete_timeout() -> None:
    with pytest.raises(AirflowSensorTimeout, match="still running at the deadline"):
        make().execute_complete({}, event("timeout", "dlf async_task_id=t-1: still running at the deadline"))


def test_execute_complete_error() -> None:
    with pytest.raises(AirflowException, match="3 polls in a row failed") as excinfo:
        make().execute_complete({}, event("error", "3 polls in a row failed (limit 2)"))
    assert not isinstance(excinfo.value, (AirflowFailException, AirflowSensorTimeout))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        pytest.param(None, "without a trigger event", id="none"),
        pytest.param(["success"], "expected a dict, got list", id="list"),
        pytest.param("success", "expected a dict, got str", id="str"),
        pytest.param(event("done"), "unknown status 'done'", id="unknown-status"),
        pytest.param({"message": "x"}, "unknown status None", id="no-status"),
        pytest.param({"status": "failed"}, "no message", id="missing-message"),
        pytest.param(event("failed", message=None), "no message", id="message-none"),
        pytest.param(event("success"), "success without a task status", id="success-no-task-status"),
        pytest.param(
            event("success", task_status="succeeded"), "success without a task status", id="success-str"
        ),
        pytest.param(event("success", task_status={"state": "succeeded"}), "bad task status", id="partial"),
        pytest.param(
            event("success", task_status={**DONE_DICT, "state": "great"}), "bad task status", id="bad-state"
        ),
        pytest.param(event("success", task_status={**DONE_DICT, "x": 1}), "bad task status", id="extra-key"),
    ],
)
def test_execute_complete_rejects_malformed_events(bad: Any, match: str) -> None:
    with pytest.raises(AirflowException, match=match) as excinfo:
        make().execute_complete({}, bad)
    assert type(excinfo.value) is AirflowException


def test_execute_complete_without_event_argument() -> None:
    with pytest.raises(AirflowException, match="without a trigger event"):
        make().execute_complete({})


# --------------------------------------------------------------------------- resume_execution / soft_fail


@pytest.mark.parametrize(
    ("ev", "error"),
    [
        pytest.param(event("failed"), AlibabaCloudTaskFailedError, id="failed"),
        pytest.param(event("cancelled"), AlibabaCloudTaskFailedError, id="cancelled"),
        pytest.param(event("timeout"), AirflowSensorTimeout, id="timeout"),
        pytest.param(event("error"), AirflowException, id="error"),
        pytest.param(event("nonsense"), AirflowException, id="malformed"),
    ],
)
@pytest.mark.parametrize("soft_fail", [False, True])
def test_resume_execution_soft_fail(ev: dict[str, Any], error: type[Exception], soft_fail: bool) -> None:
    sensor = make(soft_fail=soft_fail, deferrable=True)
    if soft_fail:
        with pytest.raises(AirflowSkipException) as excinfo:
            sensor.resume_execution("execute_complete", {"event": ev}, context={})
        assert isinstance(excinfo.value.__cause__, error)
    else:
        with pytest.raises(error):
            sensor.resume_execution("execute_complete", {"event": ev}, context={})


def test_resume_execution_success_with_soft_fail() -> None:
    sensor = make(soft_fail=True, deferrable=True)
    ev = event("success", task_status=DONE_DICT)
    assert sensor.resume_execution("execute_complete", {"event": ev}, context={}) == DONE_DICT


@pytest.mark.parametrize("soft_fail", [False, True])
def test_resume_after_deferral_timeout(soft_fail: bool) -> None:
    """The scheduler's own trigger timeout (``defer(timeout=...)``) resumes with ``__fail__``."""
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

    sensor = make(soft_fail=soft_fail, deferrable=True)
    kwargs = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    expected = AirflowSkipException if soft_fail else AirflowSensorTimeout
    with pytest.raises(expected):
        sensor.resume_execution(TRIGGER_FAIL_REPR, kwargs, context={})


# --------------------------------------------------------------------------- poke mode


def test_poke_running_then_succeeded(use_hook) -> None:
    done = st("dlf", SUCCEEDED, "Success", request_id="req-1")
    hook = use_hook([st("dlf", RUNNING, "Running"), st("dlf", RUNNING, "Running", progress=0.5), done])
    sensor = make(deferrable=False)
    first = sensor.poke({})
    assert isinstance(first, PokeReturnValue)
    assert not first.is_done
    assert not sensor.poke({}).is_done
    last = sensor.poke({})
    assert last.is_done
    assert last.xcom_value == done.to_dict()
    assert hook.calls == [("dlf", SENSORS["dlf"]["ids"])] * 3


@pytest.mark.parametrize("service", SERVICES)
def test_poke_calls_the_hook_with_the_service_ids(use_hook, service: str) -> None:
    hook = use_hook([st(service, RUNNING, "Running")])
    make(service).poke({})
    assert hook.calls == [(service, SENSORS[service]["ids"])]


@pytest.mark.parametrize(("state", "word"), [(FAILED, "failed"), (CANCELLED, "cancelled")])
def test_poke_failed_or_cancelled(use_hook, state: str, word: str) -> None:
    use_hook([st("dlf", state, "Fail", message="disk full", error_code="E42", request_id="req-7")])
    with pytest.raises(AlibabaCloudTaskFailedError) as excinfo:
        make().poke({})
    for part in (word, "disk full", "E42", "req-7"):
        assert part in str(excinfo.value)


TRANSIENT = [
    ServiceError(http_status=503, code="ServiceUnavailable", message="x"),
    TransportError("connection reset"),
    BadResponseError("not json"),
    ThrottledError(http_status=429, code="Throttling.User", message="slow"),
]


def test_poke_tolerates_transient_errors_up_to_the_limit(use_hook) -> None:
    running = st("dlf", RUNNING, "Running")
    done = st("dlf", SUCCEEDED, "Success")
    use_hook([TRANSIENT[0], TRANSIENT[1], running, TRANSIENT[2], TRANSIENT[3], done])
    sensor = make(max_consecutive_failures=2)
    results = [sensor.poke({}) for _ in range(6)]
    assert [r.is_done for r in results] == [False] * 5 + [True]


def test_poke_fails_after_too_many_transient_errors(use_hook) -> None:
    use_hook([TRANSIENT[0], TRANSIENT[1], TRANSIENT[2]])
    sensor = make(max_consecutive_failures=2)
    assert not sensor.poke({}).is_done
    assert not sensor.poke({}).is_done
    with pytest.raises(AirflowException, match=r"3 polls in a row failed \(limit 2\)") as excinfo:
        sensor.poke({})
    assert isinstance(excinfo.value.__cause__, BadResponseError)
    assert "not json" in str(excinfo.value)


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError(http_status=401, code="InvalidAccessKeyId.NotFound", message="bad"),
        ConfigurationError("region_id", "is required"),
        RuntimeError("kaboom"),
    ],
    ids=["auth", "config", "runtime"],
)
def test_poke_raises_permanent_errors(use_hook, error: Exception) -> None:
    use_hook([error])
    with pytest.raises(type(error)) as excinfo:
        make(max_consecutive_failures=5).poke({})
    assert excinfo.value is error


def _unknown_warnings(logs: list[dict[str, Any]]) -> list[str]:
    return [
        e["event"]
        for e in logs
        if e.get("log_level") == "warning" and "is not one this package knows" in e["event"]
    ]


def test_poke_unknown_status_warns_once_per_value(use_hook) -> None:
    use_hook([st("dlf", UNKNOWN, "Weird"), st("dlf", UNKNOWN, "Weird"), st("dlf", UNKNOWN, "Odd")])
    sensor = make()
    with structlog.testing.capture_logs() as logs:
        results = [sensor.poke({}) for _ in range(3)]
    assert not any(r.is_done for r in results)
    warnings = _unknown_warnings(logs)
    assert len(warnings) == 2, warnings
    assert "'Weird'" in warnings[0]
    assert "'Odd'" in warnings[1]


def test_poke_extra_states(use_hook) -> None:
    use_hook([st("dlf", UNKNOWN, "DONE"), st("dlf", UNKNOWN, "broken")])
    sensor = make(success_states=["done"], failure_states=["Broken"])
    assert sensor.poke({}).is_done
    with pytest.raises(AlibabaCloudTaskFailedError):
        sensor.poke({})


@pytest.mark.parametrize("ok", [False, True])
def test_poke_pds_partial_success(use_hook, ok: bool) -> None:
    partial = st("pds", PARTIALLY_SUCCEEDED, "PartialSucceed", message="3 of 5 failed")
    use_hook([partial])
    sensor = make("pds", partial_success_ok=ok)
    if ok:
        result = sensor.poke({})
        assert result.is_done
        assert result.xcom_value == partial.to_dict()
    else:
        with pytest.raises(AlibabaCloudTaskFailedError, match="3 of 5 failed"):
            sensor.poke({})


def test_non_deferrable_execute_runs_the_poke_loop(use_hook) -> None:
    done = st("dlf", SUCCEEDED, "Success")
    hook = use_hook([st("dlf", RUNNING, "Running"), TRANSIENT[0], done])
    sensor = make(deferrable=False, poke_interval=0, timeout=30)
    assert sensor.execute(context={}) == done.to_dict()
    assert len(hook.calls) == 3


@pytest.mark.parametrize("soft_fail", [False, True])
def test_non_deferrable_execute_failure_and_soft_fail(use_hook, soft_fail: bool) -> None:
    use_hook([st("dlf", FAILED, "Fail", message="disk full")])
    sensor = make(deferrable=False, poke_interval=0, timeout=30, soft_fail=soft_fail)
    with pytest.raises(AirflowSkipException if soft_fail else AlibabaCloudTaskFailedError):
        sensor.execute(context={})


# --------------------------------------------------------------------------- bugs


def test_deferrable_sensor_with_zero_poke_interval(use_hook) -> None:
    use_hook([st("dlf", RUNNING, "Running")])
    try:
        sensor = make(deferrable=True, poke_interval=0, timeout=60)
    except (ValueError, AirflowException):
        return  # rejected at DAG-parse time: acceptable
    with pytest.raises(TaskDeferred) as excinfo:
        sensor.execute(context={})
    assert excinfo.value.trigger.poll_interval > 0


def test_soft_fail_skips_after_too_many_transient_errors_in_poke_mode(use_hook) -> None:
    # Deferrable mode: the same situation ends in a skip.
    deferred = make(soft_fail=True, deferrable=True)
    with pytest.raises(AirflowSkipException):
        deferred.resume_execution("execute_complete", {"event": event("error")}, context={})
    # Poke mode: should skip too.
    use_hook([TRANSIENT[0], TRANSIENT[1]])
    sensor = make(deferrable=False, soft_fail=True, poke_interval=0, timeout=30, max_consecutive_failures=1)
    with pytest.raises(AirflowSkipException):
        sensor.execute(context={})
