"""Function Compute asynchronous tasks in the emulator and through the hook, over real HTTP: the
official SDK client (GetAsyncTask, InvokeFunction, StopAsyncTask) against the emulator, the states
the wait ends on, the requests' bytes next to the SDK's, task deduplication (409), faults and the
control API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from alibabacloud_fc20230330 import models
from alibabacloud_fc20230330.client import Client
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.exceptions import UnretryableException
from darabonba.runtime import RuntimeOptions

from airflow_aliyun_tasks.client import aclose_shared_client
from airflow_aliyun_tasks.errors import ApiError, NotFoundError
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.status import CANCELLED, FAILED, RUNNING, SUCCEEDED
from airflow_aliyun_tasks.testing import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_START_LIFECYCLES,
    Emulator,
)

FC = "fc_async_task"
REGION = "cn-hangzhou"
NO_RETRY = RuntimeOptions(autoretry=False, max_attempts=1)

pytestmark = pytest.mark.usefixtures("fresh_clients", "close_shared_sync_client")


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def emu(server: Emulator) -> Iterator[Emulator]:
    server.reset()
    yield server
    server.reset()


def client(endpoint: str, **config: Any) -> Client:
    config.setdefault("access_key_id", DEFAULT_ACCESS_KEY_ID)
    config.setdefault("access_key_secret", DEFAULT_ACCESS_KEY_SECRET)
    return Client(Config(endpoint=endpoint, protocol="http", region_id=REGION, **config))


def get_task(sdk: Client, function_name: str, task_id: str, **request: Any) -> models.AsyncTask:
    body: models.AsyncTask = sdk.get_async_task(
        function_name, task_id, models.GetAsyncTaskRequest(**request)
    ).body
    return body


def invoke(
    sdk: Client,
    function_name: str,
    payload: bytes,
    *,
    task_id: str | None = None,
    invocation_type: str | None = "Async",
    qualifier: str | None = None,
) -> models.InvokeFunctionResponse:
    return sdk.invoke_function_with_options(
        function_name,
        models.InvokeFunctionRequest(body=payload, qualifier=qualifier),
        models.InvokeFunctionHeaders(x_fc_invocation_type=invocation_type, x_fc_async_task_id=task_id),
        NO_RETRY,
    )


def stop(sdk: Client, function_name: str, task_id: str, **request: Any) -> models.StopAsyncTaskResponse:
    return sdk.stop_async_task(function_name, task_id, models.StopAsyncTaskRequest(**request))


def failure(call: Callable[[], Any]) -> tuple[str, int, dict[str, Any]]:
    """Run an official-SDK call that must fail; return (code, http status, error data)."""
    try:
        call()
    except Exception as exc:  # the SDK raises ClientException / ServerException
        return str(getattr(exc, "code", "")), int(getattr(exc, "status_code", 0) or 0), dict(exc.data or {})  # type: ignore[attr-defined]
    raise AssertionError("the SDK call succeeded")


# ----------------------------------------------------------------------------------- GetAsyncTask


def test_official_sdk_walks_a_scripted_task(emu: Emulator) -> None:
    emu.add_fc_async_task(
        "video-transcode",
        "airflow-1",
        ["Enqueued", "Dequeued", "Running", "Retrying", "Running", "Succeeded"],
        qualifier="prod",
        payload='{"video": "a.mp4"}',
        return_payload='{"frames": 240}',
    )
    sdk = client(emu.endpoint)
    tasks = [get_task(sdk, "video-transcode", "airflow-1", qualifier="prod") for _ in range(7)]
    assert [t.status for t in tasks] == [
        "Enqueued",
        "Dequeued",
        "Running",
        "Retrying",
        "Running",
        "Succeeded",
        "Succeeded",
    ]
    first, running, last = tasks[0], tasks[2], tasks[-1]
    assert (first.task_id, first.qualifier, first.task_payload) == ("airflow-1", "prod", '{"video": "a.mp4"}')
    assert first.function_arn == "acs:fc:cn-hangzhou:1234567890123456:functions/video-transcode"
    assert first.started_time is None
    assert first.end_time is None
    assert first.destination_status is None
    assert [e.status for e in first.events] == ["Enqueued"]
    assert running.started_time is not None
    assert running.end_time is None
    assert last.destination_status == "Succeeded"
    assert last.end_time >= last.started_time
    assert last.duration_ms == last.end_time - last.started_time
    assert last.already_retried_times == 1
    assert last.return_payload == '{"frames": 240}'
    assert last.task_error_message is None
    assert [e.status for e in last.events] == [
        "Enqueued",
        "Dequeued",
        "Running",
        "Retrying",
        "Running",
        "Succeeded",
    ]
    assert emu.poll_count(FC, function_name="video-transcode", async_task_id="airflow-1") == 7
    assert emu.request_count(FC) == emu.request_count() == 7


def test_failed_expired_invalid_and_unknown_tasks(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    emu.add_fc_async_task("f", "bad", ["Running", "Failed"])
    emu.add_fc_async_task("f", "late", ["Expired"], error_message="the message expired in the queue")
    assert [get_task(sdk, "f", "bad").status for _ in range(2)] == ["Running", "Failed"]
    assert get_task(sdk, "f", "bad").task_error_message == "UnhandledInvocationError"
    late = get_task(sdk, "f", "late")
    assert (late.status, late.task_error_message, late.destination_status) == (
        "Expired",
        "the message expired in the queue",
        "Expired",
    )
    assert late.started_time is None  # it never ran
    code, status, data = failure(lambda: get_task(sdk, "f", "nope"))
    assert (code, status) == ("AsyncTaskNotFound", 404)
    assert set(data) >= {"Code", "Message", "RequestId"}
    # a task is named by its function and its id
    assert failure(lambda: get_task(sdk, "g", "bad"))[:2] == ("AsyncTaskNotFound", 404)


def test_ids_that_need_encoding_and_a_wrong_signature(emu: Emulator) -> None:
    """The emulator's canonicalization agrees with the official signer on encoded path parts."""
    emu.add_fc_async_task("my fn*~", "t é/1", ["Running", "Succeeded"])
    assert get_task(client(emu.endpoint), "my fn*~", "t é/1").status == "Running"
    wrong = client(emu.endpoint, access_key_secret="not-the-secret")
    code, status, _ = failure(lambda: get_task(wrong, "my fn*~", "t é/1"))
    assert (code, status) == ("SignatureDoesNotMatch", 400)


