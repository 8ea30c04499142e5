"""Requests and answers as the official SDKs shape them: AssumeRoleWithOIDC in the credentials
library's RPC form, STS host selection, XML error bodies, DLF's ``Success: false``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_aliyun_tasks._decode import decode
from airflow_aliyun_tasks._transport import RawResponse
from airflow_aliyun_tasks.config import Endpoint, parse_connection, sts_host
from airflow_aliyun_tasks.credential_sources import OidcRoleSource
from airflow_aliyun_tasks.errors import (
    ApiError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
)

ROLE_ARN = "acs:ram::1234567890123456:role/airflow"
OIDC_ARN = "acs:ram::1234567890123456:oidc-provider/k8s"


# --------------------------------------------------------------------------- AssumeRoleWithOIDC


def test_oidc_request_has_the_credentials_library_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("header.payload.sig\n")
    settings = parse_connection(
        login=None,
        password=None,
        extra={
            "region_id": "cn-hangzhou",
            "auth_type": "oidc_role_arn",
            "role_arn": ROLE_ARN,
            "oidc_provider_arn": OIDC_ARN,
            "oidc_token_file_path": str(token_file),
            "role_session_name": "sess",
            "policy": '{"Version":"1"}',
        },
    )
    ours = OidcRoleSource(settings, Endpoint("https", "sts.cn-hangzhou.aliyuncs.com"))._rpc_request(
        "header.payload.sig"
    )

    # What the library sends, captured at its HTTP call.
    from alibabacloud_credentials.provider.oidc import OIDCRoleArnCredentialsProvider
    from Tea.core import TeaCore

    sent: list[Any] = []

    def capture(request: Any, runtime: Any = None) -> Any:
        sent.append(request)
        raise RuntimeError("captured")

    monkeypatch.setattr(TeaCore, "do_action", staticmethod(capture))
    provider = OIDCRoleArnCredentialsProvider(
        role_arn=ROLE_ARN,
        oidc_provider_arn=OIDC_ARN,
        oidc_token_file_path=str(token_file),
        role_session_name="sess",
        policy='{"Version":"1"}',
        sts_region_id="cn-hangzhou",
    )
    with pytest.raises(Exception, match="captured"):
        provider._refresh_credentials()
    theirs = sent[0]
    assert ours.method == theirs.method.upper() == "GET"
    assert ours.path == (theirs.pathname or "/") == "/"  # an empty path is sent as /
    assert ours.endpoint.host == theirs.headers["host"]
    assert set(ours.query or {}) == set(theirs.query)
    for name in (
        "Action",
        "Format",
        "Version",
        "DurationSeconds",
        "RoleArn",
        "OIDCProviderArn",
        "RoleSessionName",
        "Policy",
    ):
        assert (ours.query or {})[name] == theirs.query[name], name
    # The library reads the token file as is; this package strips its trailing newline.
    assert (ours.query or {})["OIDCToken"] == theirs.query["OIDCToken"].strip()
    assert ours.signer == "rpc"


# --------------------------------------------------------------------------- STS host


@pytest.mark.parametrize(
    ("env", "vpc", "expected"),
    [
        ({}, False, "sts.cn-hangzhou.aliyuncs.com"),
        ({}, True, "sts-vpc.cn-hangzhou.aliyuncs.com"),
        ({"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "true"}, False, "sts-vpc.cn-hangzhou.aliyuncs.com"),
        ({"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "false"}, False, "sts.cn-hangzhou.aliyuncs.com"),
        ({"ALIBABA_CLOUD_STS_REGION": "cn-shanghai"}, False, "sts.cn-shanghai.aliyuncs.com"),
        (
            {"ALIBABA_CLOUD_STS_REGION": "cn-shanghai", "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "TRUE"},
            False,
            "sts-vpc.cn-shanghai.aliyuncs.com",
        ),
        ({"ALIBABA_CLOUD_STS_REGION": "not a region"}, False, "sts.cn-hangzhou.aliyuncs.com"),
    ],
)
def test_sts_host_as_the_library_picks_it(env: dict[str, str], vpc: bool, expected: str) -> None:
    assert sts_host("cn-hangzhou", vpc=vpc, environ=env) == expected


def test_sts_host_matches_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    from alibabacloud_credentials.provider.ram_role_arn import RamRoleArnCredentialsProvider
    from alibabacloud_credentials.provider.static_ak import StaticAKCredentialsProvider

    base = StaticAKCredentialsProvider(access_key_id="a", access_key_secret="b")
    for region in ("cn-hangzhou", "ap-southeast-1"):
        for vpc in (False, True):
            provider = RamRoleArnCredentialsProvider(
                credentials_provider=base, role_arn=ROLE_ARN, sts_region_id=region, enable_vpc=vpc
            )
            assert provider._sts_endpoint == sts_host(region, vpc=vpc, environ={})


# --------------------------------------------------------------------------- error bodies

XML = "text/xml;charset=utf-8"


def _err(status: int, body: bytes, content_type: str = "application/json") -> Exception:
    with pytest.raises(ApiError) as info:
        decode(RawResponse(status, httpx.Headers({"content-type": content_type}), body), now=0.0)
    return info.value


def test_xml_error_body_is_parsed() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><RequestId>R-1</RequestId>'
        b"<HostId>dlf.cn-hangzhou.aliyuncs.com</HostId><Code>Throttling.User</Code>"
        b"<Message>Request was denied due to user flow control.</Message></Error>"
    )
    err = _err(400, body, XML)
    assert isinstance(err, ThrottledError)
    assert err.code == "Throttling.User"
    assert err.request_id == "R-1"
    assert err.message == "Request was denied due to user flow control."


def test_xml_with_a_dtd_is_not_parsed() -> None:
    body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Error><Code>&a;</Code></Error>'
    err = _err(400, body, XML)
    assert err.code is None
    assert "non-JSON error body" in (err.message or "")


def test_dlf_success_false_judged_by_its_code() -> None:
    def dlf(**body: Any) -> Exception:
        return _err(200, json.dumps({"Success": False, "RequestId": "R", **body}).encode())

    assert isinstance(dlf(Code="NoSuchObject", Message="task not found"), NotFoundError)
    assert isinstance(dlf(Code="Throttling", Message="slow down"), ThrottledError)
    assert isinstance(dlf(Code="InternalError", Message="oops"), ServiceError)
    assert isinstance(dlf(Code="Whatever", Message="x", HttpStatusCode=503), ServiceError)
    assert isinstance(dlf(Code="Whatever", Message="x", HttpStatusCode=404), NotFoundError)
    plain = dlf(Code="InvalidParameter", Message="bad")
    assert type(plain) is ApiError
    assert plain.code == "InvalidParameter"


def test_camel_case_success_false_judged_by_its_code() -> None:
    """The envelope of Realtime Compute for Apache Flink (``ververica`` 2022-07-18): HTTP 200 with
    ``success: false``, ``errorCode``, ``errorMessage``, ``requestId``, ``httpCode`` (documented
    as always 200) and ``accessDeniedDetail`` when RAM refused the call."""

    def flink(**body: Any) -> Exception:
        envelope = {"success": False, "httpCode": 200, "requestId": "R-2", "data": {}, **body}
        return _err(200, json.dumps(envelope).encode())

    throttled = flink(errorCode="Throttling.User", errorMessage="slow down")
    assert isinstance(throttled, ThrottledError)
    assert throttled.retryable
    assert (throttled.code, throttled.message, throttled.request_id) == (
        "Throttling.User",
        "slow down",
        "R-2",
    )
    assert isinstance(flink(errorCode="Job.NotFound", errorMessage="no such job"), NotFoundError)
    assert isinstance(flink(errorCode="InternalError", errorMessage="oops"), ServiceError)
    assert isinstance(flink(errorCode="990301", errorMessage="x", httpCode=404), NotFoundError)
    assert isinstance(flink(errorCode="990301", errorMessage="x", httpCode=503), ServiceError)
    denied = flink(
        errorCode="990301",
        errorMessage="You are not authorized",
        accessDeniedDetail='{"AuthAction":"stream:GetJob","NoPermissionType":"ImplicitDeny"}',
    )
    assert isinstance(denied, PermissionDeniedError)
    assert not denied.retryable
    plain = flink(errorCode="990301", errorMessage="deployment is not running")
    assert type(plain) is ApiError
    assert (plain.code, plain.message) == ("990301", "deployment is not running")
    assert "HTTP 200 990301: deployment is not running [RequestId: R-2]" in str(plain)
    # success: true is an answer, whatever the other fields say
    ok = decode(
        RawResponse(
            200, httpx.Headers({}), json.dumps({"success": True, "errorCode": "", "data": {}}).encode()
        ),
        now=0.0,
    )
    assert ok.body["success"] is True
