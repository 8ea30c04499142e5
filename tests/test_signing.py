"""Signing: published vectors byte for byte, plus property tests against the official signers,
and the prepared signers against the public signing functions.

The official signers come from the test-only dependencies:

- ACS3-HMAC-SHA256: ``alibabacloud_tea_openapi.utils.Utils.get_authorization`` (tea-openapi 0.4.6);
- legacy ROA ``acs AK:sig``: ``alibabacloud_tea_openapi.utils.Utils.get_string_to_sign`` /
  ``get_roasignature``;
- PDS v1: ``alibabacloud_gateway_pds.client.Client.get_authorization`` and its helpers.

``tests/data/signing_vectors.json`` is a verbatim copy of the reference vectors (computed with the
official signer), so these tests do not depend on the reference directory existing.
Nothing here does I/O beyond reading that file; no network is touched.
"""

from __future__ import annotations

import hashlib
import json
import string
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_gateway_pds.client import Client as PdsGateway
from alibabacloud_gateway_spi import models as spi_models
from alibabacloud_tea_openapi.utils import Utils as OpenApiUtils
from alibabacloud_tea_openapi.utils import get_canonical_query_string as official_canonical_query
from alibabacloud_tea_util.client import Client as TeaUtilClient
from darabonba.core import DaraCore
from darabonba.request import DaraRequest
from darabonba.url import Url as DaraURL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aliyun_tasks import signing
from airflow_aliyun_tasks.signing import (
    ACS3_ALGORITHM,
    EMPTY_SHA256,
    JSON_CONTENT_TYPE,
    acs3_headers,
    bearer_headers,
    canonical_query,
    encode_path,
    format_acs_date,
    format_http_date,
    pds_headers,
    pds_string_to_sign,
    percent_encode,
    sha256_hex,
    sign_acs3,
    sign_pds,
)

AK = "YourAccessKeyId"
SECRET = "YourAccessKeySecret"
ACS_DATE = "2023-10-26T09:01:01Z"
HTTP_DATE = "Thu, 26 Oct 2023 09:01:01 GMT"
EPOCH = 1698310861  # 2023-10-26T09:01:01Z
NONCE = "d410180a5abf7fe235dd9b74aca91fc0"

