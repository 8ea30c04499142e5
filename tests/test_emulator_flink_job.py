"""Realtime Compute for Apache Flink in the emulator and through the hook, over real HTTP: the
official SDK client (GetJob, StartJobWithParams, StopJob) against the emulator, the errors the API
reports inside HTTP 200 answers, the requests' bytes next to the SDK's (the ``workspace`` header,
the encoded colon of ``jobs:start`` and ``:stop``, StopJob's body), faults and the control API."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from alibabacloud_tea_openapi.utils_models import Config
from alibabacloud_ververica20220718 import models
from alibabacloud_ververica20220718.client import Client
from darabonba.exceptions import UnretryableException
from darabonba.runtime import RuntimeOptions

from airflow_aliyun_tasks.client import aclose_shared_client
from airflow_aliyun_tasks.errors import ApiError, NotFoundError, PermissionDeniedError, ThrottledError
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.status import CANCELLED, FAILED, RUNNING, SUCCEEDED
from airflow_aliyun_tasks.testing import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_START_LIFECYCLES,
    Emulator,
)

FLINK = "flink_job"
REGION = "cn-hangzhou"
WS = "a14bd5d90a"
NS = "default-namespace"
DEPLOYMENT = "58718c99-3b29-4c5e-93bb-c9fc4ec61234"
RUNTIME = RuntimeOptions()
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


def get_job(
    sdk: Client,
    job_id: str,
    *,
    workspace: str | None = WS,
    namespace: str = NS,
    runtime: RuntimeOptions = RUNTIME,
) -> models.GetJobResponseBody:
    headers = models.GetJobHeaders(workspace=workspace)
    body: models.GetJobResponseBody = sdk.get_job_with_options(namespace, job_id, headers, runtime).body
    return body


def start_job(
    sdk: Client, *, runtime: RuntimeOptions = RUNTIME, **parameters: Any
) -> models.StartJobWithParamsResponseBody:
    parameters.setdefault("deployment_id", DEPLOYMENT)
    request = models.StartJobWithParamsRequest(body=models.JobStartParameters(**parameters))
    headers = models.StartJobWithParamsHeaders(workspace=WS)
    body: models.StartJobWithParamsResponseBody = sdk.start_job_with_params_with_options(
        NS, request, headers, runtime
    ).body
    return body


def stop_job(sdk: Client, job_id: str, strategy: str | None = "NONE") -> models.StopJobResponseBody:
    request = models.StopJobRequest(body=models.StopJobRequestBody(stop_strategy=strategy))
    headers = models.StopJobHeaders(workspace=WS)
    body: models.StopJobResponseBody = sdk.stop_job_with_options(NS, job_id, request, headers, RUNTIME).body
    return body


def refused(body: Any) -> tuple[str, str, int]:
    """An answer that reports an error inside HTTP 200: (code, message, httpCode)."""
    assert body.success is False
    assert body.request_id
    return body.error_code, body.error_message, body.http_code


def failure(call: Callable[[], Any]) -> tuple[str, int, dict[str, Any]]:
    """Run an official-SDK call that must raise (a gateway error); return (code, status, data)."""
    try:
        call()
    except Exception as exc:  # the SDK raises ClientException / ServerException
        return str(getattr(exc, "code", "")), int(getattr(exc, "status_code", 0) or 0), dict(exc.data or {})  # type: ignore[attr-defined]
    raise AssertionError("the SDK call succeeded")


# ---------------------------------------------------------------------------------------- GetJob


def test_official_sdk_walks_a_scripted_job(emu: Emulator) -> None:
    emu.add_flink_job(
        WS,
        NS,
        "5af678c0-0001",
        ["STARTING", "RUNNING", "FAILED"],
        failure_reason="JobFailed",
        failure_message="java.lang.RuntimeException: sink failed",
        deployment_name="nightly-batch",
    )
    sdk = client(emu.endpoint)
    bodies = [get_job(sdk, "5af678c0-0001") for _ in range(4)]
    assert [b.success for b in bodies] == [True] * 4
    assert [b.data.status.current_job_status for b in bodies] == ["STARTING", "RUNNING", "FAILED", "FAILED"]
    first, running, failed = bodies[0], bodies[1], bodies[2]
    assert (first.http_code, first.error_code, first.error_message) == (200, "", "")
    assert first.request_id
    job = first.data
    assert (job.job_id, job.workspace, job.namespace, job.execution_mode, job.deployment_name) == (
        "5af678c0-0001",
        WS,
        NS,
        "BATCH",
        "nightly-batch",
    )
    assert isinstance(job.start_time, int)
    assert job.end_time is None
    assert job.status.failure is None
    assert running.data.status.running.observed_flink_job_status == "RUNNING"
    assert failed.data.end_time is not None
    assert (failed.data.status.failure.reason, failed.data.status.failure.message) == (
        "JobFailed",
        "java.lang.RuntimeException: sink failed",
    )
    assert emu.poll_count(FLINK, workspace_id=WS, namespace=NS, job_id="5af678c0-0001") == 4
    assert emu.request_count(FLINK) == emu.request_count() == 4


def test_errors_come_inside_http_200_answers(emu: Emulator) -> None:
    """The SDK does not raise: ``success`` is false, with the error's code and message."""
    sdk = client(emu.endpoint)
    code, message, http_code = refused(get_job(sdk, "nope"))
    assert (code, http_code) == ("Job.NotFound", 200)
    assert "nope" in message
    emu.add_flink_job(WS, NS, "j-ws", ["RUNNING"])
    # the job is named by its workspace, namespace and id together
    assert refused(get_job(sdk, "j-ws", workspace="other"))[0] == "Job.NotFound"
    assert refused(get_job(sdk, "j-ws", namespace="other"))[0] == "Job.NotFound"
    assert refused(get_job(sdk, "j-ws", workspace=None))[0] == "InvalidParameter.Workspace"
    assert get_job(sdk, "j-ws").success is True
    assert emu.poll_count(FLINK, workspace_id=WS, namespace=NS, job_id="j-ws") == 1


