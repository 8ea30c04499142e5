"""PAI DLC (product pai-dlc, 2020-12-03, ROA): Deep Learning Containers jobs.

Request shapes from the official SDK ``alibabacloud-pai-dlc20201203`` (``client.py``):

- ``GetJob``: GET ``/api/v1/jobs/{JobId}`` (``NeedDetail`` in the query is accepted and
  ignored); answers the job at the top level of the body, PascalCase, with the fields of
  ``GetJobResponseBody``: ``JobId``, ``DisplayName``, ``JobType``, ``WorkspaceId``, ``Status``,
  ``ReasonCode``, ``ReasonMessage``, ``RequestId``, ``GmtCreateTime`` and the other ``Gmt*Time``
  (ISO 8601 UTC, seconds), ``Duration`` (seconds), ``JobSpecs``, ``UserCommand``...
- ``CreateJob``: POST ``/api/v1/jobs``, a JSON body (``DisplayName``, ``JobType``,
  ``JobSpecs`` and ``UserCommand`` are required; ``WorkspaceId``, ``ResourceId``, ``Envs``...);
  answers ``{"JobId", "RequestId"}``. There is no client token: every accepted request creates a
  job.
- ``StopJob``: POST ``/api/v1/jobs/{JobId}/stop`` with no body (the SDK sends none); answers
  ``{"JobId", "RequestId"}``. A job that has not ended reports ``Stopping``, then ``Stopped``, on
  the next polls. A job that ended and keeps its nodes (``SucceededReserving``,
  ``FailedReserving``) gives them up: it reports ``Succeeded`` or ``Failed`` next (UNVERIFIED:
  the emulator's reading; no document says what StopJob does to a reserving job).

States: ``Creating``, ``Queuing``, ``Bidding``, ``EnvPreparing``, ``SanityChecking``, ``Running``,
``Restarting`` and ``Stopping`` do not end a job; ``SucceededReserving``, ``FailedReserving``,
``Succeeded``, ``Failed`` and ``Stopped`` do (``GmtFinishTime`` is set). The emulator reports
whatever a script says.

Errors have the POP gateway's shape. The product error codes, statuses and default reasons are
the emulator's choice (UNVERIFIED: not shown in the public docs): unknown job 404
``InvalidJob.NotFound``, stopping an ended job 400 ``InvalidJobStatus``, a ``StopJob`` request
with a body or a ``CreateJob`` body that is not a JSON object or lacks a required field 400
``InvalidParameter``; the ``ReasonCode``/``ReasonMessage`` of each state when the script gives
none.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from airflow_aliyun_tasks.testing._base import (
    Call,
    Op,
    Reply,
    Service,
    Store,
    Task,
    iso_seconds,
    json_object,
)

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

NAME = "pai_dlc"
VERSION = "2020-12-03"
RUNNING = frozenset(
    {"CREATING", "QUEUING", "BIDDING", "ENVPREPARING", "SANITYCHECKING", "RUNNING", "RESTARTING", "STOPPING"}
)
#: ended, nodes kept for debugging; StopJob releases them: the state that follows
_RESERVING = {"SUCCEEDEDRESERVING": "Succeeded", "FAILEDRESERVING": "Failed"}
_REQUIRED = ("DisplayName", "JobType", "JobSpecs", "UserCommand")
_JOBS_PATH = re.compile(r"^/api/v1/jobs/?$")
_JOB_PATH = re.compile(r"^/api/v1/jobs/(?P<job>[^/]+)/?$")
_STOP_PATH = re.compile(r"^/api/v1/jobs/(?P<job>[^/]+)/stop/?$")
#: fields of the CreateJob body that GetJob reports back as they were sent
_ECHOED = (
    "DisplayName",
    "JobType",
    "JobSpecs",
    "UserCommand",
    "WorkspaceId",
    "ResourceId",
    "Envs",
    "Priority",
    "DataSources",
    "CodeSource",
    "ThirdpartyLibs",
    "Settings",
)
#: ``ReasonCode`` and ``ReasonMessage`` of a state the script gives no reason for
_REASONS = {
    "QUEUING": ("JobEnqueued", "Job is enqueued and waiting for resources."),
    "RUNNING": ("JobRunning", "Job is running."),
    "STOPPING": ("JobStopping", "Job is stopping."),
    "SUCCEEDEDRESERVING": ("JobSucceededReserving", "Job succeeded; its nodes are reserved."),
    "FAILEDRESERVING": ("JobFailedReserving", "Job failed (emulated); its nodes are reserved."),
    "SUCCEEDED": ("JobSucceeded", "Job has succeeded."),
    "FAILED": ("JobFailed", "Job failed (emulated)."),
    "STOPPED": ("JobStoppedByUser", "Job is stopped by user."),
}


def job_body(task: Task, index: int, account_id: str, rid: str, now: float) -> dict[str, Any]:
    """GetJob's body: the job, at the top level (``now``: the emulator's clock, for ``Duration``)."""
    state = task.statuses[index]
    key = state.upper()
    ended = task.is_terminal(state)
    created = task.created_at
    body: dict[str, Any] = {
        "JobId": task.ids["job_id"],
        "DisplayName": "emulated-job",
        "JobType": "PyTorchJob",
        "WorkspaceId": "268",
        "WorkspaceName": "emulator-workspace",
        "ResourceType": "ECS",
        "Status": state,
        "Priority": 1,
        "UserId": account_id,
        "UserCommand": "python /root/code/train.py",
        "JobSpecs": [
            {"Type": "Worker", "Image": "emulator/pytorch:2", "PodCount": 1, "EcsSpec": "ecs.g6.xlarge"}
        ],
        "GmtCreateTime": iso_seconds(created),
        "GmtSubmittedTime": iso_seconds(created),
        "RequestId": rid,
    }
    if any(seen.upper() == "RUNNING" for seen in (*task.history, state)):
        body["GmtRunningTime"] = iso_seconds(task.started_at or created)
    end = task.finished_at if ended and task.finished_at is not None else None
    if end is not None:
        body["GmtFinishTime"] = iso_seconds(end)
        final = {"SUCCEEDED": "GmtSuccessedTime", "FAILED": "GmtFailedTime", "STOPPED": "GmtStoppedTime"}
        final_key = final.get(_RESERVING.get(key, state).upper())
        if final_key:
            body[final_key] = iso_seconds(end)
    body["Duration"] = max(0, int((end if end is not None else now) - created))
    code, message = _REASONS.get(key, (None, None))
    if ended and (task.options.get("reason_code"), task.options.get("reason_message")) != (None, None):
        code, message = task.options.get("reason_code"), task.options.get("reason_message")
    if (code, message) != (None, None):
        body["ReasonCode"], body["ReasonMessage"] = code or "", message or ""
    body.update(task.options.get("fields") or {})
    return body


def _error(status: int, code: str, message: str, call: Call) -> Reply:
    return SERVICE.error(status, code, message, call.host, call.rid)


def _job_key(call: Call) -> tuple[str, ...] | None:
    match = call.path_match()
    return (NAME, unquote(match["job"])) if match else None


def _not_found(key: tuple[str, ...] | None, call: Call) -> Reply:
    assert key is not None
    return _error(404, "InvalidJob.NotFound", f"The job {key[1]} does not exist.", call)


def _get(emu: Emulator, call: Call) -> Reply:
    key = _job_key(call)
    polled = emu._poll(key, call.advance)
    if polled is None:
        return _not_found(key, call)
    return Reply(200, job_body(*polled, emu.account_id, call.rid, emu.now()))


def _create(emu: Emulator, call: Call) -> Reply:
    body = json_object(call.req.body)
    if body is None:
        return _error(400, "InvalidParameter", "The request body is not a valid JSON object.", call)
    for name in _REQUIRED:
        if body.get(name) in (None, "", []):
            return _error(400, "InvalidParameter", f"{name} is mandatory for this action.", call)
    job = "dlc" + secrets.token_hex(7)
    fields = {name: body[name] for name in _ECHOED if body.get(name) is not None}
    emu.add_pai_dlc_job(job, emu.start_lifecycles[NAME], fields=fields)
    return Reply(200, {"JobId": job, "RequestId": call.rid})


def _stop(emu: Emulator, call: Call) -> Reply:
    key = _job_key(call)
    if call.req.body:
        return _error(400, "InvalidParameter", "StopJob takes no request body.", call)
    with emu._lock:
        task = emu._task(key)
        if task is None or key is None:
            return _not_found(key, call)
        state = task.current
        upper = state.upper()
        if upper in _RESERVING:
            task.statuses = (*task.history, _RESERVING[upper])
        elif task.is_terminal(state):
            # UNVERIFIED: the code and status the service gives for stopping an ended job.
            message = f"The job {key[1]} is {state} and cannot be stopped."
            return _error(400, "InvalidJobStatus", message, call)
        elif upper != "STOPPING":
            task.statuses = (*task.history, "Stopping", "Stopped")
    return Reply(200, {"JobId": task.ids["job_id"], "RequestId": call.rid})


SERVICE = Service(
    name=NAME,
    product="pai-dlc",
    ops=(
        Op(NAME, "GetJob", VERSION, "ROA", _get, "GET", _JOB_PATH, "status", _job_key),
        Op(NAME, "CreateJob", VERSION, "ROA", _create, "POST", _JOBS_PATH, "start"),
        Op(NAME, "StopJob", VERSION, "ROA", _stop, "POST", _STOP_PATH, "cancel", _job_key),
    ),
    id_names=("job_id",),
    adder="add_pai_dlc_job",
    running=RUNNING,
    start_lifecycle=("Creating", "Queuing", "Running", "Succeeded"),
)


class PaiDlcJobs(Store):
    """PAI DLC jobs."""

    def add_pai_dlc_job(
        self,
        job_id: str,
        statuses: Sequence[str] = ("Running", "Succeeded"),
        *,
        reason_code: str | None = None,
        reason_message: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        """Script a PAI DLC job (GetJob ``JobId``).

        ``reason_code`` / ``reason_message`` are the job's ``ReasonCode`` / ``ReasonMessage``
        once it has ended (before, and without them, each state has a default reason).
        ``fields`` adds to or overrides the job as GetJob returns it (PascalCase keys, e.g.
        ``{"DisplayName": "train", "WorkspaceId": "1234"}``).
        """
        self._put_task(
            SERVICE,
            {"job_id": str(job_id)},
            statuses,
            {"reason_code": reason_code, "reason_message": reason_message, "fields": dict(fields or {})},
        )
