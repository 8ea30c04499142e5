"""EMR Serverless Spark in the emulator, over real HTTP: the official SDK client (GetJobRun,
StartJobRun, CancelJobRun), client tokens, cancellation, the start and cancel counters, faults
aimed at job runs and the fault that loses a start's answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alibabacloud_emr_serverless_spark20230808 import models
from alibabacloud_emr_serverless_spark20230808.client import Client
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.exceptions import UnretryableException
from darabonba.runtime import RuntimeOptions

from airflow_aliyun_tasks.testing import (
    ALL_SERVICES,
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_START_LIFECYCLES,
    SERVICES,
    Emulator,
)

EMR = "emr_serverless_spark"
WS = "w-d2d82aa09151"
REGION = "cn-hangzhou"


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def emu(server: Emulator) -> Iterator[Emulator]:
    server.reset()
    yield server
    server.reset()


def client(emu: Emulator, **config: Any) -> Client:
    config.setdefault("access_key_id", DEFAULT_ACCESS_KEY_ID)
    config.setdefault("access_key_secret", DEFAULT_ACCESS_KEY_SECRET)
    return Client(Config(endpoint=emu.endpoint, protocol="http", region_id=REGION, **config))


def get_run(sdk: Client, workspace: str, run: str) -> models.GetJobRunResponseBodyJobRun:
    job_run: models.GetJobRunResponseBodyJobRun = sdk.get_job_run(
        workspace, run, models.GetJobRunRequest(region_id=REGION)
    ).body.job_run
    return job_run


def start(sdk: Client, workspace: str = WS, **request: Any) -> str:
    body = sdk.start_job_run(workspace, models.StartJobRunRequest(region_id=REGION, **request)).body
    assert body.request_id
    run: str = body.job_run_id
    return run


def cancel(sdk: Client, run: str, workspace: str = WS) -> models.CancelJobRunResponseBody:
    body: models.CancelJobRunResponseBody = sdk.cancel_job_run(
        workspace, run, models.CancelJobRunRequest(region_id=REGION)
    ).body
    return body


def failure(call: Any) -> tuple[str, int, dict[str, Any]]:
    """Run an official-SDK call that must fail; return (code, http status, error data)."""
    try:
        call()
    except Exception as exc:  # the SDK raises ClientException / ServerException
        return str(getattr(exc, "code", "")), int(getattr(exc, "status_code", 0) or 0), dict(exc.data or {})  # type: ignore[attr-defined]
    raise AssertionError("the SDK call succeeded")


# ------------------------------------------------------------------------------------ GetJobRun


def test_official_sdk_walks_a_scripted_job_run(emu: Emulator) -> None:
    emu.add_emr_serverless_spark_job_run(
        WS,
        "jr-93d98d2f7061",
        ["Submitted", "Pending", "Running", "Failed"],
        state_change_reason_code="ERR-100000",
        state_change_reason_message="connection refused",
        fields={"name": "nightly-etl", "codeType": "SQL"},
    )
    sdk = client(emu)
    runs = [get_run(sdk, WS, "jr-93d98d2f7061") for _ in range(5)]
    assert [r.state for r in runs] == ["Submitted", "Pending", "Running", "Failed", "Failed"]
    first, last = runs[0], runs[-1]
    assert (first.job_run_id, first.workspace_id, first.name, first.code_type) == (
        "jr-93d98d2f7061",
        WS,
        "nightly-etl",
        "SQL",
    )
    assert first.end_time is None
    assert first.state_change_reason is None
    assert first.submit_time == last.submit_time > 1_600_000_000_000  # epoch milliseconds
    assert last.end_time >= last.submit_time
    assert (last.state_change_reason.code, last.state_change_reason.message) == (
        "ERR-100000",
        "connection refused",
    )
    assert last.resource_queue_id
    assert last.web_ui
    assert last.log.driver_std_out
    assert emu.poll_count(EMR, workspace_id=WS, job_run_id="jr-93d98d2f7061") == 5
    assert emu.request_count(EMR, workspace_id=WS, job_run_id="jr-93d98d2f7061", region_id=REGION) == 5
    assert emu.request_count(EMR) == emu.request_count() == 5

    # a failed run without a scripted reason still says why; a successful one says nothing
    emu.add_task(EMR, workspace_id=WS, job_run_id="jr-f", statuses=["Failed"])
    emu.add_task(EMR, workspace_id=WS, job_run_id="jr-s", states=["Success"])
    assert get_run(sdk, WS, "jr-f").state_change_reason.code
    success = get_run(sdk, WS, "jr-s")
    assert (success.state, success.state_change_reason) == ("Success", None)


def test_unknown_job_run_and_workspace(emu: Emulator) -> None:
    emu.add_emr_serverless_spark_job_run(WS, "jr-1")
    sdk = client(emu)
    for workspace, run in ((WS, "jr-nope"), ("w-other", "jr-1")):
        code, status, data = failure(lambda w=workspace, r=run: get_run(sdk, w, r))
        assert (code, status) == ("InvalidJobRun.NotFound", 404)
        assert set(data) >= {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert emu.poll_count(EMR, workspace_id=WS, job_run_id="jr-1") == 0
    assert emu.request_count(EMR, workspace_id=WS, job_run_id="jr-nope") == 1


def test_ids_that_need_encoding_and_the_legacy_roa_signature(emu: Emulator) -> None:
    """The emulator's own canonicalization agrees with the official signers (V3 and ROA v2)."""
    emu.add_emr_serverless_spark_job_run("w 1*~", "jr/1+é", ["Running", "Success"])
    assert get_run(client(emu), "w 1*~", "jr/1+é").state == "Running"
    assert get_run(client(emu, signature_algorithm="v2"), "w 1*~", "jr/1+é").state == "Success"
    wrong = client(emu, access_key_secret="not-the-secret")
    code, status, data = failure(lambda: get_run(wrong, "w 1*~", "jr/1+é"))
    assert (code, status) == ("SignatureDoesNotMatch", 400)
    assert data["Message"].split("server string to sign is:", 1)[1].startswith("ACS3-HMAC-SHA256\n")


