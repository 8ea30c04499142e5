"""PAI DLC in the emulator and through the hook, over real HTTP: the official SDK client (GetJob,
CreateJob, StopJob) against the emulator, the job states the wait ends on (the ``*Reserving``
ones included), the cancel request's bytes next to the SDK's, faults and the control API."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from alibabacloud_pai_dlc20201203 import models
from alibabacloud_pai_dlc20201203.client import Client
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

DLC = "pai_dlc"
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


def get_job(sdk: Client, job_id: str, **request: Any) -> models.GetJobResponseBody:
    body: models.GetJobResponseBody = sdk.get_job(job_id, models.GetJobRequest(**request)).body
    return body


def create_job(sdk: Client, **overrides: Any) -> str:
    request: dict[str, Any] = {
        "display_name": "train-mnist",
        "job_type": "PyTorchJob",
        "user_command": "python /root/code/mnist.py",
        "workspace_id": "1234",
        "job_specs": [
            models.JobSpec(type="Worker", image="pytorch:2.1", pod_count=2, ecs_spec="ecs.g6.xlarge")
        ],
    }
    request.update(overrides)
    body = sdk.create_job(models.CreateJobRequest(**request)).body
    assert body.request_id
    job: str = body.job_id
    return job


def stop_job(sdk: Client, job_id: str) -> models.StopJobResponseBody:
    body: models.StopJobResponseBody = sdk.stop_job(job_id).body
    return body


def failure(call: Callable[[], Any]) -> tuple[str, int, dict[str, Any]]:
    """Run an official-SDK call that must fail; return (code, http status, error data)."""
    try:
        call()
    except Exception as exc:  # the SDK raises ClientException / ServerException
        return str(getattr(exc, "code", "")), int(getattr(exc, "status_code", 0) or 0), dict(exc.data or {})  # type: ignore[attr-defined]
    raise AssertionError("the SDK call succeeded")


# ---------------------------------------------------------------------------------------- GetJob


def test_official_sdk_walks_a_scripted_job(emu: Emulator) -> None:
    emu.add_pai_dlc_job(
        "dlc1a2b3c4d5e6f",
        ["Creating", "Queuing", "Running", "FailedReserving", "Failed"],
        reason_code="JobFailed",
        reason_message="worker-0 exited with code 137",
        fields={"DisplayName": "train-mnist", "WorkspaceId": "1234"},
    )
    sdk = client(emu.endpoint)
    jobs = [get_job(sdk, "dlc1a2b3c4d5e6f") for _ in range(6)]
    assert [j.status for j in jobs] == [
        "Creating",
        "Queuing",
        "Running",
        "FailedReserving",
        "Failed",
        "Failed",
    ]
    first, queued, running, reserving, last = jobs[0], jobs[1], jobs[2], jobs[3], jobs[-1]
    assert (first.job_id, first.display_name, first.workspace_id, first.job_type) == (
        "dlc1a2b3c4d5e6f",
        "train-mnist",
        "1234",
        "PyTorchJob",
    )
    assert first.request_id
    assert first.gmt_create_time.endswith("Z")
    assert first.gmt_finish_time is None
    assert first.gmt_running_time is None
    assert (queued.reason_code, queued.reason_message) == (
        "JobEnqueued",
        "Job is enqueued and waiting for resources.",
    )
    assert running.gmt_running_time is not None
    # The job's work is over while it keeps its nodes: it has ended, with the scripted reason.
    assert reserving.gmt_finish_time is not None
    assert (reserving.reason_code, reserving.reason_message) == ("JobFailed", "worker-0 exited with code 137")
    assert last.gmt_failed_time == last.gmt_finish_time == reserving.gmt_finish_time
    assert isinstance(last.duration, int)
    assert last.job_specs[0].type == "Worker"
    assert emu.poll_count(DLC, job_id="dlc1a2b3c4d5e6f") == 6
    assert emu.request_count(DLC, job_id="dlc1a2b3c4d5e6f") == 6
    assert emu.request_count(DLC) == emu.request_count() == 6

    # NeedDetail is accepted (and changes nothing in the emulator)
    assert get_job(sdk, "dlc1a2b3c4d5e6f", need_detail=False).status == "Failed"


def test_unknown_job(emu: Emulator) -> None:
    code, status, data = failure(lambda: get_job(client(emu.endpoint), "dlc-nope"))
    assert (code, status) == ("InvalidJob.NotFound", 404)
    assert set(data) >= {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert emu.request_count(DLC, job_id="dlc-nope") == 1


def test_ids_that_need_encoding_and_the_legacy_roa_signature(emu: Emulator) -> None:
    """The emulator's own canonicalization agrees with the official signers (V3 and ROA v2)."""
    emu.add_pai_dlc_job("dlc 1*~/é", ["Running", "Succeeded"])
    assert get_job(client(emu.endpoint), "dlc 1*~/é").status == "Running"
    assert get_job(client(emu.endpoint, signature_algorithm="v2"), "dlc 1*~/é").status == "Succeeded"
    wrong = client(emu.endpoint, access_key_secret="not-the-secret")
    code, status, _ = failure(lambda: get_job(wrong, "dlc 1*~/é"))
    assert (code, status) == ("SignatureDoesNotMatch", 400)


