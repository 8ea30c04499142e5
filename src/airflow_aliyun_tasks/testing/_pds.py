"""PDS (Drive and Photo Service, 2022-03-01, its own gateway): async task status and one start.

Routed by path under ``/v2/``, signed ``Authorization: acs AK:signature`` or ``Bearer <token>``.
Errors are ``{"Code", "Message", "RequestId"}`` with header ``x-ca-request-id``.

- ``GetAsyncTask`` (POST ``/v2/async_task/get``, ``{"async_task_id": ...}``): flat snake_case;
  ``state`` and the deprecated ``status`` both present. Unknown task: 404 ``NotFound.AsyncTask``.
  When a task has a ``domain_id`` and the request's Host is a name (``<domain>.api.aliyunpds.com``),
  the first label must match.
- ``ArchiveFiles`` (POST ``/v2/file/archive_files``, alias ``/v2/file/archive``) returns HTTP 202
  ``{"async_task_id": ...}`` (the status is UNVERIFIED); once the task has succeeded, its
  status carries the archive's download ``url``.
- ``AuditLogExport``, ``ClearRecyclebin``, ``CopyFile``, ``DeleteFile``, ``MoveFile``,
  ``RestoreFile``, ``TrashFile``: each answers HTTP 202 with the ``async_task_id`` of an async
  task, as for a folder (a single file would finish at once, without one).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_aliyun_tasks.testing._base import (
    PDS_JSON,
    Call,
    Op,
    Reply,
    Service,
    Store,
    Task,
    is_loopback_host,
    json_object,
    pick,
)

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

NAME = "pds"
VERSION = "2022-03-01"


def _iso_ms(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _consumed(task: Task, index: int, total: int) -> int:
    consumed = pick(task.options.get("consumed_process"), index)
    if consumed is not None:
        return int(consumed)
    if task.statuses[index] != "Running":
        return total
    return int(total * index / (len(task.statuses) - 1)) if len(task.statuses) > 1 else 0


def async_task_body(task: Task, index: int) -> dict[str, Any]:
    """GetAsyncTask: flat snake_case; ``state`` and the deprecated ``status`` both present."""
    state = task.statuses[index]
    opts = task.options
    total = opts.get("total_process")
    total = 100 if total is None else int(total)
    body: dict[str, Any] = {
        "async_task_id": task.ids["async_task_id"],
        "state": state,
        "status": state,
        "total_process": total,
        "consumed_process": _consumed(task, index, total),
        "failed_process": int(opts.get("failed_process", 0)),
        "skipped_process": int(opts.get("skipped_process", 0)),
        "category": opts.get("category", ""),
        "task_type": opts.get("task_type", ""),
        "created_at": _iso_ms(task.created_at),
        "started_at": _iso_ms(task.started_at if task.started_at is not None else task.created_at),
        "uncompress_file_list": [],
    }
    if task.finished_at is not None and task.is_terminal(state):
        body["finished_at"] = _iso_ms(task.finished_at)
    if state in ("Failed", "PartialSucceed") or opts.get("error_code") or opts.get("error_message"):
        code = opts.get("error_code") or ("InternalError" if state == "Failed" else "")
        message = opts.get("error_message") or (
            "The request has been failed due to some unknown error." if state == "Failed" else ""
        )
        if code or message:
            body["error_code"] = code
            body["error_message"] = message
            body["message"] = message  # deprecated twin of error_message
    if opts.get("url"):
        body["url"] = opts["url"]
    elif opts.get("url_on_success") and state in ("Succeed", "PartialSucceed"):
        body["url"] = opts["url_on_success"]
    return body


def error(status: int, code: str, message: str, host: str, rid: str) -> Reply:
    """PDS's error shape: ``{"Code", "Message", "RequestId"}``."""
    return Reply(status, {"Code": code, "Message": message, "RequestId": rid}, content_type=PDS_JSON)


def _host_domain(host: str) -> str | None:
    name = host.rsplit(":", 1)[0].strip("[]") if not host.startswith("[") else host[1:].split("]")[0]
    if not name or is_loopback_host(name) or re.fullmatch(r"[\d.]+", name):
        return None
    return name.split(".", 1)[0]


def _bad_json(call: Call) -> Reply:
    return error(400, "InvalidParameter", "The request body is not a valid JSON object.", call.host, call.rid)


def _invalid(name: str, call: Call) -> Reply:
    message = f"The input parameter {name} is not valid."
    code = "InvalidParameter." + "".join(part.capitalize() for part in name.split("_"))
    return error(400, code, message, call.host, call.rid)


def _task_key(call: Call) -> tuple[str, ...] | None:
    body = json_object(call.req.body)
    value = body.get("async_task_id") if body is not None else None
    return (NAME, value) if isinstance(value, str) and value else None


