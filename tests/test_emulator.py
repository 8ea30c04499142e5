"""The local Alibaba Cloud emulator (``airflow_aliyun_tasks.testing``), over real HTTP on loopback.

The official SDK clients are pointed at the emulator to prove it is faithful to what real clients
send; raw httpx requests (signed with the package's own signers) cover faults and auth errors.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from alibabacloud_tea_openapi import utils_models as openapi_models
from alibabacloud_tea_openapi.client import Client as OpenApiClient
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.runtime import RuntimeOptions

from airflow_aliyun_tasks import signing
from airflow_aliyun_tasks.testing import (
    ALL_FAULT_KINDS,
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    FAULT_KINDS,
    Emulator,
)

AK, SK = DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
BEARER = "pds-user-access-token-0001"
ROLE_ARN = "acs:ram::1234567890123456:role/airflow-role"


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator(bearer_tokens=[BEARER]) as emu:
        yield emu


@pytest.fixture
def emu(server: Emulator) -> Iterator[Emulator]:
    server.reset()
    server.slow_seconds = 3.0
    yield server
    server.reset()


# ---------------------------------------------------------------------------------------- helpers


def sdk_config(emu: Emulator, **kwargs: Any) -> Config:
    kwargs.setdefault("access_key_id", AK)
    kwargs.setdefault("access_key_secret", SK)
    return Config(endpoint=emu.endpoint, protocol="http", **kwargs)


def sdk_failure(call: Callable[[], object]) -> tuple[str, int, dict[str, Any]]:
    """Run an official-SDK call that must fail; return (code, http status, error data)."""
    try:
        call()
    except Exception as exc:  # the SDKs raise several unrelated exception classes
        inner = getattr(exc, "inner_exception", None) or exc
    else:
        raise AssertionError("the SDK call succeeded")
    data = dict(getattr(inner, "data", None) or {})
    status = getattr(inner, "status_code", None) or data.get("statusCode") or 0
    return str(getattr(inner, "code", "")), int(status), data


def acs3(
    emu: Emulator,
    action: str,
    version: str,
    *,
    method: str = "GET",
    path: str = "/",
    query: dict[str, str] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    ak: str = AK,
    sk: str = SK,
    token: str | None = None,
    when: float | None = None,
    nonce: str | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    """One request signed with the package's ACS3 signer, sent with httpx."""
    headers = signing.acs3_headers(
        method=method,
        host=emu.endpoint,
        pathname=path,
        query=query,
        action=action,
        version=version,
        body=body,
        content_type=content_type,
        access_key_id=ak,
        access_key_secret=sk,
        security_token=token,
        date=signing.format_acs_date(time.time() if when is None else when),
        nonce=nonce or uuid.uuid4().hex,
    )
    url = emu.url + signing.encode_path(path)
    if query:
        url += "?" + signing.canonical_query(query)
    return httpx.request(method, url, headers=headers, content=body, timeout=timeout)


def job_status(emu: Emulator, job_id: str, **kwargs: Any) -> httpx.Response:
    return acs3(emu, "GetJobStatus", "2024-05-18", query={"JobId": job_id}, **kwargs)


def pds_request(
    emu: Emulator,
    payload: dict[str, Any],
    *,
    path: str = "/v2/async_task/get",
    action: str = "GetAsyncTask",
    sk: str = SK,
    when: float | None = None,
    nonce: str | None = None,
    host: str | None = None,
) -> httpx.Response:
    headers = signing.pds_headers(
        method="POST",
        host=host or emu.endpoint,
        pathname=path,
        query=None,
        action=action,
        version="2022-03-01",
        content_type=signing.JSON_CONTENT_TYPE,
        access_key_id=AK,
        access_key_secret=sk,
        security_token=None,
        date=signing.format_http_date(time.time() if when is None else when),
        nonce=nonce or uuid.uuid4().hex,
    )
    return httpx.post(emu.url + path, headers=headers, content=json.dumps(payload).encode(), timeout=10)


