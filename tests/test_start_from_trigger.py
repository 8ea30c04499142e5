"""``start_from_trigger=True``: the sensors' ``StartTriggerArgs``, the trigger kwargs it needs
(flat templated ids, no deadline), and a real deployment in which the scheduler hands the waits
straight to the triggerer.

``dag.test()`` ignores ``start_from_trigger`` (it runs ``execute()``), so the behaviour is shown on
a real api-server + scheduler + dag-processor + triggerer (``tests/stack.py``, SQLite,
LocalExecutor): each task goes from scheduled to deferred without a worker, the triggerer renders
its templated ids and polls the emulator, and the task ends as in deferrable mode.
"""

from __future__ import annotations

import asyncio
import copy
import json
import textwrap
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG, BaseSensorOperator

from airflow_aliyun_tasks.links import CONSOLE_LINK_XCOM_KEY, link_params
from airflow_aliyun_tasks.sensors import (
    TRIGGER_CLASSPATH,
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
from airflow_aliyun_tasks.services import SERVICES
from airflow_aliyun_tasks.status import RUNNING, SUCCEEDED, TaskStatus
from airflow_aliyun_tasks.triggers import ID_FIELDS, AlibabaCloudTaskTrigger
from airflow_versions import (
    AIRFLOW_3_3,
    AirflowException,
    AirflowSensorTimeout,
    AirflowSkipException,
    needs_airflow,
)
from fakes import FakeHook, ModuleProxy
from stack import AirflowStack, wait_until

SENSORS: dict[str, tuple[type[AlibabaCloudTaskSensor], dict[str, Any]]] = {
    "dlf": (DlfAsyncTaskSensor, {"async_task_id": "{{ params.t }}", "catalog_id": "1234567890"}),
    "dataworks": (DataWorksJobSensor, {"job_id": "{{ params.t }}"}),
    "mma": (MmaAsyncTaskSensor, {"source_id": 2000017, "async_task_id": "{{ params.t }}"}),
    "pds": (PdsAsyncTaskSensor, {"async_task_id": "{{ params.t }}", "domain_id": "bj1"}),
    "emr_serverless_spark": (
        EmrServerlessSparkJobRunSensor,
        {"workspace_id": "w-1", "job_run_id": "{{ params.t }}"},
    ),
    "dataworks_workflow": (DataWorksWorkflowInstanceSensor, {"workflow_instance_id": "{{ params.t }}"}),
    "pai_dlc": (PaiDlcJobSensor, {"job_id": "{{ params.t }}"}),
    "adb_spark": (AdbSparkAppSensor, {"app_id": "{{ params.t }}"}),
    "flink_job": (
        FlinkJobSensor,
        {"workspace_id": "a14bd5d90a", "namespace": "default-namespace", "job_id": "{{ params.t }}"},
    ),
    "fc_async_task": (
        FcAsyncTaskSensor,
        {
            "function_name": "etl",
            "async_task_id": "{{ params.t }}",
            "qualifier": "prod",
            "account_id": "1234567890",
        },
    ),
}


def build(service: str, **overrides: Any) -> AlibabaCloudTaskSensor:
    cls, ids = SENSORS[service]
    kwargs: dict[str, Any] = {"task_id": f"wait_{service}", **ids, "start_from_trigger": True}
    kwargs.update(overrides)
    return cls(**kwargs)


# --------------------------------------------------------------------------- StartTriggerArgs


@pytest.mark.parametrize("service", list(SENSORS))
def test_start_trigger_args(service: str) -> None:
    sensor = build(
        service,
        aliyun_conn_id="aliyun_x",
        poke_interval=7,
        timeout=timedelta(minutes=30),
        success_states=["Done"],
        failure_states=["Broken"],
        max_consecutive_failures=2,
    )
    assert sensor.start_from_trigger is True
    args = sensor.start_trigger_args
    assert args is not None
    assert args.trigger_cls == TRIGGER_CLASSPATH == "airflow_aliyun_tasks.triggers.AlibabaCloudTaskTrigger"
    assert args.next_method == "execute_complete"
    assert args.next_kwargs is None
    assert args.timeout == timedelta(minutes=30)
    kwargs = args.trigger_kwargs
    assert kwargs is not None
    _, ids = SENSORS[service]
    assert kwargs == {
        "service": service,
        "ids": {},
        "aliyun_conn_id": "aliyun_x",
        "poll_interval": 7.0,
        "end_time": None,  # no deadline can be computed at parse time: the timeout is Airflow's
        "max_consecutive_failures": 2,
        "initial_delay": 0.0,  # nothing polled before
        "success_states": ["Done"],
        "failure_states": ["Broken"],
        "partial_success_ok": False,
        "region_id": None,  # the connection's region
        **ids,  # flat, unrendered: the triggerer renders them
    }
    json.dumps(kwargs)
    # The kwargs build the trigger, which serializes back to exactly them.
    trigger = AlibabaCloudTaskTrigger(**kwargs)
    # (region_id None, the connection's region, is left out of the serialized kwargs)
    expected = {k: v for k, v in kwargs.items() if k != "region_id"}
    assert trigger.serialize() == (TRIGGER_CLASSPATH, {**expected, **{k: str(v) for k, v in ids.items()}})


@pytest.mark.parametrize("service", list(SENSORS))
def test_every_templated_field_is_a_trigger_kwarg_and_attribute(service: str) -> None:
    """Airflow renders, in the triggerer, the sensor's template fields that are also trigger
    kwargs and trigger attributes: all of the sensors' ids must be."""
    sensor = build(service)
    kwargs = sensor.start_trigger_args.trigger_kwargs
    trigger = AlibabaCloudTaskTrigger(**kwargs)
    for field in type(sensor).template_fields:
        assert field in kwargs
        assert hasattr(trigger, field)


def test_id_fields_cover_every_service() -> None:
    assert set(ID_FIELDS) == {name for spec in SERVICES.values() for name in spec.id_names}
    assert list(SENSORS) == list(SERVICES)
    for cls, _ in SENSORS.values():
        assert set(cls.template_fields) <= {*ID_FIELDS, "region_id"}


def test_not_started_from_trigger_by_default() -> None:
    sensor = DataWorksJobSensor(task_id="w", job_id="j")
    assert sensor.start_from_trigger is False
    assert sensor.start_trigger_args is None
    assert DataWorksJobSensor.start_trigger_args is None  # mapped sensors read the class attribute
    assert AlibabaCloudTaskSensor.start_from_trigger is False


def test_optional_ids_left_out() -> None:
    sensor = DlfAsyncTaskSensor(task_id="w", async_task_id="t", start_from_trigger=True)
    assert "catalog_id" not in sensor.start_trigger_args.trigger_kwargs


def test_args_follow_the_sensor_and_can_be_replaced() -> None:
    sensor = build("dataworks")
    sensor.job_id = "{{ params.other }}"
    assert sensor.start_trigger_args.trigger_kwargs["job_id"] == "{{ params.other }}"
    clone = copy.deepcopy(sensor)
    assert clone.start_trigger_args == sensor.start_trigger_args
    sensor.start_trigger_args = None
    assert sensor.start_trigger_args is None
    assert clone.start_trigger_args is not None


def test_xcomarg_ids_are_rejected_at_parse_time() -> None:
    """Airflow 3.3 reads the start arguments when the sensor is built; 3.1 and 3.2 when the DAG
    is serialized (still at parse time, in the dag processor)."""
    with DAG("sft_xcomarg", schedule=None, start_date=datetime(2026, 1, 1)):
        upstream = DataWorksJobSensor(task_id="up", job_id="j")
        message = "job_id must be a string or an integer"
        if AIRFLOW_3_3:
            with pytest.raises(ValueError, match=message):
                DataWorksJobSensor(task_id="w", job_id=upstream.output, start_from_trigger=True)
        else:
            sensor = DataWorksJobSensor(task_id="w", job_id=upstream.output, start_from_trigger=True)
            with pytest.raises(ValueError, match=message):
                sensor.start_trigger_args  # noqa: B018 - what serialization reads


@pytest.mark.parametrize(
    ("template", "ok"),
    [
        ("{{ ti.xcom_pull(task_ids='start', map_indexes=-1) }}", True),
        ("{{ task_instance.xcom_pull('start', map_indexes=-1)['id'] }}", True),
        ("{{ ti.xcom_pull(task_ids='start') }}", False),
        ("{{ task_instance.xcom_pull('start')['id'] }}", False),
        ("{{ params.job_id }}", True),
    ],
)
def test_xcom_pull_needs_explicit_map_indexes(template: str, ok: bool) -> None:
    """Airflow 3.3.2's triggerer does not answer the ``GetXComSequenceSlice`` request that
    ``xcom_pull`` sends without ``map_indexes`` ("Unable to decode message"): the render, and so
    the wait, would hang. Caught when the DAG is parsed instead."""
    if ok:
        assert build("dataworks", job_id=template).start_trigger_args is not None
    else:
        # Airflow 3.3 reads the start arguments when the sensor is built, 3.1 and 3.2 when the
        # DAG is serialized
        with pytest.raises(ValueError, match="map_indexes=-1"):
            _start_args("dataworks", job_id=template)
    # without start_from_trigger the worker renders it: anything goes
    DataWorksJobSensor(task_id="w", job_id=template)


def _start_args(service: str, **overrides: Any) -> Any:
    return build(service, **overrides).start_trigger_args


@needs_airflow("3.3", "Starting a task in the triggerer (the scheduler's use of start_trigger_args)")
def test_serialized_dag_round_trip_and_render_like_the_triggerer() -> None:
    """What the scheduler stores and the triggerer rebuilds: kwargs decoded from the serialized
    DAG, the trigger's template fields chosen from the deserialized task, ids rendered."""
    from airflow.models.trigger import Trigger
    from airflow.serialization.decoders import smart_decode_trigger_kwargs
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("sft_serialize", schedule=None, start_date=datetime(2026, 1, 1), params={"sid": 5}) as dag:
        MmaAsyncTaskSensor(
            task_id="w",
            source_id="{{ params.sid }}",
            async_task_id="{{ params.sid + 1 }}",
            start_from_trigger=True,
            timeout=90,
        )
    task = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).get_task("w")
    assert task.start_from_trigger is True
    assert task.start_trigger_args.timeout == timedelta(seconds=90)
    row = Trigger(
        classpath=task.start_trigger_args.trigger_cls, kwargs=task.start_trigger_args.trigger_kwargs
    )
    kwargs = {
        k: smart_decode_trigger_kwargs(v) for k, v in Trigger._decrypt_kwargs(row.encrypted_kwargs).items()
    }
    trigger = AlibabaCloudTaskTrigger(**kwargs)

    class RuntimeTI:
        task_id = "w"

        def __init__(self, task: Any) -> None:
            self.task = task

    trigger.task_instance = RuntimeTI(task)  # type: ignore[assignment]
    assert set(trigger.template_fields) == {"source_id", "async_task_id", "region_id"}
    trigger.render_template_fields(context={"params": {"sid": 5}})  # type: ignore[arg-type]
    assert trigger.task_ids() == {"source_id": "5", "async_task_id": "6"}


