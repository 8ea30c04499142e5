"""DataWorks (dataworks-public, 2024-05-18, RPC): job status and one start operation.

- ``GetJobStatus`` (GET, or form POST, ``/`` with ``JobId``). Unknown job: HTTP 404
  ``InvalidJob.NotFound`` (UNVERIFIED: the public docs do not show it).
- ``ImportWorkflowDefinition`` (``ProjectId``, ``Spec``) returns ``AsyncJob.Id``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aliyun_tasks.testing._base import Call, Op, Reply, Service, Store, Task, param_key

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

NAME = "dataworks"
VERSION = "2024-05-18"


def job_status_body(task: Task, index: int, rid: str) -> dict[str, Any]:
    """GetJobStatus: ``Completed`` is the string "True"/"False"; ``CreateTime`` epoch ms."""
    status = task.statuses[index]
    create_ms = int(task.created_at * 1000)
    job: dict[str, Any] = {
        "JobId": task.ids["job_id"],
        "JobType": task.options.get("job_type", "Create"),
        "Completed": "True" if task.is_terminal(status) else "False",
        "Status": status,
        "CreateTime": str(create_ms) if task.options.get("create_time_as_string") else create_ms,
    }
    if status.upper() == "FAIL":
        job["Error"] = task.options.get("error") or "Job failed (emulated)."
    return {"RequestId": rid, "JobStatus": job}


def _missing(name: str, call: Call) -> Reply:
    return SERVICE.error(400, f"Missing{name}", f"{name} is mandatory for this action.", call.host, call.rid)


_task_key = param_key(NAME, "JobId")


def _status(emu: Emulator, call: Call) -> Reply:
    job_id = call.params.get("JobId")
    if not job_id:
        return _missing("JobId", call)
    polled = emu._poll(_task_key(call), call.advance)
    if polled is None:
        message = f"The specified job {job_id} does not exist."
        return SERVICE.error(404, "InvalidJob.NotFound", message, call.host, call.rid)
    return Reply(200, job_status_body(*polled, call.rid))


def _import_workflow(emu: Emulator, call: Call) -> Reply:
    for name in ("ProjectId", "Spec"):
        if not call.params.get(name):
            return _missing(name, call)
    job_id = str(secrets.randbelow(9 * 10**18) + 10**18)
    workflow_id = str(secrets.randbelow(9 * 10**18) + 10**18)
    emu.add_dataworks_job(job_id, emu.start_lifecycles[NAME], job_type="Create")
    task = emu._task((NAME, job_id))
    assert task is not None
    async_job = {
        "Completed": False,
        "CreateTime": int(task.created_at * 1000),
        "Id": job_id,
        "Progress": 0,
        "Response": workflow_id,
        "Status": "Running",
        "Type": "Create",
    }
    return Reply(200, {"RequestId": call.rid, "AsyncJob": async_job})


SERVICE = Service(
    name=NAME,
    product="dataworks-public",
    ops=(
        Op(NAME, "GetJobStatus", VERSION, "RPC", _status, kind="status", task_key=_task_key),
        Op(NAME, "ImportWorkflowDefinition", VERSION, "RPC", _import_workflow, kind="start"),
    ),
    id_names=("job_id",),
    adder="add_dataworks_job",
    running=frozenset({"RUNNING"}),
    start_lifecycle=("Running", "Running", "Success"),
)


class DataWorksJobs(Store):
    def add_dataworks_job(
        self,
        job_id: str,
        statuses: Sequence[str] = ("Running", "Success"),
        *,
        error: str | None = None,
        job_type: str = "Create",
        create_time_as_string: bool = False,
    ) -> None:
        """Script a DataWorks async job (GetJobStatus ``JobId``)."""
        self._put_task(
            SERVICE,
            {"job_id": str(job_id)},
            statuses,
            {"error": error, "job_type": job_type, "create_time_as_string": create_time_as_string},
        )
