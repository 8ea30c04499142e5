"""Response bodies of the emulated APIs, in each service's own shape and with its quirks.

Pure functions: the emulator passes the task, the status index, the clock and the request id in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

__all__ = [
    "MMA_RUNNING",
    "Task",
    "dataworks_job_status",
    "dlf_task_status",
    "dumps",
    "is_terminal",
    "mma_async_task",
    "pds_async_task",
]

#: MMA statuses that mean "still running" (``running`` is true while the status is one of these)
MMA_RUNNING = frozenset({"INIT", "DOING", "RUNNING", "PENDING"})
_DLF_RUNNING = frozenset({"RUNNING", "NOTSTARTED", "EXECUTING", "PENDING"})
# MMA reports local time without a zone; the emulator uses China Standard Time (UTC+8). UNVERIFIED.
_MMA_TZ = timezone(timedelta(hours=8))


def dumps(body: Any) -> bytes:
    """JSON as the gateways send it: compact, UTF-8."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def is_terminal(service: str, status: str) -> bool:
    """Whether a raw status ends the task's lifecycle (drives ``Completed``, ``endTime``...)."""
    upper = status.upper()
    if service == "dlf":
        return upper not in _DLF_RUNNING
    if service == "mma":
        return upper not in MMA_RUNNING
    return upper != "RUNNING"  # DataWorks and PDS


@dataclass
class Task:
    """One scripted task: each normally answered poll returns the next status; the last sticks."""

    service: str
    ids: dict[str, str]
    statuses: tuple[str, ...]
    options: dict[str, Any]
    created_at: float
    polls: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    history: list[str] = field(default_factory=list)

    def step(self, *, advance: bool, now: float) -> int:
        """The index of the status to report now; counts the poll when ``advance``."""
        index = min(self.polls, len(self.statuses) - 1)
        if self.started_at is None:
            self.started_at = now
        if self.finished_at is None and is_terminal(self.service, self.statuses[index]):
            self.finished_at = now
        if advance:
            self.polls += 1
            self.history.append(self.statuses[index])
        return index

    def describe(self) -> dict[str, Any]:
        index = min(self.polls, len(self.statuses) - 1)
        return {
            "service": self.service,
            "ids": dict(self.ids),
            "statuses": list(self.statuses),
            "polls": self.polls,
            "next_status": self.statuses[index],
            "history": list(self.history),
        }


def _pick(values: Sequence[Any] | None, index: int) -> Any:
    if not values:
        return None
    return values[min(index, len(values) - 1)]


def dlf_task_status(task: Task, index: int, request_id: str) -> dict[str, Any]:
    """DLF GetAsyncTaskStatus (A.1)."""
    return {
        "Code": "OK",
        "Message": "success",
        "RequestId": request_id,
        "Success": True,
        "TaskStatus": {"Status": task.statuses[index], "Message": task.options.get("message", "successful")},
    }


def dataworks_job_status(task: Task, index: int, request_id: str) -> dict[str, Any]:
    """DataWorks GetJobStatus (A.2): ``Completed`` is the string "True"/"False"; ``CreateTime`` epoch ms."""
    status = task.statuses[index]
    create_ms = int(task.created_at * 1000)
    job: dict[str, Any] = {
        "JobId": task.ids["job_id"],
        "JobType": task.options.get("job_type", "Create"),
        "Completed": "True" if is_terminal("dataworks", status) else "False",
        "Status": status,
        "CreateTime": str(create_ms) if task.options.get("create_time_as_string") else create_ms,
    }
    if status.upper() == "FAIL":
        job["Error"] = task.options.get("error") or "Job failed (emulated)."
    return {"RequestId": request_id, "JobStatus": job}


def _mma_time(epoch: float | None) -> str:
    if epoch is None:
        return "null"
    return datetime.fromtimestamp(epoch, _MMA_TZ).strftime("%Y-%m-%d %H:%M:%S") + "\n"


def _as_int_if_digits(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def mma_progress(task: Task, index: int) -> int:
    given = _pick(task.options.get("progress"), index)
    if given is not None:
        return int(given)
    status = task.statuses[index].upper()
    if status == "DONE":
        return 100
    if status in MMA_RUNNING and len(task.statuses) > 1:
        return min(99, int(100 * index / (len(task.statuses) - 1)))
    return 0


def mma_async_task(task: Task, index: int, request_id: str) -> dict[str, Any]:
    """MaxCompute GetMmsAsyncTask (A.3): camelCase, ``"null"`` strings, times ending in a newline."""
    status = task.statuses[index]
    terminal = is_terminal("mma", status)
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
        "endTime": _mma_time(task.finished_at if terminal else None),
        "createTime": _mma_time(task.created_at),
    }
    return {"requestId": request_id, "data": data}


def _iso_ms(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def pds_async_task(task: Task, index: int) -> dict[str, Any]:
    """PDS GetAsyncTask (A.4): flat snake_case; ``state`` and the deprecated ``status`` both present."""
    state = task.statuses[index]
    opts = task.options
    total = opts.get("total_process")
    consumed = _pick(opts.get("consumed_process"), index)
    if total is None:
        total = 100
    if consumed is None:
        if state == "Running" and len(task.statuses) > 1:
            consumed = int(total * index / (len(task.statuses) - 1))
        elif state == "Running":
            consumed = 0
        else:
            consumed = total
    body: dict[str, Any] = {
        "async_task_id": task.ids["async_task_id"],
        "state": state,
        "status": state,
        "total_process": int(total),
        "consumed_process": int(consumed),
        "failed_process": int(opts.get("failed_process", 0)),
        "skipped_process": int(opts.get("skipped_process", 0)),
        "category": opts.get("category", ""),
        "task_type": opts.get("task_type", ""),
        "created_at": _iso_ms(task.created_at),
        "started_at": _iso_ms(task.started_at if task.started_at is not None else task.created_at),
        "uncompress_file_list": [],
    }
    if task.finished_at is not None and is_terminal("pds", state):
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
    return body
