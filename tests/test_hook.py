"""``AlibabaCloudTasksHook`` through real ``AIRFLOW_CONN_*`` connections and the local emulator.

Every connection points all endpoints (STS included) at the emulator on 127.0.0.1 (``make_conn``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_aliyun_tasks.client import aclose_shared_client
from airflow_aliyun_tasks.config import Endpoint, parse_connection
from airflow_aliyun_tasks.errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
)
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook, service_endpoint, sts_endpoint
from airflow_aliyun_tasks.services import SERVICES
from airflow_aliyun_tasks.status import (
    CANCELLED,
    FAILED,
    PARTIALLY_SUCCEEDED,
    RUNNING,
    SUCCEEDED,
    TaskStatus,
)
from airflow_aliyun_tasks.testing import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, Emulator

pytestmark = pytest.mark.usefixtures("fresh_clients")

ROLE_ARN = "acs:ram::1234567890123456:role/airflow"
OIDC_ARN = "acs:ram::1234567890123456:oidc-provider/ack-rrsa"
OIDC_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3b3JrZXIiLCJpc3MiOiJodHRwczovL29pZGMiLCJhdWQiOiJzdHMifQ.c2ln"
BEARER = "pds-user-access-token-hook-0001"
WRONG_SECRET = "WrongSecret-hook-0123456789"
ACCOUNT = "1234567890123456"

MakeConn = Callable[..., str]


def call_hook(mode: str, conn_id: str, name: str, *args: Any, times: int = 1, **kwargs: Any) -> list[Any]:
    """Call ``name`` (sync) or ``a<name>`` (async, in a fresh event loop) ``times`` times on one hook."""
    hook = AlibabaCloudTasksHook(conn_id)
    if mode == "sync":
        return [getattr(hook, name)(*args, **kwargs) for _ in range(times)]

    async def go() -> list[Any]:
        try:
            return [await getattr(hook, f"a{name}")(*args, **kwargs) for _ in range(times)]
        finally:
            await aclose_shared_client()

    return asyncio.run(go())


def states(results: list[TaskStatus]) -> list[str]:
    return [r.state for r in results]


def no_requests(emulator: Emulator) -> None:
    assert emulator.request_count() == 0
    assert emulator.request_count("sts") == 0


MODES = ["sync", "async"]


# ------------------------------------------------------------------------------- lifecycles


@pytest.mark.parametrize("mode", MODES)
def test_dlf_lifecycle(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn()
    emulator.add_dlf_task("dlf-1", ["Running", "Running", "Success"], catalog_id="cat1")
    results = call_hook(mode, conn, "get_dlf_async_task_status", "dlf-1", catalog_id="cat1", times=4)
    assert states(results) == [RUNNING, RUNNING, SUCCEEDED, SUCCEEDED]
    last = results[-1]
    assert last.service == "dlf"
    assert last.ids == {"async_task_id": "dlf-1", "catalog_id": "cat1"}
    assert last.raw_status == "Success"
    assert last.request_id
    assert emulator.poll_count("dlf", task_id="dlf-1") == 4


@pytest.mark.parametrize("mode", MODES)
def test_dlf_killed(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn()
    emulator.add_dlf_task("dlf-k", ["Running", "KILLED"])
    assert states(call_hook(mode, conn, "get_dlf_async_task_status", "dlf-k", times=2)) == [
        RUNNING,
        CANCELLED,
    ]


@pytest.mark.parametrize("mode", MODES)
def test_dataworks_lifecycle(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn()
    emulator.add_dataworks_job("job-1", ["Running", "Running", "Fail"], error="workflow spec invalid")
    results = call_hook(mode, conn, "get_dataworks_job_status", "job-1", times=3)
    assert states(results) == [RUNNING, RUNNING, FAILED]
    assert results[-1].message == "workflow spec invalid"
    assert results[-1].ids == {"job_id": "job-1"}


@pytest.mark.parametrize("mode", MODES)
def test_mma_lifecycle(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn()
    emulator.add_mma_task(7, 1001, ["INIT", "DOING", "DONE"], progress=[0, 50, 100])
    results = call_hook(mode, conn, "get_mma_async_task", 7, "1001", times=3)
    assert states(results) == [RUNNING, RUNNING, SUCCEEDED]
    assert [r.progress for r in results] == [0.0, 0.5, 1.0]
    assert results[0].ids == {"source_id": "7", "async_task_id": "1001"}
    assert emulator.poll_count("mma", source_id=7, async_task_id=1001) == 3


@pytest.mark.parametrize("mode", MODES)
def test_mma_failed(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn()
    emulator.add_mma_task(7, 1002, ["DOING", "FAILED"], error_msg="table not found")
    results = call_hook(mode, conn, "get_mma_async_task", "7", 1002, times=2)
    assert states(results) == [RUNNING, FAILED]
    assert results[-1].message == "table not found"


@pytest.mark.parametrize("mode", MODES)
def test_pds_lifecycle_domain_from_connection(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn(pds_domain_id="bj1")
    emulator.add_pds_task("pds-1", ["Running", "PartialSucceed"], total_process=4, consumed_process=[1, 4])
    results = call_hook(mode, conn, "get_pds_async_task", "pds-1", times=2)
    assert states(results) == [RUNNING, PARTIALLY_SUCCEEDED]
    assert [r.progress for r in results] == [0.25, 1.0]
    assert results[0].ids == {"async_task_id": "pds-1"}


@pytest.mark.parametrize("mode", MODES)
def test_pds_lifecycle_domain_argument(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn(pds_domain_id=None)
    emulator.add_pds_task(
        "pds-2", ["Running", "Failed"], domain_id="bj2", error_code="E1", error_message="no"
    )
    results = call_hook(mode, conn, "get_pds_async_task", "pds-2", domain_id="bj2", times=2)
    assert states(results) == [RUNNING, FAILED]
    assert results[-1].ids == {"async_task_id": "pds-2", "domain_id": "bj2"}
    assert (results[-1].error_code, results[-1].message) == ("E1", "no")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("service", "ids", "add"),
    [
        ("dlf", {"async_task_id": "g-1"}, lambda e: e.add_dlf_task("g-1")),
        ("dataworks", {"job_id": "g-2"}, lambda e: e.add_dataworks_job("g-2")),
        ("mma", {"source_id": 3, "async_task_id": 4}, lambda e: e.add_mma_task(3, 4)),
        ("pds", {"async_task_id": "g-3"}, lambda e: e.add_pds_task("g-3")),
    ],
)
def test_get_task_status_generic(
    emulator: Emulator, make_conn: MakeConn, mode: str, service: str, ids: dict[str, Any], add: Any
) -> None:
    conn = make_conn()
    add(emulator)
    results = call_hook(mode, conn, "get_task_status", service, times=2, **ids)
    assert states(results) == [RUNNING, SUCCEEDED]
    assert results[0].service == service
    assert results[0].ids == {k: str(v) for k, v in ids.items()}
    assert emulator.request_count(service) == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("service", "ids", "cls", "code"),
    [
        ("dlf", {"async_task_id": "nope"}, ApiError, "NoSuchObject"),
        ("dataworks", {"job_id": "nope"}, NotFoundError, "InvalidJob.NotFound"),
        ("mma", {"source_id": 1, "async_task_id": 2}, NotFoundError, "NotFound"),
        ("pds", {"async_task_id": "nope"}, NotFoundError, "NotFound.AsyncTask"),
    ],
)
def test_unknown_task(
    emulator: Emulator,
    make_conn: MakeConn,
    mode: str,
    service: str,
    ids: dict[str, Any],
    cls: type,
    code: str,
) -> None:
    conn = make_conn()
    with pytest.raises(cls) as info:
        call_hook(mode, conn, "get_task_status", service, **ids)
    assert info.value.code == code
    assert emulator.request_count(service) == 1


@pytest.mark.parametrize("mode", MODES)
def test_transient_fault_is_retried_through_the_hook(
    emulator: Emulator, make_conn: MakeConn, mode: str
) -> None:
    conn = make_conn(max_retries=2)
    emulator.add_dataworks_job("job-r", ["Success"])
    emulator.inject_fault("503", count=1, service="dataworks")
    assert states(call_hook(mode, conn, "get_dataworks_job_status", "job-r")) == [SUCCEEDED]
    assert emulator.request_count("dataworks") == 2


# ------------------------------------------------------------------------------ credential types


@pytest.fixture
def oidc_token_file(tmp_path: Path) -> str:
    path = tmp_path / "oidc-token"
    path.write_text(OIDC_TOKEN)
    return str(path)


def _connection_for(auth: str, emulator: Emulator, make_conn: MakeConn, token_file: str) -> str:
    if auth == "access_key":
        return make_conn("aliyun_ak")
    if auth == "sts":
        creds = emulator.issue_sts_credentials()
        return make_conn(
            "aliyun_sts",
            login=creds["AccessKeyId"],
            password=creds["AccessKeySecret"],
            auth_type="sts",
            security_token=creds["SecurityToken"],
        )
    if auth == "ram_role_arn":
        return make_conn("aliyun_role", auth_type="ram_role_arn", role_arn=ROLE_ARN)
    if auth == "oidc_role_arn":
        return make_conn(
            "aliyun_oidc",
            login=None,
            password=None,
            auth_type="oidc_role_arn",
            role_arn=ROLE_ARN,
            oidc_provider_arn=OIDC_ARN,
            oidc_token_file_path=token_file,
        )
    if auth == "credentials_uri":
        return make_conn(
            "aliyun_uri",
            login=None,
            password=None,
            auth_type="credentials_uri",
            credentials_uri=f"{emulator.url}/_emulator/credentials",
        )
    emulator.add_bearer_token(BEARER)
    return make_conn("aliyun_bearer", login=None, password=None, auth_type="bearer", bearer_token=BEARER)


AUTH_TYPES = ["access_key", "sts", "ram_role_arn", "oidc_role_arn", "credentials_uri", "bearer"]
#: AssumeRole* calls expected for two status reads with one hook (credentials cached in between)
STS_CALLS = {"ram_role_arn": 1, "oidc_role_arn": 1}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("auth", AUTH_TYPES)
def test_each_credential_type_reads_a_status(
    emulator: Emulator, make_conn: MakeConn, oidc_token_file: str, auth: str, mode: str
) -> None:
    conn = _connection_for(auth, emulator, make_conn, oidc_token_file)
    if auth == "bearer":  # PDS only
        emulator.add_pds_task("cred-pds", ["Running", "Succeed"])
        results = call_hook(mode, conn, "get_pds_async_task", "cred-pds", times=2)
        service = "pds"
    else:
        emulator.add_dlf_task("cred-dlf", ["Running", "Success"])
        results = call_hook(mode, conn, "get_dlf_async_task_status", "cred-dlf", times=2)
        service = "dlf"
    assert states(results) == [RUNNING, SUCCEEDED]
    assert emulator.request_count(service) == 2
    assert emulator.request_count("sts") == STS_CALLS.get(auth, 0)


@pytest.mark.parametrize("auth", [a for a in AUTH_TYPES if a != "bearer"])
def test_each_credential_type_passes_test_connection(
    emulator: Emulator, make_conn: MakeConn, oidc_token_file: str, auth: str
) -> None:
    conn = _connection_for(auth, emulator, make_conn, oidc_token_file)
    ok, text = AlibabaCloudTasksHook(conn).test_connection()
    assert ok, text
    assert text.startswith(f"Authenticated as acs:ram::{ACCOUNT}:")
    assert f"(account {ACCOUNT}" in text
    kind = "RAMUser" if auth == "access_key" else "AssumedRoleUser"
    assert text.endswith(f", {kind})")
    if auth in ("ram_role_arn", "oidc_role_arn"):
        assert ":assumed-role/airflow/airflow-aliyun-tasks" in text


def test_bearer_cannot_call_pop_apis(emulator: Emulator, make_conn: MakeConn) -> None:
    conn = _connection_for("bearer", emulator, make_conn, "")
    emulator.add_dlf_task("b-dlf")
    with pytest.raises(ConfigurationError) as info:
        AlibabaCloudTasksHook(conn).get_dlf_async_task_status("b-dlf")
    assert info.value.field == "auth_type"
    assert "PDS" in str(info.value)
    assert BEARER not in str(info.value)
    no_requests(emulator)


def test_ram_role_credentials_are_shared_by_hooks(emulator: Emulator, make_conn: MakeConn) -> None:
    conn = make_conn("aliyun_role", auth_type="ram_role_arn", role_arn=ROLE_ARN)
    emulator.add_dlf_task("shared", ["Running"])
    for _ in range(3):
        AlibabaCloudTasksHook(conn).get_dlf_async_task_status("shared")
    assert emulator.request_count("sts") == 1
    assert AlibabaCloudTasksHook(conn).client is AlibabaCloudTasksHook(conn).client


def test_wrong_secret_status_error_hides_secret(emulator: Emulator, make_conn: MakeConn) -> None:
    conn = make_conn(password=WRONG_SECRET)
    emulator.add_dlf_task("w-1")
    with pytest.raises(AuthenticationError) as info:
        AlibabaCloudTasksHook(conn).get_dlf_async_task_status("w-1")
    assert info.value.code == "SignatureDoesNotMatch"
    for text in (str(info.value), repr(info.value)):
        assert WRONG_SECRET not in text
        assert DEFAULT_ACCESS_KEY_SECRET not in text
    assert emulator.request_count("dlf") == 1


# ------------------------------------------------------------------------------- test_connection


def test_test_connection_good(emulator: Emulator, make_conn: MakeConn) -> None:
    ok, text = AlibabaCloudTasksHook(make_conn()).test_connection()
    assert ok
    assert text == f"Authenticated as acs:ram::{ACCOUNT}:user/emulator-user (account {ACCOUNT}, RAMUser)"
    assert emulator.request_count("sts") == 1


def test_test_connection_wrong_secret(emulator: Emulator, make_conn: MakeConn) -> None:
    ok, text = AlibabaCloudTasksHook(make_conn(password=WRONG_SECRET)).test_connection()
    assert not ok
    assert "SignatureDoesNotMatch" in text
    assert WRONG_SECRET not in text
    assert DEFAULT_ACCESS_KEY_SECRET not in text
    assert emulator.request_count("sts") == 1  # one quick attempt


def test_test_connection_revoked_key(emulator: Emulator, make_conn: MakeConn) -> None:
    emulator.revoke_key(DEFAULT_ACCESS_KEY_ID)
    ok, text = AlibabaCloudTasksHook(make_conn()).test_connection()
    assert not ok
    assert "InvalidAccessKeyId.NotFound" in text


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"region_id": None}, "region_id"),
        ({"region_id": "Hangzhou"}, "region_id"),
        ({"auth_type": "sts"}, "security_token"),
        ({"bogus_extra": "1"}, "bogus_extra"),
        ({"dlf_endpoint": "http://example.com"}, "dlf_endpoint"),
    ],
)
def test_test_connection_bad_connection_sends_nothing(
    emulator: Emulator, make_conn: MakeConn, extra: dict[str, Any], field: str
) -> None:
    ok, text = AlibabaCloudTasksHook(make_conn(**extra)).test_connection()
    assert not ok
    assert text.startswith(f"{field}: ")
    no_requests(emulator)


def test_test_connection_missing_connection(emulator: Emulator) -> None:
    ok, text = AlibabaCloudTasksHook("aliyun_does_not_exist").test_connection()
    assert not ok
    assert "aliyun_does_not_exist" in text
    no_requests(emulator)


def test_test_connection_bearer(emulator: Emulator, make_conn: MakeConn) -> None:
    conn = _connection_for("bearer", emulator, make_conn, "")
    ok, text = AlibabaCloudTasksHook(conn).test_connection()
    assert ok, text
    assert text.startswith("PDS accepted the bearer token")
    assert BEARER not in text
    assert emulator.request_count("pds") == 1
    assert emulator.request_count("sts") == 0


def test_test_connection_bad_bearer(emulator: Emulator, make_conn: MakeConn) -> None:
    conn = make_conn(login=None, password=None, auth_type="bearer", bearer_token="not-a-known-token-123")
    ok, text = AlibabaCloudTasksHook(conn).test_connection()
    assert not ok
    assert "AccessTokenInvalid" in text
    assert "not-a-known-token-123" not in text


def test_test_connection_bearer_makes_one_attempt(emulator: Emulator, make_conn: MakeConn) -> None:
    conn = _connection_for("bearer", emulator, make_conn, "")
    emulator.inject_fault("503", count=5, service="pds")
    ok, text = AlibabaCloudTasksHook(conn).test_connection()
    assert not ok
    assert "ServiceUnavailable" in text
    assert emulator.request_count("pds") == 1


# ------------------------------------------------------------------------------------ call_api


def _call(mode: str, conn: str, *args: Any, **kwargs: Any) -> Any:
    return call_hook(mode, conn, "call_api", *args, **kwargs)[0]


def _status(mode: str, conn: str, name: str, *args: Any, times: int = 1) -> list[str]:
    return states(call_hook(mode, conn, name, *args, times=times))


@pytest.mark.parametrize("mode", MODES)
def test_call_api_dataworks_import_then_poll(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn()
    spec = {"version": "1.1.0", "kind": "CycleWorkflow", "spec": {"workflows": [{"name": "wf"}]}}
    body = _call(
        mode,
        conn,
        "ImportWorkflowDefinition",
        "2024-05-18",
        service="dataworks",
        query={"ProjectId": 12345, "Spec": json.dumps(spec)},
    )
    job_id = body["AsyncJob"]["Id"]
    assert body["AsyncJob"]["Status"] == "Running"
    assert _status(mode, conn, "get_dataworks_job_status", job_id, times=3) == [RUNNING, RUNNING, SUCCEEDED]


@pytest.mark.parametrize("mode", MODES)
def test_call_api_dict_query_value_is_sent_as_json(
    emulator: Emulator, make_conn: MakeConn, mode: str
) -> None:
    conn = make_conn()
    body = _call(
        mode,
        conn,
        "ImportWorkflowDefinition",
        "2024-05-18",
        service="dataworks",
        query={"ProjectId": 1, "Spec": {"kind": "CycleWorkflow"}, "Unused": None},
    )
    assert body["AsyncJob"]["Id"]


@pytest.mark.parametrize("mode", MODES)
def test_call_api_pds_archive_then_poll(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn()
    body = _call(
        mode,
        conn,
        "ArchiveFiles",
        "2022-03-01",
        service="pds",
        path="/v2/file/archive_files",
        body={"drive_id": "1", "file_ids": ["f1", "f2"], "name": "archive.zip"},
    )
    task_id = body["async_task_id"]
    assert _status(mode, conn, "get_pds_async_task", task_id, times=3) == [RUNNING, RUNNING, SUCCEEDED]
    assert emulator.request_count("pds") == 4


@pytest.mark.parametrize("mode", MODES)
def test_call_api_dlf_delete_database_then_poll(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn()
    body = _call(
        mode,
        conn,
        "DeleteDatabase",
        "2020-07-10",
        service="dlf",
        method="delete",
        path="/api/metastore/catalogs/databases",
        query={"Async": True, "Name": "db1", "CatalogId": ACCOUNT},
    )
    assert body["Success"] is True
    task_id = body["TaskId"]
    assert _status(mode, conn, "get_dlf_async_task_status", task_id, times=3) == [RUNNING, RUNNING, SUCCEEDED]


@pytest.mark.parametrize("mode", MODES)
def test_call_api_mma_create_job_then_poll(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn()
    body = _call(
        mode,
        conn,
        "CreateMmsJob",
        "2022-01-04",
        service="mma",
        path="/api/v1/mms/datasources/7/jobs",
        body={"dstDbName": "dst"},
    )
    task_id = body["data"]["asyncTaskId"]
    assert _status(mode, conn, "get_mma_async_task", 7, task_id, times=3) == [RUNNING, RUNNING, SUCCEEDED]


@pytest.mark.parametrize("mode", MODES)
def test_call_api_sts_by_service_and_by_endpoint(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn()
    by_service = _call(mode, conn, "GetCallerIdentity", "2015-04-01", service="sts")
    by_endpoint = _call(mode, conn, "GetCallerIdentity", "2015-04-01", endpoint=emulator.url)
    assert by_service["Arn"] == by_endpoint["Arn"] == f"acs:ram::{ACCOUNT}:user/emulator-user"
    assert emulator.request_count("sts") == 2


@pytest.mark.parametrize("mode", MODES)
def test_call_api_service_error(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn()
    with pytest.raises(ApiError) as info:
        _call(
            mode, conn, "ImportWorkflowDefinition", "2024-05-18", service="dataworks", query={"ProjectId": 1}
        )
    assert info.value.code == "MissingSpec"
    assert info.value.http_status == 400
    assert emulator.request_count("dataworks") == 1


BAD_CALLS: list[tuple[dict[str, Any], str]] = [
    ({"action": ""}, "action"),
    ({"action": "Get Job"}, "action"),
    ({"action": "Get/Job"}, "action"),
    ({"action": "GetJob\n"}, "action"),
    ({"action": None}, "action"),
    ({"action": 123}, "action"),
    ({"version": "2024-5-18"}, "version"),
    ({"version": ""}, "version"),
    ({"version": None}, "version"),
    ({"version": 20240518}, "version"),
    ({"version": "2024-05-18x"}, "version"),
    ({"service": None}, "service"),
    ({"service": "dataworks", "endpoint": "http://127.0.0.1:1"}, "service"),
    ({"service": "ecs"}, "service"),
    ({"service": None, "endpoint": "http://example.com"}, "endpoint"),
    ({"service": None, "endpoint": "ftp://127.0.0.1"}, "endpoint"),
    ({"method": "TRACE"}, "method"),
    ({"method": "CONNECT"}, "method"),
    ({"method": ""}, "method"),
    ({"path": "relative/path"}, "path"),
    ({"path": "/a/../b"}, "path"),
    ({"path": "/.."}, "path"),
    ({"path": ""}, "path"),
    ({"query": {"ProjectId": {1, 2}}}, "ProjectId"),
    ({"query": {"Spec": (1, 2)}}, "Spec"),
    ({"query": {"Raw": b"bytes"}}, "Raw"),
    ({"query": {"Obj": object()}}, "Obj"),
    ({"service": "pds", "domain_id": "../evil"}, "domain_id"),
    ({"service": "pds", "domain_id": "a/b"}, "domain_id"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("override", "field"), BAD_CALLS)
def test_call_api_validation(
    emulator: Emulator, make_conn: MakeConn, mode: str, override: dict[str, Any], field: str
) -> None:
    conn = make_conn()
    kwargs: dict[str, Any] = {
        "action": "ImportWorkflowDefinition",
        "version": "2024-05-18",
        "service": "dataworks",
        "query": {"ProjectId": 1, "Spec": "{}"},
    }
    kwargs.update(override)
    action, version = kwargs.pop("action"), kwargs.pop("version")
    with pytest.raises(ConfigurationError) as info:
        _call(mode, conn, action, version, **kwargs)
    assert info.value.field == field, str(info.value)
    no_requests(emulator)


@pytest.mark.parametrize(
    ("action", "version"), [("\uff27etCallerIdentity", "2015-04-01"), ("GetCallerIdentity", "2015-04\r\nX")]
)
def test_call_api_validation_rejects_non_ascii_and_control_characters(
    emulator: Emulator, make_conn: MakeConn, action: str, version: str
) -> None:
    conn = make_conn(max_retries=0)
    with pytest.raises(ConfigurationError):
        AlibabaCloudTasksHook(conn).call_api(action, version, service="sts")


# ----------------------------------------------------------------------------------- bad ids


BAD_IDS: list[tuple[str, str, tuple[Any, ...], dict[str, Any], str]] = []
for _bad in [
    "",
    "/",
    "..",
    "%2F",
    "a/b",
    "a..b",
    "a\x00b",
    "a\nb",
    "tâche",
    "任务",
    " ",
    "a b",
    "-x",
    "x" * 129,
]:
    BAD_IDS.append(("dlf", "get_dlf_async_task_status", (_bad,), {}, "async_task_id"))
for _bad in ["/", "..", "%2F", "ü"]:
    BAD_IDS.append(("dlf", "get_dlf_async_task_status", ("ok",), {"catalog_id": _bad}, "catalog_id"))
for _bad in ["", "/", "..", "%2F", "a\tb", "ジョブ", "j?x=1"]:
    BAD_IDS.append(("dataworks", "get_dataworks_job_status", (_bad,), {}, "job_id"))
for _bad in ["", "abc", "1.5", "-1", "\uff11\uff12", "12\n", "1" * 20, "0x10", 1.5, True, "..", "%2F"]:
    BAD_IDS.append(("mma", "get_mma_async_task", (_bad, 1), {}, "source_id"))
for _bad in ["x", "1/2", " 1", None]:
    BAD_IDS.append(("mma", "get_mma_async_task", (1, _bad), {}, "async_task_id"))
for _bad in ["", "..", "%2F", "a/b", "a\x7fb"]:
    BAD_IDS.append(("pds", "get_pds_async_task", (_bad,), {}, "async_task_id"))
for _bad in ["..", "a/b", "bj1.evil.com/", "%2F", "bj 1"]:
    BAD_IDS.append(("pds", "get_pds_async_task", ("ok",), {"domain_id": _bad}, "domain_id"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("service", "name", "args", "kwargs", "field"), BAD_IDS)
def test_bad_ids_are_refused_before_any_request(
    emulator: Emulator,
    make_conn: MakeConn,
    mode: str,
    service: str,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    field: str,
) -> None:
    conn = make_conn("aliyun_ids")
    with pytest.raises(ConfigurationError) as info:
        call_hook(mode, conn, name, *args, **kwargs)
    assert info.value.field == field, str(info.value)
    no_requests(emulator)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("service", "ids", "field"),
    [
        ("ecs", {"task_id": "x"}, "service"),
        ("dlf", {"task_id": "x"}, "task_id"),
        ("dlf", {}, "async_task_id"),
        ("dlf", {"async_task_id": None}, "async_task_id"),
        ("mma", {"source_id": 1}, "async_task_id"),
        ("pds", {"async_task_id": "x", "drive_id": "1"}, "drive_id"),
        ("dataworks", {"job_id": ["a"]}, "job_id"),
    ],
)
def test_get_task_status_bad_arguments(
    emulator: Emulator, make_conn: MakeConn, mode: str, service: str, ids: dict[str, Any], field: str
) -> None:
    conn = make_conn()
    with pytest.raises(ConfigurationError) as info:
        call_hook(mode, conn, "get_task_status", service, **ids)
    assert info.value.field == field
    no_requests(emulator)


@pytest.mark.parametrize("mode", MODES)
def test_pds_without_any_domain_or_endpoint(emulator: Emulator, make_conn: MakeConn, mode: str) -> None:
    conn = make_conn(pds_domain_id=None, pds_endpoint=None)
    with pytest.raises(ConfigurationError) as info:
        call_hook(mode, conn, "get_pds_async_task", "p-1")
    assert info.value.field == "domain_id"
    no_requests(emulator)


# ----------------------------------------------------------------------- connection handling


@pytest.mark.airflow  # a fresh interpreter imports Airflow
def test_hook_module_does_not_import_the_credentials_library(emulator: Emulator, make_conn: MakeConn) -> None:
    make_conn("aliyun_sub")
    emulator.add_dlf_task("sub-1", ["Success"])
    code = (
        "import json, sys\n"
        "import airflow_aliyun_tasks.hooks as h\n"
        "before = 'alibabacloud_credentials' in sys.modules\n"
        "status = h.AlibabaCloudTasksHook('aliyun_sub').get_dlf_async_task_status('sub-1')\n"
        "print(json.dumps({'before': before, 'after': 'alibabacloud_credentials' in sys.modules,"
        " 'state': status.state}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(), timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"before": False, "after": False, "state": SUCCEEDED}


@pytest.fixture
def connection_fetches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    sync_get = AlibabaCloudTasksHook.get_connection
    async_get = AlibabaCloudTasksHook.aget_connection

    def get_connection(cls: type, conn_id: str) -> Any:
        calls.append(conn_id)
        return sync_get(conn_id)

    async def aget_connection(cls: type, conn_id: str) -> Any:
        calls.append(f"async:{conn_id}")
        return await async_get(conn_id)

    monkeypatch.setattr(AlibabaCloudTasksHook, "get_connection", classmethod(get_connection))
    monkeypatch.setattr(AlibabaCloudTasksHook, "aget_connection", classmethod(aget_connection))
    return calls


def test_hook_never_fetches_the_connection_in_init(connection_fetches: list[str]) -> None:
    hook = AlibabaCloudTasksHook("aliyun_not_defined_anywhere")
    assert repr(hook) == "AlibabaCloudTasksHook(aliyun_conn_id='aliyun_not_defined_anywhere')"
    assert connection_fetches == []
    assert AlibabaCloudTasksHook().aliyun_conn_id == "aliyun_default"
    with pytest.raises(Exception, match="aliyun_not_defined_anywhere"):
        _ = hook.settings
    assert connection_fetches == ["aliyun_not_defined_anywhere"]


def test_connection_fetched_once_per_hook(
    emulator: Emulator, make_conn: MakeConn, connection_fetches: list[str]
) -> None:
    conn = make_conn("aliyun_once")
    emulator.add_dlf_task("once", ["Running"])
    hook = AlibabaCloudTasksHook(conn)
    assert connection_fetches == []
    for _ in range(3):
        hook.get_dlf_async_task_status("once")
    assert connection_fetches == ["aliyun_once"]

    async def go() -> None:
        other = AlibabaCloudTasksHook(conn)
        try:
            for _ in range(3):
                await other.aget_dlf_async_task_status("once")
        finally:
            await aclose_shared_client()

    asyncio.run(go())
    assert connection_fetches == ["aliyun_once", "async:aliyun_once"]


def test_settings_and_clients_are_cached(emulator: Emulator, make_conn: MakeConn) -> None:
    conn = make_conn("aliyun_cache")
    a = AlibabaCloudTasksHook(conn)
    assert a.settings is a.settings
    client = a.client
    assert AlibabaCloudTasksHook(conn).client is client
    assert asyncio.run(AlibabaCloudTasksHook(conn).aclient()) is client
    make_conn("aliyun_cache", password=WRONG_SECRET)  # the connection changed: a new client
    assert AlibabaCloudTasksHook(conn).client is not client
    no_requests(emulator)


@pytest.mark.parametrize("extra", ["max_retries", "correct_clock_skew"])
def test_changed_retry_settings_get_a_new_client(emulator: Emulator, make_conn: MakeConn, extra: str) -> None:
    emulator.add_dlf_task("chg", ["Running"])
    if extra == "max_retries":
        make_conn("aliyun_chg", max_retries=0)
        emulator.inject_fault("503", count=1, service="dlf")
        with pytest.raises(ApiError):
            AlibabaCloudTasksHook("aliyun_chg").get_dlf_async_task_status("chg")
        make_conn("aliyun_chg", max_retries=2)
        emulator.inject_fault("503", count=1, service="dlf")
    else:
        make_conn("aliyun_chg", correct_clock_skew=False)
        emulator.clock_offset = 3600
        with pytest.raises(AuthenticationError):
            AlibabaCloudTasksHook("aliyun_chg").get_dlf_async_task_status("chg")
        make_conn("aliyun_chg", correct_clock_skew=True)
    assert AlibabaCloudTasksHook("aliyun_chg").get_dlf_async_task_status("chg").state == RUNNING


@pytest.mark.parametrize("mode", MODES)
def test_correct_clock_skew_through_the_connection(
    emulator: Emulator, make_conn: MakeConn, mode: str
) -> None:
    conn = make_conn(correct_clock_skew=True)
    emulator.add_dataworks_job("skew", ["Running", "Success"])
    emulator.clock_offset = 3600
    assert _status(mode, conn, "get_dataworks_job_status", "skew", times=2) == [RUNNING, SUCCEEDED]
    assert emulator.request_count("dataworks") == 3  # one corrected retry, then one request per call


def test_correct_clock_skew_with_ram_role_arn(emulator: Emulator, make_conn: MakeConn) -> None:
    conn = make_conn(auth_type="ram_role_arn", role_arn=ROLE_ARN, correct_clock_skew=True)
    emulator.add_dlf_task("skew-role", ["Running"])
    emulator.clock_offset = 3600
    assert AlibabaCloudTasksHook(conn).get_dlf_async_task_status("skew-role").state == RUNNING


# ------------------------------------------------------------------------------------ endpoints


def _settings(**extra: Any) -> Any:
    base = {"region_id": "cn-shanghai", **extra}
    return parse_connection(
        login="LTAIx", password="y", extra={k: v for k, v in base.items() if v is not None}
    )


def test_pai_dlc_follows_the_sdk_map_to_the_central_host() -> None:
    settings = _settings(region_id="cn-zhangjiakou")
    assert service_endpoint(SERVICES["pai_dlc"], settings).host == "pai-dlc.aliyuncs.com"
    vpc = _settings(region_id="cn-zhangjiakou", use_vpc_endpoints="true")
    assert service_endpoint(SERVICES["pai_dlc"], vpc).host == "pai-dlc-vpc.cn-zhangjiakou.aliyuncs.com"


def test_adb_spark_follows_the_sdk_map() -> None:
    spec = SERVICES["adb_spark"]
    assert service_endpoint(spec, _settings(region_id="cn-hangzhou")).host == "adb.aliyuncs.com"
    assert service_endpoint(spec, _settings(region_id="me-east-1")).host == "adb.ap-northeast-1.aliyuncs.com"
    assert service_endpoint(spec, _settings(region_id="eu-central-1")).host == "adb.eu-central-1.aliyuncs.com"
    vpc = _settings(region_id="cn-hangzhou", use_vpc_endpoints="true")
    assert service_endpoint(spec, vpc).host == "adb-vpc.cn-hangzhou.aliyuncs.com"
    own = _settings(region_id="cn-hangzhou", adb_spark_endpoint="adb.cn-hangzhou.aliyuncs.com")
    assert service_endpoint(spec, own).host == "adb.cn-hangzhou.aliyuncs.com"


def test_dataworks_follows_the_sdk_map_to_the_central_host() -> None:
    settings = _settings(region_id="cn-qingdao")
    assert service_endpoint(SERVICES["dataworks"], settings).host == "dataworks.aliyuncs.com"
    vpc = _settings(region_id="cn-qingdao", use_vpc_endpoints="true")
    assert service_endpoint(SERVICES["dataworks"], vpc).host == "dataworks-vpc.cn-qingdao.aliyuncs.com"


@pytest.mark.parametrize(
    ("vpc", "expected"),
    [
        (
            "true",
            {
                "dlf": "dlf-vpc.cn-shanghai.aliyuncs.com",
                "dataworks": "dataworks-vpc.cn-shanghai.aliyuncs.com",
                "mma": "maxcompute-vpc.cn-shanghai.aliyuncs.com",
                "pds": "bj1.api-vpc.aliyunpds.com",
                "emr_serverless_spark": "emr-serverless-spark-vpc.cn-shanghai.aliyuncs.com",
                "dataworks_workflow": "dataworks-vpc.cn-shanghai.aliyuncs.com",
                "pai_dlc": "pai-dlc-vpc.cn-shanghai.aliyuncs.com",
                "adb_spark": "adb-vpc.cn-shanghai.aliyuncs.com",
                "flink_job": "ververica-vpc.cn-shanghai.aliyuncs.com",
                "fc_async_task": "1234567890123456.cn-shanghai-internal.fc.aliyuncs.com",
                "sts": "sts-vpc.cn-shanghai.aliyuncs.com",
            },
        ),
        (
            None,
            {
                "dlf": "dlf.cn-shanghai.aliyuncs.com",
                "dataworks": "dataworks.cn-shanghai.aliyuncs.com",
                "mma": "maxcompute.cn-shanghai.aliyuncs.com",
                "pds": "bj1.api.aliyunpds.com",
                "emr_serverless_spark": "emr-serverless-spark.cn-shanghai.aliyuncs.com",
                "dataworks_workflow": "dataworks.cn-shanghai.aliyuncs.com",
                "pai_dlc": "pai-dlc.cn-shanghai.aliyuncs.com",
                "adb_spark": "adb.aliyuncs.com",  # the SDK's map: the central host
                "flink_job": "ververica.cn-shanghai.aliyuncs.com",
                "fc_async_task": "1234567890123456.cn-shanghai.fc.aliyuncs.com",
                "sts": "sts.cn-shanghai.aliyuncs.com",
            },
        ),
    ],
)
def test_default_endpoints(vpc: str | None, expected: dict[str, str]) -> None:
    settings = _settings(use_vpc_endpoints=vpc, pds_domain_id="bj1", fc_account_id="1234567890123456")
    for name, spec in SERVICES.items():
        assert service_endpoint(spec, settings) == Endpoint("https", expected[name])
    assert sts_endpoint(settings) == Endpoint("https", expected["sts"])


def test_pds_domain_argument_wins_and_is_lowercased() -> None:
    settings = _settings(use_vpc_endpoints="true", pds_domain_id="bj1")
    assert service_endpoint(SERVICES["pds"], settings, {"domain_id": "BJ2"}) == Endpoint(
        "https", "bj2.api-vpc.aliyunpds.com"
    )
    no_domain = _settings()
    assert service_endpoint(SERVICES["pds"], no_domain, {"domain_id": "hz9"}).host == "hz9.api.aliyunpds.com"
    with pytest.raises(ConfigurationError) as info:
        service_endpoint(SERVICES["pds"], no_domain)
    assert info.value.field == "domain_id"


def test_endpoint_overrides_win_over_vpc() -> None:
    settings = _settings(
        use_vpc_endpoints="true",
        dlf_endpoint="dlf-share.cn-shanghai.aliyuncs.com",
        pds_endpoint="https://bj1.api.aliyunpds.com",
        sts_endpoint="http://127.0.0.1:9",
    )
    assert service_endpoint(SERVICES["dlf"], settings).host == "dlf-share.cn-shanghai.aliyuncs.com"
    assert (
        service_endpoint(SERVICES["pds"], settings, {"domain_id": "ignored"}).host == "bj1.api.aliyunpds.com"
    )
    assert sts_endpoint(settings) == Endpoint("http", "127.0.0.1", 9)
    assert service_endpoint(SERVICES["mma"], settings).host == "maxcompute-vpc.cn-shanghai.aliyuncs.com"


# ------------------------------------------------------------------------ EMR Serverless Spark


def test_emr_serverless_spark_job_run_sync_and_async(emulator: Emulator, make_conn: MakeConn) -> None:
    conn = make_conn()
    emulator.add_emr_serverless_spark_job_run(
        "w-hook", "jr-ok", ["Running", "Success"], fields={"webUI": "http://spark-ui/jr-ok"}
    )
    emulator.add_emr_serverless_spark_job_run(
        "w-hook",
        "jr-bad",
        ["Failed"],
        state_change_reason_code="ERR-200001",
        state_change_reason_message="Driver exited with code 1",
    )
    hook = AlibabaCloudTasksHook(conn)
    first = hook.get_task_status("emr_serverless_spark", workspace_id="w-hook", job_run_id="jr-ok")
    assert (first.service, first.state, first.raw_status) == ("emr_serverless_spark", RUNNING, "Running")
    assert first.ids == {"workspace_id": "w-hook", "job_run_id": "jr-ok"}

    async def poll() -> Any:
        try:
            return await AlibabaCloudTasksHook(conn).aget_task_status(
                "emr_serverless_spark", workspace_id="w-hook", job_run_id="jr-ok"
            )
        finally:
            await aclose_shared_client()

    second = asyncio.run(poll())
    assert second.state == SUCCEEDED
    assert second.raw["jobRun"]["webUI"] == "http://spark-ui/jr-ok"
    failed = hook.get_task_status("emr_serverless_spark", workspace_id="w-hook", job_run_id="jr-bad")
    assert (failed.state, failed.error_code, failed.message) == (
        FAILED,
        "ERR-200001",
        "Driver exited with code 1",
    )
    assert emulator.poll_count("emr_serverless_spark", workspace_id="w-hook", job_run_id="jr-ok") == 2


def test_emr_serverless_spark_unknown_run_is_not_found(emulator: Emulator, make_conn: MakeConn) -> None:
    with pytest.raises(NotFoundError):
        AlibabaCloudTasksHook(make_conn()).get_task_status(
            "emr_serverless_spark", workspace_id="w-hook", job_run_id="jr-missing"
        )


# --------------------------------------------------------------------------- network settings


def test_client_cache_key_includes_network_settings_and_environment(
    emulator: Emulator, make_conn: MakeConn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_aliyun_tasks.hooks import client_for

    base = parse_connection(login="a", password="b", extra={"region_id": "cn-hangzhou"})
    proxied = parse_connection(
        login="a", password="b", extra={"region_id": "cn-hangzhou", "https_proxy": "http://127.0.0.1:9"}
    )
    first = client_for("c", base)
    assert client_for("c", base) is first
    assert client_for("c", proxied) is not first
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert client_for("c", base) is not first  # the environment it trusts changed
    ignoring = parse_connection(
        login="a", password="b", extra={"region_id": "cn-hangzhou", "trust_env": False}
    )
    assert client_for("c", ignoring)._router is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ALIBABA_CLOUD_STS_REGION", "cn-shanghai"), ("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true")],
)
def test_client_cache_key_includes_the_sts_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """The STS endpoint of a role connection follows two environment variables (as the
    credentials library's does): a changed one must not keep a client whose credential source
    calls the old endpoint."""
    from airflow_aliyun_tasks.hooks import client_for

    monkeypatch.delenv(variable, raising=False)
    role = parse_connection(
        login="a",
        password="b",
        extra={"region_id": "cn-hangzhou", "auth_type": "ram_role_arn", "role_arn": "acs:ram::1:role/r"},
    )
    first = client_for("sts-env", role)
    assert client_for("sts-env", role) is first
    monkeypatch.setenv(variable, value)
    assert client_for("sts-env", role) is not first


def test_proxy_password_is_registered_with_the_secrets_masker(
    emulator: Emulator, make_conn: MakeConn
) -> None:
    from airflow.sdk.log import redact

    password = "Pr0xyPassw0rdXYZ"
    make_conn(https_proxy=f"http://alice:{password}@127.0.0.1:9")
    hook = AlibabaCloudTasksHook()
    assert hook.settings.network.https_proxy is not None
    assert password not in str(redact(f"proxy said no to {password}"))
    assert password not in repr(hook.settings)