# --------------------------------------------------------------------------- the trigger without a deadline


async def test_trigger_without_end_time_polls_until_the_task_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow_aliyun_tasks.triggers as triggers_module

    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    monkeypatch.setattr(triggers_module, "asyncio", ModuleProxy(asyncio, sleep=fake_sleep))
    running = TaskStatus(service="dataworks", ids={"job_id": "j-1"}, state=RUNNING, raw_status="Running")
    done = TaskStatus(service="dataworks", ids={"job_id": "j-1"}, state=SUCCEEDED, raw_status="Success")
    hook = FakeHook([running] * 50 + [done])
    trigger = AlibabaCloudTaskTrigger(service="dataworks", job_id="j-1", poll_interval=30, end_time=None)
    monkeypatch.setattr(trigger, "_hook", lambda: hook)
    events = [e async for e in trigger.run()]
    assert [e.payload["status"] for e in events] == ["success"]
    assert events[0].payload["ids"] == {"job_id": "j-1"}
    assert events[0].payload["polls"] == 51
    assert sleeps == [30.0] * 50  # never shortened by a deadline
    assert hook.calls[0] == ("dataworks", {"job_id": "j-1"})


def test_flat_ids_override_ids_and_only_given_ones_serialize() -> None:
    trigger = AlibabaCloudTaskTrigger(
        service="pds", ids={"async_task_id": "a", "domain_id": "d1"}, domain_id="d2"
    )
    assert trigger.task_ids() == {"async_task_id": "a", "domain_id": "d2"}
    _, kwargs = trigger.serialize()
    assert kwargs["domain_id"] == "d2"
    for name in ("async_task_id", "catalog_id", "job_id", "source_id"):
        assert name not in kwargs
    assert kwargs["end_time"] is None
    assert AlibabaCloudTaskTrigger(**kwargs).serialize() == trigger.serialize()