VECTORS_FILE = Path(__file__).parent / "data" / "signing_vectors.json"
VECTORS: dict[str, dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def official_acs3(
    method: str,
    pathname: str,
    query: dict[str, str | None],
    headers: dict[str, str],
    payload_hash: str,
    ak: str = AK,
    secret: str = SECRET,
) -> str:
    """``Authorization`` from the official V3 signer, called as in alibaba-apis.md B.2."""
    request = DaraRequest()
    request.method = method
    request.pathname = pathname
    request.query = dict(query)
    request.headers = dict(headers)
    return OpenApiUtils.get_authorization(request, ACS3_ALGORITHM, payload_hash, ak, secret)


def official_pds(
    method: str,
    pathname: str,
    query: dict[str, str] | None,
    headers: dict[str, str],
    ak: str = AK,
    secret: str = SECRET,
) -> tuple[str, str]:
    """``(authorization, string_to_sign)`` from the official PDS gateway (signature version v1)."""
    gateway = PdsGateway()
    string_to_sign = (
        f"{method}\n{gateway.build_canonicalized_headers(headers)}"
        f"{gateway.build_canonicalized_resource(pathname, query)}"
    )
    return gateway.get_authorization(pathname, method, query, headers, ak, secret), string_to_sign


# --------------------------------------------------------------------------------------------------
# 1. ACS3 vectors (alibaba-apis.md B.2 / signing-vectors.json)
# --------------------------------------------------------------------------------------------------


def test_vectors_file_holds_all_published_vectors() -> None:
    assert set(VECTORS) == {
        "doc_ecs_RunInstances",
        "dlf_GetAsyncTaskStatus",
        "dataworks_GetJobStatus",
        "mma_GetMmsAsyncTask",
        "dataworks_GetJobStatus_STS",
        "encoding_edge",
    }


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_sign_acs3_reproduces_vector(name: str) -> None:
    vector = VECTORS[name]
    sig = sign_acs3(
        method=vector["method"],
        pathname=vector["path"],
        query=vector["query"],
        headers=vector["headers"],
        payload_hash=EMPTY_SHA256,
        access_key_id=AK,
        access_key_secret=SECRET,
    )
    assert sig.canonical_request == vector["canonical_request"]
    assert sig.string_to_sign == vector["string_to_sign"]
    assert sig.authorization == vector["authorization"]
    assert sig.signature == vector["authorization"].rsplit("Signature=", 1)[1]
    assert sig.signed_headers == vector["authorization"].split("SignedHeaders=", 1)[1].split(",")[0]


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_official_signer_agrees_with_vector(name: str) -> None:
    # Guards the copy of the vectors and the installed SDK version at the same time.
    vector = VECTORS[name]
    auth = official_acs3(vector["method"], vector["path"], vector["query"], vector["headers"], EMPTY_SHA256)
    assert auth == vector["authorization"]


def test_encoding_edge_vector_query() -> None:
    vector = VECTORS["encoding_edge"]
    assert canonical_query(vector["query"]) == "Empty=&Name=a%20b%2Ac~d%2F%C3%A9"
    assert vector["canonical_request"].split("\n")[2] == "Empty=&Name=a%20b%2Ac~d%2F%C3%A9"


def test_sign_acs3_full_sdk_header_set_vector_6() -> None:
    # B.2 #6: the header set the Python SDK really signs for DLF (#1), accept/user-agent included.
    headers = {
        **VECTORS["dlf_GetAsyncTaskStatus"]["headers"],
        "accept": "application/json",
        "user-agent": "AlibabaCloud (test) Python/3 Core/test TeaDSL/2",
        "x-acs-credentials-provider": "static_ak",
    }
    sig = sign_acs3(
        method="GET",
        pathname="/api/metastore/catalogs/tasks",
        query={"CatalogId": "1344371", "TaskId": "f546c761570e5efc8146a1986f7890d2"},
        headers=headers,
        payload_hash=EMPTY_SHA256,
        access_key_id=AK,
        access_key_secret=SECRET,
    )
    assert sig.signed_headers == (
        "accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;"
        "x-acs-date;x-acs-signature-nonce;x-acs-version"
    )
    assert sig.signature == "fbc289a15e8c5ecdb001f24cf9d7b59fb18a24e0071ff558841f10dc9d616d39"


@pytest.mark.parametrize(
    ("name", "host", "pathname", "action", "version", "security_token"),
    [
        (
            "dlf_GetAsyncTaskStatus",
            "dlf.cn-hangzhou.aliyuncs.com",
            "/api/metastore/catalogs/tasks",
            "GetAsyncTaskStatus",
            "2020-07-10",
            None,
        ),
        (
            "dataworks_GetJobStatus_STS",
            "dataworks.cn-hangzhou.aliyuncs.com",
            "/",
            "GetJobStatus",
            "2024-05-18",
            "YourSecurityToken",
        ),
    ],
    ids=["dlf_GetAsyncTaskStatus", "dataworks_GetJobStatus_STS"],
)
def test_acs3_headers_reproduces_vector(
    name: str, host: str, pathname: str, action: str, version: str, security_token: str | None
) -> None:
    vector = VECTORS[name]
    headers = acs3_headers(
        method="GET",
        host=host,
        pathname=pathname,
        query=vector["query"],
        action=action,
        version=version,
        body=b"",
        content_type=None,
        access_key_id=AK,
        access_key_secret=SECRET,
        security_token=security_token,
        date=ACS_DATE,
        nonce=NONCE,
    )
    if security_token is not None:  # STS: the key id and the token are sent too
        assert headers["x-acs-accesskey-id"] == AK
        assert headers["x-acs-security-token"] == "YourSecurityToken"
    assert headers == {**vector["headers"], "authorization": vector["authorization"]}


def test_acs3_headers_without_token_sends_no_sts_headers() -> None:
    headers = acs3_headers(
        method="GET",
        host="dataworks.cn-hangzhou.aliyuncs.com",
        pathname="/",
        query=None,
        action="GetJobStatus",
        version="2024-05-18",
        body=b"",
        content_type=JSON_CONTENT_TYPE,  # ignored: no body, so no content-type
        access_key_id=AK,
        access_key_secret=SECRET,
        security_token="",
        date=ACS_DATE,
        nonce=NONCE,
    )
    assert "x-acs-accesskey-id" not in headers
    assert "x-acs-security-token" not in headers
    assert "content-type" not in headers
    assert headers["x-acs-content-sha256"] == EMPTY_SHA256


def test_acs3_headers_with_body_signs_content_type_and_body_hash() -> None:
    body = DaraCore.to_json_string({"name": "é 中"}).encode("utf-8")
    headers = acs3_headers(
        method="POST",
        host="dlf.cn-hangzhou.aliyuncs.com",
        pathname="/api/x",
        query=None,
        action="A",
        version="2020-07-10",
        body=body,
        content_type=JSON_CONTENT_TYPE,
        access_key_id=AK,
        access_key_secret=SECRET,
        security_token=None,
        date=ACS_DATE,
        nonce=NONCE,
    )
    assert headers["content-type"] == JSON_CONTENT_TYPE
    assert headers["x-acs-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert "SignedHeaders=content-type;host;" in headers["authorization"]
    signed = {k: v for k, v in headers.items() if k != "authorization"}
    assert headers["authorization"] == official_acs3(
        "POST", "/api/x", {}, signed, hashlib.sha256(body).hexdigest()
    )


# --------------------------------------------------------------------------------------------------
# 2. PDS v1 (B.5), legacy ROA (B.4), Bearer
# --------------------------------------------------------------------------------------------------

PDS_VECTOR_HEADERS = {
    "accept": "application/json",
    "content-type": "application/json; charset=utf-8",
    "date": HTTP_DATE,
    "x-acs-action": "GetAsyncTask",
    "x-acs-signature-method": "HMAC-SHA1",
    "x-acs-signature-nonce": NONCE,
    "x-acs-signature-version": "1.0",
    "x-acs-version": "2022-03-01",
}
PDS_VECTOR_STRING_TO_SIGN = (
    "POST\napplication/json\n\napplication/json; charset=utf-8\nThu, 26 Oct 2023 09:01:01 GMT\n"
    "x-acs-action:GetAsyncTask\nx-acs-signature-method:HMAC-SHA1\n"
    "x-acs-signature-nonce:d410180a5abf7fe235dd9b74aca91fc0\nx-acs-signature-version:1.0\n"
    "x-acs-version:2022-03-01\n/v2/async_task/get"
)
PDS_VECTOR_AUTHORIZATION = "acs YourAccessKeyId:pDlWALJfRi7VTsxV9w9nprR2Bcw="


def test_sign_pds_reproduces_b5_vector() -> None:
    authorization, string_to_sign = sign_pds(
        method="POST",
        pathname="/v2/async_task/get",
        query=None,
        headers=PDS_VECTOR_HEADERS,
        access_key_id=AK,
        access_key_secret=SECRET,
    )
    assert string_to_sign == PDS_VECTOR_STRING_TO_SIGN
    assert authorization == PDS_VECTOR_AUTHORIZATION
    assert official_pds("POST", "/v2/async_task/get", None, PDS_VECTOR_HEADERS) == (
        PDS_VECTOR_AUTHORIZATION,
        PDS_VECTOR_STRING_TO_SIGN,
    )


def test_pds_headers_reproduces_b5_vector() -> None:
    headers = pds_headers(
        method="POST",
        host="bj123.api.aliyunpds.com",
        pathname="/v2/async_task/get",
        query=None,
        action="GetAsyncTask",
        version="2022-03-01",
        content_type=JSON_CONTENT_TYPE,
        access_key_id=AK,
        access_key_secret=SECRET,
        security_token=None,
        date=HTTP_DATE,
        nonce=NONCE,
    )
    assert headers == {
        **PDS_VECTOR_HEADERS,
        "host": "bj123.api.aliyunpds.com",
        "authorization": PDS_VECTOR_AUTHORIZATION,
    }


@pytest.mark.parametrize("security_token", [None, "YourSecurityToken"])
def test_pds_headers_match_official_gateway_modify_request(
    monkeypatch: pytest.MonkeyPatch, security_token: str | None
) -> None:
    """The whole official gateway (``modify_request``), date and nonce pinned, signs like us."""
    monkeypatch.setattr(TeaUtilClient, "get_date_utcstring", staticmethod(lambda: HTTP_DATE))
    monkeypatch.setattr(TeaUtilClient, "get_nonce", staticmethod(lambda: NONCE))
    if security_token:
        config = CredentialConfig(
            type="sts", access_key_id=AK, access_key_secret=SECRET, security_token=security_token
        )
    else:
        config = CredentialConfig(type="access_key", access_key_id=AK, access_key_secret=SECRET)
    request = spi_models.InterceptorContextRequest(
        headers={},
        query={},
        body={"async_task_id": "000e89fb-cf8f-11e9-8ab4-b6e980803a3b"},
        pathname="/v2/async_task/get",
        action="GetAsyncTask",
        version="2022-03-01",
        method="POST",
        auth_type="AK",
        req_body_type="json",
        body_type="json",
        credential=CredentialClient(config),
        user_agent="test",
    )
    context = spi_models.InterceptorContext(
        request=request,
        configuration=spi_models.InterceptorContextConfiguration(endpoint="bj123.api.aliyunpds.com"),
    )
    PdsGateway().modify_request(context, spi_models.AttributeMap())
    official = {k.lower(): v for k, v in request.headers.items() if k != "user-agent"}

    ours = pds_headers(
        method="POST",
        host="bj123.api.aliyunpds.com",
        pathname="/v2/async_task/get",
        query=None,
        action="GetAsyncTask",
        version="2022-03-01",
        content_type=JSON_CONTENT_TYPE,
        access_key_id=AK,
        access_key_secret=SECRET,
        security_token=security_token,
        date=HTTP_DATE,
        nonce=NONCE,
    )
    assert ours == official
    if security_token is None:
        assert ours["authorization"] == PDS_VECTOR_AUTHORIZATION
    else:
        assert ours["x-acs-security-token"] == security_token
        assert "x-acs-accesskey-id" not in ours  # the PDS gateway, unlike ACS3, does not add it


B4_HEADERS = {
    "accept": "application/json",
    "date": HTTP_DATE,
    "x-acs-action": "GetAsyncTaskStatus",
    "x-acs-signature-method": "HMAC-SHA1",
    "x-acs-signature-nonce": NONCE,
    "x-acs-signature-version": "1.0",
    "x-acs-version": "2020-07-10",
}
B4_QUERY = {"CatalogId": "1344371", "TaskId": "f546c761570e5efc8146a1986f7890d2"}
B4_STRING_TO_SIGN = (
    "GET\napplication/json\n\n\nThu, 26 Oct 2023 09:01:01 GMT\n"
    "x-acs-action:GetAsyncTaskStatus\nx-acs-signature-method:HMAC-SHA1\n"
    "x-acs-signature-nonce:d410180a5abf7fe235dd9b74aca91fc0\nx-acs-signature-version:1.0\n"
    "x-acs-version:2020-07-10\n"
    "/api/metastore/catalogs/tasks?CatalogId=1344371&TaskId=f546c761570e5efc8146a1986f7890d2"
)


def test_legacy_roa_b4_vector() -> None:
    # B.4 names the inputs but not the exact x-acs-* set. The vector is reproduced by exactly the
    # headers B.4 lists for a non-STS request without body: signature-method/-version/-nonce,
    # version and action (no x-acs-date, no x-acs-content-sha256), GET on the DLF path.
    authorization, string_to_sign = sign_pds(
        method="GET",
        pathname="/api/metastore/catalogs/tasks",
        query=B4_QUERY,
        headers=B4_HEADERS,
        access_key_id=AK,
        access_key_secret=SECRET,
    )
    assert string_to_sign == B4_STRING_TO_SIGN
    assert authorization == "acs YourAccessKeyId:AboTxjIpCg4HFXjKAL3rbFXjObw="

    # The official legacy ROA signer of tea-openapi gives the same string and signature.
    request = DaraRequest()
    request.method = "GET"
    request.pathname = "/api/metastore/catalogs/tasks"
    request.query = dict(B4_QUERY)
    request.headers = dict(B4_HEADERS)
    official_sts = OpenApiUtils.get_string_to_sign(request)
    assert official_sts == B4_STRING_TO_SIGN
    assert f"acs {AK}:{OpenApiUtils.get_roasignature(official_sts, SECRET)}" == authorization


def test_bearer_headers() -> None:
    assert bearer_headers("tok-123") == {
        "authorization": "Bearer tok-123",
        "x-acs-bearer-token": "tok-123",
    }


def test_bearer_headers_match_official_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TeaUtilClient, "get_date_utcstring", staticmethod(lambda: HTTP_DATE))
    monkeypatch.setattr(TeaUtilClient, "get_nonce", staticmethod(lambda: NONCE))
    request = spi_models.InterceptorContextRequest(
        headers={},
        query={},
        pathname="/v2/async_task/get",
        action="GetAsyncTask",
        version="2022-03-01",
        method="POST",
        auth_type="AK",
        req_body_type="json",
        body_type="json",
        credential=CredentialClient(CredentialConfig(type="bearer", bearer_token="tok-123")),
        user_agent="test",
    )
    context = spi_models.InterceptorContext(
        request=request,
        configuration=spi_models.InterceptorContextConfiguration(endpoint="bj123.api.aliyunpds.com"),
    )
    PdsGateway().modify_request(context, spi_models.AttributeMap())
    official = {k.lower(): v for k, v in request.headers.items()}
    for name, value in bearer_headers("tok-123").items():
        assert official[name] == value


# --------------------------------------------------------------------------------------------------
# 3. Property tests against the official signers
# --------------------------------------------------------------------------------------------------

# Characters that exercise the encoders, mixed with arbitrary UTF-8-encodable code points
# (lone surrogates cannot be UTF-8 encoded by either implementation).
SPECIAL = list(" *~/+%&=?#:;,@!$'()[]\"\\\t\né中😀-_.")
ANY_CHAR = st.one_of(st.sampled_from(SPECIAL), st.characters(codec="utf-8"))
ANY_TEXT = st.text(ANY_CHAR, max_size=12)
SEGMENT = st.text(
    st.one_of(
        st.sampled_from([c for c in SPECIAL if c != "/"]),
        st.characters(codec="utf-8", exclude_characters="/"),
    ),
    max_size=8,
)
SAFE_NAME = st.text(string.ascii_letters + string.digits + "-_.~", min_size=1, max_size=10)
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE"])
SECRETS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20)
HEADER_VALUE = st.text(st.characters(codec="utf-8"), max_size=16)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def acs3_paths(draw: st.DrawFn) -> tuple[str, str]:
    """``(raw path for us, pathname for the official signer)``.

    ``Utils.get_authorization`` signs ``request.pathname`` verbatim (only ``""`` becomes ``/``);
    the pathname is encoded by whoever builds it:

    - ``Utils.get_encode_path`` (``quote(path, safe='/~')``) is the official whole-path encoder,
      and must agree with :func:`encode_path` for any path, ``/`` anywhere;
    - the generated product clients (e.g. MaxCompute) build ``'/api/.../' +
      DaraURL.percent_encode(param)``, encoding each parameter on its own. They agree with
      :func:`encode_path` only when no parameter contains ``/``: the SDK sends such a ``/`` as
      ``%2F``, while :func:`encode_path` treats it as a separator (and cannot express ``%2F`` at
      all, since ``%`` is encoded to ``%25``). See ``test_acs3_path_parameter_with_slash``.
    """
    if draw(st.booleans()):
        raw = draw(st.text(ANY_CHAR, max_size=30))
        return raw, OpenApiUtils.get_encode_path(raw)
    segments = draw(st.lists(SEGMENT, min_size=1, max_size=5))
    raw = "/" + "/".join(segments)
    return raw, "/" + "/".join(DaraURL.percent_encode(s) for s in segments)