# ------------------------------------------------------------------------- StartJobRun, cancel


def test_start_job_run_with_a_client_token(emu: Emulator) -> None:
    sdk = client(emu)
    driver = models.JobDriver(
        spark_submit=models.JobDriverSparkSubmit(
            entry_point="oss://bucket/etl.py", entry_point_arguments=["--day", "2024-01-01"]
        )
    )
    request = {
        "client_token": "token-1",
        "name": "etl",
        "code_type": "PYTHON",
        "resource_queue_id": "dev_queue",
        "release_version": "esr-4.0.0",
        "job_driver": driver,
    }
    run = start(sdk, **request)
    assert run.startswith("jr-")
    assert start(sdk, **request) == run  # the same token: the same run, nothing new started
    assert start(sdk, workspace="w-other", **request) != run  # tokens are per workspace
    other = start(sdk, name="no-token")
    assert other not in (run, start(sdk, name="no-token"))  # no token: a new run each time
    assert len(emu.tasks(EMR)) == 4

    started = get_run(sdk, WS, run)
    assert (started.name, started.code_type, started.resource_queue_id, started.release_version) == (
        "etl",
        "PYTHON",
        "dev_queue",
        "esr-4.0.0",
    )
    assert started.job_driver.spark_submit.entry_point_arguments == ["--day", "2024-01-01"]
    assert [get_run(sdk, WS, run).state for _ in range(3)] == ["Running", "Success", "Success"]
    assert started.state == DEFAULT_START_LIFECYCLES[EMR][0] == "Submitted"

    assert emu.start_count() == emu.start_count(EMR, "StartJobRun") == 5
    assert emu.start_count(EMR, accepted=True) == 5
    assert emu.start_count("dataworks") == 0
    with pytest.raises(ValueError, match="no start operation"):
        emu.start_count(EMR, "GetJobRun")


