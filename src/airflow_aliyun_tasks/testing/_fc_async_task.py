"""Function Compute 3.0 (product fc, 2023-03-30, ROA): asynchronous invocations (async tasks).

Request shapes from the official SDK ``alibabacloud-fc20230330`` (``client.py``):

- ``GetAsyncTask``: GET ``/2023-03-30/functions/{functionName}/async-tasks/{taskId}``
  (``qualifier`` in the query, optional); answers the ``AsyncTask`` at the top level of the
  body, camelCase: ``taskId``, ``status``, ``functionArn``, ``qualifier``, ``requestId`` (the
  invocation's), ``startedTime`` / ``endTime`` (epoch milliseconds), ``durationMs``,
  ``alreadyRetriedTimes``, ``destinationStatus`` (the final state, once there is one),
  ``events`` (``eventId``, ``status``, ``timestamp``, ``eventDetail``), ``taskErrorMessage``
  (a failed task), ``taskPayload`` (the event), ``returnPayload`` (when scripted).
- ``InvokeFunction``: POST ``/2023-03-30/functions/{functionName}/invocations``, the event as the
  raw body, ``x-fc-invocation-type: Async`` and an optional ``x-fc-async-task-id`` (the
  caller's: a letter or ``_`` first, then letters, digits, ``_`` and ``-``, at most 128; without
  one the emulator makes one). Answers 202 with no body. A task id the function already has is
  refused with 409 (Function Compute's "task deduplication": "rejected, and an error 409 is
  returned"); the task is not invoked again. An invocation without ``x-fc-invocation-type:
  Async`` (a synchronous one) answers 200 with the event as the function's output: the
  emulator's functions echo.
- ``StopAsyncTask``: PUT ``.../async-tasks/{taskId}/stop`` (``qualifier`` in the query), no
  body; answers 200 with no body. A task that has not ended reports ``Stopping``, then
  ``Stopped``.

States: ``Enqueued``, ``Dequeued``, ``Running``, ``Retrying`` and ``Stopping`` do not end a
task; ``Succeeded``, ``Failed``, ``Stopped``, ``Expired`` and ``Invalid`` do. The emulator
reports whatever a script says.

Errors are answered in the shape ``{"Code", "Message", "RequestId"}`` with the request id in the
``x-fc-request-id`` header. The product error codes are the emulator's choice (UNVERIFIED: the
public docs give the 409 of a duplicate task id, not its code): unknown task 404
``AsyncTaskNotFound``, duplicate task id 409 ``AsyncTaskAlreadyExists``, a task id of the wrong
form 400 ``InvalidArgument``, stopping an ended task 400 ``InvalidArgument``, a ``StopAsyncTask``
request with a body 400 ``InvalidArgument``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from airflow_aliyun_tasks.testing._base import Call, Op, Reply, Service, Store, Task

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

NAME = "fc_async_task"
VERSION = "2023-03-30"
RUNNING = frozenset({"ENQUEUED", "DEQUEUED", "RUNNING", "RETRYING", "STOPPING"})
_PREFIX = r"^/2023-03-30/functions/(?P<fn>[^/]+)"
_TASK_PATH = re.compile(_PREFIX + r"/async-tasks/(?P<task>[^/]+)/?$")
_STOP_PATH = re.compile(_PREFIX + r"/async-tasks/(?P<task>[^/]+)/stop/?$")
_INVOKE_PATH = re.compile(_PREFIX + r"/invocations/?$")
#: what ``InvokeFunctionHeaders`` says a task id may be
_TASK_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")
#: states of a task the function has not run (yet, or ever): no ``startedTime``
_NOT_RUN = frozenset({"ENQUEUED", "DEQUEUED", "EXPIRED", "INVALID"})
#: ``taskErrorMessage`` of a failed task the script gives no message for
_DEFAULT_ERROR = "UnhandledInvocationError"


def _ms(epoch: float) -> int:
    return int(epoch * 1000)


def task_body(task: Task, index: int, account_id: str, region: str, now: float) -> dict[str, Any]:
    """GetAsyncTask's body: the task, at the top level (``now``: the emulator's clock)."""
    state = task.statuses[index]
    ended = task.is_terminal(state)
    fn = task.ids["function_name"]
    qualifier = task.options.get("qualifier") or "LATEST"
    created = task.created_at
    # The states the task went through, each once in a row, the current one last.
    trail: list[str] = []
    for status in (*task.history, state):
        if not trail or trail[-1] != status:
            trail.append(status)
    body: dict[str, Any] = {
        "taskId": task.ids["async_task_id"],
        "status": state,
        "functionArn": f"acs:fc:{region}:{account_id}:functions/{fn}",
        "qualifier": qualifier,
        "requestId": task.options.get("invocation_request_id") or "",
        "alreadyRetriedTimes": sum(1 for seen in trail if seen.upper() == "RETRYING"),
    }
    if any(seen.upper() not in _NOT_RUN for seen in trail):
        started = task.started_at if task.started_at is not None else created
        body["startedTime"] = _ms(started)
        end = task.finished_at if ended and task.finished_at is not None else None
        if end is not None:
            body["endTime"] = _ms(end)
            body["durationMs"] = max(0, _ms(end) - _ms(started))
    if ended:
        body["destinationStatus"] = state
    body["events"] = [
        {"eventId": i + 1, "status": status, "timestamp": _ms(created if i == 0 else now), "eventDetail": ""}
        for i, status in enumerate(trail)
    ]
    if ended and state.upper() == "FAILED":
        body["taskErrorMessage"] = task.options.get("error_message") or _DEFAULT_ERROR
    elif ended and task.options.get("error_message") and state.upper() != "SUCCEEDED":
        body["taskErrorMessage"] = task.options["error_message"]
    payload = task.options.get("payload")
    if payload is not None:
        body["taskPayload"] = payload
    if ended and state.upper() == "SUCCEEDED" and task.options.get("return_payload") is not None:
        body["returnPayload"] = task.options["return_payload"]
    body.update(task.options.get("fields") or {})
    return body


def error(status: int, code: str, message: str, host: str, rid: str) -> Reply:
    """Function Compute's error shape: ``Code``, ``Message``, ``RequestId``."""
    return Reply(status, {"Code": code, "Message": message, "RequestId": rid})