# The official V3 signer encodes only query *values* (utils.py get_canonical_query_string), so
# names come from the RFC 3986 unreserved alphabet, where encoding a name is the identity.
ACS3_QUERIES = st.dictionaries(SAFE_NAME, st.none() | ANY_TEXT, max_size=5)


@st.composite
def extra_headers(draw: st.DrawFn) -> dict[str, str]:
    """Extra signed headers: x-acs-* names in mixed case (both sides lowercase and group them)."""
    names = draw(st.lists(st.from_regex(r"x-acs-[a-z0-9]{1,6}(-[a-z0-9]{1,6})?", fullmatch=True), max_size=3))
    out: dict[str, str] = {}
    for name in names:
        if draw(st.booleans()):
            name = name.upper()
        out[name] = draw(HEADER_VALUE)
    return out


@PROPERTY_SETTINGS
@given(
    method=METHODS,
    path=acs3_paths(),
    query=ACS3_QUERIES,
    extra=extra_headers(),
    body=st.none() | JSON_VALUES,
    token=st.none() | st.text(string.ascii_letters + string.digits + "+/=", min_size=1, max_size=20),
    ak=st.text(string.ascii_letters + string.digits, min_size=1, max_size=24),
    secret=SECRETS,
)
def test_sign_acs3_matches_official_signer(
    method: str,
    path: tuple[str, str],
    query: dict[str, str | None],
    extra: dict[str, str],
    body: Any,
    token: str | None,
    ak: str,
    secret: str,
) -> None:
    raw_path, official_path = path
    body_bytes = b"" if body is None else DaraCore.to_json_string(body).encode("utf-8")
    payload_hash = sha256_hex(body_bytes)
    headers = {
        "host": "dlf.cn-hangzhou.aliyuncs.com",
        "x-acs-action": "GetAsyncTaskStatus",
        "x-acs-version": "2020-07-10",
        "x-acs-date": ACS_DATE,
        "x-acs-signature-nonce": NONCE,
        "x-acs-content-sha256": payload_hash,
        **extra,
    }
    if body_bytes:
        headers["content-type"] = JSON_CONTENT_TYPE
    if token:
        headers["x-acs-accesskey-id"] = ak
        headers["x-acs-security-token"] = token

    ours = sign_acs3(
        method=method,
        pathname=raw_path,
        query=query,
        headers=headers,
        payload_hash=payload_hash,
        access_key_id=ak,
        access_key_secret=secret,
    )
    assert ours.authorization == official_acs3(
        method, official_path, query, headers, payload_hash, ak, secret
    )
    assert ours.canonical_request.split("\n", 2)[1] == (official_path or "/")


