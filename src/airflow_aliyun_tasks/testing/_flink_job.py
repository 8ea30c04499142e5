"""Realtime Compute for Apache Flink (product ververica, 2022-07-18, ROA): job instances.

Request shapes from the official SDK ``alibabacloud-ververica20220718`` (``client.py``):
every operation takes the workspace in a ``workspace`` request header and the namespace in the
path; the SDK sends the colon of ``jobs:start`` and ``{jobId}:stop`` encoded (``%3A``), and the
emulator accepts it either way.

- ``GetJob``: GET ``/api/v2/namespaces/{namespace}/jobs/{jobId}``; answers the envelope
  ``{"requestId", "success": true, "httpCode": 200, "errorCode": "", "errorMessage": "",
  "data": <Job>}``, the job camelCase: ``jobId``, ``deploymentId``, ``deploymentName``,
  ``namespace``, ``workspace``, ``executionMode``, ``engineVersion``, ``createdAt``/
  ``modifiedAt`` (epoch milliseconds, as text), ``startTime``/``endTime`` (epoch milliseconds),
  ``status``: ``{"currentJobStatus", "failure": {"reason", "message", "failedAt"}}`` (failure once
  ``FAILED``), ``running: {"observedFlinkJobStatus", "observedFlinkJobRestarts"}`` while
  ``RUNNING``.
- ``StartJobWithParams``: POST ``/api/v2/namespaces/{namespace}/jobs:start``, a JSON body
  ``JobStartParameters`` (``deploymentId`` required here; ``restoreStrategy``,
  ``resourceQueueName``, ``localVariables`` are echoed in the job; ``jobId`` is accepted and
  ignored); answers the envelope with the new job as ``data`` (``data.jobId``, a UUID). There is
  no client token: every accepted request starts a job.
- ``StopJob``: POST ``/api/v2/namespaces/{namespace}/jobs/{jobId}:stop``, a JSON body with the
  required ``stopStrategy`` (``NONE``, ``STOP_WITH_SAVEPOINT``, ``STOP_WITH_DRAIN``); answers
  the envelope with the job as ``data``. A job that has not ended reports ``CANCELLING``, then
  ``CANCELLED``, on the next polls.

States: ``STARTING``, ``RUNNING`` and ``CANCELLING`` do not end a job; any other does
(``endTime`` is set). The emulator reports whatever a script says.

Errors of the service come inside HTTP 200 answers (``success: false``, ``errorCode``,
``errorMessage``, ``httpCode``, ``data: {}``), as the SDK's response models describe them; the
gateway's own (signature, throttling, faults) keep the POP shape. The product error codes and
messages are the emulator's choice (UNVERIFIED: not shown in the public docs): unknown job
``Job.NotFound``, no ``workspace`` header ``InvalidParameter.Workspace``, a body that is not a
JSON object, a start without ``deploymentId`` or a stop without a valid ``stopStrategy``
``InvalidParameter``, stopping an ended job ``Job.StatusNotAllowed``; the failure reason of a
``FAILED`` job when the script gives none.
"""

from __future__ import annotations

import re
import uuid
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
    envelope_error,
    json_object,
)

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

NAME = "flink_job"
VERSION = "2022-07-18"
RUNNING = frozenset({"STARTING", "RUNNING", "CANCELLING"})
STOP_STRATEGIES = ("NONE", "STOP_WITH_SAVEPOINT", "STOP_WITH_DRAIN")
_COLON = r"(?::|%3[Aa])"
_JOB_PATH = re.compile(r"^/api/v2/namespaces/(?P<ns>[^/]+)/jobs/(?P<job>[^/]+)/?$")
_START_PATH = re.compile(rf"^/api/v2/namespaces/(?P<ns>[^/]+)/jobs{_COLON}start/?$")
_STOP_PATH = re.compile(rf"^/api/v2/namespaces/(?P<ns>[^/]+)/jobs/(?P<job>[^/]+?){_COLON}stop/?$")
#: fields of the StartJobWithParams body that GetJob reports back as they were sent
_ECHOED = ("deploymentId", "restoreStrategy", "resourceQueueName", "localVariables")
_DEFAULT_FAILURE = ("JobFailed", "The job failed (emulated).")


def _ms(epoch: float) -> int:
    return int(epoch * 1000)


def job_body(task: Task, index: int) -> dict[str, Any]:
    """The job instance (``data`` of GetJob, StartJobWithParams and StopJob)."""
    state = task.statuses[index]
    key = state.upper()
    options = task.options
    workspace, namespace, job_id = (task.ids[k] for k in ("workspace_id", "namespace", "job_id"))
    created = task.created_at
    status: dict[str, Any] = {"currentJobStatus": state, "healthScore": 100, "riskLevel": "LOW"}
    body: dict[str, Any] = {
        "jobId": job_id,
        "workspace": workspace,
        "namespace": namespace,
        "deploymentId": options.get("deployment_id") or "00000000-0000-0000-0000-0000000000d1",
        "deploymentName": options.get("deployment_name") or "emulated-batch",
        "executionMode": options.get("execution_mode") or "BATCH",
        "engineVersion": "vvr-8.0.9-flink-1.17",
        "creator": "emulator",
        "createdAt": str(_ms(created)),
        "modifiedAt": str(_ms(created)),
        "startTime": _ms(task.started_at or created),
        "localVariables": [],
        "status": status,
    }
    if key == "RUNNING":
        status["running"] = {"observedFlinkJobStatus": "RUNNING", "observedFlinkJobRestarts": 0}
    ended = task.is_terminal(state)
    if ended and task.finished_at is not None:
        body["endTime"] = _ms(task.finished_at)
    if key == "FAILED":
        reason = options.get("failure_reason") or _DEFAULT_FAILURE[0]
        message = options.get("failure_message") or _DEFAULT_FAILURE[1]
        failed_at = _ms(task.finished_at if task.finished_at is not None else created)
        status["failure"] = {"reason": reason, "message": message, "failedAt": failed_at}
    body.update(options.get("fields") or {})
    return body


