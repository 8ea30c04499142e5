"""Drive and Photo Service (product ``pds``, API 2022-03-01): ``GetAsyncTask`` (``/v2/async_task/get``).

PDS is served per domain: the host is ``{domain_id}.api.aliyunpds.com`` (VPC
``{domain_id}.api-vpc.aliyunpds.com``, as the gateway SDK rewrites it), so ``domain_id`` is a
``"host"`` id that defaults to the connection's ``pds_domain_id``. Requests are signed with PDS's
own ``acs AK:signature`` scheme (or a bearer token).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_aliyun_tasks.errors import BadResponseError
from airflow_aliyun_tasks.services import _parse as p
from airflow_aliyun_tasks.services._spec import ConsoleLink, IdParam, ServiceSpec, StartOperation
from airflow_aliyun_tasks.status import FAILED, PARTIALLY_SUCCEEDED, RUNNING, SUCCEEDED, TaskStatus

#: PDS ``state`` (``status`` is its deprecated twin, read when ``state`` is absent):
#: ``Running``, ``Succeed``, ``PartialSucceed``, ``Failed``. No cancelled state is documented.
PDS_STATES: dict[str, str] = {
    "running": RUNNING,
    "succeed": SUCCEEDED,
    "succeeded": SUCCEEDED,
    "success": SUCCEEDED,
    "partialsucceed": PARTIALLY_SUCCEEDED,
    "failed": FAILED,
    "fail": FAILED,
}


def parse_pds(body: Mapping[str, Any], ids: dict[str, str], request_id: str | None) -> TaskStatus:
    body = p.body_of(body, "PDS GetAsyncTask")
    if not isinstance(body.get("state"), str) and not isinstance(body.get("status"), str):
        raise BadResponseError("PDS GetAsyncTask response has neither 'state' nor 'status'")
    state_value, status_value = body.get("state"), body.get("status")
    raw_status = (p.text(state_value) if isinstance(state_value, str) else None) or (
        p.text(status_value) if isinstance(status_value, str) else None
    )
    state = p.state(PDS_STATES, raw_status)
    return TaskStatus(
        service="pds",
        ids=ids,
        state=state,
        raw_status=raw_status,
        progress=p.fraction(body.get("consumed_process"), body.get("total_process")),
        message=p.text(body.get("error_message")) or p.text(body.get("message")),
        # ``err_code`` is a deprecated integer; 0 means no error.
        error_code=p.text(body.get("error_code"))
        or (p.text(body.get("err_code")) if body.get("err_code") else None),
        request_id=request_id,
        raw=p.raw(body),
        # The archive's download address (ArchiveFiles), once the task has one.
        result=p.text(body.get("url")) if isinstance(body.get("url"), str) else None,
    )


def _file_op(action: str, path: str) -> StartOperation:
    return StartOperation(
        action=action,
        method="POST",
        path=path,
        task_ids={"async_task_id": "async_task_id"},
        may_finish_at_once=True,
        note="alibabacloud-pds20220301: the response model's async_task_id (present only when the "
        "operation runs asynchronously, e.g. on a folder); no client token",
    )


PDS = ServiceSpec(
    name="pds",
    label="PDS",
    product="pds",
    action="GetAsyncTask",
    version="2022-03-01",
    style="ROA",
    method="POST",
    path="/v2/async_task/get",
    ids=(
        IdParam("async_task_id", "async_task_id", "body"),
        IdParam(
            "domain_id",
            "domain_id",
            "host",
            required=False,
            connection_default="pds_domain_id",
            label="PDS domain id",
            example="bj123",
        ),
    ),
    signer="pds",
    endpoint="{domain_id}.api.aliyunpds.com",
    vpc_endpoint="{domain_id}.api-vpc.aliyunpds.com",
    ram_action="pds:GetAsyncTask",
    parse=parse_pds,
    console=ConsoleLink(
        class_name="PdsConsoleLink",
        title="PDS console",
        url="https://pds.console.aliyun.com/",
        note="PDS domains are global (the console is not per region) and no deep link to a domain or "
        "an async task is documented; the domain is in the task's XCom (ids.domain_id)",
    ),
    start_operations=tuple(
        _file_op(action, path)
        for action, path in (
            ("ArchiveFiles", "/v2/file/archive_files"),
            ("AuditLogExport", "/v2/audit_log/export"),
            ("ClearRecyclebin", "/v2/recyclebin/clear"),
            ("CopyFile", "/v2/file/copy"),
            ("DeleteFile", "/v2/file/delete"),
            ("MoveFile", "/v2/file/move"),
            ("RestoreFile", "/v2/recyclebin/restore"),
            ("TrashFile", "/v2/recyclebin/trash"),
        )
    ),
    docs_page="docs/sensors/pds.md",
    long_label="Drive and Photo Service (PDS)",
)