@PROPERTY_SETTINGS
@given(
    method=METHODS,
    path=acs3_paths(),
    query=ACS3_QUERIES,
    body=st.none() | JSON_VALUES,
    token=st.none() | st.just("") | st.text(string.ascii_letters + "+/=", min_size=1, max_size=20),
    secret=SECRETS,
    epoch=st.integers(min_value=0, max_value=4_102_444_800),
    nonce=st.text("0123456789abcdef", min_size=32, max_size=32),
)
def test_acs3_headers_matches_official_signer(
    method: str,
    path: tuple[str, str],
    query: dict[str, str | None],
    body: Any,
    token: str | None,
    secret: str,
    epoch: int,
    nonce: str,
) -> None:
    raw_path, official_path = path
    body_bytes = b"" if body is None else DaraCore.to_json_string(body).encode("utf-8")
    headers = acs3_headers(
        method=method,
        host="maxcompute.cn-hangzhou.aliyuncs.com",
        pathname=raw_path,
        query=query,
        action="GetMmsAsyncTask",
        version="2022-01-04",
        body=body_bytes,
        content_type=JSON_CONTENT_TYPE,
        access_key_id=AK,
        access_key_secret=secret,
        security_token=token,
        date=format_acs_date(epoch),
        nonce=nonce,
    )
    payload_hash = hashlib.sha256(body_bytes).hexdigest()
    # The headers the official do_request would have set for the same request.
    expected = {
        "host": "maxcompute.cn-hangzhou.aliyuncs.com",
        "x-acs-action": "GetMmsAsyncTask",
        "x-acs-version": "2022-01-04",
        "x-acs-date": format_acs_date(epoch),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": payload_hash,
    }
    if body_bytes:
        expected["content-type"] = JSON_CONTENT_TYPE
    if token:
        expected["x-acs-accesskey-id"] = AK
        expected["x-acs-security-token"] = token
    authorization = headers.pop("authorization")
    assert headers == expected
    assert authorization == official_acs3(method, official_path, query, expected, payload_hash, AK, secret)


