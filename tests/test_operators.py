"""The start-and-wait operator against the emulator over real HTTP.

Airflow's task state store and task instance are stand-ins here (they need a running task
supervisor); everything else is real: the hook, the client, the emulator's start operations,
client tokens and counters. Real Airflow runs are in ``test_operator_airflow.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from airflow_aliyun_tasks.errors import ApiError
from airflow_aliyun_tasks.operators import (
    STATE_KEY,
    TASK_IDS_XCOM_KEY,
    AlibabaCloudAsyncTaskOperator,
    AlibabaCloudTaskError,
    AlibabaCloudTaskTimeoutError,
    client_token,
)
from airflow_aliyun_tasks.services import SERVICES
from airflow_aliyun_tasks.testing import Emulator
from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger
from airflow_versions import AirflowException, AirflowSkipException, TaskDeferred

pytestmark = pytest.mark.usefixtures("fresh_clients", "close_shared_sync_client")

WS = "w-op"


class FakeTI:
    def __init__(self, try_number: int = 1, map_index: int = -1) -> None:
        self.dag_id = "d"
        self.task_id = "t"
        self.run_id = "manual__1"
        self.map_index = map_index
        self.try_number = try_number
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class FakeStore:
    """Airflow 3.3's ``context["task_state_store"]``: get/set of JSON values, shared by tries."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        assert value is not None
        self.data[key] = value


def ctx(store: FakeStore | None, try_number: int = 1) -> dict[str, Any]:
    context: dict[str, Any] = {"ti": FakeTI(try_number)}
    if store is not None:
        context["task_state_store"] = store
    return context


