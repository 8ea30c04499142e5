"""DataWorks workflow instances (dataworks-public, 2024-05-18, RPC): status, two starts, the
second call of the two-phase start, and a batch stop with per-instance results.

Shapes from the official SDK ``alibabacloud-dataworks-public20240518`` (``client.py``,
``models/``); every operation is RPC on ``/``, its body a form:

- ``GetWorkflowInstance`` (GET, ``Id`` an integer in the query): ``{"RequestId",
  "WorkflowInstance": {"Id", "Status", "Type", "Name", "ProjectId", "EnvType", "WorkflowId",
  "BizDate", "StartedTime", "FinishedTime", "CreateTime", "ModifyTime", "CreateUser",
  "ModifyUser", "Owner", "WorkflowParameters", "Tags", "UnifiedWorkflowInstanceId",
  "WorkflowTaskInstanceId"}}``; times in epoch milliseconds, ``StartedTime`` once it left
  ``NotRun``/``WaitTime``, ``FinishedTime`` once it ended.
- ``ExecuteAdhocWorkflowInstance`` (``Name``, ``Owner``, ``ProjectId``, ``Tasks`` a JSON array,
  required) answers ``{"RequestId", "WorkflowInstanceId"}``: one instance, of type ``Manual``.
- ``CreateWorkflowInstances`` (``Name``, ``ProjectId``, ``Type``, ``WorkflowId`` and ``Periods``,
  a JSON object with ``BizDates: [{StartBizDate, EndBizDate}]``, required) answers
  ``{"RequestId", "OperationId"}``; ``GetCreateWorkflowInstancesResult`` (GET, ``OperationId``
  in the query) then answers ``{"RequestId", "Result": {"Status", ...}}``, one scripted status per
  poll (``Creating``, then ``Created`` by default; see ``set_dataworks_create_result``). On
  ``Created`` the instances exist: one per business date of the periods (each day from
  ``StartBizDate`` to ``EndBizDate``, at most 31 per range), in ``Result.WorkflowInstanceIds``
  (with ``UnifiedWorkflowInstanceIds`` and ``WorkflowTaskInstanceIds``); on ``CreateFailure``,
  ``Result.FailureMessage``.
- ``StopWorkflowInstances`` (``Ids`` a JSON array of integers): HTTP 200 with
  ``SuccessInfo.<id>: {"Success", "Message"}`` for each id. A running instance is stopped: its
  next polls report ``Failure`` (DataWorks has no cancelled state); an unknown one gives
  ``Success: false`` "The instance does not exist." (the reference's example), an ended one
  ``Success: false`` (the emulator's choice). Each id is counted as a cancel of its instance.

Errors have the POP gateway's shape. The emulator's choices (UNVERIFIED: the public docs do not
show them): unknown workflow instance 404 ``WorkflowInstance.NotFound``, unknown operation 404
``Operation.NotFound``, a missing or malformed parameter 400 ``MissingParameter`` /
``InvalidParameter``; instance ids are integers of 13 digits.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from airflow_aliyun_tasks.testing._base import (
    Call,
    Op,
    Reply,
    Service,
    Store,
    Task,
    list_param_keys,
    param_key,
)

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

NAME = "dataworks_workflow"
VERSION = "2024-05-18"
#: statuses that do not end an instance (the SDK's model: NotRun, WaitTime, CheckingCondition,
#: WaitResource, Running, Checking); Success and Failure end it
RUNNING = frozenset({"NOTRUN", "WAITTIME", "CHECKINGCONDITION", "WAITRESOURCE", "RUNNING", "CHECKING"})
_NOT_STARTED = frozenset({"NOTRUN", "WAITTIME"})
_MAX_DAYS = 31


def _new_id() -> int:
    return secrets.randbelow(9 * 10**12) + 10**12


def _int(value: Any, default: int) -> int:
    return int(value) if value is not None and str(value).isdigit() else default


def instance_body(task: Task, index: int) -> dict[str, Any]:
    """The ``WorkflowInstance`` object of GetWorkflowInstance."""
    status = task.statuses[index]
    opts = task.options
    created_ms = int(task.created_at * 1000)
    body: dict[str, Any] = {
        "Id": int(task.ids["workflow_instance_id"]),
        "Status": status,
        "Type": opts.get("type") or "Manual",
        "Name": opts.get("name") or "emulated-workflow",
        "ProjectId": _int(opts.get("project_id"), 10000),
        "EnvType": opts.get("env_type") or "Prod",
        "WorkflowId": _int(opts.get("workflow_id"), 1),
        "BizDate": _int(opts.get("biz_date"), created_ms - 86_400_000),
        "CreateTime": created_ms,
        "ModifyTime": created_ms,
        "CreateUser": opts.get("owner") or "1234567890123456",
        "ModifyUser": opts.get("owner") or "1234567890123456",
        "Owner": opts.get("owner") or "1234567890123456",
        "WorkflowParameters": opts.get("workflow_parameters") or "",
        "Tags": [],
        "UnifiedWorkflowInstanceId": _int(opts.get("unified_id"), int(task.ids["workflow_instance_id"])),
        "WorkflowTaskInstanceId": int(task.ids["workflow_instance_id"]) + 1,
    }
    if status.upper() not in _NOT_STARTED and task.started_at is not None:
        body["StartedTime"] = int(task.started_at * 1000)
    if task.is_terminal(status) and task.finished_at is not None:
        body["FinishedTime"] = int(task.finished_at * 1000)
    return body


def _error(status: int, code: str, message: str, call: Call) -> Reply:
    return SERVICE.error(status, code, message, call.host, call.rid)


def _missing(name: str, call: Call) -> Reply:
    return _error(400, "MissingParameter", f"{name} is mandatory for this action.", call)


def _invalid(name: str, call: Call) -> Reply:
    return _error(400, "InvalidParameter", f"Specified parameter {name} is not valid.", call)


_task_key = param_key(NAME, "Id")


def _get(emu: Emulator, call: Call) -> Reply:
    instance = call.params.get("Id")
    if not instance:
        return _missing("Id", call)
    if not instance.isdigit():
        return _invalid("Id", call)
    polled = emu._poll(_task_key(call), call.advance)
    if polled is None:
        return _error(
            404, "WorkflowInstance.NotFound", f"The workflow instance {instance} does not exist.", call
        )
    return Reply(200, {"RequestId": call.rid, "WorkflowInstance": instance_body(*polled)})


def _options(call: Call, **extra: Any) -> dict[str, Any]:
    params = call.params
    return {
        "name": params.get("Name"),
        "project_id": params.get("ProjectId"),
        "owner": params.get("Owner"),
        "env_type": params.get("EnvType"),
        "workflow_parameters": params.get("WorkflowParameters"),
        **extra,
    }


def _execute_adhoc(emu: Emulator, call: Call) -> Reply:
    for name in ("Name", "Owner", "ProjectId", "Tasks"):
        if not call.params.get(name):
            return _missing(name, call)
    if not call.params["ProjectId"].isdigit() or not call.json_list("Tasks"):
        return _invalid("ProjectId" if not call.params["ProjectId"].isdigit() else "Tasks", call)
    instance = _new_id()
    emu.add_dataworks_workflow_instance(
        instance,
        emu.start_lifecycles[NAME],
        **_options(call, instance_type="Manual", biz_date=call.params.get("BizDate")),
    )
    return Reply(200, {"RequestId": call.rid, "WorkflowInstanceId": instance})


def _biz_dates(periods: Any) -> list[date] | None:
    """Every business date of ``Periods.BizDates`` (``[{StartBizDate, EndBizDate}]``), or None."""
    if (
        not isinstance(periods, dict)
        or not isinstance(periods.get("BizDates"), list)
        or not periods["BizDates"]
    ):
        return None
    days: list[date] = []
    for item in periods["BizDates"][:7]:
        try:
            start = date.fromisoformat(str(item["StartBizDate"]))
            end = date.fromisoformat(str(item.get("EndBizDate") or item["StartBizDate"]))
        except (KeyError, TypeError, ValueError):
            return None
        days += [start + timedelta(days=n) for n in range(min((end - start).days + 1, _MAX_DAYS))]
    return days or None


def _create(emu: Emulator, call: Call) -> Reply:
    for name in ("Name", "ProjectId", "Type", "WorkflowId", "Periods"):
        if not call.params.get(name):
            return _missing(name, call)
    for name in ("ProjectId", "WorkflowId"):
        if not call.params[name].isdigit():
            return _invalid(name, call)
    try:
        days = _biz_dates(json.loads(call.params["Periods"]))
    except ValueError:
        days = None
    if days is None:
        return _invalid("Periods", call)
    operation = str(uuid.uuid4())
    with emu._lock:
        emu._dw_operations[operation] = {
            "statuses": tuple(emu.dataworks_create_statuses),
            "failure_message": emu.dataworks_create_failure,
            "polls": 0,
            "days": days,
            "options": _options(
                call, instance_type=call.params["Type"], workflow_id=call.params["WorkflowId"]
            ),
            "ids": None,
        }
    return Reply(200, {"RequestId": call.rid, "OperationId": operation})


def _create_result(emu: Emulator, call: Call) -> Reply:
    operation_id = call.params.get("OperationId")
    if not operation_id:
        return _missing("OperationId", call)
    with emu._lock:
        operation = emu._dw_operations.get(operation_id)
        if operation is None:
            return _error(404, "Operation.NotFound", f"The operation {operation_id} does not exist.", call)
        statuses = operation["statuses"]
        status = statuses[min(operation["polls"], len(statuses) - 1)]
        if call.advance:
            operation["polls"] += 1
        result: dict[str, Any] = {"Status": status}
        if status == "Created":
            if operation["ids"] is None:
                created = [_new_id() for _ in operation["days"]]
                operation["ids"] = created
                unified = _new_id()
                for instance, day in zip(created, operation["days"], strict=True):
                    biz_date = (day - date(1970, 1, 1)).days * 86_400_000
                    emu.add_dataworks_workflow_instance(
                        instance,
                        emu.start_lifecycles[NAME],
                        **{**operation["options"], "biz_date": biz_date, "unified_id": unified},
                    )
            result["WorkflowInstanceIds"] = list(operation["ids"])
            result["UnifiedWorkflowInstanceIds"] = [
                emu._tasks[(NAME, str(i))].options["unified_id"] for i in operation["ids"]
            ]
            result["WorkflowTaskInstanceIds"] = [i + 1 for i in operation["ids"]]
        elif status == "CreateFailure":
            result["FailureMessage"] = (
                operation["failure_message"] or "Failed to create the workflow instances."
            )
    return Reply(200, {"RequestId": call.rid, "Result": result})


def _stop(emu: Emulator, call: Call) -> Reply:
    if not call.params.get("Ids"):
        return _missing("Ids", call)
    ids = call.json_list("Ids")
    if not ids or any(
        isinstance(i, bool) or not isinstance(i, int | str) or not str(i).isdigit() for i in ids
    ):
        return _invalid("Ids", call)
    info: dict[str, dict[str, Any]] = {}
    stopped: set[tuple[str, ...]] = set()
    with emu._lock:
        for instance in map(str, ids):
            task = emu._task((NAME, instance))
            if task is None:
                info[instance] = {"Success": False, "Message": "The instance does not exist."}
            elif task.is_terminal(task.current):
                info[instance] = {
                    "Success": False,
                    "Message": f"The instance is {task.current} and cannot be stopped.",
                }
            else:
                task.statuses = (*task.history, "Failure")
                info[instance] = {"Success": True, "Message": ""}
                stopped.add((NAME, instance))
    reply = Reply(200, {"RequestId": call.rid, "SuccessInfo": info}, accepted=bool(stopped))
    reply.accepted_tasks = frozenset(stopped)
    return reply


SERVICE = Service(
    name=NAME,
    product="dataworks-public",
    ops=(
        Op(NAME, "GetWorkflowInstance", VERSION, "RPC", _get, kind="status", task_key=_task_key),
        Op(NAME, "ExecuteAdhocWorkflowInstance", VERSION, "RPC", _execute_adhoc, kind="start"),
        Op(NAME, "CreateWorkflowInstances", VERSION, "RPC", _create, kind="start"),
        Op(NAME, "GetCreateWorkflowInstancesResult", VERSION, "RPC", _create_result),
        Op(
            NAME,
            "StopWorkflowInstances",
            VERSION,
            "RPC",
            _stop,
            kind="cancel",
            task_keys=list_param_keys(NAME, "Ids"),
        ),
    ),
    id_names=("workflow_instance_id",),
    adder="add_dataworks_workflow_instance",
    running=RUNNING,
    start_lifecycle=("NotRun", "Running", "Success"),
)


class DataWorksWorkflowInstances(Store):
    """DataWorks workflow instances, and the operations of ``CreateWorkflowInstances``."""

    #: statuses of the next ``CreateWorkflowInstances`` operations, one per poll of
    #: ``GetCreateWorkflowInstancesResult`` (the last sticks)
    dataworks_create_statuses: tuple[str, ...]
    #: the ``FailureMessage`` of an operation that ends ``CreateFailure``
    dataworks_create_failure: str | None
    _dw_operations: dict[str, dict[str, Any]]  # OperationId -> its script and progress

    def _reset_state(self) -> None:
        super()._reset_state()
        self._dw_operations = {}
        self.dataworks_create_statuses = ("Creating", "Created")
        self.dataworks_create_failure = None

    def set_dataworks_create_result(
        self, statuses: Sequence[str], failure_message: str | None = None
    ) -> None:
        """What the next ``CreateWorkflowInstances`` operations report to
        ``GetCreateWorkflowInstancesResult``, one status per poll: ``Creating``, ``Created`` or
        ``CreateFailure`` (with ``failure_message``)."""
        if isinstance(statuses, str) or not statuses:
            raise ValueError("statuses must be a non-empty sequence of Creating, Created, CreateFailure")
        unknown = sorted(set(statuses) - {"Creating", "Created", "CreateFailure"})
        if unknown:
            raise ValueError(f"unknown creation status {unknown[0]!r}")
        with self._lock:
            self.dataworks_create_statuses = tuple(statuses)
            self.dataworks_create_failure = failure_message

    def add_dataworks_workflow_instance(
        self,
        workflow_instance_id: int | str,
        statuses: Sequence[str] = ("Running", "Success"),
        *,
        name: str | None = None,
        project_id: int | str | None = None,
        instance_type: str | None = None,
        owner: str | None = None,
        env_type: str | None = None,
        workflow_id: int | str | None = None,
        biz_date: int | str | None = None,
        workflow_parameters: str | None = None,
        unified_id: int | None = None,
    ) -> None:
        """Script a DataWorks workflow instance (GetWorkflowInstance ``Id``, an integer)."""
        if not str(workflow_instance_id).isdigit():
            raise ValueError("workflow_instance_id must be an integer")
        self._put_task(
            SERVICE,
            {"workflow_instance_id": str(int(workflow_instance_id))},
            statuses,
            {
                "name": name,
                "project_id": project_id,
                "type": instance_type,
                "owner": owner,
                "env_type": env_type,
                "workflow_id": workflow_id,
                "biz_date": biz_date,
                "workflow_parameters": workflow_parameters,
                "unified_id": unified_id,
            },
        )