@st.composite
def pds_request_headers(draw: st.DrawFn) -> dict[str, str]:
    """Lowercase header names, as the PDS gateway always has them.

    The official ``get_signed_headers`` lowercases names but then looks values up under the
    lowercased name, so a mixed-case ``x-acs-*`` name crashes it (``None.strip()``). It also
    de-duplicates with a *substring* test on the names taken so far, so ``x-acs-b`` is silently
    dropped after ``x-acs-ax-acs-b``. And with no ``x-acs-*`` header at all it crashes
    (``"".split(";")`` gives one empty name). None of this happens for what PDS sends (lowercase
    names, action/version/nonce always present), so names are lowercase, never contain ``x-acs-``
    past the prefix, and at least one is drawn.
    """
    headers: dict[str, str] = {}
    for name in ("accept", "content-md5", "content-type", "date", "host", "user-agent"):
        if draw(st.booleans()):
            headers[name] = draw(HEADER_VALUE)
    names = draw(
        st.lists(
            st.from_regex(r"x-acs-[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,2}", fullmatch=True).filter(
                lambda n: "x-acs-" not in n[6:]
            ),
            min_size=1,
            max_size=5,
        )
    )
    for name in names:
        headers[name] = draw(HEADER_VALUE)
    return headers


@PROPERTY_SETTINGS
@given(
    method=METHODS,
    pathname=st.text(ANY_CHAR, max_size=30),
    # PDS signs names and values verbatim, so both may be anything; no None (see below).
    query=st.none() | st.dictionaries(ANY_TEXT, st.just("") | ANY_TEXT, max_size=5),
    headers=pds_request_headers(),
    ak=st.text(string.ascii_letters + string.digits, min_size=1, max_size=24),
    secret=SECRETS,
)
def test_sign_pds_matches_official_gateway(
    method: str,
    pathname: str,
    query: dict[str, str] | None,
    headers: dict[str, str],
    ak: str,
    secret: str,
) -> None:
    ours = sign_pds(
        method=method,
        pathname=pathname,
        query=query,
        headers=headers,
        access_key_id=ak,
        access_key_secret=secret,
    )
    assert ours == official_pds(method, pathname, query, headers, ak, secret)