def test_trigger_end_time_is_still_honoured_when_given() -> None:
    trigger = AlibabaCloudTaskTrigger(service="dataworks", job_id="j", end_time=0.0)
    events = asyncio.run(_collect(trigger))
    assert [e.payload["status"] for e in events] == ["timeout"]


async def _collect(trigger: AlibabaCloudTaskTrigger) -> list[Any]:
    trigger._hook = lambda: FakeHook([])  # type: ignore[method-assign]
    return [e async for e in trigger.run()]


# --------------------------------------------------------------------------- the resume path


class FakeTI:
    def __init__(self) -> None:
        self.pushed: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value))


DONE = TaskStatus(service="dataworks", ids={"job_id": "j"}, state=SUCCEEDED, raw_status="Success").to_dict()


def _event(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "message": f"dataworks job_id=j: {status}",
        "task_status": DONE if status == "success" else None,
        "service": "dataworks",
        "ids": {"job_id": "j"},
        "polls": 2,
        **extra,
    }


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "returned", fn()
    except Exception as exc:
        return type(exc).__name__, str(exc)


@pytest.mark.parametrize("soft_fail", [False, True])
@pytest.mark.parametrize("status", ["success", "failed", "cancelled", "timeout", "error", "bogus"])
def test_same_outcome_as_the_deferred_path(status: str, soft_fail: bool) -> None:
    from_trigger = DataWorksJobSensor(task_id="w", job_id="j", start_from_trigger=True, soft_fail=soft_fail)
    deferred = DataWorksJobSensor(task_id="w", job_id="j", deferrable=True, soft_fail=soft_fail)
    ev = _event(status)
    a = _outcome(lambda: from_trigger.resume_execution("execute_complete", {"event": ev}, context={}))  # type: ignore[arg-type]
    b = _outcome(lambda: deferred.resume_execution("execute_complete", {"event": ev}, context={}))  # type: ignore[arg-type]
    assert a == b