def test_cancel_job_run(emu: Emulator) -> None:
    sdk = client(emu)
    emu.add_emr_serverless_spark_job_run(WS, "jr-long", ["Running"])
    assert get_run(sdk, WS, "jr-long").state == "Running"
    body = cancel(sdk, "jr-long")
    assert (body.job_run_id, bool(body.request_id)) == ("jr-long", True)
    assert cancel(sdk, "jr-long").job_run_id == "jr-long"  # again while cancelling: accepted
    states = [get_run(sdk, WS, "jr-long") for _ in range(3)]
    assert [s.state for s in states] == ["Cancelling", "Cancelled", "Cancelled"]
    assert states[0].end_time is None
    assert states[1].end_time is not None

    # an ended run cannot be cancelled; an unknown one is not found
    code, status, _ = failure(lambda: cancel(sdk, "jr-long"))
    assert (code, status) == ("InvalidJobRunState", 400)
    emu.add_emr_serverless_spark_job_run(WS, "jr-done", ["Success"])
    assert failure(lambda: cancel(sdk, "jr-done"))[:2] == ("InvalidJobRunState", 400)
    assert failure(lambda: cancel(sdk, "jr-nope"))[:2] == ("InvalidJobRun.NotFound", 404)

    # a run that was never polled is cancelled from its first state
    run = start(sdk, name="short")
    cancel(sdk, run)
    assert [get_run(sdk, WS, run).state for _ in range(2)] == ["Cancelling", "Cancelled"]

    assert emu.cancel_count(EMR, workspace_id=WS, job_run_id="jr-long") == 3
    assert emu.cancel_count(EMR, workspace_id=WS, job_run_id="jr-long", accepted=True) == 2
    assert emu.cancel_count() == 6
    assert emu.cancel_count(EMR, accepted=True) == 3
    assert emu.cancel_count("dlf") == 0
    # cancels are not status polls
    assert emu.request_count(EMR, workspace_id=WS, job_run_id="jr-long") == 4


# -------------------------------------------------------------------------------------- faults


def test_faults_aimed_at_a_job_run(emu: Emulator) -> None:
    sdk = client(emu)
    emu.add_emr_serverless_spark_job_run(WS, "jr-a", ["Running", "Success"])
    emu.add_emr_serverless_spark_job_run(WS, "jr-b", ["Running", "Success"])
    emu.inject_fault("503", service=EMR, task="jr-b")
    assert get_run(sdk, WS, "jr-a").state == "Running"
    code, status, data = failure(
        lambda: sdk.get_job_run_with_options(
            WS, "jr-b", models.GetJobRunRequest(), {}, RuntimeOptions(autoretry=False, max_attempts=1)
        )
    )
    assert (code, status) == ("ServiceUnavailable", 503)
    assert data["Recommend"].endswith(data["RequestId"])
    assert get_run(sdk, WS, "jr-b").state == "Running"  # the fault hid the poll: no step
    assert emu.fault_counts == {"503": 1}
    assert emu.request_count(EMR, workspace_id=WS, job_run_id="jr-b") == 2
    assert emu.poll_count(EMR, workspace_id=WS, job_run_id="jr-b") == 1