def test_pds_query_none_value_is_dropped() -> None:
    # Known, harmless difference: the official gateway's build_canonicalized_resource emits a
    # bare ``name`` for a None value (it tests "empty", not "unset"); we drop None, as
    # canonical_query does and as the SDK's own query building does before it reaches the wire.
    headers = {"x-acs-action": "A"}
    query = {"a": None, "b": ""}
    ours = pds_string_to_sign(method="GET", pathname="/p", query=query, headers=headers)
    assert ours == "GET\n\n\n\n\nx-acs-action:A\n/p?b"
    assert official_pds("GET", "/p", query, headers)[1] == "GET\n\n\n\n\nx-acs-action:A\n/p?a&b"
    ours = pds_string_to_sign(method="GET", pathname="/p", query={"a": None}, headers=headers)
    assert ours == "GET\n\n\n\n\nx-acs-action:A\n/p"


def test_acs3_path_parameter_with_slash() -> None:
    # Documented limitation, not a bug for the four APIs (their path parameters are numeric IDs):
    # a generated SDK client sends a path *parameter* "a/b" as "a%2Fb"; encode_path takes a whole
    # path and keeps "/" as a separator, and "%2F" given to it would be signed as "%252F".
    assert "/x/" + DaraURL.percent_encode("a/b") == "/x/a%2Fb"
    assert encode_path("/x/a/b") == "/x/a/b"
    assert encode_path("/x/a%2Fb") == "/x/a%252Fb"