def emr(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    params: dict[str, Any] = {
        "task_id": "t",
        "service": "emr_serverless_spark",
        "action": "StartJobRun",
        "method": "POST",
        "path": f"/api/v1/workspaces/{WS}/jobRuns",
        "body": {"name": "etl", "codeType": "JAR", "resourceQueueId": "root_queue"},
        "poll_interval": 0.01,
        "deferrable": False,
    }
    params.update(kwargs)
    return AlibabaCloudAsyncTaskOperator(**params)


def runs(emulator: Emulator) -> list[dict[str, Any]]:
    return emulator.tasks("emr_serverless_spark")


@pytest.fixture
def conn(make_conn: Callable[..., str]) -> str:
    return make_conn()


def test_start_and_poll_on_the_worker(emulator: Emulator, conn: str) -> None:
    store = FakeStore()
    context = ctx(store)
    result = emr().execute(context)
    assert result["state"] == "succeeded"
    assert result["service"] == "emr_serverless_spark"
    (run,) = runs(emulator)
    assert result["ids"] == run["ids"]
    assert emulator.start_count("emr_serverless_spark", "StartJobRun") == 1
    # The ids went to XCom and to the state store right after the start.
    assert context["ti"].xcoms[TASK_IDS_XCOM_KEY] == {"service": "emr_serverless_spark", "ids": run["ids"]}
    assert store.data[STATE_KEY] == {"service": "emr_serverless_spark", "ids": run["ids"], "generation": 0}
    assert context["ti"].xcoms["aliyun_console_link"]["service"] == "emr_serverless_spark"


def test_client_token_is_sent_and_stable_across_tries(emulator: Emulator, conn: str) -> None:
    expected = client_token("d", "t", "manual__1", -1, 0)
    # Two tries without a state store between them (as if the first answer was lost): the
    # emulator sees the same token and creates one run.
    first = emr(durable=True).execute(ctx(FakeStore()))
    second = emr(durable=True).execute(ctx(FakeStore(), try_number=2))
    assert first["ids"] == second["ids"]
    assert len(runs(emulator)) == 1
    assert emulator.start_count("emr_serverless_spark", accepted=True) == 2
    assert (WS, expected) in emulator._emr_client_tokens


def test_explicit_client_token_wins_and_durable_false_sends_none(emulator: Emulator, conn: str) -> None:
    emr(body={"name": "x", "clientToken": "mine"}).execute(ctx(FakeStore()))
    assert (WS, "mine") in emulator._emr_client_tokens
    emr(client_token="{{ other }}").execute(ctx(FakeStore()))
    assert (WS, "{{ other }}") in emulator._emr_client_tokens
    emulator.reset()
    emr(durable=False).execute(ctx(FakeStore()))
    emr(durable=False).execute(ctx(FakeStore()))
    assert emulator._emr_client_tokens == {}
    assert len(runs(emulator)) == 2


def test_lost_start_response_gets_the_same_run_with_the_client_token(emulator: Emulator, conn: str) -> None:
    emulator.inject_fault("drop_after_accept", service="emr_serverless_spark")
    result = emr().execute(ctx(FakeStore()))
    assert result["state"] == "succeeded"
    assert len(runs(emulator)) == 1
    assert emulator.start_count("emr_serverless_spark", accepted=True) == 2


def test_start_without_client_token_is_not_retried_by_the_client(emulator: Emulator, conn: str) -> None:
    emulator.inject_fault("drop_after_accept", service="dataworks")
    op = AlibabaCloudAsyncTaskOperator(
        task_id="t",
        service="dataworks",
        action="ImportWorkflowDefinition",
        query={"ProjectId": "1", "Spec": "{}"},
        poll_interval=0.01,
        deferrable=False,
    )
    with pytest.raises(Exception, match=r"(?i)connection|closed|disconnect|transport"):
        op.execute(ctx(FakeStore()))
    assert emulator.start_count("dataworks") == 1


def test_retry_reconnects_to_a_running_task(emulator: Emulator, conn: str) -> None:
    store = FakeStore()
    emulator.set_start_lifecycle("emr_serverless_spark", ["Running"] * 3 + ["Success"])
    op = emr(wait_for_completion=False)
    started = op.execute(ctx(store))
    assert set(started["ids"]) == {"workspace_id", "job_run_id"}
    # The next try finds the record: the run still runs, so it waits on it, no second start.
    result = emr().execute(ctx(store, try_number=2))
    assert result["state"] == "succeeded"
    assert result["ids"] == started["ids"]
    assert emulator.start_count("emr_serverless_spark") == 1


def test_retry_after_success_returns_the_result(emulator: Emulator, conn: str) -> None:
    store = FakeStore()
    first = emr().execute(ctx(store))
    again = emr().execute(ctx(store, try_number=2))
    assert again["state"] == "succeeded"
    assert again["ids"] == first["ids"]
    assert emulator.start_count("emr_serverless_spark") == 1


def test_failed_task_fails_and_the_retry_submits_one_new_task(emulator: Emulator, conn: str) -> None:
    store = FakeStore()
    emulator.set_start_lifecycle("emr_serverless_spark", ["Running", "Failed"])
    with pytest.raises(AlibabaCloudTaskError, match="Task failed"):
        emr().execute(ctx(store))
    failed_ids = store.data[STATE_KEY]["ids"]
    emulator.set_start_lifecycle("emr_serverless_spark", ["Running", "Success"])
    result = emr().execute(ctx(store, try_number=2))
    assert result["state"] == "succeeded"
    assert result["ids"] != failed_ids
    assert emulator.start_count("emr_serverless_spark") == 2
    assert len(runs(emulator)) == 2
    # A fresh submission gets a fresh client token (else the API would return the failed run).
    assert store.data[STATE_KEY]["generation"] == 1
    assert (WS, client_token("d", "t", "manual__1", -1, 1)) in emulator._emr_client_tokens


def test_cancelled_task_fails_and_soft_fail_skips(emulator: Emulator, conn: str) -> None:
    emulator.set_start_lifecycle("emr_serverless_spark", ["Running", "Cancelled"])
    with pytest.raises(AlibabaCloudTaskError, match="cancelled"):
        emr().execute(ctx(FakeStore()))
    with pytest.raises(AirflowSkipException):
        emr(soft_fail=True).execute(ctx(FakeStore()))


def test_timeout_on_the_worker(emulator: Emulator, conn: str) -> None:
    emulator.set_start_lifecycle("emr_serverless_spark", ["Running"])
    with pytest.raises(AlibabaCloudTaskTimeoutError):
        emr(timeout=0.2, poll_interval=0.05).execute(ctx(FakeStore()))
    with pytest.raises(AirflowSkipException):
        emr(timeout=0.2, poll_interval=0.05, soft_fail=True).execute(ctx(FakeStore()))


def test_no_state_store_says_so_and_changes_the_token_per_try(
    emulator: Emulator, conn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    emr().execute(ctx(None))
    assert "No task state store" in capsys.readouterr().out
    emr().execute(ctx(None, try_number=2))
    assert len(runs(emulator)) == 2


def test_deferrable_defers_with_the_trigger_and_completes(emulator: Emulator, conn: str) -> None:
    store = FakeStore()
    op = emr(deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        op.execute(ctx(store))
    trigger = info.value.trigger
    assert isinstance(trigger, AlibabaCloudTaskTrigger)
    _classpath, kwargs = trigger.serialize()
    assert kwargs["cancel_on_kill"] is True
    assert kwargs["ids"] == store.data[STATE_KEY]["ids"]
    assert info.value.method_name == "execute_complete"

    async def first_event() -> dict[str, Any]:
        from airflow_aliyun_tasks.client import aclose_shared_client

        try:
            async for event in AlibabaCloudTaskTrigger(**kwargs).run():
                return dict(event.payload)
        finally:
            await aclose_shared_client()
        raise AssertionError("no event")

    event = asyncio.run(first_event())
    result = emr(deferrable=True).execute_complete(ctx(store), event)
    assert result["state"] == "succeeded"
    assert emulator.start_count("emr_serverless_spark") == 1


def test_execute_complete_failure_and_timeout_events() -> None:
    op = emr(deferrable=True)
    base = {"task_status": None, "service": "emr_serverless_spark", "ids": {"job_run_id": "jr"}, "polls": 1}
    with pytest.raises(AlibabaCloudTaskError):
        op.execute_complete({}, {**base, "status": "failed", "message": "boom"})
    with pytest.raises(AlibabaCloudTaskTimeoutError):
        op.execute_complete({}, {**base, "status": "timeout", "message": "late"})
    with pytest.raises(AirflowException, match="Polling failed"):
        op.execute_complete({}, {**base, "status": "error", "message": "denied"})
    with pytest.raises(AirflowException, match="Malformed"):
        op.execute_complete({}, {"status": "nope"})
    with pytest.raises(AirflowSkipException):
        emr(soft_fail=True).execute_complete({}, {**base, "status": "cancelled", "message": "x"})


def test_explicit_id_paths_for_an_operation_the_package_does_not_know(emulator: Emulator, conn: str) -> None:
    # DLF DeleteDatabase is known; pretend it is not by naming its id path explicitly, and an
    # unknown action without id_paths is refused.
    op = AlibabaCloudAsyncTaskOperator(
        task_id="t",
        service="dlf",
        action="DeleteDatabase",
        method="DELETE",
        path="/api/metastore/catalogs/databases",
        query={"Name": "sales", "Async": "true"},
        id_paths={"async_task_id": "TaskId"},
        poll_interval=0.01,
        deferrable=False,
    )
    assert op.execute(ctx(FakeStore()))["state"] == "succeeded"
    unknown = AlibabaCloudAsyncTaskOperator(task_id="t", service="dlf", action="MakeItSo", deferrable=False)
    with pytest.raises(AirflowException, match="id_paths"):
        unknown.execute(ctx(FakeStore()))


def test_missing_id_in_the_response_fails_clearly(emulator: Emulator, conn: str) -> None:
    op = emr(id_paths={"workspace_id": "request:workspaceId", "job_run_id": "run.id"})
    with pytest.raises(AirflowException, match=r"job_run_id \(at run.id\)"):
        op.execute(ctx(FakeStore()))


def test_on_kill_cancels_where_the_service_can(emulator: Emulator, conn: str) -> None:
    emulator.set_start_lifecycle("emr_serverless_spark", ["Running"])
    op = emr(wait_for_completion=False)
    started = op.execute(ctx(FakeStore()))
    op.on_kill()
    assert emulator.cancel_count("emr_serverless_spark", accepted=True, **started["ids"]) == 1


def test_on_kill_without_a_cancel_operation_logs_the_ids(
    emulator: Emulator, conn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    op = AlibabaCloudAsyncTaskOperator(
        task_id="t",
        service="dataworks",
        action="ImportWorkflowDefinition",
        query={"ProjectId": "1", "Spec": "{}"},
        wait_for_completion=False,
    )
    started = op.execute(ctx(FakeStore()))
    capsys.readouterr()
    op.on_kill()
    out = capsys.readouterr().out
    assert "keeps running" in out
    assert started["ids"]["job_id"] in out
    assert emulator.cancel_count() == 0


def test_trigger_on_kill_cancels_once(emulator: Emulator, conn: str) -> None:
    emulator.add_emr_serverless_spark_job_run(WS, "jr-kill", ["Running"])
    trigger = AlibabaCloudTaskTrigger(
        service="emr_serverless_spark", ids={"workspace_id": WS, "job_run_id": "jr-kill"}, cancel_on_kill=True
    )

    async def kill() -> None:
        from airflow_aliyun_tasks.client import aclose_shared_client

        try:
            await trigger.on_kill()
            await AlibabaCloudTaskTrigger(
                service="emr_serverless_spark", ids={"workspace_id": WS, "job_run_id": "jr-kill"}
            ).on_kill()  # a sensor's trigger never cancels
        finally:
            await aclose_shared_client()

    asyncio.run(kill())
    assert emulator.cancel_count("emr_serverless_spark", workspace_id=WS, job_run_id="jr-kill") == 1


#: what each emulated start operation needs in its request, beyond its method and path
EXTRA_REQUEST: dict[tuple[str, str], dict[str, Any]] = {
    ("dataworks", "ImportWorkflowDefinition"): {"query": {"ProjectId": "1", "Spec": "{}"}},
    ("dlf", "DeleteDatabase"): {"query": {"Name": "s", "Async": "true"}},
    ("mma", "CreateMmsJob"): {"body": {"dstDbName": "x"}},
    ("pds", "ArchiveFiles"): {"body": {"drive_id": "1", "file_ids": ["f"], "name": "a.zip"}},
    ("emr_serverless_spark", "StartJobRun"): {"body": {"name": "n"}},
    ("dataworks_workflow", "ExecuteAdhocWorkflowInstance"): {
        "body": {"Name": "n", "Owner": "1", "ProjectId": 1, "Tasks": [{"ClientUniqueCode": "c"}]}
    },
    ("dataworks_workflow", "CreateWorkflowInstances"): {
        "body": {
            "Name": "n",
            "ProjectId": 1,
            "Type": "SupplementData",
            "WorkflowId": 1,
            "Periods": {"BizDates": [{"StartBizDate": "2026-01-01", "EndBizDate": "2026-01-02"}]},
        }
    },
    ("pai_dlc", "CreateJob"): {
        "body": {
            "DisplayName": "n",
            "JobType": "PyTorchJob",
            "UserCommand": "x",
            "JobSpecs": [{"Type": "Worker"}],
        }
    },
    ("adb_spark", "SubmitSparkApp"): {
        "body": {"DBClusterId": "amv-1", "ResourceGroupName": "rg", "Data": {"file": "oss://b/pi.py"}}
    },
    ("flink_job", "StartJobWithParams"): {
        "headers": {"workspace": "ws-all"},
        "body": {"deploymentId": "58718c99-3b29-4c5e-93bb-c9fc4ec61234"},
    },
    ("fc_async_task", "InvokeFunction"): {"body": b'{"event": 1}'},
}
REGISTRY_START_OPERATIONS = [
    (name, op.action, op.method, op.path) for name, spec in SERVICES.items() for op in spec.start_operations
]


def test_the_emulator_serves_every_start_operation_of_the_registry() -> None:
    from airflow_aliyun_tasks.testing import CANCEL_OPERATIONS, START_OPERATIONS

    assert sorted(START_OPERATIONS) == sorted((s, a) for s, a, _, _ in REGISTRY_START_OPERATIONS)
    assert sorted(CANCEL_OPERATIONS) == sorted(
        (name, spec.cancel.action) for name, spec in SERVICES.items() if spec.cancel
    )


@pytest.mark.parametrize(
    ("service", "action", "method", "path"),
    REGISTRY_START_OPERATIONS,
    ids=[f"{s}-{a}" for s, a, _, _ in REGISTRY_START_OPERATIONS],
)
def test_every_start_operation_of_the_registry(
    emulator: Emulator, conn: str, service: str, action: str, method: str, path: str
) -> None:
    op = AlibabaCloudAsyncTaskOperator(
        task_id="t",
        service=service,
        action=action,
        method=method,
        path=path.format(
            sourceId=77, workspaceId="w-all", namespace="default-namespace", functionName="fn-all"
        ),
        poll_interval=0.01,
        deferrable=False,
        **EXTRA_REQUEST.get((service, action), {"body": {}} if method in ("POST", "PUT") else {}),
    )
    result = op.execute(ctx(FakeStore()))
    for status in result if isinstance(result, list) else [result]:  # a start of several tasks: a list
        assert status["state"] == "succeeded", status
        assert status["ids"], status
    assert emulator.start_count(service, action) == 1
    if (service, action) == ("pds", "ArchiveFiles"):  # the task's result: the archive's url
        assert status["result"].startswith("https://download.emulator.invalid/archive/")


def test_an_operation_that_finished_at_once(emulator: Emulator, conn: str) -> None:
    # DLF DeleteDatabase without Async=true drops the database before answering: no TaskId,
    # nothing to wait for, nothing recorded.
    store = FakeStore()
    op = AlibabaCloudAsyncTaskOperator(
        task_id="t",
        service="dlf",
        action="DeleteDatabase",
        method="DELETE",
        path="/api/metastore/catalogs/databases",
        query={"Name": "s"},
        deferrable=True,
    )
    status = op.execute(ctx(store))
    assert status["state"] == "succeeded"
    assert status["ids"] == {}
    assert store.data == {}
    assert emulator.tasks("dlf") == []


def test_pds_result_url_is_a_documented_field(emulator: Emulator, conn: str) -> None:
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

    emulator.add_pds_task("arch-1", ["Succeed"], domain_id="bj1")
    emulator._task(("pds", "arch-1")).options["url"] = "https://download.example.invalid/a.zip"  # type: ignore[union-attr]
    status = AlibabaCloudTasksHook().get_task_status("pds", async_task_id="arch-1")
    assert status.result == "https://download.example.invalid/a.zip"
    assert status.to_dict()["result"] == status.result


def test_a_failed_write_to_the_state_store_does_not_fail_the_task(
    emulator: Emulator, conn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    class BrokenStore(FakeStore):
        def set(self, key: str, value: Any, **kwargs: Any) -> None:
            raise RuntimeError("state store unavailable")

    assert emr().execute(ctx(BrokenStore()))["state"] == "succeeded"
    assert "Could not record the task" in capsys.readouterr().out
    assert emulator.start_count("emr_serverless_spark") == 1


def test_wait_for_completion_false_returns_the_ids_also_when_reconnecting(
    emulator: Emulator, conn: str
) -> None:
    store = FakeStore()
    first = emr().execute(ctx(store))
    again = emr(wait_for_completion=False).execute(ctx(store, try_number=2))
    assert again == {"service": "emr_serverless_spark", "ids": first["ids"]}
    assert emulator.start_count("emr_serverless_spark") == 1


# --------------------------------------------------------------------------- PAI DLC: no client token


def dlc(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    params: dict[str, Any] = {
        "task_id": "t",
        "service": "pai_dlc",
        "action": "CreateJob",
        "path": "/api/v1/jobs",
        "body": {
            "DisplayName": "train",
            "JobType": "PyTorchJob",
            "UserCommand": "python train.py",
            "JobSpecs": [{"Type": "Worker", "Image": "pytorch:2.1", "PodCount": 1}],
        },
        "poll_interval": 0.01,
        "deferrable": False,
    }
    params.update(kwargs)
    return AlibabaCloudAsyncTaskOperator(**params)


def test_pai_dlc_job_is_created_once_and_a_retry_reconnects(emulator: Emulator, conn: str) -> None:
    store = FakeStore()
    emulator.set_start_lifecycle("pai_dlc", ["Queuing", "Running", "Running", "SucceededReserving"])
    started = dlc(wait_for_completion=False).execute(ctx(store))
    assert store.data[STATE_KEY] == {"service": "pai_dlc", "ids": started["ids"], "generation": 0}
    # The next try finds the job in the state store: no second CreateJob.
    result = dlc().execute(ctx(store, try_number=2))
    assert (result["state"], result["raw_status"], result["ids"]) == (
        "succeeded",
        "SucceededReserving",
        started["ids"],
    )
    assert emulator.start_count("pai_dlc", "CreateJob") == 1
    # CreateJob takes no client token: nothing was added to the request.
    (job,) = emulator.tasks("pai_dlc")
    assert job["ids"] == started["ids"]


def test_pai_dlc_create_is_sent_once_without_the_clients_retries(emulator: Emulator, conn: str) -> None:
    emulator.inject_fault("drop_after_accept", service="pai_dlc")
    with pytest.raises(Exception, match=r"(?i)connection|closed|disconnect|transport"):
        dlc().execute(ctx(FakeStore()))
    assert emulator.start_count("pai_dlc") == 1
    assert len(emulator.tasks("pai_dlc")) == 1  # a retried request would have made a second job


def test_pai_dlc_failed_reserving_fails_and_the_retry_creates_one_new_job(
    emulator: Emulator, conn: str
) -> None:
    store = FakeStore()
    emulator.set_start_lifecycle("pai_dlc", ["Running", "FailedReserving"])
    with pytest.raises(AlibabaCloudTaskError, match="Task failed"):
        dlc().execute(ctx(store))
    emulator.set_start_lifecycle("pai_dlc", ["Running", "Succeeded"])
    assert dlc().execute(ctx(store, try_number=2))["state"] == "succeeded"
    assert emulator.start_count("pai_dlc") == 2
    assert store.data[STATE_KEY]["generation"] == 1


def test_pai_dlc_on_kill_stops_the_job(emulator: Emulator, conn: str) -> None:
    emulator.set_start_lifecycle("pai_dlc", ["Running"])
    op = dlc(wait_for_completion=False)
    started = op.execute(ctx(FakeStore()))
    op.on_kill()
    assert emulator.cancel_count("pai_dlc", accepted=True, **started["ids"]) == 1
    (job,) = emulator.tasks("pai_dlc")
    assert job["statuses"][-2:] == ["Stopping", "Stopped"]


# --------------------------------------------------------------------------- AnalyticDB Spark: a form


def adb(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    params: dict[str, Any] = {
        "task_id": "t",
        "service": "adb_spark",
        "action": "SubmitSparkApp",
        "body": {
            "DBClusterId": "amv-op",
            "ResourceGroupName": "spark_rg",
            "AppType": "BATCH",
            "Data": {"name": "pi", "file": "oss://bucket/pi.py", "args": ["100"]},
        },
        "poll_interval": 0.01,
        "deferrable": False,
    }
    params.update(kwargs)
    return AlibabaCloudAsyncTaskOperator(**params)


def test_adb_spark_app_is_submitted_once_as_a_form_and_a_retry_reconnects(
    emulator: Emulator, conn: str
) -> None:
    store = FakeStore()
    emulator.set_start_lifecycle("adb_spark", ["SUBMITTED", "RUNNING", "SUCCEEDING", "COMPLETED"])
    started = adb(wait_for_completion=False).execute(ctx(store))
    assert started["ids"]["app_id"].startswith("s")
    assert store.data[STATE_KEY] == {"service": "adb_spark", "ids": started["ids"], "generation": 0}
    # The next try finds the application in the state store: no second SubmitSparkApp.
    result = adb().execute(ctx(store, try_number=2))
    assert (result["state"], result["raw_status"], result["ids"]) == (
        "succeeded",
        "COMPLETED",
        started["ids"],
    )
    assert emulator.start_count("adb_spark", "SubmitSparkApp") == 1
    (app,) = emulator.tasks("adb_spark")
    assert app["ids"] == started["ids"]
    # The form's fields reached the service: Data (an object) as JSON text, the cluster.
    assert result["raw"]["Data"]["DBClusterId"] == "amv-op"
    task = emulator._task(("adb_spark", started["ids"]["app_id"]))
    assert task is not None
    assert (task.options["app_type"], task.options["resource_group"]) == ("BATCH", "spark_rg")


def test_adb_spark_submit_is_sent_once_without_the_clients_retries(emulator: Emulator, conn: str) -> None:
    emulator.inject_fault("drop_after_accept", service="adb_spark")
    with pytest.raises(Exception, match=r"(?i)connection|closed|disconnect|transport"):
        adb().execute(ctx(FakeStore()))
    assert emulator.start_count("adb_spark") == 1
    assert len(emulator.tasks("adb_spark")) == 1  # a retried request would have submitted a second app


def test_adb_spark_a_refused_submit_fails_with_the_services_error(emulator: Emulator, conn: str) -> None:
    body = {"DBClusterId": "amv-op", "ResourceGroupName": "spark_rg", "Data": "not json"}
    with pytest.raises(Exception, match="InvalidParameter"):
        adb(body=body).execute(ctx(FakeStore()))
    assert emulator.start_count("adb_spark", accepted=True) == 0


@pytest.mark.parametrize(
    ("final", "expected"),
    [
        ("FATAL", "Task failed.*the driver exited with code 1"),  # Data.Message is the message
        ("KILLED", "Task was cancelled"),
    ],
)
def test_adb_spark_fatal_and_killed_fail_the_task(
    final: str, expected: str, emulator: Emulator, conn: str
) -> None:
    emulator.set_start_lifecycle("adb_spark", ["RUNNING", final])
    with pytest.raises(AlibabaCloudTaskError, match=expected):
        adb().execute(ctx(FakeStore()))


def test_adb_spark_on_kill_kills_the_app(emulator: Emulator, conn: str) -> None:
    emulator.set_start_lifecycle("adb_spark", ["RUNNING"])
    op = adb(wait_for_completion=False)
    started = op.execute(ctx(FakeStore()))
    op.on_kill()
    assert emulator.cancel_count("adb_spark", accepted=True, **started["ids"]) == 1
    (app,) = emulator.tasks("adb_spark")
    assert app["statuses"][-2:] == ["KILLING", "KILLED"]


# --------------------------------------------------------------------------- Flink: a header id, no client token

FLINK_IDS = {"workspace_id": "a14bd5d90a", "namespace": "default-namespace"}


def flink(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    params: dict[str, Any] = {
        "task_id": "t",
        "service": "flink_job",
        "action": "StartJobWithParams",
        "path": "/api/v2/namespaces/default-namespace/jobs:start",
        "headers": {"workspace": "a14bd5d90a"},
        "body": {"deploymentId": "58718c99-3b29-4c5e-93bb-c9fc4ec61234", "restoreStrategy": {"kind": "NONE"}},
        "poll_interval": 0.01,
        "deferrable": False,
    }
    params.update(kwargs)
    return AlibabaCloudAsyncTaskOperator(**params)


def test_flink_job_is_started_once_and_a_retry_reconnects(emulator: Emulator, conn: str) -> None:
    store = FakeStore()
    emulator.set_start_lifecycle("flink_job", ["STARTING", "RUNNING", "RUNNING", "FINISHED"])
    started = flink(wait_for_completion=False).execute(ctx(store))
    (job,) = emulator.tasks("flink_job")
    # the workspace header and the namespace of the request, the jobId of the answer
    assert started["ids"] == {**FLINK_IDS, "job_id": job["ids"]["job_id"]}
    assert store.data[STATE_KEY] == {"service": "flink_job", "ids": started["ids"], "generation": 0}
    result = flink().execute(ctx(store, try_number=2))
    assert (result["state"], result["raw_status"], result["ids"]) == ("succeeded", "FINISHED", started["ids"])
    assert result["raw"]["data"]["deploymentId"] == "58718c99-3b29-4c5e-93bb-c9fc4ec61234"
    assert emulator.start_count("flink_job", "StartJobWithParams") == 1


def test_flink_start_is_sent_once_without_the_clients_retries(emulator: Emulator, conn: str) -> None:
    emulator.inject_fault("drop_after_accept", service="flink_job")
    with pytest.raises(Exception, match=r"(?i)connection|closed|disconnect|transport"):
        flink().execute(ctx(FakeStore()))
    assert emulator.start_count("flink_job") == 1
    assert len(emulator.tasks("flink_job")) == 1  # a retried request would have started a second job


def test_flink_start_refused_inside_an_http_200_answer(emulator: Emulator, conn: str) -> None:
    """The API answers errors with HTTP 200 and success: false; the start fails with its code."""
    store = FakeStore()
    with pytest.raises(ApiError, match=r"HTTP 200 InvalidParameter: deploymentId"):
        flink(body={"restoreStrategy": {"kind": "NONE"}}).execute(ctx(store))
    assert emulator.start_count("flink_job") == 1
    assert emulator.start_count("flink_job", accepted=True) == 0
    assert STATE_KEY not in store.data
    with pytest.raises(ApiError, match=r"InvalidParameter\.Workspace"):
        flink(headers=None).execute(ctx(store))


def test_flink_failed_job_fails_with_its_reason_and_the_retry_starts_one_new_job(
    emulator: Emulator, conn: str
) -> None:
    store = FakeStore()
    emulator.set_start_lifecycle("flink_job", ["RUNNING", "FAILED"])
    with pytest.raises(AlibabaCloudTaskError, match="JobFailed: The job failed"):
        flink().execute(ctx(store))
    emulator.set_start_lifecycle("flink_job", ["RUNNING", "FINISHED"])
    assert flink().execute(ctx(store, try_number=2))["state"] == "succeeded"
    assert emulator.start_count("flink_job") == 2
    assert store.data[STATE_KEY]["generation"] == 1


def test_flink_on_kill_stops_the_job(emulator: Emulator, conn: str) -> None:
    emulator.set_start_lifecycle("flink_job", ["RUNNING"])
    op = flink(wait_for_completion=False)
    started = op.execute(ctx(FakeStore()))
    op.on_kill()
    assert emulator.cancel_count("flink_job", accepted=True, **started["ids"]) == 1
    (job,) = emulator.tasks("flink_job")
    assert job["statuses"][-2:] == ["CANCELLING", "CANCELLED"]


# ----------------------------------------------------------------- Function Compute: a named task


FC = "fc_async_task"
FC_TOKEN = "airflow-" + client_token("d", "t", "manual__1", -1, 0)


def fc(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    params: dict[str, Any] = {
        "task_id": "t",
        "service": FC,
        "action": "InvokeFunction",
        "path": "/2023-03-30/functions/etl/invocations",
        "body": b'{"day": "2026-12-01"}',
        "poll_interval": 0.01,
        "deferrable": False,
    }
    params.update(kwargs)
    return AlibabaCloudAsyncTaskOperator(**params)


def test_fc_invocation_names_its_task_and_a_retry_reconnects(emulator: Emulator, conn: str) -> None:
    store = FakeStore()
    started = fc(wait_for_completion=False, query={"qualifier": "prod"}).execute(ctx(store))
    assert started == {
        "service": FC,
        "ids": {"function_name": "etl", "async_task_id": FC_TOKEN, "qualifier": "prod"},
    }
    assert store.data[STATE_KEY] == {"service": FC, "ids": started["ids"], "generation": 0}
    (task,) = emulator.tasks(FC)
    assert task["ids"] == {"function_name": "etl", "async_task_id": FC_TOKEN}
    # the next try finds the task in the state store: no second invocation
    result = fc(query={"qualifier": "prod"}).execute(ctx(store, try_number=2))
    assert (result["state"], result["raw_status"], result["ids"]) == (
        "succeeded",
        "Succeeded",
        started["ids"],
    )
    assert result["raw"]["qualifier"] == "prod"
    assert result["raw"]["taskPayload"] == '{"day": "2026-12-01"}'  # the raw body, as it was sent
    assert emulator.start_count(FC, "InvokeFunction") == 1


def test_fc_lost_invoke_answer_the_retry_is_refused_and_the_task_waited_on(
    emulator: Emulator, conn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The answer of the invocation is lost; the client's retry names the same task, Function
    Compute refuses it with 409, and the operator waits on the task the first attempt started."""
    emulator.inject_fault("drop_after_accept", service=FC)
    result = fc().execute(ctx(FakeStore()))
    assert result["state"] == "succeeded"
    assert result["ids"] == {"function_name": "etl", "async_task_id": FC_TOKEN}
    assert (emulator.start_count(FC), emulator.start_count(FC, accepted=True)) == (2, 1)
    assert len(emulator.tasks(FC)) == 1
    assert "exists already" in capsys.readouterr().out


def test_fc_a_409_for_a_task_id_of_the_callers_is_the_task(emulator: Emulator, conn: str) -> None:
    """A caller-chosen id names the task: invoking it again waits on the task that exists."""
    emulator.add_fc_async_task("etl", "nightly-2026-12-01", ["Running", "Succeeded"])
    result = fc(headers={"x-fc-async-task-id": "nightly-2026-12-01"}).execute(ctx(FakeStore()))
    assert (result["state"], result["ids"]["async_task_id"]) == ("succeeded", "nightly-2026-12-01")
    assert emulator.start_count(FC, accepted=True) == 0


def test_fc_other_errors_of_the_invocation_still_fail(emulator: Emulator, conn: str) -> None:
    from airflow_aliyun_tasks.errors import ApiError

    with pytest.raises(ApiError, match="InvalidArgument"):
        fc(headers={"x-fc-async-task-id": "9-starts-with-a-digit"}).execute(ctx(FakeStore()))
    # ids the caller maps (id_paths) are not the registry's: a 409 is then an error like any other
    emulator.add_fc_async_task("etl", "taken", ["Succeeded"])
    paths = {"function_name": "request:functionName", "async_task_id": "request:x-fc-async-task-id"}
    with pytest.raises(ApiError, match="409"):
        fc(headers={"x-fc-async-task-id": "taken"}, id_paths=paths).execute(ctx(FakeStore()))


def test_fc_failed_task_the_retry_invokes_once_more_with_a_new_id(emulator: Emulator, conn: str) -> None:
    store = FakeStore()
    emulator.set_start_lifecycle(FC, ["Running", "Retrying", "Failed"])
    with pytest.raises(AlibabaCloudTaskError, match="Task failed"):
        fc().execute(ctx(store))
    emulator.set_start_lifecycle(FC, ["Running", "Succeeded"])
    result = fc().execute(ctx(store, try_number=2))
    assert result["state"] == "succeeded"
    assert result["ids"]["async_task_id"] == "airflow-" + client_token("d", "t", "manual__1", -1, 1)
    assert emulator.start_count(FC) == 2
    assert store.data[STATE_KEY]["generation"] == 1


def test_fc_raw_payload_is_not_read_for_ids(emulator: Emulator, conn: str) -> None:
    """The event is opaque: a payload that looks like a form names no id."""
    result = fc(body="x-fc-async-task-id=evil&functionName=other", wait_for_completion=False).execute(
        ctx(FakeStore())
    )
    assert result["ids"] == {"function_name": "etl", "async_task_id": FC_TOKEN}


def test_fc_on_kill_stops_the_task(emulator: Emulator, conn: str) -> None:
    emulator.set_start_lifecycle(FC, ["Running"])
    op = fc(wait_for_completion=False)
    started = op.execute(ctx(FakeStore()))
    op.on_kill()
    ids = {k: v for k, v in started["ids"].items() if k != "qualifier"}
    assert emulator.cancel_count(FC, accepted=True, **ids) == 1
    (task,) = emulator.tasks(FC)
    assert task["statuses"][-2:] == ["Stopping", "Stopped"]
