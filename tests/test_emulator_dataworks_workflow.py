"""DataWorks workflow instances in the emulator, over real HTTP: the official SDK client
(GetWorkflowInstance, ExecuteAdhocWorkflowInstance, CreateWorkflowInstances and
GetCreateWorkflowInstancesResult, StopWorkflowInstances with per-instance results), the package's
hook (status, cancel, the form bodies of the starts), counters, faults and the control API."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_dataworks_public20240518 import models
from alibabacloud_dataworks_public20240518.client import Client
from alibabacloud_tea_openapi.utils_models import Config

from airflow_aliyun_tasks.errors import ApiError, NotFoundError
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.status import FAILED, RUNNING, SUCCEEDED
from airflow_aliyun_tasks.testing import (
    ALL_SERVICES,
    CANCEL_OPERATIONS,
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_START_LIFECYCLES,
    START_OPERATIONS,
    Emulator,
)

WF = "dataworks_workflow"
REGION = "cn-hangzhou"


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def emu(server: Emulator) -> Iterator[Emulator]:
    server.reset()
    yield server
    server.reset()


def client(emu: Emulator, **config: Any) -> Client:
    config.setdefault("access_key_id", DEFAULT_ACCESS_KEY_ID)
    config.setdefault("access_key_secret", DEFAULT_ACCESS_KEY_SECRET)
    return Client(Config(endpoint=emu.endpoint, protocol="http", region_id=REGION, **config))


def get(sdk: Client, instance: int) -> models.GetWorkflowInstanceResponseBodyWorkflowInstance:
    found: models.GetWorkflowInstanceResponseBodyWorkflowInstance = sdk.get_workflow_instance(
        models.GetWorkflowInstanceRequest(id=instance)
    ).body.workflow_instance
    return found


def failure(call: Any) -> tuple[str, int]:
    try:
        call()
    except Exception as exc:  # the SDK raises ClientException / ServerException
        return str(getattr(exc, "code", "")), int(getattr(exc, "status_code", 0) or 0)
    raise AssertionError("the SDK call succeeded")


def adhoc_request(**overrides: Any) -> models.ExecuteAdhocWorkflowInstanceRequest:
    task = models.ExecuteAdhocWorkflowInstanceRequestTasks(
        client_unique_code="t-1",
        name="count rows",
        type="ODPS_SQL",
        owner="1234567890123456",
        runtime_resource=models.ExecuteAdhocWorkflowInstanceRequestTasksRuntimeResource(
            resource_group_id="S_res_group_1"
        ),
        script=models.ExecuteAdhocWorkflowInstanceRequestTasksScript(content="select count(*) from t;"),
    )
    fields: dict[str, Any] = {
        "name": "adhoc run",
        "owner": "1234567890123456",
        "project_id": 10000,
        "env_type": "Prod",
        "tasks": [task],
    }
    fields.update(overrides)
    return models.ExecuteAdhocWorkflowInstanceRequest(**fields)


def create_request(*biz_dates: tuple[str, str]) -> models.CreateWorkflowInstancesRequest:
    return models.CreateWorkflowInstancesRequest(
        name="backfill",
        project_id=10000,
        type="SupplementData",
        workflow_id=42,
        env_type="Prod",
        auto_start_enabled=True,
        periods=models.CreateWorkflowInstancesRequestPeriods(
            biz_dates=[
                models.CreateWorkflowInstancesRequestPeriodsBizDates(start_biz_date=s, end_biz_date=e)
                for s, e in biz_dates
            ]
        ),
        default_run_properties=models.CreateWorkflowInstancesRequestDefaultRunProperties(
            mode="General", parallelism=2
        ),
    )


def test_the_service_is_emulated() -> None:
    assert WF in ALL_SERVICES
    assert (WF, "ExecuteAdhocWorkflowInstance") in START_OPERATIONS
    assert (WF, "CreateWorkflowInstances") in START_OPERATIONS
    assert (WF, "StopWorkflowInstances") in CANCEL_OPERATIONS
    assert DEFAULT_START_LIFECYCLES[WF][-1] == "Success"


# ------------------------------------------------------------------------- GetWorkflowInstance


def test_official_sdk_walks_a_scripted_instance(emu: Emulator) -> None:
    emu.add_dataworks_workflow_instance(
        1234567890123, ["NotRun", "WaitResource", "Running", "Failure"], name="nightly", project_id=10001
    )
    sdk = client(emu)
    seen = [get(sdk, 1234567890123) for _ in range(5)]
    assert [i.status for i in seen] == ["NotRun", "WaitResource", "Running", "Failure", "Failure"]
    first, last = seen[0], seen[-1]
    assert (first.id, first.name, first.project_id, first.env_type) == (
        1234567890123,
        "nightly",
        10001,
        "Prod",
    )
    assert first.started_time is None
    assert first.finished_time is None
    assert seen[2].started_time
    assert last.finished_time >= last.started_time
    assert last.create_time > 1_600_000_000_000  # epoch milliseconds
    assert emu.poll_count(WF, workflow_instance_id="1234567890123") == 5
    assert emu.request_count(WF) == 5


def test_unknown_or_malformed_instance(emu: Emulator) -> None:
    sdk = client(emu)
    assert failure(lambda: get(sdk, 42)) == ("WorkflowInstance.NotFound", 404)
    code, status = failure(
        lambda: sdk.get_create_workflow_instances_result(
            models.GetCreateWorkflowInstancesResultRequest(operation_id="nope")
        )
    )
    assert (code, status) == ("Operation.NotFound", 404)
    with pytest.raises(ValueError, match="integer"):
        emu.add_dataworks_workflow_instance("abc")


# ------------------------------------------------------------------------------------- starts


def test_official_sdk_starts_an_adhoc_instance(emu: Emulator) -> None:
    emu.set_start_lifecycle(WF, ["Running", "Success"])
    sdk = client(emu)
    body = sdk.execute_adhoc_workflow_instance(adhoc_request()).body
    assert body.request_id
    instance = body.workflow_instance_id
    assert isinstance(instance, int)
    assert [get(sdk, instance).status for _ in range(3)] == ["Running", "Success", "Success"]
    assert get(sdk, instance).type == "Manual"
    assert emu.start_count(WF, "ExecuteAdhocWorkflowInstance", accepted=True) == 1
    # Tasks is required, and must be a JSON array
    assert failure(lambda: sdk.execute_adhoc_workflow_instance(adhoc_request(tasks=None))) == (
        "MissingParameter",
        400,
    )
    assert emu.start_count(WF) == 2
    assert emu.start_count(WF, accepted=True) == 1


def test_official_sdk_creates_instances_in_two_phases(emu: Emulator) -> None:
    sdk = client(emu)
    operation = sdk.create_workflow_instances(
        create_request(("2026-01-01", "2026-01-02"), ("2026-02-01", ""))
    ).body
    assert operation.request_id
    request = models.GetCreateWorkflowInstancesResultRequest(operation_id=operation.operation_id)
    creating = sdk.get_create_workflow_instances_result(request).body.result
    assert (creating.status, creating.workflow_instance_ids) == ("Creating", None)
    assert emu.tasks(WF) == []  # nothing exists until the creation is done
    created = sdk.get_create_workflow_instances_result(request).body.result
    assert created.status == "Created"
    assert len(created.workflow_instance_ids) == 3  # one per business date
    assert len(set(created.unified_workflow_instance_ids)) == 1
    assert len(created.workflow_task_instance_ids) == 3
    again = sdk.get_create_workflow_instances_result(request).body.result
    assert again.workflow_instance_ids == created.workflow_instance_ids
    instances = [get(sdk, i) for i in created.workflow_instance_ids]
    assert {i.type for i in instances} == {"SupplementData"}
    assert {i.workflow_id for i in instances} == {42}
    assert sorted(i.biz_date for i in instances) == [1767225600000, 1767312000000, 1769904000000]
    assert emu.start_count(WF, "CreateWorkflowInstances", accepted=True) == 1


def test_a_scripted_creation_failure(emu: Emulator) -> None:
    emu.set_dataworks_create_result(["Creating", "CreateFailure"], "workflow 42 has no nodes")
    sdk = client(emu)
    operation = sdk.create_workflow_instances(create_request(("2026-01-01", "2026-01-01"))).body.operation_id
    request = models.GetCreateWorkflowInstancesResultRequest(operation_id=operation)
    results = [sdk.get_create_workflow_instances_result(request).body.result for _ in range(2)]
    assert [r.status for r in results] == ["Creating", "CreateFailure"]
    assert results[1].failure_message == "workflow 42 has no nodes"
    assert results[1].workflow_instance_ids is None
    assert emu.tasks(WF) == []
    with pytest.raises(ValueError, match="unknown creation status"):
        emu.set_dataworks_create_result(["Done"])


# --------------------------------------------------------------------------------------- stop


def test_official_sdk_stops_instances_with_a_result_each(emu: Emulator) -> None:
    emu.add_dataworks_workflow_instance(1001, ["Running"])
    emu.add_dataworks_workflow_instance(1002, ["Success"])
    sdk = client(emu)
    assert get(sdk, 1001).status == "Running"
    assert get(sdk, 1002).status == "Success"
    answer = sdk.stop_workflow_instances(
        models.StopWorkflowInstancesRequest(ids=[1001, 1002, 1003], comment="stop")
    ).body
    info = {k: (v.success, v.message) for k, v in answer.success_info.items()}
    assert info["1001"] == (True, "")
    assert info["1002"][0] is False
    assert info["1003"] == (False, "The instance does not exist.")
    # a stopped instance reads as failed: DataWorks has no cancelled state
    assert get(sdk, 1001).status == "Failure"
    assert emu.cancel_count(WF, workflow_instance_id="1001") == 1
    assert emu.cancel_count(WF, workflow_instance_id="1001", accepted=True) == 1
    assert emu.cancel_count(WF, workflow_instance_id="1002") == 1
    assert emu.cancel_count(WF, workflow_instance_id="1002", accepted=True) == 0
    assert emu.cancel_count(WF) == 3
    cancels = {tuple(c["ids"].values()): c for c in emu.stats()["cancels"]}
    assert cancels[("1001",)]["accepted"] == 1


# ----------------------------------------------------------------------------- the package's hook


@pytest.fixture
def hook(make_conn: Any, fresh_clients: None, close_shared_sync_client: None) -> AlibabaCloudTasksHook:
    make_conn()
    return AlibabaCloudTasksHook()


def test_hook_status_and_cancel(emulator: Emulator, hook: AlibabaCloudTasksHook) -> None:
    emulator.add_dataworks_workflow_instance(2001, ["Running", "Running"])
    status = hook.get_task_status(WF, workflow_instance_id=2001)
    assert (status.state, status.raw_status, status.ids) == (
        RUNNING,
        "Running",
        {"workflow_instance_id": "2001"},
    )
    assert status.raw["WorkflowInstance"]["Id"] == 2001
    body = hook.cancel_task(WF, workflow_instance_id="2001")
    assert body["SuccessInfo"]["2001"]["Success"] is True
    failed = hook.get_task_status(WF, workflow_instance_id=2001)
    assert failed.state == FAILED
    assert "stopped" in (failed.message or "")
    # the second stop: HTTP 200, but the instance's own result says no
    with pytest.raises(ApiError, match="cannot be stopped") as info:
        hook.cancel_task(WF, workflow_instance_id="2001")
    assert info.value.http_status == 200
    with pytest.raises(ApiError, match="does not exist"):
        hook.cancel_task(WF, workflow_instance_id="2999")
    with pytest.raises(NotFoundError):
        hook.get_task_status(WF, workflow_instance_id="2999")
    assert emulator.cancel_count(WF, workflow_instance_id="2001", accepted=True) == 1


async def test_hook_async(emulator: Emulator, hook: AlibabaCloudTasksHook, aclose_pool: None) -> None:
    emulator.add_dataworks_workflow_instance(2002, ["Success"])
    status = await hook.aget_task_status(WF, workflow_instance_id="2002")
    assert status.state == SUCCEEDED
    emulator.add_dataworks_workflow_instance(2003, ["Running"])
    body = await hook.acancel_task(WF, workflow_instance_id="2003")
    assert body["SuccessInfo"]["2003"]["Success"] is True


def test_hook_starts_with_form_bodies(emulator: Emulator, hook: AlibabaCloudTasksHook) -> None:
    """The starts' JSON fields (Tasks, Periods) go as JSON text in form fields, as the SDK sends them."""
    adhoc = hook.call_api(
        "ExecuteAdhocWorkflowInstance",
        "2024-05-18",
        service=WF,
        body={
            "Name": "adhoc",
            "Owner": "1234567890123456",
            "ProjectId": 10000,
            "Tasks": [
                {"ClientUniqueCode": "t-1", "Name": "n", "RuntimeResource": {"ResourceGroupId": "S_1"}}
            ],
        },
    )
    assert hook.get_task_status(WF, workflow_instance_id=adhoc["WorkflowInstanceId"]).state == RUNNING
    created = hook.call_api(
        "CreateWorkflowInstances",
        "2024-05-18",
        service=WF,
        body={
            "Name": "backfill",
            "ProjectId": 10000,
            "Type": "SupplementData",
            "WorkflowId": 42,
            "AutoStartEnabled": True,
            "Periods": {"BizDates": [{"StartBizDate": "2026-01-01", "EndBizDate": "2026-01-02"}]},
        },
    )
    query = {"OperationId": created["OperationId"]}
    results = [
        hook.call_api("GetCreateWorkflowInstancesResult", "2024-05-18", service=WF, method="GET", query=query)
        for _ in range(2)
    ]
    assert [r["Result"]["Status"] for r in results] == ["Creating", "Created"]
    assert len(results[1]["Result"]["WorkflowInstanceIds"]) == 2