def _ok(data: Any, call: Call) -> Reply:
    body = {
        "requestId": call.rid,
        "success": True,
        "httpCode": 200,
        "errorCode": "",
        "errorMessage": "",
        "data": data,
    }
    return Reply(200, body)


def _error(code: str, message: str, call: Call) -> Reply:
    return envelope_error(code, message, call.rid)


def _job_key(call: Call) -> tuple[str, ...] | None:
    match = call.path_match()
    workspace = call.header("workspace")
    if not match or not workspace:
        return None
    return (NAME, workspace, unquote(match["ns"]), unquote(match["job"]))


def _refusal(call: Call, key: tuple[str, ...] | None) -> Reply:
    """Why a request naming a job has no job: no workspace header, or no such job."""
    if not call.header("workspace"):
        return _error("InvalidParameter.Workspace", "The workspace header is required.", call)
    job = key[-1] if key else "?"
    return _error("Job.NotFound", f"The job {job} does not exist in this namespace.", call)


def _get(emu: Emulator, call: Call) -> Reply:
    key = _job_key(call)
    polled = emu._poll(key, call.advance)
    if polled is None:
        return _refusal(call, key)
    return _ok(job_body(*polled), call)


def _start(emu: Emulator, call: Call) -> Reply:
    match = call.path_match()
    workspace = call.header("workspace")
    if not workspace or not match:
        return _error("InvalidParameter.Workspace", "The workspace header is required.", call)
    body = json_object(call.req.body)
    if body is None:
        return _error("InvalidParameter", "The request body is not a valid JSON object.", call)
    if not isinstance(body.get("deploymentId"), str) or not body["deploymentId"]:
        return _error("InvalidParameter", "deploymentId is mandatory for this action.", call)
    job = str(uuid.uuid4())
    fields = {name: body[name] for name in _ECHOED if body.get(name) is not None}
    task = emu.add_flink_job(workspace, unquote(match["ns"]), job, emu.start_lifecycles[NAME], fields=fields)
    return _ok(job_body(task, 0), call)


def _stop(emu: Emulator, call: Call) -> Reply:
    key = _job_key(call)
    body = json_object(call.req.body)
    if body is None or body.get("stopStrategy") not in STOP_STRATEGIES:
        message = f"stopStrategy is mandatory for this action: one of {', '.join(STOP_STRATEGIES)}."
        return _error("InvalidParameter", message, call)
    with emu._lock:
        task = emu._task(key)
        if task is None or key is None:
            return _refusal(call, key)
        state = task.current
        if task.is_terminal(state):
            # UNVERIFIED: the code the service gives for stopping an ended job.
            return _error(
                "Job.StatusNotAllowed", f"The job {key[-1]} is {state} and cannot be stopped.", call
            )
        if state.upper() != "CANCELLING":
            task.statuses = (*task.history, "CANCELLING", "CANCELLED")
        index = min(task.polls, len(task.statuses) - 1)
        return _ok(job_body(task, index), call)


SERVICE = Service(
    name=NAME,
    product="ververica",
    ops=(
        Op(NAME, "GetJob", VERSION, "ROA", _get, "GET", _JOB_PATH, "status", _job_key),
        Op(NAME, "StartJobWithParams", VERSION, "ROA", _start, "POST", _START_PATH, "start"),
        Op(NAME, "StopJob", VERSION, "ROA", _stop, "POST", _STOP_PATH, "cancel", _job_key),
    ),
    id_names=("workspace_id", "namespace", "job_id"),
    adder="add_flink_job",
    running=RUNNING,
    start_lifecycle=("STARTING", "RUNNING", "FINISHED"),
)


class FlinkJobs(Store):
    """Realtime Compute for Apache Flink job instances."""

    def add_flink_job(
        self,
        workspace_id: str,
        namespace: str,
        job_id: str,
        statuses: Sequence[str] = ("RUNNING", "FINISHED"),
        *,
        execution_mode: str = "BATCH",
        deployment_id: str | None = None,
        deployment_name: str | None = None,
        failure_reason: str | None = None,
        failure_message: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> Task:
        """Script a Flink job instance (GetJob: ``workspace`` header, ``namespace`` and
        ``jobId`` in the path).

        ``failure_reason`` / ``failure_message`` are ``status.failure.reason`` / ``.message`` once
        the job is ``FAILED`` (a default otherwise). ``execution_mode`` is ``BATCH`` or
        ``STREAM``; ``fields`` adds to or overrides the job as GetJob returns it (camelCase
        keys, e.g. ``{"deploymentName": "nightly"}``).
        """
        return self._put_task(
            SERVICE,
            {"workspace_id": str(workspace_id), "namespace": str(namespace), "job_id": str(job_id)},
            statuses,
            {
                "execution_mode": execution_mode,
                "deployment_id": deployment_id,
                "deployment_name": deployment_name,
                "failure_reason": failure_reason,
                "failure_message": failure_message,
                "fields": dict(fields or {}),
            },
        )