def sts_call(emu: Emulator, action: str, query: dict[str, str], config: Config) -> dict[str, Any]:
    """An STS call through the official generic OpenAPI client (no STS SDK package needed)."""
    client = OpenApiClient(config)
    params = openapi_models.Params(
        action=action,
        version="2015-04-01",
        protocol="HTTP",
        pathname="/",
        method="POST",
        auth_type="Anonymous" if action == "AssumeRoleWithOIDC" else "AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    result = client.call_api(params, openapi_models.OpenApiRequest(query=query), RuntimeOptions())
    body: dict[str, Any] = result["body"]
    return body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------- official SDKs walk lifecycles


def test_dlf_official_sdk_walks_lifecycle(emu: Emulator) -> None:
    from alibabacloud_datalake20200710.client import Client
    from alibabacloud_datalake20200710.models import GetAsyncTaskStatusRequest

    # a task id with a space, '*' and '~': the SDK sends '+' for the space and signs '%20'
    emu.add_dlf_task("t 1*~", ["Running", "Running", "Success"], catalog_id="1344371", message="done")
    client = Client(sdk_config(emu))
    seen = []
    for _ in range(4):
        body = client.get_async_task_status(
            GetAsyncTaskStatusRequest(catalog_id="1344371", task_id="t 1*~")
        ).body
        assert body.success is True
        assert body.code == "OK"
        assert body.request_id
        seen.append(body.task_status.status)
    assert seen == ["Running", "Running", "Success", "Success"]
    assert body.task_status.message == "done"
    assert emu.poll_count("dlf", task_id="t 1*~") == 4

    # unknown task (or wrong catalog): DLF's Success=false inside an HTTP 200 body
    for request in (
        GetAsyncTaskStatusRequest(catalog_id="1344371", task_id="nope"),
        GetAsyncTaskStatusRequest(catalog_id="999", task_id="t 1*~"),
    ):
        body = client.get_async_task_status(request).body
        assert body.success is False
        assert body.code == "NoSuchObject"
        assert body.request_id


def test_dataworks_official_sdk_walks_lifecycle(emu: Emulator) -> None:
    from alibabacloud_dataworks_public20240518.client import Client
    from alibabacloud_dataworks_public20240518.models import GetJobStatusRequest

    emu.add_dataworks_job("70ecdaec-bf21", ["Running", "Fail"], error="target folder already exists")
    emu.add_dataworks_job("job-str", ["Success"], create_time_as_string=True, job_type="Update")
    client = Client(sdk_config(emu))
    first = client.get_job_status(GetJobStatusRequest(job_id="70ecdaec-bf21")).body.job_status
    assert (first.status, first.completed, first.job_type) == ("Running", "False", "Create")
    assert first.error is None
    second = client.get_job_status(GetJobStatusRequest(job_id="70ecdaec-bf21")).body.job_status
    assert (second.status, second.completed, second.error) == ("Fail", "True", "target folder already exists")
    assert emu.poll_count("dataworks", job_id="70ecdaec-bf21") == 2

    raw = job_status(emu, "70ecdaec-bf21").json()["JobStatus"]
    assert isinstance(raw["CreateTime"], int)
    assert raw["Completed"] == "True"
    assert raw["Status"] == "Fail"
    raw_str = job_status(emu, "job-str").json()["JobStatus"]
    assert isinstance(raw_str["CreateTime"], str)
    assert raw_str["JobType"] == "Update"

    failure = sdk_failure(lambda: client.get_job_status(GetJobStatusRequest(job_id="missing")))
    assert failure[:2] == ("InvalidJob.NotFound", 404)


def test_mma_official_sdk_walks_lifecycle(emu: Emulator) -> None:
    from alibabacloud_maxcompute20220104.client import Client

    emu.add_mma_task(2000028, 1000286, ["INIT", "DOING", "DONE"], progress=[0, 40, 100])
    client = Client(sdk_config(emu))
    seen = []
    for _ in range(3):
        data = client.get_mms_async_task("2000028", "1000286").body.data
        seen.append((data.status, data.running, data.progress))
    assert seen == [("INIT", True, 0), ("DOING", True, 40), ("DONE", False, 100)]
    assert data.id == 1000286
    assert data.source_id == 2000028
    assert data.result == "null"
    assert data.error_msg == "null"
    assert data.end_time.endswith("\n")
    assert data.create_time.endswith("\n")

    # ids that need percent-encoding in the path, '/' included (the canonical URI keeps %2F)
    emu.add_mma_task("a/b c", "x*y~", ["FAILED"], error_msg="boom")
    data = client.get_mms_async_task("a/b c", "x*y~").body.data
    assert (data.status, data.running, data.error_msg) == ("FAILED", False, "boom")

    code, status, data_ = sdk_failure(lambda: client.get_mms_async_task("1", "2"))
    assert (code, status) == ("NotFound", 404)
    assert "requestId" in data_


def test_pds_official_sdk_walks_lifecycle(emu: Emulator) -> None:
    from alibabacloud_pds20220301.client import Client
    from alibabacloud_pds20220301.models import GetAsyncTaskRequest

    emu.add_pds_task(
        "000e89fb-cf8f",
        ["Running", "Running", "PartialSucceed"],
        total_process=10,
        consumed_process=[2, 6, 10],
        failed_process=1,
        skipped_process=2,
        error_message="1 file failed",
    )
    client = Client(sdk_config(emu))
    seen = []
    for _ in range(3):
        body = client.get_async_task(GetAsyncTaskRequest(async_task_id="000e89fb-cf8f")).body
        seen.append((body.state, body.status, body.consumed_process))
    assert seen == [
        ("Running", "Running", 2),
        ("Running", "Running", 6),
        ("PartialSucceed", "PartialSucceed", 10),
    ]
    assert (body.total_process, body.failed_process, body.skipped_process) == (10, 1, 2)
    assert body.error_message == "1 file failed"
    assert body.finished_at.endswith("Z")

    # a PDS user access token instead of AK signing
    bearer = Client(Config(bearer_token=BEARER, endpoint=emu.endpoint, protocol="http"))
    assert (
        bearer.get_async_task(GetAsyncTaskRequest(async_task_id="000e89fb-cf8f")).body.state
        == "PartialSucceed"
    )
    wrong = Client(Config(bearer_token="nope", endpoint=emu.endpoint, protocol="http"))
    failure = sdk_failure(lambda: wrong.get_async_task(GetAsyncTaskRequest(async_task_id="000e89fb-cf8f")))
    assert failure[:2] == ("AccessTokenInvalid", 401)

    code, status, data = sdk_failure(
        lambda: client.get_async_task(GetAsyncTaskRequest(async_task_id="missing"))
    )
    assert (code, status) == ("NotFound.AsyncTask", 404)
    assert data["requestId"]


@pytest.mark.parametrize("service", ["dataworks", "dlf", "mma"])
def test_official_sdk_legacy_signatures_accepted(emu: Emulator, service: str) -> None:
    """signature_algorithm='v2': RPC V2 (DataWorks) and ROA HMAC-SHA1 (DLF, MMA)."""
    config = sdk_config(emu, signature_algorithm="v2")
    if service == "dataworks":
        from alibabacloud_dataworks_public20240518.client import Client as DataWorks
        from alibabacloud_dataworks_public20240518.models import GetJobStatusRequest

        emu.add_dataworks_job("j", ["Success"])
        assert (
            DataWorks(config).get_job_status(GetJobStatusRequest(job_id="j")).body.job_status.status
            == "Success"
        )
        bad = DataWorks(sdk_config(emu, signature_algorithm="v2", access_key_secret="wrong"))
        code, _, data = sdk_failure(lambda: bad.get_job_status(GetJobStatusRequest(job_id="j")))
        assert code == "SignatureDoesNotMatch"
        assert "GET&%2F&AccessKeyId%3D" in data["Message"]
    elif service == "dlf":
        from alibabacloud_datalake20200710.client import Client as DataLake
        from alibabacloud_datalake20200710.models import GetAsyncTaskStatusRequest

        emu.add_dlf_task("t", ["Success"])
        body = DataLake(config).get_async_task_status(GetAsyncTaskStatusRequest(task_id="t")).body
        assert body.task_status.status == "Success"
    else:
        from alibabacloud_maxcompute20220104.client import Client as MaxCompute

        emu.add_mma_task(7, 8, ["DONE"])
        assert MaxCompute(config).get_mms_async_task("7", "8").body.data.status == "DONE"


def test_start_operations_create_pollable_tasks(emu: Emulator) -> None:
    from alibabacloud_datalake20200710.client import Client as DataLake
    from alibabacloud_datalake20200710.models import DeleteDatabaseRequest, GetAsyncTaskStatusRequest
    from alibabacloud_dataworks_public20240518.client import Client as DataWorks
    from alibabacloud_dataworks_public20240518.models import (
        GetJobStatusRequest,
        ImportWorkflowDefinitionRequest,
    )
    from alibabacloud_maxcompute20220104.client import Client as MaxCompute
    from alibabacloud_maxcompute20220104.models import CreateMmsJobRequest
    from alibabacloud_pds20220301.client import Client as Pds
    from alibabacloud_pds20220301.models import ArchiveFilesRequest, GetAsyncTaskRequest

    emu.start_lifecycles["dataworks"] = ("Running", "Fail")
    dataworks = DataWorks(sdk_config(emu))
    job = dataworks.import_workflow_definition(
        ImportWorkflowDefinitionRequest(
            project_id=123456, spec=json.dumps({"version": "1.1.0", "kind": "CycleWorkflow"})
        )
    ).body.async_job
    assert (job.status, job.completed, job.type) == ("Running", False, "Create")
    statuses = [
        dataworks.get_job_status(GetJobStatusRequest(job_id=job.id)).body.job_status.status for _ in range(2)
    ]
    assert statuses == ["Running", "Fail"]

    pds = Pds(sdk_config(emu))
    started = pds.archive_files(ArchiveFilesRequest(drive_id="1", file_ids=["f1", "f2"], name="a.zip"))
    assert started.status_code == 202
    task_id = started.body.async_task_id
    states = [pds.get_async_task(GetAsyncTaskRequest(async_task_id=task_id)).body for _ in range(3)]
    assert [s.state for s in states] == ["Running", "Running", "Succeed"]
    assert states[-1].total_process == 2
    assert states[-1].consumed_process == 2

    mma = MaxCompute(sdk_config(emu))
    async_id = mma.create_mms_job(
        "2000014", CreateMmsJobRequest(dst_db_name="mms_test", name="m")
    ).body.data.async_task_id
    assert [mma.get_mms_async_task("2000014", str(async_id)).body.data.status for _ in range(3)] == [
        "DOING",
        "DOING",
        "DONE",
    ]

    dlf = DataLake(sdk_config(emu))
    deleted = dlf.delete_database(DeleteDatabaseRequest(async_=True, catalog_id="1344371", name="db1")).body
    assert deleted.success is True
    assert deleted.task_id
    polls = [
        dlf.get_async_task_status(
            GetAsyncTaskStatusRequest(catalog_id="1344371", task_id=deleted.task_id)
        ).body
        for _ in range(3)
    ]
    assert [p.task_status.status for p in polls] == ["Running", "Running", "Success"]
    # every request to a service counts: its start operation and its polls
    assert emu.request_count() == (1 + 2) + (1 + 3) + (1 + 3) + (1 + 3)
    assert emu.request_count("pds") == 4


def test_start_counters_and_the_fault_that_loses_the_answer(emu: Emulator) -> None:
    from alibabacloud_datalake20200710.client import Client as DataLake
    from alibabacloud_datalake20200710.models import DeleteDatabaseRequest
    from alibabacloud_dataworks_public20240518.client import Client as DataWorks
    from alibabacloud_dataworks_public20240518.models import ImportWorkflowDefinitionRequest
    from darabonba.exceptions import UnretryableException

    dataworks = DataWorks(sdk_config(emu))
    request = ImportWorkflowDefinitionRequest(project_id=123456, spec="{}")
    # drop_after_accept: the job is created, the client sees a dropped connection
    emu.inject_fault("drop_after_accept", service="dataworks")
    with pytest.raises(UnretryableException):
        dataworks.import_workflow_definition_with_options(request, RuntimeOptions(autoretry=False))
    assert len(emu.tasks("dataworks")) == 1
    assert emu.fault_counts == {"drop_after_accept": 1}
    dataworks.import_workflow_definition(request)
    assert len(emu.tasks("dataworks")) == 2
    code, _, _ = sdk_failure(
        lambda: dataworks.import_workflow_definition(ImportWorkflowDefinitionRequest(project_id=1))
    )
    assert code == "MissingSpec"
    # DLF rejects inside an HTTP 200 body: not accepted either
    assert DataLake(sdk_config(emu)).delete_database(DeleteDatabaseRequest(async_=True)).body.success is False

    assert emu.start_count() == 4
    assert emu.start_count(accepted=True) == 2
    assert emu.start_count("dataworks", "ImportWorkflowDefinition") == 3
    assert emu.start_count("dataworks", accepted=True) == 2
    assert (emu.start_count("dlf"), emu.start_count("dlf", accepted=True)) == (1, 0)
    assert emu.start_count("pds") == emu.cancel_count() == 0
    with pytest.raises(ValueError, match="no start operation"):
        emu.start_count("dataworks", "GetJobStatus")
    assert {
        "service": "dataworks",
        "action": "ImportWorkflowDefinition",
        "requests": 3,
        "accepted": 2,
    } in emu.stats()["starts"]
    # a fault rate draws drop_after_accept only when asked to
    assert "drop_after_accept" not in FAULT_KINDS
    assert (*FAULT_KINDS, "drop_after_accept") == ALL_FAULT_KINDS


# ----------------------------------------------------------------------------- signature errors


@pytest.mark.parametrize("service", ["dlf", "dataworks", "mma", "pds"])
def test_wrong_secret_gives_signature_mismatch_with_string_to_sign(emu: Emulator, service: str) -> None:
    from alibabacloud_datalake20200710.client import Client as DataLake
    from alibabacloud_datalake20200710.models import GetAsyncTaskStatusRequest
    from alibabacloud_dataworks_public20240518.client import Client as DataWorks
    from alibabacloud_dataworks_public20240518.models import GetJobStatusRequest
    from alibabacloud_maxcompute20220104.client import Client as MaxCompute
    from alibabacloud_pds20220301.client import Client as Pds
    from alibabacloud_pds20220301.models import GetAsyncTaskRequest

    config = sdk_config(emu, access_key_secret="not-the-secret")
    calls = {
        "dlf": lambda: DataLake(config).get_async_task_status(GetAsyncTaskStatusRequest(task_id="t")),
        "dataworks": lambda: DataWorks(config).get_job_status(GetJobStatusRequest(job_id="j")),
        "mma": lambda: MaxCompute(config).get_mms_async_task("1", "2"),
        "pds": lambda: Pds(config).get_async_task(GetAsyncTaskRequest(async_task_id="p")),
    }
    code, status, data = sdk_failure(calls[service])
    assert code == "SignatureDoesNotMatch"
    assert status == (403 if service == "pds" else 400)
    message = data["Message"]
    assert message.startswith(
        "Specified signature is not matched with our calculation. server string to sign is:"
    )
    string_to_sign = message.split("server string to sign is:", 1)[1]
    if service == "pds":
        assert string_to_sign.startswith("POST\napplication/json\n\napplication/json; charset=utf-8\n")
        assert string_to_sign.endswith("x-acs-version:2022-03-01\n/v2/async_task/get")
    else:
        assert string_to_sign.startswith("ACS3-HMAC-SHA256\n")
        assert len(string_to_sign.split("\n")[1]) == 64
        assert data["RequestId"]
        assert data["HostId"] == emu.endpoint
        assert "Recommend" in data


def test_server_string_to_sign_matches_client_canonicalization(emu: Emulator) -> None:
    """A tricky query: the emulator's string to sign equals the package signer's, byte for byte."""
    query = {"JobId": "a b*c~d/é+%", "Empty": ""}
    now, nonce = time.time(), uuid.uuid4().hex
    date = signing.format_acs_date(now)
    expected = signing.sign_acs3(
        method="GET",
        pathname="/",
        query=query,
        headers={
            "host": emu.endpoint,
            "x-acs-action": "GetJobStatus",
            "x-acs-version": "2024-05-18",
            "x-acs-date": date,
            "x-acs-signature-nonce": nonce,
            "x-acs-content-sha256": signing.EMPTY_SHA256,
        },
        payload_hash=signing.EMPTY_SHA256,
        access_key_id=AK,
        access_key_secret="whatever",
    )
    response = acs3(emu, "GetJobStatus", "2024-05-18", query=query, sk="wrong", nonce=nonce, when=now)
    assert response.status_code == 400
    server_sts = response.json()["Message"].split("server string to sign is:", 1)[1]
    assert server_sts.split("\n")[0] == "ACS3-HMAC-SHA256"
    assert server_sts == expected.string_to_sign
    assert acs3(emu, "GetJobStatus", "2024-05-18", query=query).json()["Code"] == "InvalidJob.NotFound"


def test_skewed_clock_is_rejected_and_date_header_shows_server_time(emu: Emulator) -> None:
    emu.add_dataworks_job("j", ["Running"])
    emu.add_pds_task("p", ["Running"])
    assert job_status(emu, "j").status_code == 200

    emu.clock_offset = 1200.0
    response = job_status(emu, "j")
    assert response.status_code == 400
    body = response.json()
    assert body["Code"] == "InvalidTimeStamp.Expired"
    assert "server time" in body["Message"]
    server_date = signing.format_acs_date(time.time() + 1200)[:16]  # minute precision
    assert server_date in body["Message"]
    shown = parsedate_to_datetime(response.headers["date"]).timestamp()
    assert abs(shown - (time.time() + 1200)) < 5

    pds = pds_request(emu, {"async_task_id": "p"})
    assert (pds.status_code, pds.json()["Code"]) == (403, "RequestTimeTooSkewed")
    assert pds.headers["x-ca-request-id"] == pds.json()["RequestId"]

    # a client whose own clock is off by the same amount is accepted again
    assert job_status(emu, "j", when=time.time() + 1200).status_code == 200
    assert pds_request(emu, {"async_task_id": "p"}, when=time.time() + 1200).status_code == 200


def test_reused_nonce_is_rejected(emu: Emulator) -> None:
    emu.add_dataworks_job("j", ["Running"])
    emu.add_pds_task("p", ["Running"])
    nonce = uuid.uuid4().hex
    assert job_status(emu, "j", nonce=nonce).status_code == 200
    again = job_status(emu, "j", nonce=nonce)
    assert (again.status_code, again.json()["Code"]) == (400, "SignatureNonceUsed")
    assert pds_request(emu, {"async_task_id": "p"}, nonce=nonce).status_code == 200
    again = pds_request(emu, {"async_task_id": "p"}, nonce=nonce)
    assert (again.status_code, again.json()["Code"]) == (400, "SignatureNonceUsed")
    assert emu.poll_count("dataworks", job_id="j") == 1


def test_unknown_and_revoked_keys(emu: Emulator) -> None:
    from alibabacloud_dataworks_public20240518.client import Client
    from alibabacloud_dataworks_public20240518.models import GetJobStatusRequest

    emu.add_dataworks_job("j", ["Running"])
    emu.add_pds_task("p", ["Running"])
    unknown = job_status(emu, "j", ak="LTAI5tNoSuchKey")
    assert (unknown.status_code, unknown.json()["Code"]) == (404, "InvalidAccessKeyId.NotFound")

    client = Client(sdk_config(emu))
    assert client.get_job_status(GetJobStatusRequest(job_id="j")).body.job_status.status == "Running"
    emu.revoke_key(AK)
    failure = sdk_failure(lambda: client.get_job_status(GetJobStatusRequest(job_id="j")))
    assert failure[:2] == ("InvalidAccessKeyId.NotFound", 404)
    revoked = pds_request(emu, {"async_task_id": "p"})
    assert (revoked.status_code, revoked.json()["Code"]) == (404, "InvalidAccessKeyId.NotFound")

    emu.reset()  # reset() restores revoked keys
    emu.add_dataworks_job("j", ["Running"])
    assert job_status(emu, "j").status_code == 200


def test_incomplete_signature_and_missing_authorization(emu: Emulator) -> None:
    emu.add_dataworks_job("j", ["Running"])
    date, nonce = signing.format_acs_date(time.time()), uuid.uuid4().hex
    headers = {
        "host": emu.endpoint,
        "x-acs-action": "GetJobStatus",
        "x-acs-version": "2024-05-18",
        "x-acs-date": date,
        "x-acs-content-sha256": signing.EMPTY_SHA256,
    }
    signed = signing.sign_acs3(
        method="GET",
        pathname="/",
        query={"JobId": "j"},
        headers=headers,
        payload_hash=signing.EMPTY_SHA256,
        access_key_id=AK,
        access_key_secret=SK,
    )
    sent = {
        **headers,
        "x-acs-signature-nonce": nonce,
        "authorization": signed.authorization,
    }  # nonce not signed
    response = httpx.get(emu.url + "/?JobId=j", headers=sent)
    assert (response.status_code, response.json()["Code"]) == (400, "IncompleteSignature")
    assert "x-acs-signature-nonce" in response.json()["Message"]

    bare = httpx.get(
        emu.url + "/?JobId=j", headers={"x-acs-action": "GetJobStatus", "x-acs-version": "2024-05-18"}
    )
    assert (bare.status_code, bare.json()["Code"]) == (400, "MissingAuthorization")
    assert bare.headers["x-acs-request-id"] == bare.json()["RequestId"]

    # a body that does not match x-acs-content-sha256 fails the signature
    tampered = signing.acs3_headers(
        method="POST",
        host=emu.endpoint,
        pathname="/",
        query={"JobId": "j"},
        action="GetJobStatus",
        version="2024-05-18",
        body=b"JobId=j",
        content_type="application/x-www-form-urlencoded",
        access_key_id=AK,
        access_key_secret=SK,
        security_token=None,
        date=date,
        nonce=uuid.uuid4().hex,
    )
    response = httpx.post(emu.url + "/?JobId=j", headers=tampered, content=b"JobId=k")
    assert response.json()["Code"] == "SignatureDoesNotMatch"

    unknown_action = acs3(emu, "NoSuchAction", "2024-05-18")
    assert (unknown_action.status_code, unknown_action.json()["Code"]) == (404, "InvalidAction.NotFound")
    assert emu.request_count("dataworks") == 3  # requests an unknown action never reach a service


# --------------------------------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_every_fault_kind(emu: Emulator, kind: str) -> None:
    emu.add_dataworks_job("j", ["Running", "Success"])
    emu.slow_seconds = 0.3
    emu.inject_fault(kind, service="dataworks")
    started = time.monotonic()
    if kind == "drop":
        with pytest.raises(httpx.TransportError):
            job_status(emu, "j")
    else:
        response = job_status(emu, "j")
        elapsed = time.monotonic() - started
        rid = response.headers.get("x-acs-request-id") or response.headers.get("x-ca-request-id")
        assert rid
        if kind == "503":
            assert (response.status_code, response.json()["Code"]) == (503, "ServiceUnavailable")
            assert set(response.json()) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
        elif kind == "500":
            assert (response.status_code, response.json()["Code"]) == (500, "InternalError")
        elif kind == "throttling":
            assert (response.status_code, response.json()["Code"]) == (400, "Throttling.User")
            assert "x-acs-retry-after" not in response.headers
        elif kind == "throttling_retry_after":
            assert (response.status_code, response.json()["Code"]) == (400, "Throttling.User")
            assert response.headers["x-acs-retry-after"] == "200"
        elif kind == "pds_gateway":
            assert (response.status_code, response.content) == (504, b"")
            assert response.headers["x-ca-error-code"] == "D504TO"
            assert response.headers["x-ca-error-message"]
            assert response.headers["x-ca-request-id"]
        elif kind in ("malformed_json", "truncated_json"):
            assert response.status_code == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(response.content)
            if kind == "truncated_json":
                assert response.content.startswith(b'{"RequestId":"')
        elif kind == "slow":
            assert elapsed >= 0.3
            assert response.json()["JobStatus"]["Status"] == "Running"
        elif kind == "html":
            assert response.status_code == 502
            assert response.headers["content-type"].startswith("text/html")
            assert b"<html>" in response.content
    assert emu.fault_counts == {kind: 1}
    assert emu.request_count("dataworks") == 1
    assert emu.request_count() == 1
    # the fault is used up: the next poll is normal; only "slow" moved the lifecycle on
    expected = "Success" if kind == "slow" else "Running"
    assert job_status(emu, "j").json()["JobStatus"]["Status"] == expected
    assert emu.poll_count("dataworks", job_id="j") == (2 if kind == "slow" else 1)


def test_faults_respect_service_count_and_order(emu: Emulator) -> None:
    emu.add_dataworks_job("j", ["Running"])
    emu.add_pds_task("p", ["Running"])
    emu.inject_fault("503", 2, service="pds")
    emu.inject_fault("throttling")
    assert job_status(emu, "j").json()["Code"] == "Throttling.User"  # the first fault matching dataworks
    first = pds_request(emu, {"async_task_id": "p"})
    assert (first.status_code, set(first.json())) == (503, {"Code", "Message", "RequestId"})
    assert first.headers["x-ca-request-id"] == first.json()["RequestId"]
    assert pds_request(emu, {"async_task_id": "p"}).status_code == 503
    assert pds_request(emu, {"async_task_id": "p"}).json()["state"] == "Running"
    assert job_status(emu, "j").status_code == 200
    assert emu.fault_counts == {"503": 2, "throttling": 1}
    assert (emu.request_count("pds"), emu.request_count("dataworks"), emu.request_count()) == (3, 2, 5)

    emu.inject_fault("500", service="mma")
    emu.add_mma_task(1, 2, ["DOING"])
    mma = acs3(emu, "GetMmsAsyncTask", "2022-01-04", path="/api/v1/mms/datasources/1/asyncTasks/2")
    assert (mma.status_code, set(mma.json())) == (500, {"requestId", "code", "message"})

    with pytest.raises(ValueError, match="unknown fault kind"):
        emu.inject_fault("teapot")
    with pytest.raises(ValueError, match="unknown service"):
        emu.inject_fault("503", service="sts")


# ------------------------------------------------------------------------------------------ STS


def test_sts_assume_role_then_expiry(emu: Emulator) -> None:
    from alibabacloud_dataworks_public20240518.client import Client
    from alibabacloud_dataworks_public20240518.models import GetJobStatusRequest

    emu.add_dataworks_job("j", ["Running", "Success"])
    me = sts_call(emu, "GetCallerIdentity", {}, sdk_config(emu))
    assert me["IdentityType"] == "RAMUser"
    assert me["AccountId"] == "1234567890123456"

    # the official V3 signer and the legacy V2 one (what alibabacloud-credentials sends)
    for algorithm in (None, "v2"):
        config = sdk_config(emu, signature_algorithm=algorithm) if algorithm else sdk_config(emu)
        assumed = sts_call(
            emu,
            "AssumeRole",
            {"RoleArn": ROLE_ARN, "RoleSessionName": "airflow", "DurationSeconds": "3600"},
            config,
        )
        creds = assumed["Credentials"]
        assert creds["AccessKeyId"].startswith("STS.")
        assert creds["SecurityToken"]
        assert time.strptime(creds["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
        assert (
            assumed["AssumedRoleUser"]["Arn"] == "acs:ram::1234567890123456:assumed-role/airflow-role/airflow"
        )

    sts_config = sdk_config(
        emu,
        access_key_id=creds["AccessKeyId"],
        access_key_secret=creds["AccessKeySecret"],
        security_token=creds["SecurityToken"],
    )
    client = Client(sts_config)
    assert client.get_job_status(GetJobStatusRequest(job_id="j")).body.job_status.status == "Running"
    who = sts_call(emu, "GetCallerIdentity", {}, sts_config)
    assert who["IdentityType"] == "AssumedRoleUser"
    assert who["Arn"].endswith("/airflow-role/airflow")

    # the token must go with its key
    mismatch = job_status(emu, "j", ak=creds["AccessKeyId"], sk=creds["AccessKeySecret"], token="CAISforged")
    assert mismatch.json()["Code"] == "InvalidSecurityToken.MismatchWithAccessKey"
    missing = job_status(emu, "j", ak=creds["AccessKeyId"], sk=creds["AccessKeySecret"])
    assert missing.json()["Code"] == "MissingSecurityToken"

    # lifetime is min(DurationSeconds, sts_ttl_seconds); move the emulator's clock past it
    # (a short ttl keeps that offset well within the 900 s allowed clock skew)
    emu.sts_ttl_seconds = 60
    try:
        short = sts_call(
            emu, "AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "short"}, sdk_config(emu)
        )
    finally:
        emu.sts_ttl_seconds = 3600
    short_creds = short["Credentials"]
    short_client = Client(
        sdk_config(
            emu,
            access_key_id=short_creds["AccessKeyId"],
            access_key_secret=short_creds["AccessKeySecret"],
            security_token=short_creds["SecurityToken"],
        )
    )
    assert short_client.get_job_status(GetJobStatusRequest(job_id="j")).body.job_status.status == "Success"
    emu.clock_offset = 61.0
    failure = sdk_failure(lambda: short_client.get_job_status(GetJobStatusRequest(job_id="j")))
    assert failure[:2] == ("InvalidSecurityToken.Expired", 400)
    assert client.get_job_status(GetJobStatusRequest(job_id="j")).body.job_status.status == "Success"
    emu.clock_offset = 0.0

    failure = sdk_failure(
        lambda: sts_call(
            emu, "AssumeRole", {"RoleSessionName": "x"}, sdk_config(emu, signature_algorithm="v2")
        )
    )
    assert failure[0] == "MissingRoleArn"


def test_sts_short_ttl_expires_in_real_time() -> None:
    with Emulator(sts_ttl_seconds=1) as emu:
        emu.add_dataworks_job("j", ["Running"])
        creds = sts_call(
            emu,
            "AssumeRole",
            {"RoleArn": ROLE_ARN, "RoleSessionName": "s", "DurationSeconds": "900"},
            sdk_config(emu),
        )["Credentials"]
        kw = {"ak": creds["AccessKeyId"], "sk": creds["AccessKeySecret"], "token": creds["SecurityToken"]}
        assert job_status(emu, "j", **kw).status_code == 200
        time.sleep(1.1)
        expired = job_status(emu, "j", **kw)
        assert (expired.status_code, expired.json()["Code"]) == (400, "InvalidSecurityToken.Expired")


def test_assume_role_with_oidc_is_unsigned(emu: Emulator) -> None:
    payload = (
        base64.urlsafe_b64encode(
            json.dumps(
                {
                    "sub": "system:serviceaccount:airflow:worker",
                    "iss": "https://oidc.example",
                    "aud": "sts.aliyuncs.com",
                }
            ).encode()
        )
        .decode()
        .rstrip("=")
    )
    result = sts_call(
        emu,
        "AssumeRoleWithOIDC",
        {
            "RoleArn": ROLE_ARN,
            "OIDCProviderArn": "acs:ram::1234567890123456:oidc-provider/ack",
            "OIDCToken": f"eyJhbGciOiJSUzI1NiJ9.{payload}.sig",
            "RoleSessionName": "oidc",
        },
        Config(endpoint=emu.endpoint, protocol="http"),
    )
    assert result["Credentials"]["AccessKeyId"].startswith("STS.")
    assert result["OIDCTokenInfo"]["Subject"] == "system:serviceaccount:airflow:worker"


def test_credentials_uri_with_official_credentials_library(emu: Emulator) -> None:
    from alibabacloud_credentials.client import Client as CredentialClient
    from alibabacloud_credentials.models import Config as CredentialConfig
    from alibabacloud_datalake20200710.client import Client as DataLake
    from alibabacloud_datalake20200710.models import GetAsyncTaskStatusRequest

    emu.add_dlf_task("t", ["Running"])
    credential = CredentialClient(
        CredentialConfig(type="credentials_uri", credentials_uri=f"{emu.url}/_emulator/credentials")
    )
    model = credential.get_credential()
    assert model.access_key_id.startswith("STS.")
    assert model.security_token
    client = DataLake(Config(credential=credential, endpoint=emu.endpoint, protocol="http"))
    body = client.get_async_task_status(GetAsyncTaskStatusRequest(task_id="t")).body
    assert body.task_status.status == "Running"


# ---------------------------------------------------------------------------- control API, CLI


def test_control_api(emu: Emulator) -> None:
    base = emu.url + "/_emulator"
    created = httpx.post(
        f"{base}/tasks",
        json=[
            {"service": "dataworks", "job_id": "j", "statuses": ["Running", "Success"], "error": None},
            {"service": "pds", "async_task_id": "p", "statuses": ["Running", "Failed"], "error_code": "E"},
            {"service": "mma", "source_id": 1, "async_task_id": 2},
            {"service": "dlf", "task_id": "t", "catalog_id": "c"},
        ],
    )
    assert created.status_code == 201
    assert created.json()["tasks"][2]["ids"] == {
        "source_id": "1",
        "async_task_id": "2",
    }
    assert httpx.post(f"{base}/tasks", json={"service": "nope"}).status_code == 400
    assert (
        httpx.post(f"{base}/faults", json={"kind": "503", "count": 1, "service": "dataworks"}).status_code
        == 200
    )
    assert job_status(emu, "j").status_code == 503
    assert job_status(emu, "j").json()["JobStatus"]["Status"] == "Running"

    stats = httpx.get(f"{base}/stats").json()
    assert stats["requests"]["dataworks"] == 2
    assert stats["requests"]["total"] == 2
    assert stats["faults"] == {"503": 1}
    polls = {json.dumps(t["ids"], sort_keys=True): t["polls"] for t in stats["tasks"]}
    assert polls['{"job_id": "j"}'] == 1
    assert polls['{"async_task_id": "p"}'] == 0

    assert httpx.post(f"{base}/clock", json={"offset": 1200}).json()["offset"] == 1200
    assert emu.clock_offset == 1200
    assert job_status(emu, "j").json()["Code"] == "InvalidTimeStamp.Expired"
    assert httpx.post(f"{base}/revoke", json={"access_key_id": AK}).status_code == 200
    assert job_status(emu, "j", when=time.time() + 1200).json()["Code"] == "InvalidAccessKeyId.NotFound"

    assert httpx.post(f"{base}/reset").status_code == 200
    assert emu.clock_offset == 0
    assert emu.request_count() == 0
    assert emu.tasks() == []
    credentials = httpx.get(f"{base}/credentials").json()
    assert credentials["Code"] == "Success"
    assert credentials["AccessKeyId"].startswith("STS.")


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "tasks.json"
    script.write_text(
        json.dumps(
            {"tasks": [{"service": "dataworks", "job_id": "cli-job", "statuses": ["Running", "Success"]}]}
        )
    )
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_aliyun_tasks.testing",
            "serve",
            "--port",
            str(port),
            "--tasks",
            str(script),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == f"Alibaba Cloud emulator listening on http://127.0.0.1:{port}"

        class Remote:  # just enough of an Emulator for the request helpers
            url = f"http://127.0.0.1:{port}"
            endpoint = f"127.0.0.1:{port}"

        remote: Any = Remote()
        httpx.post(
            f"{remote.url}/_emulator/tasks",
            json={"service": "pds", "async_task_id": "p", "states": ["Succeed"]},
        )
        assert job_status(remote, "cli-job").json()["JobStatus"]["Status"] == "Running"
        assert job_status(remote, "cli-job").json()["JobStatus"]["Status"] == "Success"
        assert pds_request(remote, {"async_task_id": "p"}).json()["state"] == "Succeed"
        assert httpx.get(f"{remote.url}/_emulator/stats").json()["requests"]["total"] == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0

    refused = subprocess.run(
        [sys.executable, "-m", "airflow_aliyun_tasks.testing", "serve", "--port", "0", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode == 2
    assert "loopback" in refused.stderr


def test_start_refuses_non_loopback_and_reports_url() -> None:
    emu = Emulator()
    with pytest.raises(ValueError, match="loopback"):
        emu.start(host="0.0.0.0")
    with pytest.raises(RuntimeError):
        _ = emu.url
    url = emu.start()
    try:
        assert url == emu.url == f"http://127.0.0.1:{emu.port}"
        assert httpx.get(f"{url}/_emulator/health").json()["ok"] is True
    finally:
        emu.stop()


def test_pds_sts_credentials_and_domain_check(emu: Emulator) -> None:
    from alibabacloud_pds20220301.client import Client
    from alibabacloud_pds20220301.models import GetAsyncTaskRequest

    emu.add_pds_task("p", ["Running"], domain_id="bj1")
    creds = emu.issue_sts_credentials(role_session_name="pds")
    client = Client(
        sdk_config(
            emu,
            access_key_id=creds["AccessKeyId"],
            access_key_secret=creds["AccessKeySecret"],
            security_token=creds["SecurityToken"],
        )
    )
    assert client.get_async_task(GetAsyncTaskRequest(async_task_id="p")).body.state == "Running"
    # a named host must be the task's domain: <domain_id>.api.aliyunpds.com
    assert pds_request(emu, {"async_task_id": "p"}, host="bj1.api.aliyunpds.com").status_code == 200
    other = pds_request(emu, {"async_task_id": "p"}, host="hz9.api.aliyunpds.com")
    assert (other.status_code, other.json()["Code"]) == (404, "NotFound.AsyncTask")


async def test_app_in_process_over_asgi_transport(emu: Emulator) -> None:
    emu.add_dataworks_job("j", ["Running", "Success"])
    headers = signing.acs3_headers(
        method="GET",
        host="dataworks.cn-hangzhou.aliyuncs.com",
        pathname="/",
        query={"JobId": "j"},
        action="GetJobStatus",
        version="2024-05-18",
        body=b"",
        content_type=None,
        access_key_id=AK,
        access_key_secret=SK,
        security_token=None,
        date=signing.format_acs_date(time.time()),
        nonce=uuid.uuid4().hex,
    )
    transport = httpx.ASGITransport(app=emu.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://dataworks.cn-hangzhou.aliyuncs.com"
    ) as client:
        response = await client.get("/?JobId=j", headers=headers)
        assert response.json()["JobStatus"]["Status"] == "Running"
        assert response.headers["x-acs-request-id"]
        assert response.headers["date"]
        assert (await client.get("/_emulator/stats")).json()["requests"]["dataworks"] == 1


def test_scripting_validation(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        emu.add_dlf_task("t", [])
    with pytest.raises(ValueError, match="needs source_id"):
        emu.add_task("mma", async_task_id=1)
    with pytest.raises(TypeError, match="source_id, async_task_id"):
        emu.poll_count("mma", async_task_id=1)
    assert emu.add_task("pds", async_task_id="p", statuses=["Succeed"]) == {"async_task_id": "p"}
    assert emu.poll_count("pds", async_task_id="p") == 0
    assert emu.tasks("pds")[0]["next_status"] == "Succeed"