def test_gateway_errors_keep_the_pop_shape_and_signatures_agree(emu: Emulator) -> None:
    """The emulator's own canonicalization agrees with the official signers (V3 and ROA v2),
    ids that need encoding included; a bad signature is refused by the gateway (HTTP 400)."""
    emu.add_flink_job("ws 1", "ns/é", "job 1*~", ["RUNNING", "FINISHED"])
    assert get_job(client(emu.endpoint), "job 1*~", workspace="ws 1", namespace="ns/é").success
    v2 = client(emu.endpoint, signature_algorithm="v2")
    assert (
        get_job(v2, "job 1*~", workspace="ws 1", namespace="ns/é").data.status.current_job_status
        == "FINISHED"
    )
    wrong = client(emu.endpoint, access_key_secret="not-the-secret")
    code, status, data = failure(lambda: get_job(wrong, "job 1*~", workspace="ws 1", namespace="ns/é"))
    assert (code, status) == ("SignatureDoesNotMatch", 400)
    assert set(data) >= {"RequestId", "Code", "Message"}


# ------------------------------------------------------------------ StartJobWithParams, StopJob


def test_start_job_with_params(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    body = start_job(sdk, restore_strategy=models.DeploymentRestoreStrategy(kind="NONE"))
    assert body.success is True
    job = body.data.job_id
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", job)
    assert (body.data.deployment_id, body.data.workspace, body.data.namespace) == (DEPLOYMENT, WS, NS)
    assert body.data.status.current_job_status == DEFAULT_START_LIFECYCLES[FLINK][0] == "STARTING"
    # no client token: the same request again is a second job
    assert start_job(sdk).data.job_id != job
    assert len(emu.tasks(FLINK)) == 2
    polled = [get_job(sdk, job).data for _ in range(3)]
    assert [j.status.current_job_status for j in polled] == ["STARTING", "RUNNING", "FINISHED"]
    assert polled[0].restore_strategy.kind == "NONE"
    assert polled[-1].end_time is not None

    code, message, _ = refused(start_job(sdk, deployment_id=None))
    assert (code, message) == ("InvalidParameter", "deploymentId is mandatory for this action.")
    assert emu.start_count(FLINK, "StartJobWithParams") == 3
    assert emu.start_count(FLINK, accepted=True) == 2
    with pytest.raises(ValueError, match="no start operation"):
        emu.start_count(FLINK, "GetJob")


def test_stop_job(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    emu.add_flink_job(WS, NS, "j-long", ["STARTING", "RUNNING"])
    assert get_job(sdk, "j-long").data.status.current_job_status == "STARTING"
    body = stop_job(sdk, "j-long")
    assert (body.success, body.data.job_id, body.data.status.current_job_status) == (
        True,
        "j-long",
        "CANCELLING",
    )
    assert stop_job(sdk, "j-long").success is True  # again while cancelling: accepted
    states = [get_job(sdk, "j-long").data for _ in range(3)]
    assert [s.status.current_job_status for s in states] == ["CANCELLING", "CANCELLED", "CANCELLED"]
    assert states[0].end_time is None
    assert states[1].end_time is not None

    # StopJobRequestBody.stopStrategy is required
    assert refused(stop_job(sdk, "j-long", strategy=None))[0] == "InvalidParameter"
    assert refused(stop_job(sdk, "j-long", strategy="SOMEDAY"))[0] == "InvalidParameter"
    # an ended job cannot be stopped; an unknown one is not found
    assert refused(stop_job(sdk, "j-long"))[0] == "Job.StatusNotAllowed"
    emu.add_flink_job(WS, NS, "j-done", ["FINISHED"])
    assert refused(stop_job(sdk, "j-done"))[0] == "Job.StatusNotAllowed"
    assert refused(stop_job(sdk, "j-nope"))[0] == "Job.NotFound"

    ids = {"workspace_id": WS, "namespace": NS, "job_id": "j-long"}
    assert emu.cancel_count(FLINK, **ids) == 5
    assert emu.cancel_count(FLINK, accepted=True, **ids) == 2
    assert emu.cancel_count(FLINK, accepted=True) == 2
    assert emu.request_count(FLINK, **ids) == 4  # cancels are not status polls


# ------------------------------------------------------------------- the package against the SDK


def _shape(head: bytes, body: bytes) -> tuple[str, dict[str, str], bytes]:
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return lines[0], headers, body


def _signed(headers: dict[str, str]) -> list[str]:
    return headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")


def _capture(make_conn: Callable[..., str], answer: bytes, calls: Callable[[Any, str], None]) -> list[bytes]:
    """Run ``calls(hook_conn, server_host)`` against a loopback server that records requests."""
    from test_hostile_input import HostileServer

    received: list[bytes] = []

    def respond(data: bytes) -> list[bytes]:
        received.append(data)
        head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(
            answer
        )
        return [head + answer]

    capture = HostileServer()
    capture.responder = respond
    try:
        conn = make_conn("aliyun_capture", flink_job_endpoint=capture.url, max_retries=0)
        calls(conn, capture.url.removeprefix("http://"))
    finally:
        capture.stop()
    return received


def test_requests_are_the_sdks(make_conn: Callable[..., str]) -> None:
    """What the official SDK and the hook send for GetJob and StopJob, side by side on a loopback
    server: the workspace header, the encoded colon, StopJob's JSON body."""
    answer = b'{"requestId":"R-1","success":true,"httpCode":200,"data":{"jobId":"j-9","status":{"currentJobStatus":"RUNNING"}}}'
    ids = {"workspace_id": WS, "namespace": NS, "job_id": "j-9"}

    def calls(conn: str, host: str) -> None:
        sdk = client(host)
        get_job(sdk, "j-9")
        hook = AlibabaCloudTasksHook(conn)
        assert hook.get_task_status(FLINK, **ids).state == RUNNING
        stop_job(sdk, "j-9")
        assert hook.cancel_task(FLINK, **ids)["success"] is True

    received = _capture(make_conn, answer, calls)
    get_sdk, get_ours, stop_sdk, stop_ours = (_shape(*data.split(b"\r\n\r\n", 1)) for data in received)
    assert get_sdk[0] == get_ours[0] == f"GET /api/v2/namespaces/{NS}/jobs/j-9 HTTP/1.1"
    assert stop_sdk[0] == stop_ours[0] == f"POST /api/v2/namespaces/{NS}/jobs/j-9%3Astop HTTP/1.1"
    assert stop_sdk[2] == stop_ours[2] == b'{"stopStrategy":"NONE"}'
    for (_, theirs, _), (_, ours, _) in ((get_sdk, get_ours), (stop_sdk, stop_ours)):
        assert theirs["workspace"] == ours["workspace"] == WS
        for name in ("x-acs-action", "x-acs-version", "x-acs-content-sha256"):
            assert theirs[name] == ours[name], name
        # the SDK signs the workspace header, the package sends it unsigned: ACS3 verifies the
        # headers the request lists as signed, so both are valid (the emulator checks both)
        assert "workspace" in _signed(theirs)
        assert "workspace" not in _signed(ours)
    assert stop_sdk[1]["content-type"].startswith("application/json")
    assert stop_ours[1]["content-type"].startswith("application/json")


def test_start_request_is_the_sdks(make_conn: Callable[..., str]) -> None:
    """StartJobWithParams as the SDK sends it and as ``call_api`` does with the service's shape."""
    answer = b'{"requestId":"R-2","success":true,"httpCode":200,"data":{"jobId":"j-new"}}'
    body = {"deploymentId": DEPLOYMENT}

    def calls(conn: str, host: str) -> None:
        start_job(client(host))
        AlibabaCloudTasksHook(conn).call_api(
            "StartJobWithParams",
            "2022-07-18",
            service=FLINK,
            path=f"/api/v2/namespaces/{NS}/jobs:start",
            headers={"workspace": WS},
            body=body,
            retries=False,
        )

    theirs, ours = (_shape(*data.split(b"\r\n\r\n", 1)) for data in _capture(make_conn, answer, calls))
    assert theirs[0] == ours[0] == f"POST /api/v2/namespaces/{NS}/jobs%3Astart HTTP/1.1"
    # the SDK's model always adds its (empty) list of variables; the hook sends the body given
    assert json.loads(theirs[2]) == {**body, "localVariables": []}
    assert ours[2] == b'{"deploymentId":"58718c99-3b29-4c5e-93bb-c9fc4ec61234"}'
    assert ours[1]["content-type"] == theirs[1]["content-type"] == "application/json; charset=utf-8"
    assert theirs[1]["workspace"] == ours[1]["workspace"] == WS


def test_hook_reads_jobs_sync_and_async(emulator: Emulator, make_conn: Callable[..., str]) -> None:
    conn = make_conn()
    emulator.add_flink_job(WS, NS, "j-ok", ["STARTING", "FINISHED"])
    emulator.add_flink_job(WS, NS, "j-bad", ["FAILED"], failure_reason="JobFailed", failure_message="OOM")
    emulator.add_flink_job(WS, NS, "j-stop", ["CANCELLED"])
    emulator.add_flink_job(WS, NS, "j-stream", ["RUNNING"], execution_mode="STREAM")
    hook = AlibabaCloudTasksHook(conn)
    first = hook.get_task_status(FLINK, workspace_id=WS, namespace=NS, job_id="j-ok")
    assert (first.service, first.state, first.raw_status, first.ids) == (
        FLINK,
        RUNNING,
        "STARTING",
        {"workspace_id": WS, "namespace": NS, "job_id": "j-ok"},
    )

    async def poll() -> Any:
        try:
            return await AlibabaCloudTasksHook(conn).aget_task_status(
                FLINK, workspace_id=WS, namespace=NS, job_id="j-ok"
            )
        finally:
            await aclose_shared_client()

    second = asyncio.run(poll())
    assert (second.state, second.raw_status, second.message) == (SUCCEEDED, "FINISHED", None)
    assert second.raw["data"]["jobId"] == "j-ok"
    assert second.request_id
    failed = hook.get_task_status(FLINK, workspace_id=WS, namespace=NS, job_id="j-bad")
    assert (failed.state, failed.message) == (FAILED, "JobFailed: OOM")
    stopped = hook.get_task_status(FLINK, workspace_id=WS, namespace=NS, job_id="j-stop")
    assert stopped.state == CANCELLED
    # a streaming job RUNNING is running: it would only end by stopping or failing
    stream = hook.get_task_status(FLINK, workspace_id=WS, namespace=NS, job_id="j-stream")
    assert (stream.state, stream.raw["data"]["executionMode"]) == (RUNNING, "STREAM")
    # an error inside an HTTP 200 answer is judged by its code
    with pytest.raises(NotFoundError, match=r"HTTP 200 Job\.NotFound") as info:
        hook.get_task_status(FLINK, workspace_id=WS, namespace=NS, job_id="j-missing")
    assert info.value.request_id
    with pytest.raises(ApiError, match=r"InvalidParameter\.Workspace"):
        hook.call_api(
            "GetJob", "2022-07-18", service=FLINK, method="GET", path=f"/api/v2/namespaces/{NS}/jobs/j-ok"
        )


def test_hook_cancel_and_its_refusals(emulator: Emulator, make_conn: Callable[..., str]) -> None:
    hook = AlibabaCloudTasksHook(make_conn())
    emulator.add_flink_job(WS, NS, "j-c", ["RUNNING"])
    ids = {"workspace_id": WS, "namespace": NS, "job_id": "j-c"}
    answer = hook.cancel_task(FLINK, **ids)
    assert (answer["success"], answer["data"]["status"]["currentJobStatus"]) == (True, "CANCELLING")
    assert hook.get_task_status(FLINK, **ids).raw_status == "CANCELLING"
    assert hook.get_task_status(FLINK, **ids).state == CANCELLED
    with pytest.raises(ApiError, match=r"Job\.StatusNotAllowed"):
        hook.cancel_task(FLINK, **ids)
    # the emulator holds callers to the SDK's request: StopJob needs its stopStrategy
    with pytest.raises(ApiError, match="InvalidParameter"):
        hook.call_api(
            "StopJob",
            "2022-07-18",
            service=FLINK,
            path=f"/api/v2/namespaces/{NS}/jobs/j-c:stop",
            headers={"workspace": WS},
            body={},
        )
    assert emulator.cancel_count(FLINK, accepted=True, **ids) == 1


def test_envelope_errors_are_judged_by_code(emulator: Emulator, make_conn: Callable[..., str]) -> None:
    """The package's reading of the HTTP 200 envelope against the emulator's error bodies."""
    from airflow_aliyun_tasks.testing._base import envelope_error
    from airflow_aliyun_tasks.testing._flink_job import SERVICE

    hook = AlibabaCloudTasksHook(make_conn(max_retries=0))
    ids = {"workspace_id": WS, "namespace": NS, "job_id": "j-env"}
    emulator.add_flink_job(WS, NS, "j-env", ["RUNNING"])
    (get_op,) = SERVICE.ops_of_kind("status")
    original = get_op.handler
    replies = iter(
        [
            envelope_error("Throttling.User", "Request was denied due to user flow control.", "R-1"),
            envelope_error(
                "NoPermission", "denied", "R-2", accessDeniedDetail='{"AuthAction":"stream:GetJob"}'
            ),
            envelope_error("990301", "the job is busy", "R-3"),
        ]
    )
    object.__setattr__(get_op, "handler", lambda emu, call: next(replies))
    try:
        with pytest.raises(ThrottledError):
            hook.get_task_status(FLINK, **ids)
        with pytest.raises(PermissionDeniedError, match="NoPermission"):
            hook.get_task_status(FLINK, **ids)
        with pytest.raises(ApiError, match="990301") as info:
            hook.get_task_status(FLINK, **ids)
        assert type(info.value) is ApiError
        assert info.value.request_id == "R-3"
    finally:
        object.__setattr__(get_op, "handler", original)


# -------------------------------------------------------------------------------------- faults


def test_faults_aimed_at_a_job(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    emu.add_flink_job(WS, NS, "j-a", ["RUNNING", "FINISHED"])
    emu.add_flink_job(WS, NS, "j-b", ["RUNNING", "FINISHED"])
    emu.inject_fault("503", service=FLINK, task="j-b")
    assert get_job(sdk, "j-a").data.status.current_job_status == "RUNNING"
    code, status, data = failure(lambda: get_job(sdk, "j-b", runtime=NO_RETRY))
    assert (code, status) == ("ServiceUnavailable", 503)
    assert data["Recommend"].endswith(data["RequestId"])
    assert get_job(sdk, "j-b").data.status.current_job_status == "RUNNING"  # the fault hid the poll
    assert emu.fault_counts == {"503": 1}
    assert emu.poll_count(FLINK, workspace_id=WS, namespace=NS, job_id="j-b") == 1


def test_a_lost_start_answer_and_a_blind_retry_make_two_jobs(emu: Emulator) -> None:
    """Why the operator sends StartJobWithParams once: without a client token, a retry after a
    lost answer starts a second job."""
    sdk = client(emu.endpoint)
    emu.inject_fault("drop_after_accept", service=FLINK)
    with pytest.raises(UnretryableException):
        start_job(sdk, runtime=NO_RETRY)
    assert len(emu.tasks(FLINK)) == 1
    start_job(sdk, runtime=NO_RETRY)
    assert len(emu.tasks(FLINK)) == 2
    assert (emu.start_count(FLINK), emu.start_count(FLINK, accepted=True)) == (2, 2)


# ---------------------------------------------------------------------------------- control API


def test_control_api_scripts_jobs_and_reports_the_counters(emu: Emulator) -> None:
    base = emu.url + "/_emulator"
    created = httpx.post(
        f"{base}/tasks",
        json={
            "service": FLINK,
            "workspace_id": WS,
            "namespace": NS,
            "job_id": "j-c",
            "statuses": ["RUNNING"],
        },
    )
    assert created.status_code == 201
    assert created.json()["tasks"] == [
        {"service": FLINK, "ids": {"workspace_id": WS, "namespace": NS, "job_id": "j-c"}}
    ]
    lifecycle = httpx.post(
        f"{base}/start_lifecycle", json={"service": FLINK, "statuses": ["RUNNING", "FAILED"]}
    )
    assert lifecycle.status_code == 200

    sdk = client(emu.endpoint)
    job = start_job(sdk).data.job_id
    assert [get_job(sdk, job).data.status.current_job_status for _ in range(2)] == ["RUNNING", "FAILED"]
    stop_job(sdk, "j-c")

    stats = httpx.get(f"{base}/stats").json()
    assert stats["requests"][FLINK] == 4
    assert {"service": FLINK, "action": "StartJobWithParams", "requests": 1, "accepted": 1} in stats["starts"]
    assert stats["cancels"] == [
        {
            "service": FLINK,
            "ids": {"workspace_id": WS, "namespace": NS, "job_id": "j-c"},
            "requests": 1,
            "accepted": 1,
        }
    ]
    assert httpx.post(f"{base}/reset").status_code == 200
    assert emu.start_lifecycles[FLINK] == DEFAULT_START_LIFECYCLES[FLINK]