def test_faults_aimed_at_an_instance_and_a_lost_start_answer(emulator: Emulator) -> None:
    emulator.add_dataworks_workflow_instance(3001, ["Running", "Success"])
    emulator.add_dataworks_workflow_instance(3002, ["Running", "Success"])
    emulator.inject_fault("503", service=WF, task="3002")
    sdk = client(emulator, read_timeout=5000)
    assert get(sdk, 3001).status == "Running"
    assert failure(lambda: get(sdk, 3002))[1] == 503
    assert get(sdk, 3002).status == "Running"  # the fault did not move its lifecycle
    emulator.inject_fault("drop_after_accept", service=WF)
    with pytest.raises(Exception):  # noqa: B017, PT011 - the SDK's own connection error
        sdk.execute_adhoc_workflow_instance(adhoc_request())
    assert emulator.start_count(WF, accepted=True) == 1
    assert len(emulator.tasks(WF)) == 3  # the instance exists, its answer was lost


def test_control_api_scripts_instances_and_creations(emulator: Emulator) -> None:
    def post(name: str, payload: Any) -> Any:
        req = urllib.request.Request(
            f"{emulator.url}/_emulator/{name}", data=json.dumps(payload).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp)

    post("tasks", {"service": WF, "workflow_instance_id": 4001, "statuses": ["Running", "Success"]})
    post("dataworks_create_result", {"statuses": ["CreateFailure"], "failure_message": "no"})
    sdk = client(emulator)
    assert get(sdk, 4001).status == "Running"
    operation = sdk.create_workflow_instances(create_request(("2026-01-01", "2026-01-01"))).body.operation_id
    result = sdk.get_create_workflow_instances_result(
        models.GetCreateWorkflowInstancesResultRequest(operation_id=operation)
    ).body.result
    assert (result.status, result.failure_message) == ("CreateFailure", "no")