@pytest.mark.parametrize("soft_fail", [False, True])
def test_airflow_trigger_timeout_is_a_sensor_timeout(soft_fail: bool) -> None:
    """With no deadline of its own, the wait ends by Airflow's trigger timeout (the sensor's
    ``timeout``): the scheduler resumes the task with ``__fail__``/``TRIGGER_TIMEOUT``."""
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

    sensor = DataWorksJobSensor(
        task_id="w", job_id="j", start_from_trigger=True, soft_fail=soft_fail, timeout=5
    )
    with pytest.raises(AirflowSkipException if soft_fail else AirflowSensorTimeout):
        sensor.resume_execution(
            TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context={}
        )  # type: ignore[arg-type]


def test_resume_stores_the_console_link(make_conn: Callable[..., str]) -> None:
    make_conn(region_id="cn-shenzhen")
    ti = FakeTI()
    sensor = DataWorksJobSensor(task_id="w", job_id="j", start_from_trigger=True)
    assert (
        sensor.resume_execution("execute_complete", {"event": _event("success")}, context={"ti": ti}) == DONE
    )  # type: ignore[arg-type]
    assert ti.pushed == [(CONSOLE_LINK_XCOM_KEY, link_params("dataworks", "cn-shenzhen", {"job_id": "j"}))]
    ti = FakeTI()
    with pytest.raises(AlibabaCloudTaskFailedError):
        sensor.resume_execution("execute_complete", {"event": _event("failed")}, context={"ti": ti})  # type: ignore[arg-type]
    assert len(ti.pushed) == 1  # also when the task failed


