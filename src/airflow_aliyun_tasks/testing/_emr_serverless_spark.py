"""EMR Serverless Spark (product emr-serverless-spark, 2023-08-08, ROA): job runs.

Request shapes from the official SDK ``alibabacloud-emr-serverless-spark20230808`` (``client.py``);
every operation also takes ``regionId`` in the query (optional, accepted and not checked):

- ``GetJobRun``: GET ``/api/v1/workspaces/{workspaceId}/jobRuns/{jobRunId}``; answers
  ``{"requestId", "jobRun": {...}}`` with the fields of ``GetJobRunResponseBodyJobRun``
  (``jobRunId``, ``workspaceId``, ``name``, ``state``, ``stateChangeReason{code, message}``,
  ``submitTime``, ``endTime`` (epoch ms), ``codeType``, ``webUI``, ``resourceQueueId``, ``log``...).
- ``StartJobRun``: POST ``/api/v1/workspaces/{workspaceId}/jobRuns``, a JSON body (``name``,
  ``codeType``, ``jobDriver``, ``resourceQueueId``, ``clientToken``...); answers
  ``{"requestId", "jobRunId"}``. A ``clientToken`` already seen in that workspace returns the
  run it started, and starts nothing.
- ``CancelJobRun``: DELETE ``/api/v1/workspaces/{workspaceId}/jobRuns/{jobRunId}``; answers
  ``{"requestId", "jobRunId"}``. A run that has not ended reports ``Cancelling``, then
  ``Cancelled`` on the next polls.

States: ``Submitted``, ``Pending``, ``Running`` and ``Cancelling`` do not end a run;
``Success``, ``Failed`` and ``Cancelled`` do. The emulator reports whatever a script says, and
also treats ``Queued``, ``Scheduled``, ``Starting`` and ``Stopping`` as not ended; any other
state ends the run (``endTime`` is set).

Errors have the POP gateway's shape. The product error codes and statuses are the emulator's
choice (UNVERIFIED: not shown in the public docs): unknown job run 404 ``InvalidJobRun.NotFound``,
cancelling an ended run 400 ``InvalidJobRunState``, a body that is not a JSON object 400
``InvalidParameter``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from airflow_aliyun_tasks.testing._base import Call, Op, Reply, Service, Store, Task, json_object

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

NAME = "emr_serverless_spark"
VERSION = "2023-08-08"
RUNNING = frozenset(
    {"SUBMITTED", "PENDING", "QUEUED", "SCHEDULED", "STARTING", "RUNNING", "CANCELLING", "STOPPING"}
)
_RUNS_PATH = re.compile(r"^/api/v1/workspaces/(?P<workspace>[^/]+)/jobRuns/?$")
_RUN_PATH = re.compile(r"^/api/v1/workspaces/(?P<workspace>[^/]+)/jobRuns/(?P<run>[^/]+)/?$")
#: fields of the StartJobRun body that GetJobRun reports back as they were sent
_ECHOED = (
    "name",
    "codeType",
    "jobDriver",
    "configurationOverrides",
    "tags",
    "releaseVersion",
    "displayReleaseVersion",
    "fusion",
    "executionTimeoutSeconds",
    "resourceQueueId",
)


def job_run_body(task: Task, index: int, account_id: str) -> dict[str, Any]:
    """The ``jobRun`` object of GetJobRun (camelCase; times in epoch milliseconds)."""
    state = task.statuses[index]
    workspace, run = task.ids["workspace_id"], task.ids["job_run_id"]
    log_dir = f"oss://emulator-bucket/{workspace}/{run}/driver"
    body: dict[str, Any] = {
        "jobRunId": run,
        "workspaceId": workspace,
        "name": "emulated-job-run",
        "state": state,
        "submitTime": int(task.created_at * 1000),
        "codeType": "JAR",
        "resourceQueueId": "root_queue",
        "releaseVersion": "esr-3.3.1",
        "resourceOwnerId": account_id,
        "fusion": False,
        "webUI": f"http://spark-ui.emulator.invalid/{workspace}/{run}",
        "log": {
            "driverStartup": f"{log_dir}/startup",
            "driverStdError": f"{log_dir}/stderr",
            "driverStdOut": f"{log_dir}/stdout",
            "driverSyslog": f"{log_dir}/syslog",
        },
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": "oss://emulator-bucket/jobs/spark-examples.jar",
                "entryPointArguments": [],
                "sparkSubmitParameters": "--class org.apache.spark.examples.SparkPi",
            }
        },
        "configurationOverrides": {"configurations": []},
        "tags": [],
    }
    body.update(task.options.get("fields") or {})
    if task.is_terminal(state):
        if task.finished_at is not None:
            body["endTime"] = int(task.finished_at * 1000)
        code, message = task.options.get("reason_code"), task.options.get("reason_message")
        if (code, message) == (None, None) and state.upper() == "FAILED":
            code, message = "ERR-100000", "Job run failed (emulated)."
        if (code, message) != (None, None):
            body["stateChangeReason"] = {"code": code or "", "message": message or ""}
    return body


def _error(status: int, code: str, message: str, call: Call) -> Reply:
    return SERVICE.error(status, code, message, call.host, call.rid)


def _run_key(call: Call) -> tuple[str, ...] | None:
    match = call.path_match()
    return (NAME, unquote(match["workspace"]), unquote(match["run"])) if match else None


def _not_found(key: tuple[str, ...] | None, call: Call) -> Reply:
    assert key is not None
    message = f"The job run {key[2]} does not exist in workspace {key[1]}."
    return _error(404, "InvalidJobRun.NotFound", message, call)


def _get(emu: Emulator, call: Call) -> Reply:
    key = _run_key(call)
    polled = emu._poll(key, call.advance)
    if polled is None:
        return _not_found(key, call)
    return Reply(200, {"requestId": call.rid, "jobRun": job_run_body(*polled, emu.account_id)})


def _start(emu: Emulator, call: Call) -> Reply:
    match = call.path_match()
    assert match is not None
    workspace = unquote(match["workspace"])
    body = json_object(call.req.body)
    if body is None:
        return _error(400, "InvalidParameter", "The request body is not a valid JSON object.", call)
    token = body.get("clientToken")
    with emu._lock:
        run = emu._emr_client_tokens.get((workspace, str(token))) if token else None
        if run is None:
            run = "jr-" + secrets.token_hex(8)
            fields = {name: body[name] for name in _ECHOED if body.get(name) is not None}
            emu.add_emr_serverless_spark_job_run(workspace, run, emu.start_lifecycles[NAME], fields=fields)
            if token:
                emu._emr_client_tokens[(workspace, str(token))] = run
    return Reply(200, {"requestId": call.rid, "jobRunId": run})


def _cancel(emu: Emulator, call: Call) -> Reply:
    key = _run_key(call)
    with emu._lock:
        task = emu._task(key)
        if task is None:
            return _not_found(key, call)
        state = task.current
        if task.is_terminal(state):
            # UNVERIFIED: the code and status the service gives for cancelling an ended run.
            message = f"The job run {task.ids['job_run_id']} is {state} and cannot be cancelled."
            return _error(400, "InvalidJobRunState", message, call)
        if state.upper() != "CANCELLING":
            task.statuses = (*task.history, "Cancelling", "Cancelled")
    return Reply(200, {"requestId": call.rid, "jobRunId": task.ids["job_run_id"]})


SERVICE = Service(
    name=NAME,
    product="emr-serverless-spark",
    ops=(
        Op(NAME, "GetJobRun", VERSION, "ROA", _get, "GET", _RUN_PATH, "status", _run_key),
        Op(NAME, "StartJobRun", VERSION, "ROA", _start, "POST", _RUNS_PATH, "start"),
        Op(NAME, "CancelJobRun", VERSION, "ROA", _cancel, "DELETE", _RUN_PATH, "cancel", _run_key),
    ),
    id_names=("workspace_id", "job_run_id"),
    adder="add_emr_serverless_spark_job_run",
    statuses_arg="states",
    running=RUNNING,
    start_lifecycle=("Submitted", "Running", "Success"),
    ignored_ids=frozenset({"region_id"}),
)


class EmrServerlessSparkJobRuns(Store):
    """EMR Serverless Spark job runs, and the client tokens of the runs StartJobRun created."""

    _emr_client_tokens: dict[tuple[str, str], str]  # (workspace, clientToken) -> jobRunId

    def _reset_state(self) -> None:
        super()._reset_state()
        self._emr_client_tokens = {}

    def add_emr_serverless_spark_job_run(
        self,
        workspace_id: str,
        job_run_id: str,
        states: Sequence[str] = ("Running", "Success"),
        *,
        state_change_reason_code: str | None = None,
        state_change_reason_message: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        """Script an EMR Serverless Spark job run (GetJobRun ``workspaceId``/``jobRunId``).

        ``state_change_reason_*`` fill ``stateChangeReason`` once the run has ended (a ``Failed``
        run without them gets a generic reason). ``fields`` adds to or overrides the ``jobRun``
        object as GetJobRun returns it (camelCase keys, e.g. ``{"name": "etl", "codeType": "SQL"}``).
        """
        self._put_task(
            SERVICE,
            {"workspace_id": str(workspace_id), "job_run_id": str(job_run_id)},
            states,
            {
                "reason_code": state_change_reason_code,
                "reason_message": state_change_reason_message,
                "fields": dict(fields or {}),
            },
        )
