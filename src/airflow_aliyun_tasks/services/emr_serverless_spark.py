"""EMR Serverless Spark (product ``emr-serverless-spark``, API 2023-08-08, ROA): ``GetJobRun``.

Request and response shapes are those of the official SDK package
``alibabacloud-emr-serverless-spark20230808``: ``GET /api/v1/workspaces/{workspaceId}/jobRuns/{jobRunId}``
with ``regionId`` in the query, answered by ``{"requestId", "jobRun": {"state",
"stateChangeReason": {"code", "message"}, "submitTime", "endTime", "webUI", ...}}``.
Endpoint: the SDK has no endpoint map for this product; its regional rule gives
``emr-serverless-spark.{region}.aliyuncs.com`` (VPC ``emr-serverless-spark-vpc.{region}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_aliyun_tasks.services import _parse as p
from airflow_aliyun_tasks.services._spec import (
    CancelOperation,
    ConsoleLink,
    IdParam,
    ServiceSpec,
    StartOperation,
)
from airflow_aliyun_tasks.status import CANCELLED, FAILED, RUNNING, SUCCEEDED, TaskStatus

#: ``jobRun.state``, as the API reference lists the states of a job run: Submitted, Pending,
#: Running, Success, Failed, Cancelling, Cancelled (the SDK's model documents the field only as
#: "the job status"). A ``Cancelling`` run is still running: it ends ``Cancelled``. A state not
#: listed here is unknown: the wait goes on, with a warning naming it (``success_states`` and
#: ``failure_states`` end a wait on it).
#:
#: ``CancelFailed``: Alibaba Cloud's API metadata lists it among the states of ListJobRuns'
#: ``states`` filter ("Submitted, Pending, Running, Success, Failed, Cancelling, Cancelled,
#: CancelFailed"); no document defines it, and the SDK (2.3.0) never names it. The cancel request
#: failed: the run was not cancelled, and may still be running. It is a failure here, as the
#: Airflow operator of apache/airflow#42209 and a dbt adapter for EMR Serverless Spark treat it
#: (terminal, "did not succeed"); DolphinScheduler's plugin keeps polling instead (its
#: ``RunState.isFinal`` omits it). Whether the run then goes on (and later reports Running,
#: Success or Failed) or stays parked in ``CancelFailed`` is not documented: the message says the
#: run may still be running, so that whoever reads the failure checks it.
EMR_SERVERLESS_SPARK_STATES: dict[str, str] = {
    "submitted": RUNNING,
    "pending": RUNNING,
    "running": RUNNING,
    "cancelling": RUNNING,
    "success": SUCCEEDED,
    "failed": FAILED,
    "cancelfailed": FAILED,
    "cancelled": CANCELLED,
    "canceled": CANCELLED,
}

#: What a ``CancelFailed`` run's status says (before the state change reason, when there is one).
CANCEL_FAILED_MESSAGE = "the cancel request failed: the job run was not cancelled and may still be running"


def parse_emr_serverless_spark(
    body: Mapping[str, Any], ids: dict[str, str], request_id: str | None
) -> TaskStatus:
    run = p.obj(body, "jobRun", "EMR Serverless Spark GetJobRun")
    raw_status = p.text(run.get("state"))
    state = p.state(EMR_SERVERLESS_SPARK_STATES, raw_status)
    reason = run.get("stateChangeReason")
    reason = reason if isinstance(reason, Mapping) else {}
    ended_badly = state in (FAILED, CANCELLED)
    message = p.text(reason.get("message")) if ended_badly else None
    if raw_status is not None and raw_status.lower() == "cancelfailed":
        message = f"{CANCEL_FAILED_MESSAGE}: {message}" if message else CANCEL_FAILED_MESSAGE
    return TaskStatus(
        service="emr_serverless_spark",
        ids=ids,
        state=state,
        raw_status=raw_status,
        message=message,
        error_code=p.text(reason.get("code")) if ended_badly else None,
        request_id=p.text(body.get("requestId")) or p.text(body.get("RequestId")) or request_id,
        raw=p.raw(body),
    )


EMR_SERVERLESS_SPARK = ServiceSpec(
    name="emr_serverless_spark",
    label="EMR Serverless Spark",
    product="emr-serverless-spark",
    action="GetJobRun",
    version="2023-08-08",
    style="ROA",
    method="GET",
    path="/api/v1/workspaces/{workspaceId}/jobRuns/{jobRunId}",
    ids=(
        IdParam("workspace_id", "workspaceId", "path"),
        IdParam("job_run_id", "jobRunId", "path"),
    ),
    extra_query={"regionId": "{region_id}"},
    signer="acs3",
    endpoint="emr-serverless-spark.{region_id}.aliyuncs.com",
    vpc_endpoint="emr-serverless-spark-vpc.{region_id}.aliyuncs.com",
    ram_action="emr-serverless-spark:GetJobRun",
    parse=parse_emr_serverless_spark,
    console=ConsoleLink(
        class_name="EmrServerlessSparkConsoleLink",
        title="EMR Serverless Spark console",
        url="https://emr-next.console.aliyun.com/#/region/{region_id}/resource/all/serverless/spark",
        note="the Spark workspaces of the region in the EMR console; no deep link to a job run is "
        "documented (the run's Spark UI is jobRun.webUI in the task's XCom)",
    ),
    start_operations=(
        StartOperation(
            action="StartJobRun",
            method="POST",
            path="/api/v1/workspaces/{workspaceId}/jobRuns",
            task_ids={"workspace_id": "request:workspaceId", "job_run_id": "jobRunId"},
            idempotency_param="clientToken",
            idempotency_location="body",
            note="alibabacloud-emr-serverless-spark20230808: StartJobRunResponseBody.jobRunId; "
            "clientToken in the JSON body is the idempotence token",
        ),
    ),
    cancel=CancelOperation(
        action="CancelJobRun",
        method="DELETE",
        path="/api/v1/workspaces/{workspaceId}/jobRuns/{jobRunId}",
        note="alibabacloud-emr-serverless-spark20230808: CancelJobRun, DELETE on the job run",
    ),
    docs_page="docs/sensors/emr_serverless_spark.md",
)