def _status(emu: Emulator, call: Call) -> Reply:
    body = json_object(call.req.body)
    if body is None:
        return _bad_json(call)
    task_id = body.get("async_task_id")
    if not task_id or not isinstance(task_id, str):
        return _invalid("async_task_id", call)
    task = emu._task(_task_key(call))
    domain = task.options.get("domain_id") if task else None
    asked_domain = _host_domain(call.host)
    if task is None or (domain and asked_domain and asked_domain != domain):
        message = f"The resource async_task cannot be found. async_task_id: {task_id}"
        return error(404, "NotFound.AsyncTask", message, call.host, call.rid)
    polled = emu._poll(_task_key(call), call.advance)
    assert polled is not None
    return Reply(200, async_task_body(*polled), content_type=PDS_JSON)


def _archive(emu: Emulator, call: Call) -> Reply:
    body = json_object(call.req.body)
    if body is None:
        return _bad_json(call)
    file_ids = body.get("file_ids")
    if not isinstance(file_ids, list) or not file_ids:
        return _invalid("file_ids", call)
    if not body.get("name"):
        return _invalid("name", call)
    if not body.get("drive_id") and not body.get("share_id"):
        return error(
            400, "InvalidParameter.DriveId", "One of drive_id and share_id is required.", call.host, call.rid
        )
    task_id = str(uuid.uuid4())
    emu.add_pds_task(
        task_id, emu.start_lifecycles[NAME], domain_id=_host_domain(call.host), total_process=len(file_ids)
    )
    task = emu._task((NAME, task_id))
    assert task is not None
    task.options.update(
        category="archive_files",
        task_type="ArchiveFiles",
        # The archive's download address, reported once the task has succeeded (UNVERIFIED host).
        url_on_success=f"https://download.emulator.invalid/archive/{task_id}/{body['name']}",
    )
    # UNVERIFIED: 202 Accepted, as PDS answers other asynchronous file operations.
    return Reply(202, {"async_task_id": task_id}, content_type=PDS_JSON)


def _file_task(emu: Emulator, call: Call) -> Reply:
    """AuditLogExport, ClearRecyclebin, CopyFile, DeleteFile, MoveFile, RestoreFile, TrashFile:
    always answered as if the work ran asynchronously (a folder), HTTP 202 ``async_task_id``
    (UNVERIFIED status code; the request body must be a JSON object, its fields are not checked)."""
    body = json_object(call.req.body)
    if body is None:
        return _bad_json(call)
    task_id = str(uuid.uuid4())
    emu.add_pds_task(task_id, emu.start_lifecycles[NAME], domain_id=_host_domain(call.host))
    task = emu._task((NAME, task_id))
    assert task is not None
    task.options.update(task_type=call.op.action)
    return Reply(
        202, {"async_task_id": task_id, "domain_id": _host_domain(call.host) or ""}, content_type=PDS_JSON
    )


_FILE_OPS = (
    ("AuditLogExport", "/v2/audit_log/export"),
    ("ClearRecyclebin", "/v2/recyclebin/clear"),
    ("CopyFile", "/v2/file/copy"),
    ("DeleteFile", "/v2/file/delete"),
    ("MoveFile", "/v2/file/move"),
    ("RestoreFile", "/v2/recyclebin/restore"),
    ("TrashFile", "/v2/recyclebin/trash"),
)

_GET = "/v2/async_task/get"
SERVICE = Service(
    name=NAME,
    product="pds",
    ops=(
        Op(NAME, "GetAsyncTask", VERSION, "PDS", _status, "POST", _GET, "status", _task_key),
        Op(NAME, "ArchiveFiles", VERSION, "PDS", _archive, "POST", "/v2/file/archive_files", "start"),
        # Alias of the path above, under which the operation is also known.
        Op(NAME, "ArchiveFiles", VERSION, "PDS", _archive, "POST", "/v2/file/archive", "start"),
        *(Op(NAME, action, VERSION, "PDS", _file_task, "POST", path, "start") for action, path in _FILE_OPS),
    ),
    id_names=("async_task_id",),
    adder="add_pds_task",
    statuses_arg="states",
    running=frozenset({"RUNNING"}),
    start_lifecycle=("Running", "Running", "Succeed"),
    gateway="pds",
    path_prefix="/v2/",
    request_id_header="x-ca-request-id",
    ignored_ids=frozenset({"domain_id"}),
    error_reply=error,
)


class PdsTasks(Store):
    def add_pds_task(
        self,
        async_task_id: str,
        states: Sequence[str] = ("Running", "Succeed"),
        *,
        domain_id: str | None = None,
        total_process: int | None = None,
        consumed_process: Sequence[int] | None = None,
        failed_process: int = 0,
        skipped_process: int = 0,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        """Script a PDS async task (GetAsyncTask ``async_task_id``)."""
        self._put_task(
            SERVICE,
            {"async_task_id": str(async_task_id)},
            states,
            {
                "domain_id": domain_id,
                "total_process": total_process,
                "consumed_process": list(consumed_process) if consumed_process is not None else None,
                "failed_process": failed_process,
                "skipped_process": skipped_process,
                "error_code": error_code,
                "error_message": error_message,
            },
        )