def _error(status: int, code: str, message: str, call: Call) -> Reply:
    return SERVICE.error(status, code, message, call.host, call.rid)


def _task_key(call: Call) -> tuple[str, ...] | None:
    match = call.path_match()
    return (NAME, unquote(match["fn"]), unquote(match["task"])) if match else None


def _not_found(key: tuple[str, ...] | None, call: Call) -> Reply:
    assert key is not None
    return _error(
        404, "AsyncTaskNotFound", f"async task '{key[2]}' of function '{key[1]}' does not exist", call
    )


def _region(call: Call) -> str:
    # <account>.<region>.fc.aliyuncs.com when the host names them; the emulator's region else.
    parts = call.host.split(".")
    return parts[1] if len(parts) > 4 and parts[2] == "fc" else "cn-hangzhou"


def _get(emu: Emulator, call: Call) -> Reply:
    key = _task_key(call)
    polled = emu._poll(key, call.advance)
    if polled is None:
        return _not_found(key, call)
    return Reply(200, task_body(*polled, emu.account_id, _region(call), emu.now()))


def _invoke(emu: Emulator, call: Call) -> Reply:
    match = call.path_match()
    assert match is not None
    fn = unquote(match["fn"])
    payload = call.req.body.decode("utf-8", "replace")
    if (call.header("x-fc-invocation-type") or "Sync").lower() != "async":
        # A synchronous invocation: the emulator's functions echo their event.
        return Reply(200, raw=call.req.body, content_type="application/octet-stream")
    task_id = call.header("x-fc-async-task-id")
    if task_id is None:
        task_id = "emu-" + secrets.token_hex(8)
    elif not _TASK_ID.fullmatch(task_id):
        message = (
            f"x-fc-async-task-id '{task_id}' is invalid: it must start with a letter or an underscore "
            "and contain only letters, digits, underscores and hyphens (at most 128 characters)"
        )
        return _error(400, "InvalidArgument", message, call)
    qualifier = call.params.get("qualifier")
    with emu._lock:
        if emu._task((NAME, fn, task_id)) is not None:
            message = f"async task '{task_id}' of function '{fn}' already exists"
            return _error(409, "AsyncTaskAlreadyExists", message, call)
        emu.add_fc_async_task(
            fn,
            task_id,
            emu.start_lifecycles[NAME],
            qualifier=qualifier,
            payload=payload,
            invocation_request_id=call.rid,
        )
    return Reply.empty(202)


def _stop(emu: Emulator, call: Call) -> Reply:
    key = _task_key(call)
    if call.req.body:
        return _error(400, "InvalidArgument", "StopAsyncTask takes no request body.", call)
    with emu._lock:
        task = emu._task(key)
        if task is None or key is None:
            return _not_found(key, call)
        state = task.current
        if task.is_terminal(state):
            # UNVERIFIED: the code and status the service gives for stopping an ended task.
            message = f"async task '{key[2]}' is {state} and cannot be stopped"
            return _error(400, "InvalidArgument", message, call)
        if state.upper() != "STOPPING":
            task.statuses = (*task.history, "Stopping", "Stopped")
    return Reply(200, raw=b"", content_type="")


SERVICE = Service(
    name=NAME,
    product="fc",
    ops=(
        Op(NAME, "GetAsyncTask", VERSION, "ROA", _get, "GET", _TASK_PATH, "status", _task_key),
        Op(NAME, "InvokeFunction", VERSION, "ROA", _invoke, "POST", _INVOKE_PATH, "start"),
        Op(NAME, "StopAsyncTask", VERSION, "ROA", _stop, "PUT", _STOP_PATH, "cancel", _task_key),
    ),
    id_names=("function_name", "async_task_id"),
    adder="add_fc_async_task",
    running=RUNNING,
    start_lifecycle=("Enqueued", "Running", "Succeeded"),
    request_id_header="x-fc-request-id",
    ignored_ids=frozenset({"qualifier", "account_id"}),
    error_reply=error,
)


class FcAsyncTasks(Store):
    """Function Compute asynchronous tasks."""

    def add_fc_async_task(
        self,
        function_name: str,
        async_task_id: str,
        statuses: Sequence[str] = ("Running", "Succeeded"),
        *,
        qualifier: str | None = None,
        error_message: str | None = None,
        return_payload: str | None = None,
        payload: str | None = None,
        invocation_request_id: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        """Script a Function Compute asynchronous task (GetAsyncTask ``functionName`` and ``taskId``).

        ``error_message`` is the ``taskErrorMessage`` of a task that ended badly (a failed one
        says ``UnhandledInvocationError`` without it); ``return_payload`` what a succeeded task
        returned (``returnPayload``); ``payload`` its event (``taskPayload``); ``qualifier`` the
        version or alias it ran on (reported; it does not name the task). ``fields`` adds to or
        overrides the task as GetAsyncTask returns it (camelCase keys).
        """
        self._put_task(
            SERVICE,
            {"function_name": str(function_name), "async_task_id": str(async_task_id)},
            statuses,
            {
                "qualifier": qualifier,
                "error_message": error_message,
                "return_payload": return_payload,
                "payload": payload,
                "invocation_request_id": invocation_request_id,
                "fields": dict(fields or {}),
            },
        )