# --------------------------------------------------------------------------------------------------
# 4. Small units
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),
        ("*", "%2A"),
        ("~", "~"),
        ("/", "%2F"),
        ("é", "%C3%A9"),
        ("+", "%2B"),
        ("%", "%25"),
        ("-_.", "-_."),
        ("AZaz09", "AZaz09"),
        ("中", "%E4%B8%AD"),
        ("", ""),
    ],
)
def test_percent_encode(raw: str, encoded: str) -> None:
    assert percent_encode(raw) == encoded


@given(ANY_TEXT)
@settings(max_examples=200, deadline=None)
def test_percent_encode_matches_sdk_param_encoder(value: str) -> None:
    assert percent_encode(value) == OpenApiUtils.get_encode_param(value)
    assert percent_encode(value) == DaraURL.percent_encode(value)


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("", "/"),
        ("/", "/"),
        ("/api/metastore/catalogs/tasks", "/api/metastore/catalogs/tasks"),
        ("/a b/c*d/e~f", "/a%20b/c%2Ad/e~f"),
        ("/é/中", "/%C3%A9/%E4%B8%AD"),
        ("/a//b/", "/a//b/"),
        ("/q?x=1#f", "/q%3Fx%3D1%23f"),
    ],
)
def test_encode_path(raw: str, encoded: str) -> None:
    assert encode_path(raw) == encoded


def test_canonical_query() -> None:
    assert canonical_query(None) == ""
    assert canonical_query({}) == ""
    assert canonical_query({"a": None}) == ""
    assert canonical_query({"b": "2", "a": "1", "drop": None, "empty": ""}) == "a=1&b=2&empty="
    assert canonical_query({"Name": "a b*c~d/é"}) == "Name=a%20b%2Ac~d%2F%C3%A9"
    # Sorted by name in code-point order: upper case before lower case.
    assert canonical_query({"b": "1", "B": "2", "a": "3"}) == "B=2&a=3&b=1"


def test_canonical_query_encodes_names_unlike_official_signer() -> None:
    # The V3 doc encodes names and values; the Python SDK's signer encodes only values. They
    # differ only for names outside A-Z a-z 0-9 -_.~, which none of the four APIs uses.
    assert canonical_query({"a b": "c d"}) == "a%20b=c%20d"
    assert official_canonical_query({"a b": "c d"}) == "a b=c%20d"