def test_drop_after_accept_loses_the_answer_not_the_run(emu: Emulator) -> None:
    """The lost-response case: StartJobRun takes effect, the client sees a dropped connection;
    a retry with the same client token finds the run instead of starting another."""
    sdk = client(emu)
    emu.inject_fault("drop_after_accept", service=EMR)
    no_retry = RuntimeOptions(autoretry=False, max_attempts=1)
    request = models.StartJobRunRequest(region_id=REGION, client_token="lost-1", name="etl")
    with pytest.raises(UnretryableException):  # the SDK's wrapper of the dropped connection
        sdk.start_job_run_with_options(WS, request, {}, no_retry)
    assert emu.fault_counts == {"drop_after_accept": 1}
    (created,) = emu.tasks(EMR)
    assert (emu.start_count(EMR), emu.start_count(EMR, accepted=True)) == (1, 1)

    assert start(sdk, client_token="lost-1", name="etl") == created["ids"]["job_run_id"]
    assert len(emu.tasks(EMR)) == 1
    assert (emu.start_count(EMR), emu.start_count(EMR, accepted=True)) == (2, 2)

    # other faults reject the start: counted as a start request, not as accepted
    emu.inject_fault("500", service=EMR)
    assert failure(lambda: sdk.start_job_run_with_options(WS, request, {}, no_retry))[:2] == (
        "InternalError",
        500,
    )
    assert (emu.start_count(EMR), emu.start_count(EMR, accepted=True)) == (3, 2)

    # on a status poll the lifecycle moves on, unseen
    emu.add_emr_serverless_spark_job_run(WS, "jr-poll", ["Running", "Success"])
    emu.inject_fault("drop_after_accept", service=EMR, task="jr-poll")
    with pytest.raises(UnretryableException):
        sdk.get_job_run_with_options(WS, "jr-poll", models.GetJobRunRequest(), {}, no_retry)
    assert get_run(sdk, WS, "jr-poll").state == "Success"


def test_service_names() -> None:
    """SERVICES names the four async-task services; ALL_SERVICES adds EMR Serverless Spark and the
    services after it."""
    assert SERVICES == ("dlf", "dataworks", "mma", "pds")
    assert ALL_SERVICES[: len(SERVICES) + 1] == (*SERVICES, EMR)
    assert {"dataworks_workflow", "pai_dlc", "adb_spark"} <= set(ALL_SERVICES)
    assert set(DEFAULT_START_LIFECYCLES) == set(ALL_SERVICES)
    assert ALL_SERVICES[len(SERVICES) :] == (
        EMR,
        "dataworks_workflow",
        "pai_dlc",
        "adb_spark",
        "flink_job",
        "fc_async_task",
    )


# ---------------------------------------------------------------------------------- control API


def test_control_api_scripts_job_runs_and_reports_the_counters(emu: Emulator) -> None:
    base = emu.url + "/_emulator"
    created = httpx.post(
        f"{base}/tasks",
        json={"service": EMR, "workspace_id": WS, "job_run_id": "jr-c", "statuses": ["Running", "Success"]},
    )
    assert created.status_code == 201
    assert created.json()["tasks"] == [{"service": EMR, "ids": {"workspace_id": WS, "job_run_id": "jr-c"}}]
    lifecycle = httpx.post(
        f"{base}/start_lifecycle", json={"service": EMR, "statuses": ["Pending", "Failed"]}
    )
    assert lifecycle.status_code == 200
    assert (
        httpx.post(f"{base}/start_lifecycle", json={"service": "sts", "statuses": ["x"]}).status_code == 400
    )
    assert httpx.post(f"{base}/faults", json={"kind": "drop_after_accept", "service": EMR}).status_code == 200

    sdk = client(emu)
    with pytest.raises(UnretryableException):
        start(sdk, client_token="c-1")
    run = start(sdk, client_token="c-1")
    assert [get_run(sdk, WS, run).state for _ in range(2)] == ["Pending", "Failed"]
    cancel(sdk, "jr-c")

    stats = httpx.get(f"{base}/stats").json()
    assert stats["requests"][EMR] == 5
    assert stats["requests"]["total"] == 5
    assert {"service": EMR, "action": "StartJobRun", "requests": 2, "accepted": 2} in stats["starts"]
    assert {"service": "pds", "action": "ArchiveFiles", "requests": 0, "accepted": 0} in stats["starts"]
    assert stats["cancels"] == [
        {"service": EMR, "ids": {"workspace_id": WS, "job_run_id": "jr-c"}, "requests": 1, "accepted": 1}
    ]
    assert stats["faults"] == {"drop_after_accept": 1}

    assert httpx.post(f"{base}/reset").status_code == 200
    assert (emu.start_count(), emu.cancel_count(), emu.tasks()) == (0, 0, [])
    assert emu.start_lifecycles[EMR] == DEFAULT_START_LIFECYCLES[EMR]
    assert start(sdk, client_token="c-1") != run  # reset forgets client tokens too
