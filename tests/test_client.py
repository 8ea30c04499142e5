"""``AlibabaCloudClient`` and ``Call`` over real HTTP against the local emulator.

The retry / fail-fast matrix is driven by the emulator's injected faults; a few things the emulator
cannot produce (a reused nonce, server-side expiry of cached credentials) are provoked by patching
the client's inputs, never its transport. Every exception produced is checked for leaked secrets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from typing import Any

import httpx
import pytest
import tenacity

from airflow_aliyun_tasks import client as client_module
from airflow_aliyun_tasks import signing
from airflow_aliyun_tasks._loop_clients import async_sender
from airflow_aliyun_tasks.client import (
    AlibabaCloudClient,
    Call,
    aclose_shared_client,
    shared_async_client,
    shared_sync_client,
)
from airflow_aliyun_tasks.config import parse_connection, parse_endpoint
from airflow_aliyun_tasks.credential_sources import STS_VERSION, AssumeRoleSource
from airflow_aliyun_tasks.credentials import Credentials, StaticSource, _CachingSource
from airflow_aliyun_tasks.errors import (
    AlibabaCloudError,
    ApiError,
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    NotFoundError,
    ServiceError,
    ThrottledError,
    TransportError,
    is_transient,
)
from airflow_aliyun_tasks.services import SERVICES
from airflow_aliyun_tasks.testing import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, Emulator
from fakes import ModuleProxy

AK, SK = DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
WRONG_SECRET = "WrongSecret-abcdefghijklmnop"
ROLE_ARN = "acs:ram::1234567890123456:role/airflow"

#: every secret any test here uses; no exception may contain one
_SECRETS: set[str] = {SK, WRONG_SECRET}


def secret(value: str) -> str:
    if value:
        _SECRETS.add(value)
    return value


def assert_clean(exc: BaseException) -> None:
    """No secret or security token in the exception's str, repr or args."""
    texts = [str(exc), repr(exc), *(str(a) for a in exc.args)]
    for text in texts:
        for value in _SECRETS:
            assert value not in text, f"secret leaked into {type(exc).__name__}: {text!r}"


def make_client(creds: Credentials | None = None, **kwargs: Any) -> AlibabaCloudClient:
    kwargs.setdefault("backoff_initial", 0.01)
    kwargs.setdefault("backoff_max", 0.05)
    kwargs.setdefault("timeout", 5.0)
    return AlibabaCloudClient(StaticSource(creds or Credentials(AK, SK)), **kwargs)


def status_call(emu: Emulator, service: str, **ids: Any) -> Call:
    spec = SERVICES[service]
    clean = spec.validate_ids(ids)
    req = spec.build_request(clean)
    return Call(
        endpoint=parse_endpoint(f"{service}_endpoint", emu.url),
        action=spec.action,
        version=spec.version,
        method=req.method,
        path=req.path,
        query=req.query,
        body=req.body,
        content_type=req.content_type,
        signer=spec.signer,
    )


def add_task(emu: Emulator, service: str) -> dict[str, Any]:
    if service == "dlf":
        emu.add_dlf_task("dlf-task-1", ["Running", "Success"])
        return {"async_task_id": "dlf-task-1"}
    if service == "dataworks":
        emu.add_dataworks_job("1234567", ["Running", "Success"])
        return {"job_id": "1234567"}
    if service == "mma":
        emu.add_mma_task(11, 22, ["DOING", "DONE"])
        return {"source_id": 11, "async_task_id": 22}
    emu.add_pds_task("pds-task-1", ["Running", "Succeed"])
    return {"async_task_id": "pds-task-1"}


def task_call(emu: Emulator, service: str) -> Call:
    return status_call(emu, service, **add_task(emu, service))


def unknown_task_call(emu: Emulator, service: str) -> Call:
    ids = {
        "dlf": {"async_task_id": "missing"},
        "dataworks": {"job_id": "404404"},
        "mma": {"source_id": 1, "async_task_id": 404},
        "pds": {"async_task_id": "missing"},
    }[service]
    return status_call(emu, service, **ids)


def sts_call(emu: Emulator) -> Call:
    return Call(
        endpoint=parse_endpoint("sts_endpoint", emu.url), action="GetCallerIdentity", version=STS_VERSION
    )