def test_repeated_header_names_are_sorted_and_comma_joined() -> None:
    headers = {"X-Acs-Multi": "b", "x-acs-multi": " a ", "host": "h"}
    sig = sign_acs3(
        method="get",
        pathname="",
        query=None,
        headers=headers,
        payload_hash=EMPTY_SHA256,
        access_key_id=AK,
        access_key_secret=SECRET,
    )
    assert sig.canonical_request == f"GET\n/\n\nhost:h\nx-acs-multi:a,b\n\nhost;x-acs-multi\n{EMPTY_SHA256}"
    assert sig.signed_headers == "host;x-acs-multi"
    assert sig.authorization == official_acs3("GET", "", {}, headers, EMPTY_SHA256)


def test_format_acs_date() -> None:
    assert format_acs_date(0) == "1970-01-01T00:00:00Z"
    assert format_acs_date(EPOCH) == ACS_DATE
    assert format_acs_date(EPOCH + 0.999) == ACS_DATE


def test_format_http_date() -> None:
    assert format_http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert format_http_date(EPOCH) == HTTP_DATE


def test_sha256_of_empty_body() -> None:
    assert sha256_hex(b"") == EMPTY_SHA256 == hashlib.sha256(b"").hexdigest()
    assert EMPTY_SHA256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# --------------------------------------------------------------------------------------------------
# 5. Prepared signers (what the client signs each poll with): the public functions' headers
# --------------------------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_query = st.dictionaries(_text, st.one_of(st.none(), _text), max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "put"]),
    host=_text,
    path=_text,
    query=st.one_of(st.none(), _query),
    body=st.binary(max_size=40),
    content_type=st.sampled_from([None, signing.JSON_CONTENT_TYPE]),
    token=st.one_of(st.none(), _text),
    date=_text,
    nonce=_text,
)
def test_prepared_signers_give_the_public_functions_headers(
    method: str,
    host: str,
    path: str,
    query: dict[str, str | None] | None,
    body: bytes,
    content_type: str | None,
    token: str | None,
    date: str,
    nonce: str,
) -> None:
    common: dict[str, Any] = {
        "method": method,
        "host": host or "h",
        "pathname": "/" + path,
        "query": query,
        "action": "GetJobStatus",
        "version": "2024-05-18",
        "content_type": content_type,
        "access_key_id": "LTAI5tExampleKey",
        "access_key_secret": "secret " + path,
        "security_token": token,
    }
    acs3 = signing.PreparedAcs3Signer(body=body, **common)
    for _ in range(2):  # and again: nothing in the prepared signer changes between calls
        expected = signing.acs3_headers(body=body, **common, date=date, nonce=nonce)
        assert acs3.headers(date, nonce) == expected
        assert list(acs3.headers(date, nonce)) == list(expected)
    pds = signing.PreparedPdsSigner(**common)
    expected_pds = signing.pds_headers(**common, date=date, nonce=nonce)
    assert pds.headers(date, nonce) == expected_pds
    assert list(pds.headers(date, nonce)) == list(expected_pds)
    # the placeholders of marked_headers, filled in, are the same headers in the same order
    for signer, want in ((acs3, expected), (pds, expected_pds)):
        assert signer.authorization(date, nonce) == want["authorization"]
        marked = signer.marked_headers()
        if marked is not None:  # None: the signer falls back to the plain function
            fill = dict(zip(signing.HEADER_MARKS, (date, nonce, want["authorization"]), strict=True))
            filled = {name: fill.get(value, value) for name, value in marked.items()}
            assert list(filled.items()) == list(want.items())


def test_prepared_signers_do_not_mix_keys() -> None:
    common: dict[str, Any] = {
        "method": "POST",
        "host": "bj1.api.aliyunpds.com",
        "pathname": "/v2/async_task/get",
        "query": None,
        "action": "GetAsyncTask",
        "version": "2022-03-01",
        "content_type": signing.JSON_CONTENT_TYPE,
        "access_key_id": "AK",
        "security_token": None,
    }
    date = "Thu, 26 Nov 2026 15:56:55 GMT"
    one = signing.PreparedPdsSigner(access_key_secret="one", **common)
    two = signing.PreparedPdsSigner(access_key_secret="two", **common)
    assert one.headers(date, "n") == signing.pds_headers(
        access_key_secret="one", **common, date=date, nonce="n"
    )
    assert two.headers(date, "n") == signing.pds_headers(
        access_key_secret="two", **common, date=date, nonce="n"
    )
    assert one.headers(date, "n")["authorization"] != two.headers(date, "n")["authorization"]


def test_dates_are_the_formatted_dates() -> None:
    for t in (0.0, 1.5, 1764172615.999, 1764172616.0):
        assert signing.dates(t) == (signing.format_acs_date(t), signing.format_http_date(t))
