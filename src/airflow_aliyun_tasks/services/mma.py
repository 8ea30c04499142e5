"""MaxCompute Migration Assist (product ``MaxCompute``, API 2022-01-04, ROA): ``GetMmsAsyncTask``.

Endpoint: ``maxcompute.{region}.aliyuncs.com`` (VPC ``maxcompute-vpc.{region}``), as the API
reference documents it. Deliberate difference from the official SDK: its endpoint map sends every
region to the central ``maxcompute.aliyuncs.com``; whether the central host routes MMA calls to
the data source's region is unverified, so the package keeps the documented regional host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_aliyun_tasks.services import _parse as p
from airflow_aliyun_tasks.services._spec import ConsoleLink, IdParam, ServiceSpec, StartOperation
from airflow_aliyun_tasks.status import CANCELLED, FAILED, RUNNING, SUCCEEDED, UNKNOWN, TaskStatus

#: MaxCompute MMA ``data.status``. Only ``DONE`` is documented; the rest follows the same API
#: family (``DOING``/``DONE``/``FAILED``) and open-source MMA (``INIT``). ``running: true``
#: keeps an unrecognized status running.
MMA_STATES: dict[str, str] = {
    "init": RUNNING,
    "doing": RUNNING,
    "running": RUNNING,
    "pending": RUNNING,
    "done": SUCCEEDED,
    "success": SUCCEEDED,
    "succeeded": SUCCEEDED,
    "failed": FAILED,
    "fail": FAILED,
    "stopped": CANCELLED,
    "stop": CANCELLED,
    "canceled": CANCELLED,
    "cancelled": CANCELLED,
}


def parse_mma(body: Mapping[str, Any], ids: dict[str, str], request_id: str | None) -> TaskStatus:
    data = p.obj(body, "data", "MaxCompute GetMmsAsyncTask")
    raw_status = p.text(data.get("status"))
    state = p.state(MMA_STATES, raw_status)
    if state == UNKNOWN and raw_status and "fail" in raw_status.lower():
        state = FAILED
    if state == UNKNOWN and data.get("running") is True:
        state = RUNNING
    # ``progress`` is an integer percentage in the documentation's example.
    progress = p.fraction(data.get("progress"), 100)
    error = p.text(data.get("errorMsg"))
    return TaskStatus(
        service="mma",
        ids=ids,
        state=state,
        raw_status=raw_status,
        progress=progress,
        message=error or (p.text(data.get("result")) if state != SUCCEEDED else None),
        request_id=p.text(body.get("requestId")) or p.text(body.get("RequestId")) or request_id,
        raw=p.raw(body),
        result=p.text(data.get("result")) if isinstance(data.get("result"), str) else None,
    )


MMA = ServiceSpec(
    name="mma",
    label="MaxCompute",
    product="MaxCompute",
    action="GetMmsAsyncTask",
    version="2022-01-04",
    style="ROA",
    method="GET",
    path="/api/v1/mms/datasources/{sourceId}/asyncTasks/{asyncTaskId}",
    ids=(
        IdParam("source_id", "sourceId", "path", integer=True),
        IdParam("async_task_id", "asyncTaskId", "path", integer=True),
    ),
    signer="acs3",
    endpoint="maxcompute.{region_id}.aliyuncs.com",
    vpc_endpoint="maxcompute-vpc.{region_id}.aliyuncs.com",
    ram_action="odps:GetMmsAsyncTask",
    parse=parse_mma,
    console=ConsoleLink(
        class_name="MmaConsoleLink",
        title="MaxCompute console",
        url="https://maxcompute.console.aliyun.com/{region_id}/overview",
        note="MaxCompute Migration Assist lives in this console's left navigation; no deep link to a "
        "data source or an async task is documented",
    ),
    start_operations=(
        StartOperation(
            action="CreateMmsJob",
            method="POST",
            path="/api/v1/mms/datasources/{sourceId}/jobs",
            task_ids={"source_id": "request:sourceId", "async_task_id": "data.asyncTaskId"},
            note="alibabacloud-maxcompute20220104: CreateMmsJobResponseBody.data.asyncTaskId; no client token",
        ),
        StartOperation(
            action="UpdateMmsDataSource",
            method="PUT",
            path="/api/v1/mms/datasources/{sourceId}",
            task_ids={"source_id": "request:sourceId", "async_task_id": "data.asyncTaskId"},
            note="alibabacloud-maxcompute20220104: UpdateMmsDataSourceResponseBody.data.asyncTaskId; "
            "no client token",
        ),
    ),
    docs_page="docs/sensors/mma.md",
    long_label="MaxCompute Migration Assist (MMA)",
)
