"""How a wait ended: one exception family (``airflow_aliyun_tasks.exceptions``) for the sensors and
the operator, each error carrying the task's service, ids, outcome and final status.

What Airflow does with each must not change: a sensor's failed task fails without retries
(``AirflowFailException``), the operator's lets retries apply, a sensor's timeout is an
``AirflowSensorTimeout`` (soft_fail), the operator's is its own. The old import paths stay.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any

import pytest

import airflow_aliyun_tasks.exceptions as exceptions_module
import airflow_aliyun_tasks.operators as operators_module
import airflow_aliyun_tasks.sensors as sensors_module
from airflow_aliyun_tasks.exceptions import (
    AlibabaCloudTaskError,
    AlibabaCloudTaskFailedError,
    AlibabaCloudTaskSensorTimeout,
    AlibabaCloudTaskTimeoutError,
    AlibabaCloudTaskWaitError,
)
from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator
from airflow_aliyun_tasks.sensors import AlibabaCloudTaskSensor, DataWorksJobSensor
from airflow_aliyun_tasks.status import CANCELLED, FAILED, RUNNING, TaskStatus
from airflow_versions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferralTimeout,
)

IDS = {"job_id": "j-1"}


def st(state: str, raw: str, **kw: Any) -> TaskStatus:
    return TaskStatus(service="dataworks", ids=dict(IDS), state=state, raw_status=raw, **kw)


class FakeHook:
    def __init__(self, script: Iterable[TaskStatus]) -> None:
        self.script = list(script)

    def get_task_status(self, service: str, **ids: Any) -> TaskStatus:
        return self.script.pop(0)


# --------------------------------------------------------------------------- the family


def test_the_family() -> None:
    for cls in (
        AlibabaCloudTaskError,
        AlibabaCloudTaskFailedError,
        AlibabaCloudTaskTimeoutError,
        AlibabaCloudTaskSensorTimeout,
    ):
        assert issubclass(cls, AlibabaCloudTaskWaitError)
        assert issubclass(cls, AirflowException)
    # a sensor's failed task: no retries
    assert issubclass(AlibabaCloudTaskFailedError, AirflowFailException)
    assert issubclass(AlibabaCloudTaskFailedError, AlibabaCloudTaskError)
    # the operator's: Airflow's retries apply
    assert not issubclass(AlibabaCloudTaskError, AirflowFailException)
    # a sensor's timeout is Airflow's sensor timeout (soft_fail, no retries)
    assert issubclass(AlibabaCloudTaskSensorTimeout, AirflowSensorTimeout)
    assert issubclass(AlibabaCloudTaskSensorTimeout, AlibabaCloudTaskTimeoutError)
    # the operator's is its own
    assert not issubclass(AlibabaCloudTaskTimeoutError, AirflowSensorTimeout | AirflowFailException)
    assert not issubclass(AlibabaCloudTaskTimeoutError, AlibabaCloudTaskError)


def test_the_old_import_paths() -> None:
    assert sensors_module.AlibabaCloudTaskFailedError is AlibabaCloudTaskFailedError
    assert operators_module.AlibabaCloudTaskError is AlibabaCloudTaskError
    assert operators_module.AlibabaCloudTaskTimeoutError is AlibabaCloudTaskTimeoutError
    assert "AlibabaCloudTaskFailedError" in sensors_module.__all__
    assert {"AlibabaCloudTaskError", "AlibabaCloudTaskTimeoutError"} <= set(operators_module.__all__)
    assert sorted(exceptions_module.__all__) == sorted(
        name
        for name, value in vars(exceptions_module).items()
        if isinstance(value, type) and issubclass(value, AlibabaCloudTaskWaitError)
    )


@pytest.mark.parametrize(
    ("cls", "outcome", "text"),
    [
        (AlibabaCloudTaskError, "failed", "Task failed: boom"),
        (AlibabaCloudTaskError, "cancelled", "Task was cancelled: boom"),
        (AlibabaCloudTaskFailedError, "failed", "Task failed: boom"),
        (AlibabaCloudTaskTimeoutError, "timeout", "Timed out waiting for the task: boom"),
        (AlibabaCloudTaskSensorTimeout, "timeout", "Sensor timed out: boom"),
    ],
)
def test_for_outcome(cls: type[AlibabaCloudTaskWaitError], outcome: str, text: str) -> None:
    done = st(FAILED, "Fail").to_dict()
    error = cls.for_outcome(outcome, "boom", service="dataworks", ids=IDS, task_status=done)
    assert type(error) is cls
    assert str(error) == text
    assert (error.service, error.ids, error.outcome, error.task_status) == ("dataworks", IDS, outcome, done)


def test_pickles_and_rebuilds_from_its_text() -> None:
    error = AlibabaCloudTaskFailedError.for_outcome(
        "cancelled", "x", service="dataworks", ids=IDS, task_status=st(CANCELLED, "Cancelled").to_dict()
    )
    back = pickle.loads(pickle.dumps(error))
    assert (type(back), str(back), back.ids, back.outcome, back.task_status) == (
        type(error),
        str(error),
        error.ids,
        "cancelled",
        error.task_status,
    )
    # Airflow's own exception serialization: class path and the message alone
    path, args, kwargs = error.serialize()
    assert path == "airflow_aliyun_tasks.exceptions.AlibabaCloudTaskFailedError"
    assert str(AlibabaCloudTaskFailedError(*args, **kwargs)) == str(error)


# --------------------------------------------------------------------------- what the sensor raises


def sensor(**kwargs: Any) -> DataWorksJobSensor:
    return DataWorksJobSensor(task_id="w", job_id="j-1", **kwargs)


@pytest.mark.parametrize(("state", "outcome"), [(FAILED, "failed"), (CANCELLED, "cancelled")])
def test_the_sensor_poke_error_carries_the_task(
    monkeypatch: pytest.MonkeyPatch, state: str, outcome: str
) -> None:
    final = st(state, "X", message="disk full")
    fake = FakeHook([st(RUNNING, "Running"), final])
    monkeypatch.setattr(AlibabaCloudTaskSensor, "hook", property(lambda self: fake))
    s = sensor()
    assert not s.poke({}).is_done
    with pytest.raises(AlibabaCloudTaskFailedError) as info:
        s.poke({})
    error = info.value
    assert (error.service, error.ids, error.outcome, error.task_status) == (
        "dataworks",
        IDS,
        outcome,
        final.to_dict(),
    )
    assert "disk full" in str(error)


def _event(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "message": "dataworks job_id=j-7: something",
        "task_status": st(RUNNING, "Running").to_dict(),
        "service": "dataworks",
        "ids": {"job_id": "j-7"},
        "polls": 2,
        **extra,
    }


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        ("failed", AlibabaCloudTaskFailedError),
        ("cancelled", AlibabaCloudTaskFailedError),
        ("timeout", AlibabaCloudTaskSensorTimeout),
    ],
)
def test_the_sensor_event_errors_carry_the_event(status: str, cls: type[AlibabaCloudTaskWaitError]) -> None:
    with pytest.raises(cls) as info:
        sensor().execute_complete({}, _event(status))
    error = info.value
    assert type(error) is cls
    assert (error.service, error.ids, error.outcome) == ("dataworks", {"job_id": "j-7"}, status)
    assert error.task_status == st(RUNNING, "Running").to_dict()


def test_an_event_without_ids_or_status_falls_back_to_the_sensor() -> None:
    with pytest.raises(AlibabaCloudTaskSensorTimeout) as info:
        sensor().execute_complete({}, _event("timeout", ids=None, task_status=None))
    assert (info.value.ids, info.value.task_status) == (IDS, None)


@pytest.mark.parametrize("status", ["failed", "timeout"])
def test_the_sensor_soft_fail_skips_with_the_error_as_cause(status: str) -> None:
    with pytest.raises(AirflowSkipException) as info:
        sensor(soft_fail=True).resume_execution("execute_complete", {"event": _event(status)}, context={})
    assert isinstance(info.value.__cause__, AlibabaCloudTaskWaitError)


# --------------------------------------------------------------------------- what the operator raises


def operator(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    params: dict[str, Any] = {
        "task_id": "t",
        "service": "dataworks",
        "action": "ImportWorkflowDefinition",
        "poll_interval": 0.01,
        "deferrable": False,
    }
    return AlibabaCloudAsyncTaskOperator(**{**params, **kwargs})


@pytest.mark.parametrize(("state", "outcome"), [(FAILED, "failed"), (CANCELLED, "cancelled")])
def test_the_operator_worker_wait_error_carries_the_task(state: str, outcome: str) -> None:
    op = operator()
    final = st(state, "X")
    op._hook = FakeHook([st(RUNNING, "Running"), final])  # type: ignore[assignment]
    op._task_ids = dict(IDS)
    with pytest.raises(AlibabaCloudTaskError) as info:
        op._poll_until_done()
    error = info.value
    assert type(error) is AlibabaCloudTaskError
    assert (error.service, error.ids, error.outcome, error.task_status) == (
        "dataworks",
        IDS,
        outcome,
        final.to_dict(),
    )


def test_the_operator_worker_timeout_carries_the_last_status() -> None:
    op = operator(timeout=0.0)
    op._hook = FakeHook([st(RUNNING, "Running")])  # type: ignore[assignment]
    op._task_ids = dict(IDS)
    with pytest.raises(AlibabaCloudTaskTimeoutError) as info:
        op._poll_until_done()
    assert type(info.value) is AlibabaCloudTaskTimeoutError
    assert (info.value.outcome, info.value.task_status) == ("timeout", st(RUNNING, "Running").to_dict())


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        ("failed", AlibabaCloudTaskError),
        ("cancelled", AlibabaCloudTaskError),
        ("timeout", AlibabaCloudTaskTimeoutError),
    ],
)
def test_the_operator_event_errors_carry_the_event(status: str, cls: type[AlibabaCloudTaskWaitError]) -> None:
    with pytest.raises(cls) as info:
        operator(deferrable=True).execute_complete({}, _event(status))
    error = info.value
    assert type(error) is cls
    assert (error.service, error.ids, error.outcome) == ("dataworks", {"job_id": "j-7"}, status)
    assert error.task_status == st(RUNNING, "Running").to_dict()


def test_the_operator_deferral_timeout_is_its_timeout() -> None:
    op = operator(deferrable=True)
    op._task_ids = dict(IDS)

    def late(*args: Any, **kwargs: Any) -> Any:
        raise TaskDeferralTimeout("too late")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(operators_module.BaseOperator, "resume_execution", late)
        with pytest.raises(AlibabaCloudTaskTimeoutError) as info:
            op.resume_execution("execute_complete", {}, context={})
    assert (info.value.ids, info.value.task_status) == (IDS, None)
