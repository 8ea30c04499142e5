"""PAI Deep Learning Containers (product ``pai-dlc``, API 2020-12-03, ROA): ``GetJob``.

Request and response shapes are those of the official SDK package
``alibabacloud-pai-dlc20201203``: ``GET /api/v1/jobs/{JobId}``, answered by the job itself at the
top level of the body (``{"JobId", "Status", "SubStatus", "ReasonCode", "ReasonMessage",
"RequestId", "WorkspaceId", "StatusHistory", "Pods", ...}``, PascalCase).

``GetJob`` also takes ``NeedDetail`` in the query ("Specifies whether to return job details.
Default value: true."). The package does not send it: the SDK's model does not say which fields
"details" covers (the response model is the same either way), so nothing shows that ``Status``
and ``ReasonCode`` survive ``NeedDetail=false``; and the cancel request carries the status call's
query, which ``StopJob`` does not take.

Endpoint: ``pai-dlc.{region}.aliyuncs.com`` (VPC ``pai-dlc-vpc.{region}.aliyuncs.com``: the SDK's
regional rule, not confirmed by a document). The SDK's endpoint map sends the regions below to the
central ``pai-dlc.aliyuncs.com``, and so does the package for public endpoints. The map also
lists internal, test and cell region ids (``cn-hangzhou-internal-test-1``,
``cn-shanghai-et15-b01``, ``ap-northeast-2-pop``...) that no customer uses; they are left out.
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

#: ``Status``, as the SDK's model (``GetJobResponseBody.status``) lists the values:
#:
#:     The running status of the job. Valid values:
#:     - Creating
#:     - Queuing
#:     - Bidding (currently only for Lingjun spot jobs)
#:     - EnvPreparing
#:     - SanityChecking
#:     - Running
#:     - Restarting
#:     - Stopping
#:     - SucceededReserving
#:     - FailedReserving
#:     - Succeeded
#:     - Failed
#:     - Stopped
#:
#: ``SucceededReserving`` and ``FailedReserving`` end the wait as succeeded and failed: the job's
#: work is over, and its nodes are kept for a while (the job's ``Settings.JobReservedMinutes``,
#: "the retention duration after job completion", under ``JobReservedPolicy``) before the job
#: reports ``Succeeded`` or ``Failed``; waiting for that would hold the wait for the retention
#: time without learning anything new. A ``Stopping`` job is still running: it ends ``Stopped``.
#: A state not listed here is unknown: the wait goes on, with a warning naming it.
PAI_DLC_STATES: dict[str, str] = {
    "creating": RUNNING,
    "queuing": RUNNING,
    "bidding": RUNNING,
    "envpreparing": RUNNING,
    "sanitychecking": RUNNING,
    "running": RUNNING,
    "restarting": RUNNING,
    "stopping": RUNNING,
    "succeededreserving": SUCCEEDED,
    "succeeded": SUCCEEDED,
    "failedreserving": FAILED,
    "failed": FAILED,
    "stopped": CANCELLED,
}

#: The regions of ``alibabacloud-pai-dlc20201203``'s endpoint map (all of them map to the
#: central host) that are region ids customers use; the map's internal ones are left out.
_CENTRAL_REGIONS = (
    "ap-south-1",
    "ap-southeast-2",
    "cn-beijing-finance-1",
    "cn-chengdu",
    "cn-hangzhou-finance",
    "cn-huhehaote",
    "cn-north-2-gov-1",
    "cn-qingdao",
    "cn-shenzhen-finance-1",
    "cn-zhangjiakou",
    "eu-west-1",
    "me-east-1",
)


def parse_pai_dlc(body: Mapping[str, Any], ids: dict[str, str], request_id: str | None) -> TaskStatus:
    job = p.body_of(body, "PAI DLC GetJob")
    raw_status = p.text(job.get("Status"))
    state = p.state(PAI_DLC_STATES, raw_status)
    return TaskStatus(
        service="pai_dlc",
        ids=ids,
        state=state,
        raw_status=raw_status,
        # ReasonMessage describes the current status (why a job queues, why it failed).
        message=p.text(job.get("ReasonMessage")) if state != SUCCEEDED else None,
        error_code=p.text(job.get("ReasonCode")) if state in (FAILED, CANCELLED) else None,
        request_id=p.text(job.get("RequestId")) or request_id,
        raw=p.raw(job),
    )


PAI_DLC = ServiceSpec(
    name="pai_dlc",
    label="PAI DLC",
    long_label="Platform for AI Deep Learning Containers (PAI DLC)",
    product="pai-dlc",
    action="GetJob",
    version="2020-12-03",
    style="ROA",
    method="GET",
    path="/api/v1/jobs/{JobId}",
    ids=(IdParam("job_id", "JobId", "path"),),
    signer="acs3",
    endpoint="pai-dlc.{region_id}.aliyuncs.com",
    vpc_endpoint="pai-dlc-vpc.{region_id}.aliyuncs.com",
    endpoint_exceptions=dict.fromkeys(_CENTRAL_REGIONS, "pai-dlc.aliyuncs.com"),
    ram_action="paidlc:GetJob",
    parse=parse_pai_dlc,
    console=ConsoleLink(
        class_name="PaiDlcConsoleLink",
        title="PAI DLC console",
        url="https://pai.console.aliyun.com/?regionId={region_id}#/dlc/jobs",
        note="the DLC job list of the region in the PAI console; a job's own page needs its "
        "workspace id, which GetJob returns (WorkspaceId in the task's XCom) but the status call "
        "does not take",
    ),
    start_operations=(
        StartOperation(
            action="CreateJob",
            method="POST",
            path="/api/v1/jobs",
            task_ids={"job_id": "JobId"},
            note="alibabacloud-pai-dlc20201203: CreateJobResponseBody.JobId; the request takes no "
            "client token, so the operator sends it once (no retries) and relies on the task "
            "state store to reconnect on a retry",
        ),
    ),
    cancel=CancelOperation(
        action="StopJob",
        method="POST",
        path="/api/v1/jobs/{JobId}/stop",
        note="alibabacloud-pai-dlc20201203: StopJob, POST with no body and no query; the job "
        "goes through Stopping to Stopped",
    ),
    docs_page="docs/sensors/pai_dlc.md",
)
