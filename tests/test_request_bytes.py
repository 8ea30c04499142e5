"""The requests the package sends to the services, byte for byte: method, URL, every header
(signed with a fixed key, date and nonce) and body, of each status call, cancel call, start call
and generic call below, against ``tests/data/request_bytes.json``.

A change to the spec vocabulary (body encodings, ids in headers, cancel operations of their own)
must leave these requests as they are; a deliberate change to one rewrites its entry (run this
module with ``ALIYUN_WRITE_REQUEST_BYTES=1``) and says why in its commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from airflow_aliyun_tasks._call import Call, call_url
from airflow_aliyun_tasks._transport.shared import PreparedHeaders, request_bytes, split_url
from airflow_aliyun_tasks.config import parse_connection
from airflow_aliyun_tasks.credentials import Credentials
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook, _spec_call
from airflow_aliyun_tasks.services import SERVICES

GOLDEN = Path(__file__).parent / "data" / "request_bytes.json"
WRITE = os.environ.get("ALIYUN_WRITE_REQUEST_BYTES") == "1"

CREDS = Credentials(access_key_id="LTAI5tGoldenKeyId0000", access_key_secret="GoldenSecret0000000000000000")
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NONCE = "0123456789abcdef0123456789abcdef"
UA = "airflow-aliyun-tasks/test"

#: The status ids of every service of the first five (``domain_id``: PDS's host).
STATUS_IDS: dict[str, dict[str, str]] = {
    "dlf": {"async_task_id": "f546c761570e5efc8146a1986f7890d2", "catalog_id": "1344371"},
    "dataworks": {"job_id": "70ecdaec-bf21-4c11-8ecb-4f77453ceea8"},
    "mma": {"source_id": "2000028", "async_task_id": "1000286"},
    "pds": {"async_task_id": "000e89fb-cf8f-11e9-8ab4-b6e980803a3b", "domain_id": "bj123"},
    "emr_serverless_spark": {"workspace_id": "w-d2d82aa09151", "job_run_id": "jr-93d98d2f7061"},
}

#: Generic calls (``call_api``'s arguments) the operator and users make to those services.
GENERIC: dict[str, dict[str, Any]] = {
    "emr_start": {
        "action": "StartJobRun",
        "version": "2023-08-08",
        "service": "emr_serverless_spark",
        "path": "/api/v1/workspaces/w-1/jobRuns",
        "body": {
            "name": "etl",
            "codeType": "JAR",
            "clientToken": "tok",
            "tags": [{"key": "a", "value": "b"}],
        },
    },
    "dataworks_import_query": {
        "action": "ImportWorkflowDefinition",
        "version": "2024-05-18",
        "service": "dataworks",
        "query": {"ProjectId": 1001, "Spec": '{"version": "1.1.0"}', "Async": True},
    },
    "dlf_delete_database": {
        "action": "DeleteDatabase",
        "version": "2020-07-10",
        "service": "dlf",
        "method": "DELETE",
        "path": "/api/metastore/catalogs/databases",
        "query": {"CatalogId": "1344371", "Name": "tmp", "Async": True, "Cascade": False},
    },
    "mma_create_job": {
        "action": "CreateMmsJob",
        "version": "2022-01-04",
        "service": "mma",
        "path": "/api/v1/mms/datasources/2000028/jobs",
        "body": {"name": "job", "dbName": "db", "tables": ["t1", "t2"], "partitions": {"a": 1.5}},
    },
    "pds_archive": {
        "action": "ArchiveFiles",
        "version": "2022-03-01",
        "service": "pds",
        "path": "/v2/file/archive_files",
        "body": {"drive_id": "1", "files": [{"file_id": "f"}], "name": "a.zip"},
        "domain_id": "bj123",
    },
    "sts_identity": {"action": "GetCallerIdentity", "version": "2015-04-01", "service": "sts"},
    "explicit_endpoint": {
        "action": "DescribeRegions",
        "version": "2014-05-26",
        "endpoint": "ecs.cn-hangzhou.aliyuncs.com",
        "method": "GET",
        "query": {"AcceptLanguage": "en-US"},
    },
    "dataworks_empty_post": {"action": "ListProjects", "version": "2024-05-18", "service": "dataworks"},
    "dataworks_body": {
        "action": "ImportWorkflowDefinition",
        "version": "2024-05-18",
        "service": "dataworks",
        "body": {"ProjectId": 1001, "Spec": "{}"},
    },
}


def _settings() -> Any:
    extra = {"region_id": "cn-hangzhou", "pds_domain_id": "bj123"}
    return parse_connection(login="LTAI5tGoldenKeyId0000", password="x", extra=extra)


def _wire(call: Call) -> dict[str, Any]:
    headers = call._plan.headers(call, CREDS, NOW, NONCE, UA)
    # the bytes sent: the same whether the headers come laid out (PreparedHeaders) or as a dict
    target = split_url(call_url(call))[3]
    sent = request_bytes(call.method, target, headers, call.body or None)
    assert sent == request_bytes(call.method, target, dict(headers.items()), call.body or None)
    return {
        "method": call.method,
        "url": call_url(call),
        "headers": dict(sorted(headers.items())),
        "body": call.body.decode("utf-8"),
    }


def _requests() -> dict[str, Any]:
    settings = _settings()
    out: dict[str, Any] = {}
    for name, ids in STATUS_IDS.items():
        spec = SERVICES[name]
        clean = spec.validate_ids(ids)
        out[f"status:{name}"] = _wire(
            _spec_call(spec, settings, clean, spec.action, spec.build_request(clean, settings.region_id))
        )
        if spec.cancel is not None:
            req = spec.build_cancel_request(clean, settings.region_id)
            out[f"cancel:{name}"] = _wire(_spec_call(spec, settings, clean, spec.cancel.action, req))
    hook = AlibabaCloudTasksHook()
    for name, kwargs in GENERIC.items():
        args = {"method": "POST", "path": "/", "query": None, "body": None, "domain_id": None}
        args.update({k: v for k, v in kwargs.items() if k not in ("service", "endpoint")})
        call = hook._generic_call(
            settings, service=kwargs.get("service"), endpoint=kwargs.get("endpoint"), **args
        )
        out[f"call_api:{name}"] = _wire(call)
    return out


def test_requests_byte_for_byte() -> None:
    current = _requests()
    if WRITE:
        GOLDEN.write_text(json.dumps(current, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    for key in sorted(set(expected) | set(current)):
        assert current.get(key) == expected.get(key), key


def test_signed_calls_send_laid_out_headers() -> None:
    """Every signed status call takes the laid-out path (the one :func:`_wire` compares with)."""
    settings = _settings()
    for name, ids in STATUS_IDS.items():
        spec = SERVICES[name]
        clean = spec.validate_ids(ids)
        call = _spec_call(spec, settings, clean, spec.action, spec.build_request(clean, settings.region_id))
        assert type(call._plan.headers(call, CREDS, NOW, NONCE, UA)) is PreparedHeaders, name


@pytest.mark.parametrize("name", sorted(STATUS_IDS))
def test_every_first_service_is_pinned(name: str) -> None:
    assert f"status:{name}" in json.loads(GOLDEN.read_text())