def run(client: AlibabaCloudClient, call: Call, mode: str) -> Any:
    if mode == "sync":
        return client.send(call)

    async def go() -> Any:
        try:
            return await client.asend(call)
        finally:
            await aclose_shared_client()

    return asyncio.run(go())


def raises(client: AlibabaCloudClient, call: Call, mode: str, cls: type[BaseException]) -> Any:
    with pytest.raises(cls) as info:
        run(client, call, mode)
    assert_clean(info.value)
    return info.value


MODES = ["sync", "async"]

# --------------------------------------------------------------------------------------- basics


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("service", ["dlf", "dataworks", "mma", "pds"])
def test_status_call_round_trip(emulator: Emulator, service: str, mode: str) -> None:
    client = make_client()
    response = run(client, task_call(emulator, service), mode)
    assert response.status == 200
    assert response.request_id
    assert isinstance(response.body, dict)
    assert isinstance(response.headers, httpx.Headers)
    assert emulator.request_count(service) == 1


def test_sts_and_bearer_credentials(emulator: Emulator) -> None:
    sts = emulator.issue_sts_credentials()
    secret(sts["AccessKeySecret"])
    secret(sts["SecurityToken"])
    creds = Credentials(sts["AccessKeyId"], sts["AccessKeySecret"], sts["SecurityToken"])
    for service in ("dlf", "pds"):
        assert make_client(creds).send(task_call(emulator, service)).status == 200
    identity = make_client(creds).send(sts_call(emulator)).body
    assert identity["IdentityType"] == "AssumedRoleUser"
    token = secret("pds-bearer-token-0123456789")
    emulator.add_bearer_token(token)
    assert make_client(Credentials(bearer_token=token)).send(task_call(emulator, "pds")).status == 200


def test_url_encoding() -> None:
    call = Call(
        endpoint=parse_endpoint("x", "http://127.0.0.1:1"),
        action="A",
        version="2020-01-01",
        path="/a b/c",
        query={"b": "x y", "a": "1/2", "z": None},  # type: ignore[dict-item]
    )
    assert AlibabaCloudClient.url(call) == "http://127.0.0.1:1/a%20b/c?a=1%2F2&b=x%20y"
    assert AlibabaCloudClient.url(dataclasses.replace(call, path="", query=None)) == "http://127.0.0.1:1/"


