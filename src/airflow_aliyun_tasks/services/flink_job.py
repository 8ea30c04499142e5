"""Realtime Compute for Apache Flink job instances (product ``ververica``, API 2022-07-18, ROA):
``GetJob``.

Facts from the official SDK package ``alibabacloud-ververica20220718`` 1.14.0 (``client.py``,
``models/``):

- ``GetJob``: ``GET /api/v2/namespaces/{namespace}/jobs/{jobId}``, the workspace in a request
  header ``workspace`` (``GetJobHeaders.workspace``), no query, no body. Answer: an envelope
  ``{"requestId", "success", "httpCode", "errorCode", "errorMessage", "accessDeniedDetail",
  "data"}`` whose ``data`` is the job instance (``Job``: ``jobId``, ``deploymentId``,
  ``deploymentName``, ``namespace``, ``workspace``, ``executionMode`` ``STREAM``/``BATCH``,
  ``startTime``, ``endTime``, ``status``...). ``data.status`` (``JobStatus``) holds
  ``currentJobStatus`` and, for a failed job, ``failure`` (``reason``, ``message``,
  ``failedAt``).
- Errors come inside an HTTP 200 answer: ``success: false`` with ``errorCode`` and
  ``errorMessage`` (``httpCode``: "This value is always 200"); the package's error mapping reads
  them (nothing here).
- Start: ``StartJobWithParams``, ``POST /api/v2/namespaces/{namespace}/jobs:start`` (the SDK
  sends the colon encoded, ``jobs%3Astart``, as the package does), the ``workspace`` header, a
  JSON body ``JobStartParameters`` (``deploymentId``, ``restoreStrategy``,
  ``resourceQueueName``, ``localVariables``, ``jobId``); answer ``data`` is the new job
  (``data.jobId``). No client token: ``JobStartParameters.jobId`` ("Job instance ID") is not
  documented as a caller-chosen id or a de-duplication key.
- Cancel: ``StopJob``, ``POST /api/v2/namespaces/{namespace}/jobs/{jobId}:stop`` (sent as
  ``%3Astop``), the ``workspace`` header, a JSON body ``StopJobRequestBody`` whose
  ``stopStrategy`` is required: ``NONE`` ("Directly stop the job"), ``STOP_WITH_SAVEPOINT`` or
  ``STOP_WITH_DRAIN``. The package sends ``NONE``: a cancel on kill should not wait for a
  savepoint.

A job instance ends only if its job does: a BATCH job finishes, a STREAM job runs until it is
stopped or fails, so a wait on a streaming job ends only with its timeout (``RUNNING`` is
running). The sensor and the operator are for batch jobs.

Endpoint: ``ververica.{region}.aliyuncs.com`` (the SDK's regional rule; every region of its
endpoint map has that host), VPC ``ververica-vpc.{region}.aliyuncs.com`` (the API reference's
endpoint table; the SDK's map ignores the network).
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

#: ``data.status.currentJobStatus``, as the SDK's model (``JobStatus.current_job_status``,
#: ``models/_job_status.py``) lists the values::
#:
#:     The status of the current job. Valid values:
#:
#:     *   STARTING
#:     *   RUNNING
#:     *   CANCELLING
#:     *   FAILED
#:     *   CANCELLED
#:     *   FINISHED
#:
#: ``CANCELLING`` is still running: it ends ``CANCELLED``. ``RUNNING`` is running for a batch job
#: and for a streaming job alike (a streaming job never reports ``FINISHED``). Flink's own job
#: states (``FAILING``, ``RESTARTING``...) are ``status.running.observedFlinkJobStatus``, not
#: values of this field; a value not listed here is unknown: the wait goes on, with a warning
#: naming it.
FLINK_JOB_STATES: dict[str, str] = {
    "starting": RUNNING,
    "running": RUNNING,
    "cancelling": RUNNING,
    "finished": SUCCEEDED,
    "failed": FAILED,
    "cancelled": CANCELLED,
}


def _failure_message(status: Mapping[str, Any]) -> str | None:
    """``failure.reason`` and ``failure.message`` ("valid when currentJobStatus is FAILED")."""
    failure = status.get("failure")
    if not isinstance(failure, Mapping):
        return None
    reason, message = p.text(failure.get("reason")), p.text(failure.get("message"))
    if reason and message and reason != message:
        return f"{reason}: {message}"
    return message or reason


def parse_flink_job(body: Mapping[str, Any], ids: dict[str, str], request_id: str | None) -> TaskStatus:
    job = p.obj(body, "data", "Flink GetJob")
    status = job.get("status")
    status = status if isinstance(status, Mapping) else {}
    raw_status = p.text(status.get("currentJobStatus"))
    state = p.state(FLINK_JOB_STATES, raw_status)
    return TaskStatus(
        service="flink_job",
        ids=ids,
        state=state,
        raw_status=raw_status,
        message=_failure_message(status) if state == FAILED else None,
        request_id=p.text(body.get("requestId")) or request_id,
        raw=p.raw(body),
    )


_SDK = "alibabacloud-ververica20220718 1.14.0"

FLINK_JOB = ServiceSpec(
    name="flink_job",
    label="Flink",
    long_label="Realtime Compute for Apache Flink (job instances)",
    product="ververica",
    action="GetJob",
    version="2022-07-18",
    style="ROA",
    method="GET",
    path="/api/v2/namespaces/{namespace}/jobs/{jobId}",
    ids=(
        IdParam("workspace_id", "workspace", "header"),
        IdParam("namespace", "namespace", "path"),
        IdParam("job_id", "jobId", "path"),
    ),
    signer="acs3",
    endpoint="ververica.{region_id}.aliyuncs.com",
    vpc_endpoint="ververica-vpc.{region_id}.aliyuncs.com",
    # The API reference's RAM tables name the actions of this API "stream:<Action>"
    # (stream:ListJobs, stream:GetDeploymentDraft...).
    ram_action="stream:GetJob",
    parse=parse_flink_job,
    console=ConsoleLink(
        class_name="FlinkJobConsoleLink",
        title="Realtime Compute for Apache Flink console",
        url="https://realtime-compute.console.aliyun.com/regions/{region_id}",
        note="the management console's workspaces of the region; a job's page is in its "
        "workspace's development console, whose address is not documented",
    ),
    start_operations=(
        StartOperation(
            action="StartJobWithParams",
            method="POST",
            path="/api/v2/namespaces/{namespace}/jobs:start",
            task_ids={
                "workspace_id": "request:workspace",
                "namespace": "request:namespace",
                "job_id": "data.jobId",
            },
            note=f"{_SDK}: StartJobWithParamsResponseBody.data (a Job), data.jobId; the body is "
            "JobStartParameters (deploymentId...), the workspace a header; no client token, so "
            "the operator sends it once (no retries) and relies on the task state store to "
            "reconnect on a retry",
        ),
    ),
    cancel=CancelOperation(
        action="StopJob",
        method="POST",
        path="/api/v2/namespaces/{namespace}/jobs/{jobId}:stop",
        body={"stopStrategy": "NONE"},
        note=f"{_SDK}: StopJob, POST with the workspace header and the JSON body "
        'StopJobRequestBody {"stopStrategy": "NONE"} ("Directly stop the job"; the field is '
        "required); the job goes through CANCELLING to CANCELLED",
    ),
    docs_page="docs/sensors/flink_job.md",
)
