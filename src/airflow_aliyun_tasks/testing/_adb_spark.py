"""AnalyticDB for MySQL Spark applications (product adb, 2021-12-01, RPC).

Request shapes from the official SDK ``alibabacloud-adb20211201`` (``client.py``, ``models/``);
every operation is ``POST /`` with a form body:

- ``GetSparkAppState``: ``AppId`` (form, required), ``DBClusterId`` (query, optional: when
  given, it must be the application's cluster); answers ``{"RequestId", "Data": {"AppId",
  "AppName", "DBClusterId", "State", "Message"}}``. ``Message`` is null unless there is an alert
  (a failure; the script's ``message``).
- ``SubmitSparkApp``: ``DBClusterId``, ``ResourceGroupName`` and ``Data`` (the application's
  JSON configuration, as text) required; ``AppType`` (``BATCH`` by default, ``SQL``,
  ``STREAMING``), ``AppName``, ``TemplateFileId``, ``AgentSource``, ``AgentVersion``. Answers
  ``{"RequestId", "Data": {"AppId", "AppName", "State", "Message"}}`` (``State`` the first of
  the lifecycle). There is no client token: every accepted request submits an application.
- ``KillSparkApp``: ``AppId`` (form), ``DBClusterId`` (query, optional); answers ``Data`` as
  ``GetSparkAppState`` does, with ``State: KILLING``. An application that has not ended reports
  ``KILLING``, then ``KILLED``, on the next polls; killing one that is ``KILLING`` again is
  accepted and changes nothing.

States: ``SUBMITTED``, ``STARTING``, ``RUNNING``, ``FAILING``, ``SUCCEEDING``, ``KILLING`` and
``UNKNOWN`` do not end an application; ``COMPLETED``, ``FAILED``, ``FATAL`` and ``KILLED`` do.
The emulator reports whatever a script says.

Errors have the POP gateway's shape. The product error codes and statuses are the emulator's
choice (UNVERIFIED: not shown in the public docs): an unknown application (or one of another
cluster) 404 ``InvalidAppId.NotFound``, killing an ended application 400
``InvalidAppState``, a missing parameter 400 ``MissingParameter``, a ``Data`` that is not a JSON
object 400 ``InvalidParameter``; application ids are ``s`` + the submission minute + 13
characters; the ``Message`` of a failed application when the script gives none.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aliyun_tasks.testing._base import Call, Op, Reply, Service, Store, Task, param_key

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

NAME = "adb_spark"
VERSION = "2021-12-01"
#: states that do not end an application (UNKNOWN: the service does not know yet)
RUNNING = frozenset({"SUBMITTED", "STARTING", "RUNNING", "FAILING", "SUCCEEDING", "KILLING", "UNKNOWN"})
_FAILED = frozenset({"FAILED", "FATAL"})
_DEFAULT_CLUSTER = "amv-emulator0000"
#: the ``Message`` of a failed application the script gives none for
FAILURE_MESSAGE = "Spark application failed (emulated): the driver exited with code 1."


def app_data(task: Task, index: int) -> dict[str, Any]:
    """The ``Data`` object of GetSparkAppState for the status at ``index``."""
    state = task.statuses[index]
    opts = task.options
    message = None
    if state.upper() in _FAILED:
        message = opts.get("message") or FAILURE_MESSAGE
    return {
        "AppId": task.ids["app_id"],
        "AppName": opts.get("app_name") or "emulated-spark-app",
        "DBClusterId": opts.get("db_cluster_id") or _DEFAULT_CLUSTER,
        "State": state,
        "Message": message,
    }


def _error(status: int, code: str, message: str, call: Call) -> Reply:
    return SERVICE.error(status, code, message, call.host, call.rid)


def _missing(name: str, call: Call) -> Reply:
    return _error(400, "MissingParameter", f"{name} is mandatory for this action.", call)


_task_key = param_key(NAME, "AppId")


def _find(emu: Emulator, call: Call) -> Task | Reply:
    """The application the call names, or the error reply."""
    app = call.params.get("AppId")
    if not app:
        return _missing("AppId", call)
    task = emu._task((NAME, app))
    cluster = call.params.get("DBClusterId")
    if task is None or (cluster and cluster != (task.options.get("db_cluster_id") or _DEFAULT_CLUSTER)):
        return _error(404, "InvalidAppId.NotFound", f"The Spark application {app} does not exist.", call)
    return task


def _get(emu: Emulator, call: Call) -> Reply:
    with emu._lock:
        found = _find(emu, call)
        if isinstance(found, Reply):
            return found
        polled = emu._poll(_task_key(call), call.advance)
    assert polled is not None
    return Reply(200, {"RequestId": call.rid, "Data": app_data(*polled)})


def _new_app_id(now: float) -> str:
    return "s" + time.strftime("%Y%m%d%H%M", time.gmtime(now)) + "emu" + secrets.token_hex(5)


def _submit(emu: Emulator, call: Call) -> Reply:
    params = call.params
    for name in ("DBClusterId", "ResourceGroupName", "Data"):
        if not params.get(name):
            return _missing(name, call)
    try:
        config = json.loads(params["Data"])
    except ValueError:
        config = None
    if not isinstance(config, dict):
        return _error(400, "InvalidParameter", "Specified parameter Data is not a valid JSON object.", call)
    app_type = params.get("AppType") or "BATCH"
    if app_type not in ("BATCH", "SQL", "STREAMING"):
        return _error(400, "InvalidParameter", "Specified parameter AppType is not valid.", call)
    app = _new_app_id(emu.now())
    config_name = config.get("name")
    app_name = params.get("AppName") or (config_name if isinstance(config_name, str) else None)
    emu.add_adb_spark_app(
        app,
        emu.start_lifecycles[NAME],
        db_cluster_id=params["DBClusterId"],
        app_name=app_name,
        app_type=app_type,
        resource_group=params["ResourceGroupName"],
    )
    first = emu.start_lifecycles[NAME][0]
    return Reply(
        200,
        {
            "RequestId": call.rid,
            "Data": {
                "AppId": app,
                "AppName": app_name or "emulated-spark-app",
                "State": first,
                "Message": None,
            },
        },
    )


def _kill(emu: Emulator, call: Call) -> Reply:
    with emu._lock:
        found = _find(emu, call)
        if isinstance(found, Reply):
            return found
        task = found
        state = task.current
        if task.is_terminal(state):
            # UNVERIFIED: the code and status the service gives for killing an ended application.
            message = f"The Spark application {task.ids['app_id']} is {state} and cannot be killed."
            return _error(400, "InvalidAppState", message, call)
        if state.upper() != "KILLING":
            task.statuses = (*task.history, "KILLING", "KILLED")
        data = {**app_data(task, 0), "State": "KILLING", "Message": None}
    return Reply(200, {"RequestId": call.rid, "Data": data})


SERVICE = Service(
    name=NAME,
    product="adb",
    ops=(
        Op(NAME, "GetSparkAppState", VERSION, "RPC", _get, kind="status", task_key=_task_key),
        Op(NAME, "SubmitSparkApp", VERSION, "RPC", _submit, kind="start"),
        Op(NAME, "KillSparkApp", VERSION, "RPC", _kill, kind="cancel", task_key=_task_key),
    ),
    id_names=("app_id",),
    adder="add_adb_spark_app",
    running=RUNNING,
    start_lifecycle=("SUBMITTED", "STARTING", "RUNNING", "COMPLETED"),
)


class AdbSparkApps(Store):
    """AnalyticDB for MySQL Spark applications."""

    def add_adb_spark_app(
        self,
        app_id: str,
        statuses: Sequence[str] = ("RUNNING", "COMPLETED"),
        *,
        message: str | None = None,
        db_cluster_id: str | None = None,
        app_name: str | None = None,
        app_type: str | None = None,
        resource_group: str | None = None,
    ) -> None:
        """Script an AnalyticDB Spark application (GetSparkAppState ``AppId``).

        ``message`` is the ``Message`` of a ``FAILED`` or ``FATAL`` state (a default one
        otherwise; other states report none). ``db_cluster_id`` is the application's cluster
        (``Data.DBClusterId``; a request naming another cluster does not find it).
        """
        self._put_task(
            SERVICE,
            {"app_id": str(app_id)},
            statuses,
            {
                "message": message,
                "db_cluster_id": db_cluster_id,
                "app_name": app_name,
                "app_type": app_type,
                "resource_group": resource_group,
            },
        )