# -------------------------------------------------------------------------- CreateJob, StopJob


def test_create_job(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    job = create_job(sdk, envs={"EPOCHS": "3"})
    assert re.fullmatch(r"dlc[0-9a-f]{14}", job)
    # no client token: the same request again is a second job
    assert create_job(sdk, envs={"EPOCHS": "3"}) != job
    assert len(emu.tasks(DLC)) == 2
    created = get_job(sdk, job)
    assert (created.display_name, created.job_type, created.workspace_id, created.user_command) == (
        "train-mnist",
        "PyTorchJob",
        "1234",
        "python /root/code/mnist.py",
    )
    assert created.envs == {"EPOCHS": "3"}
    assert (created.job_specs[0].pod_count, created.job_specs[0].image) == (2, "pytorch:2.1")
    assert created.status == DEFAULT_START_LIFECYCLES[DLC][0] == "Creating"
    assert [get_job(sdk, job).status for _ in range(3)] == ["Queuing", "Running", "Succeeded"]

    # the fields the SDK's model calls required
    for missing in ("display_name", "job_type", "user_command", "job_specs"):
        code, status, _ = failure(lambda m=missing: create_job(sdk, **{m: None}))
        assert (code, status) == ("InvalidParameter", 400), missing
    assert emu.start_count(DLC, "CreateJob") == 6
    assert emu.start_count(DLC, accepted=True) == 2
    with pytest.raises(ValueError, match="no start operation"):
        emu.start_count(DLC, "GetJob")


def test_stop_job(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    emu.add_pai_dlc_job("dlc-long", ["Queuing", "Running"])
    assert get_job(sdk, "dlc-long").status == "Queuing"
    body = stop_job(sdk, "dlc-long")
    assert (body.job_id, bool(body.request_id)) == ("dlc-long", True)
    assert stop_job(sdk, "dlc-long").job_id == "dlc-long"  # again while stopping: accepted
    states = [get_job(sdk, "dlc-long") for _ in range(3)]
    assert [s.status for s in states] == ["Stopping", "Stopped", "Stopped"]
    assert states[0].gmt_finish_time is None
    assert states[1].gmt_stopped_time == states[1].gmt_finish_time is not None
    assert (states[1].reason_code, states[1].reason_message) == (
        "JobStoppedByUser",
        "Job is stopped by user.",
    )

    # an ended job cannot be stopped; an unknown one is not found
    assert failure(lambda: stop_job(sdk, "dlc-long"))[:2] == ("InvalidJobStatus", 400)
    emu.add_pai_dlc_job("dlc-done", ["Succeeded"])
    assert failure(lambda: stop_job(sdk, "dlc-done"))[:2] == ("InvalidJobStatus", 400)
    assert failure(lambda: stop_job(sdk, "dlc-nope"))[:2] == ("InvalidJob.NotFound", 404)

    # a job that ended and keeps its nodes gives them up: it reports its final state next
    emu.add_pai_dlc_job("dlc-kept", ["SucceededReserving"])
    assert get_job(sdk, "dlc-kept").status == "SucceededReserving"
    stop_job(sdk, "dlc-kept")
    assert get_job(sdk, "dlc-kept").status == "Succeeded"

    assert emu.cancel_count(DLC, job_id="dlc-long") == 3
    assert emu.cancel_count(DLC, job_id="dlc-long", accepted=True) == 2
    assert emu.cancel_count() == 6
    assert emu.cancel_count(DLC, accepted=True) == 3
    assert emu.request_count(DLC, job_id="dlc-long") == 4  # cancels are not status polls


# ------------------------------------------------------------------- the package against the SDK


def _shape(head: bytes, body: bytes) -> tuple[str, dict[str, str], bytes]:
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return lines[0], headers, body


def test_stop_job_request_is_the_sdks_no_body_no_query(make_conn: Callable[..., str]) -> None:
    """What the official SDK and the hook send for StopJob, side by side on a loopback server."""
    from test_hostile_input import HostileServer

    received: list[bytes] = []
    answer = b'{"JobId":"dlc-1","RequestId":"R-1"}'

    def respond(data: bytes) -> list[bytes]:
        received.append(data)
        head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(
            answer
        )
        return [head + answer]

    capture = HostileServer()
    capture.responder = respond
    try:
        stop_job(client(capture.url.removeprefix("http://")), "dlc-9")
        conn = make_conn("aliyun_capture", pai_dlc_endpoint=capture.url, max_retries=0)
        assert AlibabaCloudTasksHook(conn).cancel_task(DLC, job_id="dlc-9") == {
            "JobId": "dlc-1",
            "RequestId": "R-1",
        }
    finally:
        capture.stop()
    (theirs_line, theirs, theirs_body), (ours_line, ours, ours_body) = (
        _shape(*data.split(b"\r\n\r\n", 1)) for data in received
    )
    assert theirs_line == ours_line == "POST /api/v1/jobs/dlc-9/stop HTTP/1.1"
    assert theirs_body == ours_body == b""
    assert "content-type" not in theirs
    assert "content-type" not in ours
    assert ours["content-length"] == theirs["content-length"] == "0"
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # SHA-256 of b""
    assert theirs["x-acs-content-sha256"] == ours["x-acs-content-sha256"] == empty
    for name in ("x-acs-action", "x-acs-version"):
        assert theirs[name] == ours[name]


def test_stop_job_with_a_body_is_refused(emulator: Emulator, make_conn: Callable[..., str]) -> None:
    """The emulator holds callers to the SDK's request: StopJob carries no body."""
    emulator.add_pai_dlc_job("dlc-b", ["Running"])
    hook = AlibabaCloudTasksHook(make_conn())
    with pytest.raises(ApiError, match="InvalidParameter"):
        hook.call_api("StopJob", "2020-12-03", service=DLC, path="/api/v1/jobs/dlc-b/stop", body={})
    assert emulator.cancel_count(DLC, job_id="dlc-b", accepted=True) == 0
    hook.cancel_task(DLC, job_id="dlc-b")
    assert emulator.cancel_count(DLC, job_id="dlc-b", accepted=True) == 1


def test_hook_reads_jobs_sync_and_async(emulator: Emulator, make_conn: Callable[..., str]) -> None:
    conn = make_conn()
    emulator.add_pai_dlc_job("dlc-ok", ["Queuing", "SucceededReserving", "Succeeded"])
    emulator.add_pai_dlc_job(
        "dlc-bad", ["FailedReserving"], reason_code="JobFailed", reason_message="OOM on worker-0"
    )
    emulator.add_pai_dlc_job("dlc-stop", ["Stopped"])
    hook = AlibabaCloudTasksHook(conn)
    first = hook.get_task_status(DLC, job_id="dlc-ok")
    assert (first.service, first.state, first.raw_status, first.ids) == (
        DLC,
        RUNNING,
        "Queuing",
        {"job_id": "dlc-ok"},
    )
    assert first.message == "Job is enqueued and waiting for resources."
    assert first.error_code is None

    async def poll() -> Any:
        try:
            return await AlibabaCloudTasksHook(conn).aget_task_status(DLC, job_id="dlc-ok")
        finally:
            await aclose_shared_client()

    second = asyncio.run(poll())
    assert (second.state, second.raw_status, second.message) == (SUCCEEDED, "SucceededReserving", None)
    assert second.raw["JobId"] == "dlc-ok"
    assert second.request_id
    failed = hook.get_task_status(DLC, job_id="dlc-bad")
    assert (failed.state, failed.error_code, failed.message) == (FAILED, "JobFailed", "OOM on worker-0")
    stopped = hook.get_task_status(DLC, job_id="dlc-stop")
    assert (stopped.state, stopped.error_code) == (CANCELLED, "JobStoppedByUser")
    with pytest.raises(NotFoundError):
        hook.get_task_status(DLC, job_id="dlc-missing")


# -------------------------------------------------------------------------------------- faults


def test_faults_aimed_at_a_job(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    emu.add_pai_dlc_job("dlc-a", ["Running", "Succeeded"])
    emu.add_pai_dlc_job("dlc-b", ["Running", "Succeeded"])
    emu.inject_fault("503", service=DLC, task="dlc-b")
    assert get_job(sdk, "dlc-a").status == "Running"
    code, status, data = failure(
        lambda: sdk.get_job_with_options("dlc-b", models.GetJobRequest(), {}, NO_RETRY)
    )
    assert (code, status) == ("ServiceUnavailable", 503)
    assert data["Recommend"].endswith(data["RequestId"])
    assert get_job(sdk, "dlc-b").status == "Running"  # the fault hid the poll: no step
    assert emu.fault_counts == {"503": 1}
    assert emu.poll_count(DLC, job_id="dlc-b") == 1


def test_a_lost_create_answer_and_a_blind_retry_make_two_jobs(emu: Emulator) -> None:
    """Why the operator sends CreateJob once: without a client token, a retry after a lost
    answer creates a second job."""
    sdk = client(emu.endpoint)
    emu.inject_fault("drop_after_accept", service=DLC)
    request = models.CreateJobRequest(
        display_name="n",
        job_type="PyTorchJob",
        user_command="echo",
        job_specs=[models.JobSpec(type="Worker")],
    )
    with pytest.raises(UnretryableException):
        sdk.create_job_with_options(request, {}, NO_RETRY)
    assert len(emu.tasks(DLC)) == 1
    sdk.create_job_with_options(request, {}, NO_RETRY)
    assert len(emu.tasks(DLC)) == 2
    assert (emu.start_count(DLC), emu.start_count(DLC, accepted=True)) == (2, 2)


# ---------------------------------------------------------------------------------- control API


def test_control_api_scripts_jobs_and_reports_the_counters(emu: Emulator) -> None:
    base = emu.url + "/_emulator"
    created = httpx.post(
        f"{base}/tasks", json={"service": DLC, "job_id": "dlc-c", "statuses": ["Running", "Succeeded"]}
    )
    assert created.status_code == 201
    assert created.json()["tasks"] == [{"service": DLC, "ids": {"job_id": "dlc-c"}}]
    lifecycle = httpx.post(
        f"{base}/start_lifecycle", json={"service": DLC, "statuses": ["Queuing", "Failed"]}
    )
    assert lifecycle.status_code == 200

    sdk = client(emu.endpoint)
    job = create_job(sdk)
    assert [get_job(sdk, job).status for _ in range(2)] == ["Queuing", "Failed"]
    stop_job(sdk, "dlc-c")

    stats = httpx.get(f"{base}/stats").json()
    assert stats["requests"][DLC] == 4
    assert {"service": DLC, "action": "CreateJob", "requests": 1, "accepted": 1} in stats["starts"]
    assert stats["cancels"] == [{"service": DLC, "ids": {"job_id": "dlc-c"}, "requests": 1, "accepted": 1}]
    assert httpx.post(f"{base}/reset").status_code == 200
    assert emu.start_lifecycles[DLC] == DEFAULT_START_LIFECYCLES[DLC]
