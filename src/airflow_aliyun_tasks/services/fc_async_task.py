"""Function Compute 3.0 asynchronous invocations (product ``fc``, API 2023-03-30, ROA):
``GetAsyncTask``.

Request and response shapes are those of the official SDK package ``alibabacloud-fc20230330``
(4.8.3, ``client.py`` and ``models/``):

- ``GetAsyncTask``: ``GET /2023-03-30/functions/{functionName}/async-tasks/{taskId}``, the
  function's version or alias in the optional ``qualifier`` query parameter. The answer is the
  ``AsyncTask`` itself at the top level of the body, camelCase: ``taskId``, ``status``,
  ``taskErrorMessage``, ``requestId``, ``functionArn``, ``qualifier``, ``startedTime``,
  ``endTime``, ``durationMs``, ``alreadyRetriedTimes``, ``destinationStatus``, ``events``,
  ``taskPayload``, ``returnPayload``...
- ``InvokeFunction``: ``POST /2023-03-30/functions/{functionName}/invocations`` (``qualifier``
  in the query), the event as the raw body (``body_type='binary'``: the SDK sends the bytes as
  given), headers ``x-fc-invocation-type: Async`` and ``x-fc-async-task-id``. The task id is the
  caller's choice ("set a business-related ID ... must start with an English letter or an
  underscore; letters, digits, underscores and hyphens; at most 128 characters",
  ``InvokeFunctionHeaders``): the operator derives it as it derives client tokens
  (``airflow-<uuid>``), so a retried start names the same task and cannot invoke the function
  twice: Function Compute refuses a task id it has seen with HTTP 409 ("task deduplication":
  "When the same ID enters the system, the request is considered as a duplicate submission and
  rejected, and an error 409 is returned"), which the operator reads as the task started by the
  attempt whose answer was lost. An asynchronous invocation answers HTTP 202 with an empty body:
  the task's ids come from the request (the path and the header).
- ``StopAsyncTask``: ``PUT .../async-tasks/{taskId}/stop``, the same ``qualifier`` query, no
  body (``body_type='none'``, an empty answer). The task goes through ``Stopping`` to
  ``Stopped``.

Endpoint: the host names the account, ``{account_id}.{region_id}.fc.aliyuncs.com`` (VPC:
``{account_id}.{region_id}-internal.fc.aliyuncs.com``), as Function Compute's endpoint reference
lists them for 3.0; ``account_id`` is a ``"host"`` id that defaults to the connection's
``fc_account_id``. The SDK's endpoint map (4.8.3) sends every region to an OpenAPI gateway host
without the account, ``fcv3.{region}.aliyuncs.com`` (``{region}.fc.aliyuncs.com`` for a few),
for both networks; the package keeps the documented account hosts, and a connection that sets
``fc_async_task_endpoint`` to a gateway host needs no account id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_aliyun_tasks.services import _parse as p
from airflow_aliyun_tasks.services._spec import (
    CancelOperation,
    ConsoleLink,
    IdParam,
    ServiceSpec,
    StartOperation,
)
from airflow_aliyun_tasks.status import CANCELLED, FAILED, RUNNING, SUCCEEDED, TaskStatus

#: ``status``, as the SDK's model (``AsyncTask.status``) lists the values::
#:
#:     The state of the asynchronous task.
#:     *   Enqueued: The asynchronous invocation is enqueued and waiting to be executed.
#:     *   Succeeded: The invocation is successful.
#:     *   Failed: The invocation fails.
#:     *   Running: The invocation is being executed.
#:     *   Stopped: The invocation is terminated.
#:     *   Stopping: The invocation is being terminated.
#:     *   Invalid: The invocation is invalid and not executed due to specific reasons. For
#:         example, the function is deleted.
#:     *   Expired: The maximum validity period of messages is specified for asynchronous
#:         invocation. The invocation is discarded and not executed because the specified
#:         maximum validity period of messages expires.
#:     *   Retrying: The asynchronous invocation is being retried due to an execution error.
#:
#: and ``ListAsyncTasksRequest.status`` one more: "Dequeued: The asynchronous message is
#: dequeued and waits to be triggered." ``Invalid`` and ``Expired`` end the wait as failed (the
#: function never ran); ``Retrying`` and ``Stopping`` are still running (a retry may succeed; a
#: stopping task ends ``Stopped``). A state not listed here (neither the model nor the API
#: reference names any other) is unknown: the wait goes on, with a warning naming it.
FC_ASYNC_TASK_STATES: dict[str, str] = {
    "enqueued": RUNNING,
    "dequeued": RUNNING,
    "running": RUNNING,
    "retrying": RUNNING,
    "stopping": RUNNING,
    "succeeded": SUCCEEDED,
    "failed": FAILED,
    "invalid": FAILED,
    "expired": FAILED,
    "stopped": CANCELLED,
}


def parse_fc_async_task(body: Mapping[str, Any], ids: dict[str, str], request_id: str | None) -> TaskStatus:
    task = p.body_of(body, "Function Compute GetAsyncTask")
    raw_status = p.text(task.get("status"))
    state = p.state(FC_ASYNC_TASK_STATES, raw_status)
    return_payload = task.get("returnPayload")
    return TaskStatus(
        service="fc_async_task",
        ids=ids,
        state=state,
        raw_status=raw_status,
        # taskErrorMessage: why the invocation failed ("UnhandledInvocationError", a message).
        message=p.text(task.get("taskErrorMessage")) if state != SUCCEEDED else None,
        request_id=request_id or p.text(task.get("requestId")),
        raw=p.raw(task),
        # What the function returned (a preview feature: present only where it is enabled).
        result=p.text(return_payload) if isinstance(return_payload, str) and state == SUCCEEDED else None,
    )


FC_ASYNC_TASK = ServiceSpec(
    name="fc_async_task",
    label="Function Compute",
    long_label="Function Compute (FC) asynchronous invocations",
    product="fc",
    action="GetAsyncTask",
    version="2023-03-30",
    style="ROA",
    method="GET",
    path="/2023-03-30/functions/{functionName}/async-tasks/{taskId}",
    ids=(
        IdParam("function_name", "functionName", "path"),
        IdParam("async_task_id", "taskId", "path"),
        IdParam("qualifier", "qualifier", "query", required=False),
        IdParam(
            "account_id",
            "account_id",
            "host",
            required=False,
            connection_default="fc_account_id",
            label="Function Compute account id",
            example="1234567890123456",
        ),
    ),
    signer="acs3",
    endpoint="{account_id}.{region_id}.fc.aliyuncs.com",
    vpc_endpoint="{account_id}.{region_id}-internal.fc.aliyuncs.com",
    ram_action="fc:GetAsyncTask",
    parse=parse_fc_async_task,
    console=ConsoleLink(
        class_name="FcAsyncTaskConsoleLink",
        title="Function Compute console",
        url="https://fcnext.console.aliyun.com/{region_id}/functions/{function_name}",
        note="the function's page in the Function Compute 3.0 console (its asynchronous tasks are "
        "a tab there); the console's URLs are not documented",
    ),
    start_operations=(
        StartOperation(
            action="InvokeFunction",
            method="POST",
            path="/2023-03-30/functions/{functionName}/invocations",
            task_ids={
                "function_name": "request:functionName",
                "async_task_id": "request:x-fc-async-task-id",
                "qualifier": "request:qualifier",
            },
            idempotency_param="x-fc-async-task-id",
            idempotency_location="header",
            idempotency_format="airflow-{token}",
            headers={"x-fc-invocation-type": "Async"},
            body_encoding="raw",
            response_body="none",
            duplicate_status=409,
            note="alibabacloud-fc20230330: InvokeFunction with InvokeFunctionHeaders "
            "x_fc_invocation_type='Async' and x_fc_async_task_id (a caller-chosen task id "
            "starting with a letter); the body is the event, sent as bytes; an asynchronous "
            "invocation answers 202 with no body, so the ids come from the request",
        ),
    ),
    cancel=CancelOperation(
        action="StopAsyncTask",
        method="PUT",
        path="/2023-03-30/functions/{functionName}/async-tasks/{taskId}/stop",
        response_body="none",
        note="alibabacloud-fc20230330: StopAsyncTask, PUT with the qualifier query and no body, "
        "answered with no body (body_type='none'); the task goes through Stopping to Stopped",
    ),
    docs_page="docs/sensors/fc_async_task.md",
)