# ------------------------------------------------------------------ InvokeFunction, StopAsyncTask


def test_invoke_async_creates_the_named_task_once(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    answer = invoke(sdk, "etl", b'{"day": "2026-12-01"}', task_id="airflow-run-1", qualifier="prod")
    assert answer.status_code == 202
    assert answer.body.read() == b""
    assert answer.headers["x-fc-request-id"]
    created = get_task(sdk, "etl", "airflow-run-1", qualifier="prod")
    assert created.status == DEFAULT_START_LIFECYCLES[FC][0] == "Enqueued"
    assert (created.qualifier, created.task_payload) == ("prod", '{"day": "2026-12-01"}')
    assert created.request_id == answer.headers["x-fc-request-id"]
    assert [get_task(sdk, "etl", "airflow-run-1").status for _ in range(2)] == ["Running", "Succeeded"]

    # the same task id again: refused with 409, nothing invoked (task deduplication)
    code, status, _ = failure(lambda: invoke(sdk, "etl", b"{}", task_id="airflow-run-1"))
    assert (code, status) == ("AsyncTaskAlreadyExists", 409)
    # the same id on another function is another task
    assert invoke(sdk, "other", b"{}", task_id="airflow-run-1").status_code == 202
    # no id: the service names the task
    assert invoke(sdk, "etl", b"{}").status_code == 202
    # an id of the wrong form
    assert failure(lambda: invoke(sdk, "etl", b"{}", task_id="1-starts-with-a-digit"))[:2] == (
        "InvalidArgument",
        400,
    )
    assert len(emu.tasks(FC)) == 3
    assert emu.start_count(FC, "InvokeFunction") == 5
    assert emu.start_count(FC, accepted=True) == 3

    # a synchronous invocation answers with the function's output: the emulator's functions echo
    sync = invoke(sdk, "etl", b"hello", invocation_type=None)
    assert (sync.status_code, sync.body.read()) == (200, b"hello")
    assert len(emu.tasks(FC)) == 3


def test_stop_async_task(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    emu.add_fc_async_task("f", "long", ["Enqueued", "Running"])
    assert get_task(sdk, "f", "long").status == "Enqueued"
    answer = stop(sdk, "f", "long", qualifier="prod")
    assert answer.status_code == 200
    assert stop(sdk, "f", "long").status_code == 200  # again while stopping: accepted
    assert [get_task(sdk, "f", "long").status for _ in range(3)] == ["Stopping", "Stopped", "Stopped"]
    assert get_task(sdk, "f", "long").destination_status == "Stopped"

    # an ended task cannot be stopped; an unknown one is not found
    assert failure(lambda: stop(sdk, "f", "long"))[:2] == ("InvalidArgument", 400)
    assert failure(lambda: stop(sdk, "f", "nope"))[:2] == ("AsyncTaskNotFound", 404)
    assert emu.cancel_count(FC, function_name="f", async_task_id="long") == 3
    assert emu.cancel_count(FC, function_name="f", async_task_id="long", accepted=True) == 2
    assert emu.request_count(FC, function_name="f", async_task_id="long") == 5  # cancels are not polls


# ------------------------------------------------------------------- the package against the SDK


def _capture(answers: list[tuple[bytes, bytes]]) -> tuple[Any, list[bytes]]:
    """A loopback server that records each request and answers ``(status line + headers, body)``
    in turn."""
    from test_hostile_input import HostileServer

    received: list[bytes] = []
    pending = list(answers)

    def respond(data: bytes) -> list[bytes]:
        received.append(data)
        head, body = pending.pop(0)
        return [head % len(body) + body]

    server = HostileServer()
    server.responder = respond
    return server, received


def _shape(data: bytes) -> tuple[str, dict[str, str], bytes]:
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return lines[0], headers, body


EMPTY_200 = (b"HTTP/1.1 200 OK\r\nx-fc-request-id: R-1\r\ncontent-length: %d\r\n\r\n", b"")
EMPTY_202 = (b"HTTP/1.1 202 Accepted\r\nx-fc-request-id: R-2\r\ncontent-length: %d\r\n\r\n", b"")


def test_stop_request_is_the_sdks(make_conn: Callable[..., str]) -> None:
    """StopAsyncTask: PUT, the qualifier query, no body; an empty answer is a success."""
    capture, received = _capture([EMPTY_200, EMPTY_200])
    try:
        stop(client(capture.url.removeprefix("http://")), "f", "t-9", qualifier="prod")
        conn = make_conn("aliyun_capture", fc_async_task_endpoint=capture.url, max_retries=0)
        ids = {"function_name": "f", "async_task_id": "t-9", "qualifier": "prod"}
        assert AlibabaCloudTasksHook(conn).cancel_task(FC, **ids) == {}
    finally:
        capture.stop()
    (theirs_line, theirs, theirs_body), (ours_line, ours, ours_body) = (_shape(data) for data in received)
    assert (
        theirs_line == ours_line == "PUT /2023-03-30/functions/f/async-tasks/t-9/stop?qualifier=prod HTTP/1.1"
    )
    assert theirs_body == ours_body == b""
    assert ours.get("content-length", "0") == theirs.get("content-length", "0") == "0"
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # SHA-256 of b""
    assert theirs["x-acs-content-sha256"] == ours["x-acs-content-sha256"] == empty
    for name in ("x-acs-action", "x-acs-version"):
        assert theirs[name] == ours[name]


def test_invoke_request_is_the_sdks(make_conn: Callable[..., str]) -> None:
    """InvokeFunction as the operator sends it (the registry's headers, a raw body) next to the
    SDK's: the same path, query, headers that matter and payload bytes."""
    capture, received = _capture([EMPTY_202, EMPTY_202])
    payload = b'{"k": "v", "n": [1, 2]}\x00\xff'
    try:
        invoke(client(capture.url.removeprefix("http://")), "f", payload, task_id="airflow-x", qualifier="1")
        conn = make_conn("aliyun_capture", fc_async_task_endpoint=capture.url, max_retries=0)
        answer = AlibabaCloudTasksHook(conn).call_api(
            "InvokeFunction",
            "2023-03-30",
            service=FC,
            method="POST",
            path="/2023-03-30/functions/f/invocations",
            query={"qualifier": "1"},
            body=payload,
            headers={"x-fc-invocation-type": "Async", "x-fc-async-task-id": "airflow-x"},
            body_encoding="raw",
            response_body="none",
        )
        assert answer == {}
    finally:
        capture.stop()
    (theirs_line, theirs, theirs_body), (ours_line, ours, ours_body) = (_shape(data) for data in received)
    assert theirs_line == ours_line == "POST /2023-03-30/functions/f/invocations?qualifier=1 HTTP/1.1"
    assert theirs_body == ours_body == payload
    for name in (
        "x-fc-invocation-type",
        "x-fc-async-task-id",
        "x-acs-action",
        "x-acs-version",
        "x-acs-content-sha256",
        "content-length",
    ):
        assert theirs[name] == ours[name], name
    assert ours["content-type"] == "application/octet-stream"


def test_hook_reads_tasks_sync_and_async(emulator: Emulator, make_conn: Callable[..., str]) -> None:
    conn = make_conn()
    emulator.add_fc_async_task("f", "ok", ["Enqueued", "Succeeded"], return_payload="done")
    emulator.add_fc_async_task("f", "bad", ["Failed"], error_message="Traceback: KeyError 'day'")
    emulator.add_fc_async_task("f", "gone", ["Invalid"], error_message="function deleted")
    emulator.add_fc_async_task("f", "stopped", ["Stopped"])
    hook = AlibabaCloudTasksHook(conn)
    first = hook.get_task_status(FC, function_name="f", async_task_id="ok", qualifier="LATEST")
    assert (first.service, first.state, first.raw_status, first.ids) == (
        FC,
        RUNNING,
        "Enqueued",
        {"function_name": "f", "async_task_id": "ok", "qualifier": "LATEST"},
    )
    assert first.result is None

    async def poll() -> Any:
        try:
            return await AlibabaCloudTasksHook(conn).aget_task_status(
                FC, function_name="f", async_task_id="ok"
            )
        finally:
            await aclose_shared_client()

    second = asyncio.run(poll())
    assert (second.state, second.raw_status, second.result, second.message) == (
        SUCCEEDED,
        "Succeeded",
        "done",
        None,
    )
    assert second.raw["taskId"] == "ok"
    assert second.request_id
    failed = hook.get_task_status(FC, function_name="f", async_task_id="bad")
    assert (failed.state, failed.message) == (FAILED, "Traceback: KeyError 'day'")
    gone = hook.get_task_status(FC, function_name="f", async_task_id="gone")
    assert (gone.state, gone.message) == (FAILED, "function deleted")
    assert hook.get_task_status(FC, function_name="f", async_task_id="stopped").state == CANCELLED
    with pytest.raises(NotFoundError) as missing:
        hook.get_task_status(FC, function_name="f", async_task_id="missing")
    assert missing.value.code == "AsyncTaskNotFound"
    assert missing.value.request_id  # from the x-fc-request-id header or the body


def test_the_default_host_names_the_account(make_conn: Callable[..., str]) -> None:
    """Without an endpoint override, the host is <account>.<region>.fc.aliyuncs.com: the
    connection's fc_account_id, or the call's account_id; neither is a clear error."""
    from airflow_aliyun_tasks.errors import ConfigurationError
    from airflow_aliyun_tasks.hooks import service_endpoint
    from airflow_aliyun_tasks.services import SERVICES

    spec = SERVICES[FC]
    hook = AlibabaCloudTasksHook(
        make_conn("aliyun_fc", fc_async_task_endpoint=None, fc_account_id="1234567890")
    )
    assert service_endpoint(spec, hook.settings).host == "1234567890.cn-hangzhou.fc.aliyuncs.com"
    assert (
        service_endpoint(spec, hook.settings, {"account_id": "99"}).host == "99.cn-hangzhou.fc.aliyuncs.com"
    )
    vpc = AlibabaCloudTasksHook(
        make_conn("aliyun_fc_vpc", fc_async_task_endpoint=None, fc_account_id="12", use_vpc_endpoints=True)
    )
    assert service_endpoint(spec, vpc.settings).host == "12.cn-hangzhou-internal.fc.aliyuncs.com"
    bare = AlibabaCloudTasksHook(make_conn("aliyun_fc_bare", fc_async_task_endpoint=None))
    with pytest.raises(ConfigurationError, match="fc_account_id"):
        service_endpoint(spec, bare.settings)
    with pytest.raises(ConfigurationError, match="fc_account_id"):
        bare.get_task_status(FC, function_name="f", async_task_id="t")


def test_a_start_with_a_body_on_stop_is_refused(emulator: Emulator, make_conn: Callable[..., str]) -> None:
    """The emulator holds callers to the SDK's request: StopAsyncTask carries no body."""
    emulator.add_fc_async_task("f", "b", ["Running"])
    hook = AlibabaCloudTasksHook(make_conn())
    with pytest.raises(ApiError, match="InvalidArgument"):
        hook.call_api(
            "StopAsyncTask",
            "2023-03-30",
            service=FC,
            method="PUT",
            path="/2023-03-30/functions/f/async-tasks/b/stop",
            body={},
        )
    assert emulator.cancel_count(FC, function_name="f", async_task_id="b", accepted=True) == 0
    hook.cancel_task(FC, function_name="f", async_task_id="b")
    assert emulator.cancel_count(FC, function_name="f", async_task_id="b", accepted=True) == 1


# -------------------------------------------------------------------------------------- faults


def test_faults_aimed_at_a_task(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    emu.add_fc_async_task("f", "a", ["Running", "Succeeded"])
    emu.add_fc_async_task("f", "b", ["Running", "Succeeded"])
    emu.inject_fault("503", service=FC, task="b")
    assert get_task(sdk, "f", "a").status == "Running"
    code, status, data = failure(
        lambda: sdk.get_async_task_with_options("f", "b", models.GetAsyncTaskRequest(), {}, NO_RETRY)
    )
    assert (code, status) == ("ServiceUnavailable", 503)
    assert data["RequestId"]
    assert get_task(sdk, "f", "b").status == "Running"  # the fault hid the poll: no step
    assert emu.fault_counts == {"503": 1}


def test_a_lost_invoke_answer_and_a_retry_with_the_same_id_invoke_once(emu: Emulator) -> None:
    """Why the operator names the task: after a lost answer, the retry with the same task id is
    refused with 409 and the function runs once."""
    sdk = client(emu.endpoint)
    emu.inject_fault("drop_after_accept", service=FC)
    with pytest.raises(UnretryableException):
        invoke(sdk, "f", b"{}", task_id="airflow-lost")
    assert len(emu.tasks(FC)) == 1
    assert failure(lambda: invoke(sdk, "f", b"{}", task_id="airflow-lost"))[:2] == (
        "AsyncTaskAlreadyExists",
        409,
    )
    assert len(emu.tasks(FC)) == 1
    assert (emu.start_count(FC), emu.start_count(FC, accepted=True)) == (2, 1)


# ---------------------------------------------------------------------------------- control API


def test_control_api_scripts_tasks_and_reports_the_counters(emu: Emulator) -> None:
    base = emu.url + "/_emulator"
    created = httpx.post(
        f"{base}/tasks",
        json={
            "service": FC,
            "function_name": "f",
            "async_task_id": "c",
            "statuses": ["Running", "Succeeded"],
        },
    )
    assert created.status_code == 201
    assert created.json()["tasks"] == [{"service": FC, "ids": {"function_name": "f", "async_task_id": "c"}}]
    lifecycle = httpx.post(f"{base}/start_lifecycle", json={"service": FC, "statuses": ["Running", "Failed"]})
    assert lifecycle.status_code == 200

    sdk = client(emu.endpoint)
    invoke(sdk, "f", json.dumps({"x": 1}).encode(), task_id="started")
    assert [get_task(sdk, "f", "started").status for _ in range(2)] == ["Running", "Failed"]
    stop(sdk, "f", "c")

    stats = httpx.get(f"{base}/stats").json()
    assert stats["requests"][FC] == 4
    assert {"service": FC, "action": "InvokeFunction", "requests": 1, "accepted": 1} in stats["starts"]
    assert stats["cancels"] == [
        {"service": FC, "ids": {"function_name": "f", "async_task_id": "c"}, "requests": 1, "accepted": 1}
    ]
    assert httpx.post(f"{base}/reset").status_code == 200
    assert emu.start_lifecycles[FC] == DEFAULT_START_LIFECYCLES[FC]
