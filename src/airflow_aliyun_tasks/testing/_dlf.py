"""DLF (Data Lake Formation 1.0, product DataLake, 2020-07-10, ROA): async task status and one start.

- ``GetAsyncTaskStatus``: GET ``/api/metastore/catalogs/tasks`` with ``TaskId`` and ``CatalogId``.
  Product errors come inside an HTTP 200 body with ``Success: false`` (unknown task: ``NoSuchObject``).
- ``DeleteDatabase`` (DELETE ``/api/metastore/catalogs/databases``): with ``Async=true`` it
  returns the ``TaskId`` of the deletion.
- ``BatchUpdateTables``, ``DeleteCatalog``, ``RenameTable``, ``UpdateTable``: each returns the
  ``TaskId`` of an async task (the request body is not checked).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aliyun_tasks.testing._base import Call, Op, Reply, Service, Store, Task, param_key, truthy

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

NAME = "dlf"
VERSION = "2020-07-10"
_RUNNING = frozenset({"RUNNING", "NOTSTARTED", "EXECUTING", "PENDING"})


def task_status_body(task: Task, index: int, rid: str) -> dict[str, Any]:
    """GetAsyncTaskStatus: PascalCase, the status under ``TaskStatus``."""
    return {
        "Code": "OK",
        "Message": "success",
        "RequestId": rid,
        "Success": True,
        "TaskStatus": {"Status": task.statuses[index], "Message": task.options.get("message", "successful")},
    }


def _body_error(code: str, message: str, rid: str) -> Reply:
    # DLF reports product errors inside an HTTP 200 body with Success=false.
    body = {"Code": code, "Message": message, "RequestId": rid, "Success": False}
    return Reply(200, body, accepted=False)


_task_key = param_key(NAME, "TaskId")


def _status(emu: Emulator, call: Call) -> Reply:
    task_id = call.params.get("TaskId")
    if not task_id:
        return _body_error("InvalidParameter", "TaskId is required.", call.rid)
    task = emu._task(_task_key(call))
    catalog = task.options.get("catalog_id") if task else None
    asked = call.params.get("CatalogId")
    if task is None or (catalog and asked and asked != catalog):
        return _body_error("NoSuchObject", f"Task {task_id} does not exist.", call.rid)
    polled = emu._poll(_task_key(call), call.advance)
    assert polled is not None
    return Reply(200, task_status_body(*polled, call.rid))


def _delete_database(emu: Emulator, call: Call) -> Reply:
    if not call.params.get("Name"):
        return _body_error("InvalidParameter", "Name is required.", call.rid)
    body: dict[str, Any] = {"Code": "OK", "Message": ".", "RequestId": call.rid, "Success": True}
    if truthy(call.params.get("Async", "false")):
        task_id = uuid.uuid4().hex
        emu.add_dlf_task(
            task_id, emu.start_lifecycles[NAME], catalog_id=call.params.get("CatalogId") or emu.account_id
        )
        body["TaskId"] = task_id
    return Reply(200, body)


def _metastore_task(emu: Emulator, call: Call) -> Reply:
    """BatchUpdateTables, DeleteCatalog, RenameTable, UpdateTable: the change runs as an async
    task whose ``TaskId`` the answer carries (UNVERIFIED: whether each always answers one)."""
    task_id = uuid.uuid4().hex
    emu.add_dlf_task(
        task_id, emu.start_lifecycles[NAME], catalog_id=call.params.get("CatalogId") or emu.account_id
    )
    return Reply(
        200, {"Code": "OK", "Message": ".", "RequestId": call.rid, "Success": True, "TaskId": task_id}
    )


_METASTORE_OPS = (
    ("BatchUpdateTables", "POST", "/api/metastore/catalogs/databases/tables/batchupdate"),
    ("DeleteCatalog", "DELETE", "/api/metastore/catalogs"),
    ("RenameTable", "PUT", "/api/metastore/catalogs/databases/tables/rename"),
    ("UpdateTable", "PUT", "/api/metastore/catalogs/databases/tables"),
)

SERVICE = Service(
    name=NAME,
    product="DataLake",
    ops=(
        Op(
            NAME,
            "GetAsyncTaskStatus",
            VERSION,
            "ROA",
            _status,
            "GET",
            "/api/metastore/catalogs/tasks",
            kind="status",
            task_key=_task_key,
        ),
        Op(
            NAME,
            "DeleteDatabase",
            VERSION,
            "ROA",
            _delete_database,
            "DELETE",
            "/api/metastore/catalogs/databases",
            kind="start",
        ),
        *(
            Op(NAME, action, VERSION, "ROA", _metastore_task, method, path, kind="start")
            for action, method, path in _METASTORE_OPS
        ),
    ),
    id_names=("task_id",),
    adder="add_dlf_task",
    running=_RUNNING,
    start_lifecycle=("Running", "Running", "Success"),
    id_aliases={"async_task_id": "task_id"},
    ignored_ids=frozenset({"catalog_id"}),
)


class DlfTasks(Store):
    def add_dlf_task(
        self,
        task_id: str,
        statuses: Sequence[str] = ("Running", "Success"),
        *,
        catalog_id: str | None = None,
        message: str = "successful",
    ) -> None:
        """Script a DLF async task (GetAsyncTaskStatus ``TaskId``; ``CatalogId`` checked when given)."""
        self._put_task(
            SERVICE, {"task_id": str(task_id)}, statuses, {"catalog_id": catalog_id, "message": message}
        )