def test_client_headers_are_the_public_signers_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client signs a call it has sent before with the prepared signer: same headers."""
    call = Call(
        endpoint=parse_endpoint("x", "http://127.0.0.1:8080"),
        action="GetJobStatus",
        version="2024-05-18",
        method="GET",
        path="/",
        query={"JobId": "j 1*~"},
    )
    creds = Credentials("AK", "SK", "token")
    client = AlibabaCloudClient(StaticSource(creds))
    monkeypatch.setattr(client_module, "time", ModuleProxy(time, time=lambda: 1764172615.25))
    first = client._headers(call, creds)
    second = client._headers(call, creds)
    for headers in (first, second):
        expected = signing.acs3_headers(
            method="GET",
            host="127.0.0.1:8080",
            pathname="/",
            query={"JobId": "j 1*~"},
            action="GetJobStatus",
            version="2024-05-18",
            body=b"",
            content_type=None,
            access_key_id="AK",
            access_key_secret="SK",
            security_token="token",
            date=signing.format_acs_date(1764172615.25),
            nonce=headers["x-acs-signature-nonce"],
        )
        expected.update({"accept": "application/json", "user-agent": client_module.default_user_agent()})
        assert headers == expected
    assert first["x-acs-signature-nonce"] != second["x-acs-signature-nonce"]


# ----------------------------------------------------------------------------- the fault matrix

# kind -> (service, exception, http_status, code, retried by the client)
FAULTS: dict[str, tuple[str, type[AlibabaCloudError], int | None, str | None, bool]] = {
    "503": ("dlf", ServiceError, 503, "ServiceUnavailable", True),
    "500": ("mma", ServiceError, 500, "InternalError", True),
    "throttling": ("dataworks", ThrottledError, 400, "Throttling.User", True),
    "throttling_retry_after": ("dlf", ThrottledError, 400, "Throttling.User", True),
    "pds_gateway": ("pds", ServiceError, 504, "D504TO", True),
    "drop": ("dlf", TransportError, None, None, True),
    "slow": ("dataworks", TransportError, None, None, True),
    "html": ("mma", ServiceError, 502, None, True),
    "malformed_json": ("dlf", BadResponseError, 200, None, False),
    "truncated_json": ("pds", BadResponseError, 200, None, False),
}


@pytest.fixture
def slow(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setattr(emulator, "slow_seconds", 1.0)
    return emulator


def fault_client(kind: str, **kwargs: Any) -> AlibabaCloudClient:
    if kind == "slow":
        kwargs.setdefault("timeout", 0.5)
    return make_client(**kwargs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(FAULTS))
def test_fault_then_success_or_fail_fast(slow: Emulator, kind: str, mode: str) -> None:
    emulator = slow
    service, cls, _, _, retried = FAULTS[kind]
    call = task_call(emulator, service)
    emulator.inject_fault(kind, count=1, service=service)
    client = fault_client(kind, max_retries=3)
    if retried:
        response = run(client, call, mode)
        assert response.status == 200
        assert emulator.request_count(service) == 2
    else:
        err = raises(client, call, mode, cls)
        assert emulator.request_count(service) == 1  # not retried by the client ...
        assert err.retryable  # ... but transient for the trigger, which polls again later
        assert is_transient(err)
    assert emulator.fault_counts == {kind: 1}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(FAULTS))
def test_fault_without_retries_raises_mapped_error(slow: Emulator, kind: str, mode: str) -> None:
    emulator = slow
    service, cls, status, code, _ = FAULTS[kind]
    call = task_call(emulator, service)
    emulator.inject_fault(kind, count=1, service=service)
    err = raises(fault_client(kind, max_retries=0), call, mode, cls)
    assert type(err) is cls
    assert emulator.request_count(service) == 1
    assert is_transient(err)
    if cls is TransportError:
        assert call.action in str(err)
        assert ("Timeout" if kind == "slow" else "RemoteProtocolError") in str(err)
        return
    assert err.http_status == status
    assert err.request_id
    assert err.request_id in str(err)
    if isinstance(err, ApiError):
        assert err.code == code
        if code:
            assert code in str(err)
    if kind == "html":
        assert "text/html" in str(err)
        assert "502 Bad Gateway" in str(err)
    if kind == "throttling_retry_after":
        assert isinstance(err, ApiError)
        assert err.retry_after == pytest.approx(0.2)


@pytest.mark.parametrize("mode", MODES)
def test_fault_exhausts_retries(emulator: Emulator, mode: str) -> None:
    call = task_call(emulator, "dlf")
    emulator.inject_fault("503", count=10, service="dlf")
    raises(make_client(max_retries=2), call, mode, ServiceError)
    assert emulator.request_count("dlf") == 3


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_is_honoured(emulator: Emulator, mode: str) -> None:
    call = task_call(emulator, "dlf")
    client = make_client(max_retries=3)
    waits: list[float] = []
    real_wait = client._wait

    def recording_wait(retry_state: tenacity.RetryCallState) -> float:
        waits.append(real_wait(retry_state))
        return waits[-1]

    client._wait = recording_wait  # type: ignore[method-assign]
    emulator.inject_fault("throttling_retry_after", count=1, service="dlf")
    emulator.inject_fault("throttling", count=1, service="dlf")
    started = time.monotonic()
    assert run(client, call, mode).status == 200
    elapsed = time.monotonic() - started
    assert emulator.request_count("dlf") == 3
    assert len(waits) == 2
    assert waits[0] == pytest.approx(0.2)  # x-acs-retry-after: 200 (milliseconds)
    assert waits[1] <= 0.05  # plain throttling: the client's own (capped) backoff
    assert elapsed >= 0.15


# ---------------------------------------------------------------------------------- fail fast


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("service", ["dlf", "dataworks", "mma", "pds"])
def test_wrong_secret_fails_fast_with_string_to_sign(emulator: Emulator, service: str, mode: str) -> None:
    call = task_call(emulator, service)
    err = raises(make_client(Credentials(AK, WRONG_SECRET), max_retries=3), call, mode, AuthenticationError)
    assert emulator.request_count(service) == 1
    assert err.code == "SignatureDoesNotMatch"
    assert err.http_status == (403 if service == "pds" else 400)
    assert err.request_id
    assert err.string_to_sign
    assert err.string_to_sign in str(err)
    assert "AccessKey Secret" in str(err)
    if service != "pds":
        assert err.string_to_sign.startswith("ACS3-HMAC-SHA256\n")
    else:
        assert err.string_to_sign.startswith("POST\n")
    assert not err.retryable


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("service", ["dlf", "pds"])
def test_unknown_key_fails_fast(emulator: Emulator, service: str, mode: str) -> None:
    call = task_call(emulator, service)
    err = raises(
        make_client(Credentials("LTAIunknownKey000", SK), max_retries=3), call, mode, AuthenticationError
    )
    assert emulator.request_count(service) == 1
    assert err.code == "InvalidAccessKeyId.NotFound"
    assert err.http_status == 404
    assert err.request_id


@pytest.mark.parametrize("mode", MODES)
def test_revoked_key_fails_fast(emulator: Emulator, mode: str) -> None:
    call = task_call(emulator, "dataworks")
    client = make_client(max_retries=3)
    assert run(client, call, mode).status == 200
    emulator.revoke_key(AK)
    err = raises(client, call, mode, AuthenticationError)
    assert err.code == "InvalidAccessKeyId.NotFound"
    assert emulator.request_count("dataworks") == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("service", "status", "code"),
    [("dataworks", 404, "InvalidJob.NotFound"), ("mma", 404, "NotFound"), ("pds", 404, "NotFound.AsyncTask")],
)
def test_unknown_task_is_not_found(
    emulator: Emulator, service: str, status: int, code: str, mode: str
) -> None:
    err = raises(make_client(max_retries=3), unknown_task_call(emulator, service), mode, NotFoundError)
    assert emulator.request_count(service) == 1
    assert (err.http_status, err.code) == (status, code)
    assert err.request_id
    assert not is_transient(err)


@pytest.mark.parametrize("mode", MODES)
def test_dlf_error_inside_http_200(emulator: Emulator, mode: str) -> None:
    err = raises(make_client(max_retries=3), unknown_task_call(emulator, "dlf"), mode, ApiError)
    assert emulator.request_count("dlf") == 1
    assert err.http_status == 200
    assert err.code == "NoSuchObject"
    assert "does not exist" in (err.message or "")
    assert err.request_id
    assert not is_transient(err)


def test_bearer_token_on_a_pop_api_is_refused_before_sending(emulator: Emulator) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_client(Credentials(bearer_token=secret("bearer-for-dlf-000000"))).send(
            task_call(emulator, "dlf")
        )
    assert info.value.field == "auth_type"
    assert_clean(info.value)
    assert emulator.request_count() == 0


@pytest.mark.parametrize("mode", MODES)
def test_unknown_bearer_token(emulator: Emulator, mode: str) -> None:
    token = secret("unknown-bearer-token-000000")
    err = raises(
        make_client(Credentials(bearer_token=token)), task_call(emulator, "pds"), mode, AuthenticationError
    )
    assert (err.http_status, err.code) == (401, "AccessTokenInvalid")
    assert emulator.request_count("pds") == 1


@pytest.mark.parametrize("mode", MODES)
def test_expired_static_sts_fails_fast(emulator: Emulator, mode: str) -> None:
    sts = emulator.issue_sts_credentials(duration_seconds=1)
    creds = Credentials(sts["AccessKeyId"], secret(sts["AccessKeySecret"]), secret(sts["SecurityToken"]))
    emulator.clock_offset = 5  # the emulator's clock moves past the key's expiry
    err = raises(make_client(creds, max_retries=3), task_call(emulator, "dlf"), mode, AuthenticationError)
    assert err.code == "InvalidSecurityToken.Expired"
    assert emulator.request_count("dlf") == 1  # a static source cannot refresh: no retry


@pytest.mark.parametrize("mode", MODES)
def test_mismatched_security_token(emulator: Emulator, mode: str) -> None:
    a = emulator.issue_sts_credentials()
    b = emulator.issue_sts_credentials()
    creds = Credentials(a["AccessKeyId"], secret(a["AccessKeySecret"]), secret(b["SecurityToken"]))
    secret(a["SecurityToken"])
    err = raises(make_client(creds, max_retries=3), task_call(emulator, "dlf"), mode, AuthenticationError)
    assert err.code == "InvalidSecurityToken.MismatchWithAccessKey"
    assert emulator.request_count("dlf") == 1


def test_pds_signature_error_with_sts_credentials_hides_the_token(emulator: Emulator) -> None:
    sts = emulator.issue_sts_credentials()
    token = secret(sts["SecurityToken"])
    secret(sts["AccessKeySecret"])
    creds = Credentials(sts["AccessKeyId"], WRONG_SECRET, token)
    with pytest.raises(AuthenticationError) as info:
        make_client(creds, max_retries=0).send(task_call(emulator, "pds"))
    assert info.value.code == "SignatureDoesNotMatch"
    assert token not in str(info.value)


# -------------------------------------------------------------------------------------- clock skew


def _offset_in(text: str) -> int:
    match = re.search(r"clock is ([+-]\d+) s", text)
    assert match, text
    return int(match.group(1))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("service", "code"), [("dlf", "InvalidTimeStamp.Expired"), ("pds", "RequestTimeTooSkewed")]
)
@pytest.mark.parametrize("offset", [3600, -3600])
def test_clock_skew_is_explained(emulator: Emulator, service: str, code: str, offset: int, mode: str) -> None:
    call = task_call(emulator, service)
    emulator.clock_offset = offset
    err = raises(make_client(max_retries=3), call, mode, AuthenticationError)
    assert err.code == code
    assert emulator.request_count(service) == 1  # not retried without correct_clock_skew
    assert abs(_offset_in(str(err)) - offset) <= 2
    assert abs(err.clock_offset - offset) <= 2  # type: ignore[attr-defined]
    assert "correct_clock_skew" in str(err)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("service", ["dlf", "mma", "pds"])
def test_clock_skew_corrected(emulator: Emulator, service: str, mode: str) -> None:
    call = task_call(emulator, service)
    emulator.clock_offset = 3600
    client = make_client(max_retries=1, correct_clock_skew=True)
    assert run(client, call, mode).status == 200
    assert emulator.request_count(service) == 2
    assert abs(client.clock_offset - 3600) <= 2
    for n in range(3):
        assert run(client, call, mode).status == 200
        assert emulator.request_count(service) == 3 + n  # one request each from now on


def test_clock_skew_correction_follows_a_fixed_clock(emulator: Emulator) -> None:
    call = task_call(emulator, "dlf")
    client = make_client(max_retries=1, correct_clock_skew=True)
    emulator.clock_offset = 3600
    assert client.send(call).status == 200
    emulator.clock_offset = 0  # the local clock got fixed (or the server's did)
    assert client.send(call).status == 200
    assert abs(client.clock_offset) <= 2


# ------------------------------------------------------------------------------------- nonces


class _FixedNonce:
    """Stands in for the client's ``signature_nonce``: the same nonce for the first ``n`` calls."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.fresh = client_module.signature_nonce  # the real one, before it is patched
        self.fixed = self.fresh()

    def __call__(self) -> str:
        if self.n > 0:
            self.n -= 1
            return self.fixed
        return self.fresh()