def test_deferred_sensor_resume_does_not_look_the_connection_up_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_hook(self: Any) -> Any:
        raise AssertionError("execute() already stored the link")

    monkeypatch.setattr(AlibabaCloudTaskSensor, "hook", property(no_hook))
    sensor = DataWorksJobSensor(task_id="w", job_id="j", deferrable=True)
    assert (
        sensor.resume_execution("execute_complete", {"event": _event("success")}, context={"ti": FakeTI()})
        == DONE
    )  # type: ignore[arg-type]


def test_malformed_event_still_fails_loudly() -> None:
    sensor = DataWorksJobSensor(task_id="w", job_id="j", start_from_trigger=True)
    with pytest.raises(AirflowException, match="without a trigger event"):
        sensor.execute_complete({}, None)  # type: ignore[arg-type]
    assert isinstance(sensor, BaseSensorOperator)


# --------------------------------------------------------------------------- a real deployment

DAG_FILE = '''
"""DAGs of the start-from-trigger deployment test."""
from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from airflow_aliyun_tasks.sensors import DataWorksJobSensor, PdsAsyncTaskSensor

COMMON = {"schedule": None, "start_date": datetime(2026, 1, 1), "catchup": False}
WAIT = {"start_from_trigger": True, "poke_interval": 1, "retries": 0}

with DAG(dag_id="sft_dataworks", params={"job_id": ""}, **COMMON):
    DataWorksJobSensor(task_id="wait", job_id="{{ params.job_id }}", timeout=900, **WAIT)

with DAG(dag_id="sft_pds", params={"task": ""}, **COMMON):
    PdsAsyncTaskSensor(task_id="wait", async_task_id="{{ params.task }}", timeout=900, **WAIT)

with DAG(dag_id="sft_timeout", params={"job_id": ""}, **COMMON):
    DataWorksJobSensor(task_id="wait", job_id="{{ params.job_id }}", timeout=3, **WAIT)

with DAG(dag_id="sft_timeout_soft_fail", params={"job_id": ""}, **COMMON):
    DataWorksJobSensor(task_id="wait", job_id="{{ params.job_id }}", timeout=3, soft_fail=True, **WAIT)

with DAG(dag_id="sft_xcom", params={"job_id": ""}, **COMMON):

    @task
    def produce(params=None):
        return {"job": params["job_id"]}

    DataWorksJobSensor(
        task_id="wait", job_id="{{ ti.xcom_pull(task_ids='produce', map_indexes=-1)['job'] }}", timeout=900, **WAIT
    ).set_upstream(produce())
'''

