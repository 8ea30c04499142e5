"""DataWorks workflow instances (product ``dataworks-public``, API 2024-05-18, RPC):
``GetWorkflowInstance``.

Facts from ``alibabacloud-dataworks-public20240518`` 9.11.0 (``client.py``, ``models/``):

- ``GetWorkflowInstance``: RPC ``GET /`` with one parameter, ``Id`` (an integer, in the query);
  no ``ProjectId``, no ``Env``. Answer: ``{"RequestId", "WorkflowInstance": {"Id", "Status",
  "Type", "Name", "ProjectId", "EnvType", "WorkflowId", "BizDate", "StartedTime",
  "FinishedTime", ...}}``. The instance has no error or message field: why it failed is in its
  task instances (``ListTaskInstances``, ``GetTaskInstance``).
- Starts: ``ExecuteAdhocWorkflowInstance`` (a form body; ``Tasks`` a JSON array) answers
  ``WorkflowInstanceId``; ``CreateWorkflowInstances`` (a form body; ``Periods``,
  ``DefaultRunProperties`` JSON objects) answers only an ``OperationId``, and
  ``GetCreateWorkflowInstancesResult`` (``GET``, ``OperationId`` in the query) says ``Creating``,
  then ``Created`` with ``Result.WorkflowInstanceIds`` (a list: a data backfill over several
  business dates creates several instances) or ``CreateFailure`` with
  ``Result.FailureMessage``. Neither start takes a client token.
- Cancel: ``StopWorkflowInstances``, a form body whose ``Ids`` is a JSON array of integers
  (``Ids=[1234]``); the answer reports each instance with HTTP 200:
  ``SuccessInfo.<id>.Success`` / ``.Message``.

Endpoints are DataWorks': the same templates and the same regions of the SDK's endpoint map sent
to the central ``dataworks.aliyuncs.com`` (this is the same SDK client). The connection's
``dataworks_endpoint`` does not apply here: this service has its own (``dataworks_workflow`` in
``endpoints``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_aliyun_tasks.services import _parse as p
from airflow_aliyun_tasks.services._spec import (
    CancelOperation,
    ConsoleLink,
    FollowUp,
    IdParam,
    ServiceSpec,
    StartOperation,
)
from airflow_aliyun_tasks.services.dataworks import DATAWORKS
from airflow_aliyun_tasks.status import FAILED, RUNNING, SUCCEEDED, TaskStatus

#: ``WorkflowInstance.Status``, as the SDK's model documents it
#: (``models/_get_workflow_instance_response_body.py``)::
#:
#:     The status of the workflow instance. Valid values:
#:     - NotRun: The instance is not run.
#:     - Running: The instance is running.
#:     - WaitTime: The instance is waiting for the scheduling time to arrive.
#:     - CheckingCondition: Branch conditions are being checked for the instance.
#:     - WaitResource: The instance is waiting for resources.
#:     - Failure: The instance fails to be run.
#:     - Success: The instance is successfully run.
#:     - Checking: Data quality is being checked for the instance.
#:
#: There is no cancelled state: DataWorks reports a stopped instance as ``Failure`` (its
#: ``StopInstance`` reference: "the instance may be marked as failed"), so a stop reads as a
#: failure. ``NotRun`` is both "not started yet" and the state of an instance that will never run
#: (an upstream dependency failed, a branch not taken): a wait on it ends only with its timeout.
DATAWORKS_WORKFLOW_STATES: dict[str, str] = {
    "notrun": RUNNING,
    "waittime": RUNNING,
    "checkingcondition": RUNNING,
    "waitresource": RUNNING,
    "running": RUNNING,
    "checking": RUNNING,
    "success": SUCCEEDED,
    "failure": FAILED,
}

#: The message of a failed instance: the API gives no reason for it.
FAILURE_MESSAGE = (
    "the workflow instance failed (DataWorks also reports a stopped instance so); its task "
    "instances say why (ListTaskInstances, GetTaskInstance)"
)


def parse_dataworks_workflow(
    body: Mapping[str, Any], ids: dict[str, str], request_id: str | None
) -> TaskStatus:
    instance = p.obj(body, "WorkflowInstance", "DataWorks GetWorkflowInstance")
    raw_status = p.text(instance.get("Status"))
    state = p.state(DATAWORKS_WORKFLOW_STATES, raw_status)
    return TaskStatus(
        service="dataworks_workflow",
        ids=ids,
        state=state,
        raw_status=raw_status,
        message=FAILURE_MESSAGE if state == FAILED else None,
        request_id=p.text(body.get("RequestId")) or request_id,
        raw=p.raw(body),
    )


def stop_result(body: Mapping[str, Any], ids: Mapping[str, str]) -> str | None:
    """Why ``StopWorkflowInstances`` did not stop the instance, from its per-instance result
    (``SuccessInfo.<id>``), or ``None`` when it did."""
    instance = ids.get("workflow_instance_id", "")
    info = body.get("SuccessInfo")
    item = info.get(instance) if isinstance(info, Mapping) else None
    if not isinstance(item, Mapping):
        return f"the answer has no result for workflow instance {instance} (SuccessInfo)"
    if item.get("Success") is True or str(item.get("Success")).lower() == "true":
        return None
    return p.text(item.get("Message")) or f"workflow instance {instance} was not stopped"


_SDK = "alibabacloud-dataworks-public20240518 9.11.0"

DATAWORKS_WORKFLOW = ServiceSpec(
    name="dataworks_workflow",
    label="DataWorks workflow",
    long_label="DataWorks workflow instances",
    product="dataworks-public",
    action="GetWorkflowInstance",
    version="2024-05-18",
    style="RPC",
    method="GET",
    path="/",
    ids=(IdParam("workflow_instance_id", "Id", "query", integer=True),),
    signer="acs3",
    endpoint=DATAWORKS.endpoint,
    vpc_endpoint=DATAWORKS.vpc_endpoint,
    endpoint_exceptions=DATAWORKS.endpoint_exceptions,
    # The API reference shows "dataworks:*" (or "No authorization for this operation") for these
    # operations; no action of their own is documented.
    ram_action="dataworks:*",
    parse=parse_dataworks_workflow,
    console=ConsoleLink(
        class_name="DataWorksWorkflowConsoleLink",
        title="DataWorks console (workflow instances)",
        url="https://dataworks.console.aliyun.com/overview?regionId={region_id}",
        note="the documented entry page; the Operation Center lists workflow instances but its "
        "address needs the workspace (ProjectId), which is not an id of the status call",
    ),
    start_operations=(
        StartOperation(
            action="ExecuteAdhocWorkflowInstance",
            method="POST",
            path="/",
            task_ids={"workflow_instance_id": "WorkflowInstanceId"},
            note=f"{_SDK}: ExecuteAdhocWorkflowInstanceResponseBody.WorkflowInstanceId; a form body "
            "(Tasks as a JSON array); no client token (Tasks[].ClientUniqueCode names a task inside "
            "the request, it is not documented as a de-duplication key)",
        ),
        StartOperation(
            action="CreateWorkflowInstances",
            method="POST",
            path="/",
            task_ids={},
            follow_up=FollowUp(
                action="GetCreateWorkflowInstancesResult",
                method="GET",
                path="/",
                params={"OperationId": "OperationId"},
                status="Result.Status",
                pending=("Creating",),
                done=("Created",),
                failed=("CreateFailure",),
                message="Result.FailureMessage",
                task_ids={"workflow_instance_id": "Result.WorkflowInstanceIds.*"},
                location="query",
                poll_interval=2.0,
                timeout=600.0,
                note=f"{_SDK}: GetCreateWorkflowInstancesResult, GET with OperationId in the query; "
                "Result.Status is Creating, Created or CreateFailure",
            ),
            note=f"{_SDK}: CreateWorkflowInstancesResponseBody.OperationId, then "
            "GetCreateWorkflowInstancesResult's Result.WorkflowInstanceIds (one instance per business "
            "date of a backfill); a form body (Periods, DefaultRunProperties as JSON); no client token",
        ),
    ),
    cancel=CancelOperation(
        action="StopWorkflowInstances",
        method="POST",
        path="/",
        params=(IdParam("workflow_instance_id", "Ids", "body", integer=True, as_list=True),),
        check=stop_result,
        note=f"{_SDK}: StopWorkflowInstances, Ids a JSON array in a form field; the answer's "
        "SuccessInfo.<id>.Success says whether each instance was stopped (HTTP 200 either way)",
    ),
    docs_page="docs/sensors/dataworks_workflow.md",
    body_encoding="form",
)