def test_signature_nonces_are_fresh_random_hex() -> None:
    nonces = {client_module.signature_nonce() for _ in range(1000)}
    assert len(nonces) == 1000
    assert all(len(n) == 32 and int(n, 16) >= 0 for n in nonces)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("service", ["dataworks", "pds"])
def test_signature_nonce_used_is_retried(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, service: str, mode: str
) -> None:
    call = task_call(emulator, service)
    monkeypatch.setattr(client_module, "signature_nonce", _FixedNonce(2))
    client = make_client(max_retries=3)
    assert run(client, call, mode).status == 200
    assert run(client, call, mode).status == 200  # nonce reused -> SignatureNonceUsed -> fresh nonce
    assert emulator.request_count(service) == 3


def test_signature_nonce_used_without_retries(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    call = task_call(emulator, "dlf")
    monkeypatch.setattr(client_module, "signature_nonce", _FixedNonce(2))
    client = make_client(max_retries=0)
    client.send(call)
    with pytest.raises(ApiError) as info:
        client.send(call)
    assert info.value.code == "SignatureNonceUsed"
    assert info.value.retryable
    assert_clean(info.value)


# -------------------------------------------------------------------------------------- body cap


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("service", ["dlf", "pds"])
def test_body_size_cap(emulator: Emulator, service: str, mode: str) -> None:
    err = raises(
        make_client(max_retries=3, max_body_bytes=50), task_call(emulator, service), mode, BadResponseError
    )
    assert "larger than 50 bytes" in str(err)
    assert err.http_status == 200
    assert err.request_id
    assert emulator.request_count(service) == 1


def test_body_cap_not_hit_by_a_normal_body(emulator: Emulator) -> None:
    assert make_client(max_body_bytes=4096).send(task_call(emulator, "dlf")).status == 200


# ----------------------------------------------------------------------- refresh of STS credentials


def _role_source(emu: Emulator) -> AssumeRoleSource:
    settings = parse_connection(
        login=AK,
        password=SK,
        extra={
            "region_id": "cn-hangzhou",
            "auth_type": "ram_role_arn",
            "role_arn": ROLE_ARN,
            "max_retries": 0,
        },
    )
    return AssumeRoleSource(settings, parse_endpoint("sts_endpoint", emu.url))


def _pretend_fresh(source: AssumeRoleSource) -> None:
    """Make the cached STS key look valid locally for an hour (as with a drifting clock)."""
    cached = source._cached
    assert cached is not None
    secret(cached.access_key_secret or "")
    secret(cached.security_token or "")  # both are minted by the emulator, never empty
    source._cached = dataclasses.replace(cached, expiration=time.time() + 3600)


@pytest.mark.parametrize("mode", MODES)
def test_expired_sts_credentials_are_refreshed_and_retried_once(mode: str) -> None:
    with Emulator(sts_ttl_seconds=1) as emu:
        source = _role_source(emu)
        client = AlibabaCloudClient(source, max_retries=1, backoff_initial=0.01, backoff_max=0.05)
        call = task_call(emu, "dlf")
        assert run(client, call, mode).status == 200
        assert (emu.request_count("sts"), emu.request_count("dlf")) == (1, 1)
        first = source._cached
        assert first is not None
        _pretend_fresh(source)
        emu.clock_offset = 3  # the server now considers the 1-second key expired
        assert run(client, call, mode).status == 200
        assert emu.request_count("sts") == 2  # one refresh ...
        assert emu.request_count("dlf") == 3  # ... and one retry
        assert source._cached is not None
        assert source._cached.access_key_id != first.access_key_id


class _AlwaysExpiredSource(_CachingSource):
    """A refreshing source that keeps handing out the same (server-side expired) STS key."""

    name = "always_expired"

    def __init__(self, creds: Credentials) -> None:
        super().__init__()
        self.creds = creds
        self.fetches = 0

    def _fetch(self) -> Credentials:
        self.fetches += 1
        return self.creds

    async def _afetch(self) -> Credentials:
        return self._fetch()


@pytest.mark.parametrize("mode", MODES)
def test_refresh_is_attempted_only_once(emulator: Emulator, mode: str) -> None:
    sts = emulator.issue_sts_credentials(duration_seconds=1)
    creds = Credentials(sts["AccessKeyId"], secret(sts["AccessKeySecret"]), secret(sts["SecurityToken"]))
    emulator.clock_offset = 5
    source = _AlwaysExpiredSource(creds)
    client = AlibabaCloudClient(source, max_retries=3, backoff_initial=0.01, backoff_max=0.05)
    err = raises(client, task_call(emulator, "dlf"), mode, AuthenticationError)
    assert err.code == "InvalidSecurityToken.Expired"
    assert source.fetches == 2
    assert emulator.request_count("dlf") == 2


# The corrective retry (fresh STS credentials, the server's clock) comes on top of max_retries.


def test_refresh_retry_is_not_consumed_by_max_retries_0() -> None:
    with Emulator(sts_ttl_seconds=1) as emu:
        source = _role_source(emu)
        client = AlibabaCloudClient(source, max_retries=0)
        call = task_call(emu, "dlf")
        assert client.send(call).status == 200
        _pretend_fresh(source)
        emu.clock_offset = 3
        assert client.send(call).status == 200


def test_clock_correction_retry_is_not_consumed_by_max_retries_0(emulator: Emulator) -> None:
    call = task_call(emulator, "dlf")
    emulator.clock_offset = 3600
    client = make_client(max_retries=0, correct_clock_skew=True)
    assert client.send(call).status == 200


def test_unknown_temporary_key_is_refreshed(emulator: Emulator) -> None:
    source = _role_source(emulator)
    client = AlibabaCloudClient(source, max_retries=0)
    call = task_call(emulator, "dlf")
    assert client.send(call).status == 200
    emulator.reset()  # forgets every STS key it minted
    call = task_call(emulator, "dlf")
    assert client.send(call).status == 200


# ------------------------------------------------------------------------------ shared HTTP pools


def test_sync_client_is_shared() -> None:
    a = shared_sync_client()
    assert shared_sync_client() is a
    assert not a.is_closed


async def test_async_client_is_shared_per_loop(emulator: Emulator, aclose_pool: None) -> None:
    emulator.add_dlf_task("t-many", ["Running"])
    call = status_call(emulator, "dlf", async_task_id="t-many")
    client = make_client(max_retries=0, timeout=30)
    shared = shared_async_client()
    transport = async_sender()  # the lean transport the hot path calls
    assert transport.max_connections == 64
    server_state = emulator._server.server_state  # type: ignore[union-attr]
    baseline = len(server_state.connections)  # e.g. the shared sync client's keep-alive connection
    peak = {"server": 0, "client": 0}
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            peak["server"] = max(peak["server"], len(server_state.connections) - baseline)
            peak["client"] = max(peak["client"], transport.connections)
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    try:
        responses = await asyncio.gather(*(client.asend(call) for _ in range(200)))
    finally:
        done.set()
        await sampler
    assert all(r.status == 200 for r in responses)
    assert emulator.request_count("dlf") == 200
    assert shared_async_client() is shared
    assert 1 < peak["client"] <= 64
    assert 1 < peak["server"] <= 64
    assert transport.connections <= 64


def test_each_loop_gets_its_own_async_client() -> None:
    async def get() -> httpx.AsyncClient:
        client = shared_async_client()
        assert shared_async_client() is client
        await aclose_shared_client()
        return client

    first = asyncio.run(get())
    second = asyncio.run(get())
    assert first is not second
    assert first.is_closed
    assert second.is_closed


async def test_closed_shared_client_is_replaced(aclose_pool: None) -> None:
    first = shared_async_client()
    await first.aclose()
    second = shared_async_client()
    assert second is not first
    assert not second.is_closed


def test_loop_client_is_closed_when_the_loop_ends() -> None:
    seen: list[Any] = []

    async def go() -> None:
        client = shared_async_client()
        seen.append(async_sender())
        assert not client.is_closed

    asyncio.run(go())
    (transport,) = seen
    assert transport._closed


# ----------------------------------------------------------------------------- secrets, once more


def test_client_repr_hides_secrets() -> None:
    token = secret("CAIS-repr-token-000000000")
    client = make_client(Credentials(AK, SK, token))
    for text in (repr(client), str(client)):
        assert SK not in text
        assert token not in text


def test_transport_error_names_no_secret(emulator: Emulator) -> None:
    """Connection refused on a loopback port nobody listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secret("CAIS-refused-token-000000")
    call = dataclasses.replace(sts_call(emulator), endpoint=parse_endpoint("x", f"http://127.0.0.1:{port}"))
    client = make_client(Credentials(AK, SK, token), max_retries=1)
    with pytest.raises(TransportError) as info:
        client.send(call)
    assert "ConnectError" in str(info.value)
    assert_clean(info.value)
