"""MaxCompute MMA (product MaxCompute, 2022-01-04, ROA): async task status and one start operation.

- ``GetMmsAsyncTask``: GET ``/api/v1/mms/datasources/{sourceId}/asyncTasks/{asyncTaskId}``.
  camelCase, ``"null"`` strings, times ending in a newline. Product errors are camelCase
  ``{"requestId", "code", "message"}`` (unknown task: 404 ``NotFound``, UNVERIFIED).
- ``CreateMmsJob`` (POST ``/api/v1/mms/datasources/{sourceId}/jobs``) returns ``data.asyncTaskId``.
- ``UpdateMmsDataSource`` (PUT ``/api/v1/mms/datasources/{sourceId}``) returns ``data.asyncTaskId``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from airflow_aliyun_tasks.testing._base import Call, Op, Reply, Service, Store, Task, pick

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

NAME = "mma"
VERSION = "2022-01-04"
#: MMA statuses that mean "still running" (``running`` is true while the status is one of these)
MMA_RUNNING = frozenset({"INIT", "DOING", "RUNNING", "PENDING"})
# MMA reports local time without a zone; the emulator uses China Standard Time (UTC+8). UNVERIFIED.
_MMA_TZ = timezone(timedelta(hours=8))
_TASK_PATH = re.compile(r"^/api/v1/mms/datasources/(?P<source>[^/]+)/asyncTasks/(?P<task>[^/]+)/?$")
_JOBS_PATH = re.compile(r"^/api/v1/mms/datasources/(?P<source>[^/]+)/jobs/?$")
_FIRST_STARTED_ID = 1_000_000
_started_ids = itertools.count(_FIRST_STARTED_ID + 1)


def _mma_time(epoch: float | None) -> str:
    if epoch is None:
        return "null"
    return datetime.fromtimestamp(epoch, _MMA_TZ).strftime("%Y-%m-%d %H:%M:%S") + "\n"


def _as_int_if_digits(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def mma_progress(task: Task, index: int) -> int:
    given = pick(task.options.get("progress"), index)
    if given is not None:
        return int(given)
    status = task.statuses[index].upper()
    if status == "DONE":
        return 100
    if status in MMA_RUNNING and len(task.statuses) > 1:
        return min(99, int(100 * index / (len(task.statuses) - 1)))
    return 0


def async_task_body(task: Task, index: int, rid: str) -> dict[str, Any]:
    """GetMmsAsyncTask: camelCase, ``"null"`` strings, times ending in a newline."""
    status = task.statuses[index]
    error_msg = task.options.get("error_msg")
    if error_msg is None and "FAIL" in status.upper():
        error_msg = "Task failed (emulated)."
    data = {
        "id": _as_int_if_digits(task.ids["async_task_id"]),
        "sourceId": _as_int_if_digits(task.ids["source_id"]),
        "type": task.options.get("type", "TASK_CREATE"),
        "objectId": task.options.get("object_id", 232),
        "status": status,
        "running": status.upper() in MMA_RUNNING,
        "progress": mma_progress(task, index),
        "result": task.options.get("result") or "null",
        "errorMsg": error_msg if error_msg is not None else "null",
        "startTime": _mma_time(task.started_at),
        "endTime": _mma_time(task.finished_at if task.is_terminal(status) else None),
        "createTime": _mma_time(task.created_at),
    }
    return {"requestId": rid, "data": data}


def product_error(status: int, code: str, message: str, host: str, rid: str) -> Reply:
    """MaxCompute's own error shape: camelCase."""
    return Reply(status, {"requestId": rid, "code": code, "message": message})


def _task_key(call: Call) -> tuple[str, ...] | None:
    match = call.path_match()
    return (NAME, unquote(match["source"]), unquote(match["task"])) if match else None


def _status(emu: Emulator, call: Call) -> Reply:
    key = _task_key(call)
    polled = emu._poll(key, call.advance)
    if polled is None:
        assert key is not None
        message = f"async task {key[2]} of data source {key[1]} does not exist"
        return product_error(404, "NotFound", message, call.host, call.rid)
    return Reply(200, async_task_body(*polled, call.rid))


def _create_job(emu: Emulator, call: Call) -> Reply:
    match = call.path_match()
    assert match is not None
    source_id = unquote(match["source"])
    try:
        spec = json.loads(call.req.body or b"{}")
    except ValueError:
        return product_error(400, "InvalidParameter", "request body is not valid JSON", call.host, call.rid)
    if not isinstance(spec, dict) or not spec.get("dstDbName"):
        return product_error(400, "InvalidParameter", "dstDbName is required", call.host, call.rid)
    task_id = next(_started_ids)
    emu.add_mma_task(source_id, task_id, emu.start_lifecycles[NAME])
    task = emu._task((NAME, source_id, str(task_id)))
    assert task is not None
    task.options["object_id"] = task_id - _FIRST_STARTED_ID
    return Reply(200, {"requestId": call.rid, "data": {"asyncTaskId": task_id}})


_SOURCE_PATH = re.compile(r"^/api/v1/mms/datasources/(?P<source>[^/]+)/?$")


def _update_source(emu: Emulator, call: Call) -> Reply:
    """UpdateMmsDataSource: the update runs as an async task (the body is not checked)."""
    match = call.path_match()
    assert match is not None
    source_id = unquote(match["source"])
    task_id = next(_started_ids)
    emu.add_mma_task(source_id, task_id, emu.start_lifecycles[NAME])
    return Reply(200, {"requestId": call.rid, "data": {"asyncTaskId": task_id}})


SERVICE = Service(
    name=NAME,
    product="MaxCompute",
    ops=(
        Op(NAME, "GetMmsAsyncTask", VERSION, "ROA", _status, "GET", _TASK_PATH, "status", _task_key),
        Op(NAME, "CreateMmsJob", VERSION, "ROA", _create_job, "POST", _JOBS_PATH, "start"),
        Op(NAME, "UpdateMmsDataSource", VERSION, "ROA", _update_source, "PUT", _SOURCE_PATH, "start"),
    ),
    id_names=("source_id", "async_task_id"),
    adder="add_mma_task",
    running=MMA_RUNNING,
    start_lifecycle=("DOING", "DOING", "DONE"),
    server_error_reply=product_error,
)


class MmaTasks(Store):
    def add_mma_task(
        self,
        source_id: int | str,
        async_task_id: int | str,
        statuses: Sequence[str] = ("DOING", "DONE"),
        *,
        progress: Sequence[int] | None = None,
        error_msg: str | None = None,
    ) -> None:
        """Script a MaxCompute MMA async task (GetMmsAsyncTask ``sourceId``/``asyncTaskId``)."""
        self._put_task(
            SERVICE,
            {"source_id": str(source_id), "async_task_id": str(async_task_id)},
            statuses,
            {"progress": list(progress) if progress is not None else None, "error_msg": error_msg},
        )