DAG_IDS = ["sft_dataworks", "sft_pds", "sft_timeout", "sft_timeout_soft_fail", "sft_xcom"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    dags = tmp_path_factory.mktemp("sft_dags")
    (dags / "sft_dags.py").write_text(textwrap.dedent(DAG_FILE))
    with AirflowStack(dags_folder=dags, name="sft") as deployment:
        deployment.wait_for_dags(DAG_IDS)
        yield deployment


def _ti(stack: Any, dag_id: str, run_id: str, task_id: str = "wait") -> dict[str, Any] | None:
    rows = [r for r in stack.task_instances(dag_id) if r["run_id"] == run_id and r["task_id"] == task_id]
    return rows[0] if rows else None


def _polls(stack: Any, service: str, ids: dict[str, str]) -> int:
    for task in stack.emulator_stats()["tasks"]:
        if task["service"] == service and all(task["ids"].get(k) == v for k, v in ids.items()):
            return int(task["polls"])
    return 0


def _xcom_keys(stack: Any, dag_id: str, run_id: str) -> set[str]:
    rows = stack.query(
        "SELECT key FROM xcom WHERE dag_id = :d AND run_id = :r AND task_id = 'wait'", d=dag_id, r=run_id
    )
    return {row["key"] for row in rows}


def _task_log(stack: Any, dag_id: str, run_id: str) -> str:
    text = []
    for path in stack.task_log_files():
        if f"dag_id={dag_id}" in str(path) and f"run_id={run_id}" in str(path):
            text.append(path.read_text(errors="replace"))
    return "\n".join(text)


def _started_in_the_triggerer(stack: Any, runs: dict[str, Any]) -> None:
    """Airflow 3.3+: every wait reaches the triggerer without a worker: deferred, on its first
    try, with the trigger the scheduler built from StartTriggerArgs (kwargs unrendered in the
    database), and nothing that execute() would have done on a worker (the console link)."""
    for dag_id, (run_id, _, (service, ids)) in runs.items():
        ti = wait_until(
            lambda d=dag_id, r=run_id: (t := _ti(stack, d, r)) and t["state"] == "deferred" and t,
            timeout=240,
            what=f"{dag_id} to be deferred",
        )
        assert ti["try_number"] == 1
        assert ti["next_method"] == "execute_complete"
        trigger = next(t for t in stack.triggers() if t["id"] == ti["trigger_id"])
        assert trigger["classpath"] == TRIGGER_CLASSPATH
        assert trigger["kwargs"]["end_time"] is None
        raw = trigger["kwargs"].get("job_id") or trigger["kwargs"].get("async_task_id")
        assert "{{" in raw  # rendered in the triggerer, not before
        # the triggerer rendered the template: it polls the task named by the run's conf
        wait_until(lambda s=service, i=ids: _polls(stack, s, i) >= 2, timeout=120, what=f"polls of {ids}")
        assert CONSOLE_LINK_XCOM_KEY not in _xcom_keys(stack, dag_id, run_id)
        assert (dag_id, run_id, "wait", -1) not in stack.deferral_exits_seen()


def _started_on_a_worker(stack: Any, runs: dict[str, Any]) -> None:
    """Airflow 3.1 and 3.2: the scheduler does not start tasks in the triggerer (its code for it
    is switched off). Each wait runs on a worker as the same sensor without the option (these
    are not deferrable: they poke): it stores the console link, polls the task named by its
    rendered ids, and its log says once that the option had no effect."""
    for dag_id, (run_id, _, (service, ids)) in runs.items():
        ti = wait_until(
            lambda d=dag_id, r=run_id: (t := _ti(stack, d, r)) and t["state"] == "running" and t,
            timeout=240,
            what=f"{dag_id} to run on a worker",
        )
        assert ti["try_number"] == 1
        wait_until(lambda s=service, i=ids: _polls(stack, s, i) >= 2, timeout=120, what=f"polls of {ids}")
        assert CONSOLE_LINK_XCOM_KEY in _xcom_keys(stack, dag_id, run_id)
        log = _task_log(stack, dag_id, run_id)
        assert log.count("start_from_trigger=True, but the task runs on a worker") == 1, log[-3000:]
        assert "waits as a poking sensor instead" in log


@pytest.mark.airflow
def test_real_scheduler_and_triggerer(stack: Any) -> None:
    stack.add_tasks(
        [
            {"service": "dataworks", "job_id": "sft-dw-ok", "statuses": ["Running"]},
            {"service": "pds", "async_task_id": "sft-pds-bad", "statuses": ["Running"], "domain_id": "bj1"},
            {"service": "dataworks", "job_id": "sft-dw-slow", "statuses": ["Running"]},
            {"service": "dataworks", "job_id": "sft-dw-slow2", "statuses": ["Running"]},
            {"service": "dataworks", "job_id": "sft-dw-xcom", "statuses": ["Running"]},
        ]
    )
    runs = {
        "sft_dataworks": ("r-ok", {"job_id": "sft-dw-ok"}, ("dataworks", {"job_id": "sft-dw-ok"})),
        "sft_pds": ("r-bad", {"task": "sft-pds-bad"}, ("pds", {"async_task_id": "sft-pds-bad"})),
        "sft_xcom": ("r-xcom", {"job_id": "sft-dw-xcom"}, ("dataworks", {"job_id": "sft-dw-xcom"})),
    }
    for dag_id, (run_id, conf, _) in runs.items():
        stack.trigger_dag(dag_id, run_id, conf)

    if AIRFLOW_3_3:
        _started_in_the_triggerer(stack, runs)
    else:
        _started_on_a_worker(stack, runs)

    # 2. The remote tasks end: the tasks end as in deferrable mode.
    stack.add_tasks(
        [
            {"service": "dataworks", "job_id": "sft-dw-ok", "statuses": ["Success"]},
            {"service": "dataworks", "job_id": "sft-dw-xcom", "statuses": ["Success"]},
            {
                "service": "pds",
                "async_task_id": "sft-pds-bad",
                "statuses": ["Failed"],
                "domain_id": "bj1",
                "error_code": "InternalError.ArchiveFailed",
                "error_message": "file 9520943DC264 is not readable",
            },
        ]
    )
    final = {
        dag_id: wait_until(
            lambda d=dag_id, r=run_id: (t := _ti(stack, d, r)) and t["state"] in ("success", "failed") and t,
            timeout=240,
            what=f"{dag_id} to finish",
        )
        for dag_id, (run_id, _, _) in runs.items()
    }
    assert {d: t["state"] for d, t in final.items()} == {
        "sft_dataworks": "success",
        "sft_pds": "failed",
        "sft_xcom": "success",
    }
    assert all(t["try_number"] == 1 for t in final.values())

    xcom = stack.api("GET", "dags/sft_dataworks/dagRuns/r-ok/taskInstances/wait/xcomEntries/return_value")
    value = xcom["value"] if isinstance(xcom["value"], dict) else json.loads(xcom["value"])
    assert value["state"] == "succeeded"
    assert value["ids"] == {"job_id": "sft-dw-ok"}
    assert "is not readable" in _task_log(stack, "sft_pds", "r-bad")
    assert "Task failed" in _task_log(stack, "sft_pds", "r-bad")

    # The console link, stored when the worker resumed the task, through the REST API.
    links = stack.api("GET", "dags/sft_dataworks/dagRuns/r-ok/taskInstances/wait/links")
    assert links["extra_links"] == {
        "DataWorks console": "https://dataworks.console.aliyun.com/overview?regionId=cn-hangzhou"
    }
    links = stack.api("GET", "dags/sft_pds/dagRuns/r-bad/taskInstances/wait/links")
    assert links["extra_links"] == {"PDS console": "https://pds.console.aliyun.com/"}


@pytest.mark.airflow
@pytest.mark.parametrize(
    ("dag_id", "expected"), [("sft_timeout", "failed"), ("sft_timeout_soft_fail", "skipped")]
)
def test_real_timeout_is_airflows_trigger_timeout(stack: Any, dag_id: str, expected: str) -> None:
    job = "sft-dw-slow" if expected == "failed" else "sft-dw-slow2"
    stack.add_tasks([{"service": "dataworks", "job_id": job, "statuses": ["Running"]}])
    stack.trigger_dag(dag_id, "r-timeout", {"job_id": job})
    ti = wait_until(
        lambda: (
            (t := _ti(stack, dag_id, "r-timeout")) and t["state"] in ("failed", "skipped", "success") and t
        ),
        timeout=240,
        what=f"{dag_id} to time out",
    )
    assert ti["state"] == expected
    assert _polls(stack, "dataworks", {"job_id": job}) >= 1  # it was waiting in the triggerer
    if expected == "failed":
        assert "AirflowSensorTimeout" in _task_log(stack, dag_id, "r-timeout")
