"""Credential sources, against the local emulator standing in for STS and a credentials URI.

Every source is exercised over real HTTP on 127.0.0.1: AssumeRole / AssumeRoleWithOIDC are
counted on the emulator, refreshes are provoked with an emulator whose STS keys live 2 seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_aliyun_tasks import credentials as credentials_module
from airflow_aliyun_tasks.client import AlibabaCloudClient, Call
from airflow_aliyun_tasks.config import ENDPOINT_EXTRAS, ConnectionSettings, parse_connection, parse_endpoint
from airflow_aliyun_tasks.credential_sources import (
    STS_VERSION,
    AssumeRoleSource,
    LibrarySource,
    OidcRoleSource,
    build_credential_source,
    parse_sts_credentials,
)
from airflow_aliyun_tasks.credentials import Credentials, CredentialSource, StaticSource
from airflow_aliyun_tasks.errors import (
    AlibabaCloudError,
    ApiError,
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
)
from airflow_aliyun_tasks.testing import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, Emulator

AK, SK = DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
ROLE_ARN = "acs:ram::1234567890123456:role/airflow"
OIDC_ARN = "acs:ram::1234567890123456:oidc-provider/ack-rrsa"
# header.claims.signature, claims = {"sub": "system:serviceaccount:airflow:worker", "iss": "https://oidc", "aud": "sts"}
OIDC_TOKEN = (
    "eyJhbGciOiJSUzI1NiJ9."
    "eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YWlyZmxvdzp3b3JrZXIiLCJpc3MiOiJodHRwczovL29pZGMiLCJhdWQiOiJzdHMifQ."
    "c2lnbmF0dXJl"
)


def settings_for(url: str, **extra: Any) -> ConnectionSettings:
    base: dict[str, Any] = {
        "region_id": "cn-hangzhou",
        "auth_type": "ram_role_arn",
        "role_arn": ROLE_ARN,
        "max_retries": 0,
        "timeout": 5,
    }
    for key in ENDPOINT_EXTRAS:
        base[key] = url
    base.update(extra)
    login = base.pop("login", AK)
    password = base.pop("password", SK)
    return parse_connection(
        login=login, password=password, extra={k: v for k, v in base.items() if v is not None}
    )


def assume_role_source(emu: Emulator, **extra: Any) -> AssumeRoleSource:
    settings = settings_for(emu.url, **extra)
    source = build_credential_source(settings, parse_endpoint("sts_endpoint", emu.url))
    assert isinstance(source, AssumeRoleSource)
    return source


def caller_identity(emu: Emulator, creds: Credentials) -> dict[str, Any]:
    client = AlibabaCloudClient(StaticSource(creds), max_retries=0)
    call = Call(
        endpoint=parse_endpoint("sts_endpoint", emu.url), action="GetCallerIdentity", version=STS_VERSION
    )
    return client.send(call).body


def assert_hides(text: str, *secrets: str | None) -> None:
    for secret in secrets:
        if secret:
            assert secret not in text, f"secret leaked into {text!r}"


def assert_sts(creds: Credentials) -> None:
    assert creds.access_key_id
    assert creds.access_key_id.startswith("STS.")
    assert creds.access_key_secret
    assert creds.security_token
    assert creds.security_token.startswith("CAIS")


# --------------------------------------------------------------------------------------------- reprs


@pytest.mark.parametrize(
    ("creds", "kind"),
    [
        (Credentials("LTAIkeyid", "s3cr3t-access-key-secret"), "access_key"),
        (
            Credentials(
                "STS.keyid", "s3cr3t-access-key-secret", "CAIS-s3cr3t-security-token", expiration=1e10
            ),
            "sts",
        ),
        (Credentials(bearer_token="s3cr3t-bearer-token-value"), "bearer"),
    ],
)
def test_credentials_repr_hides_secrets(creds: Credentials, kind: str) -> None:
    for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}"):
        assert f"kind={kind!r}" in text
        assert "***" in text
        assert_hides(text, creds.access_key_secret, creds.security_token, creds.bearer_token)
    if creds.access_key_id:
        assert creds.access_key_id in repr(creds)


def test_credentials_are_frozen() -> None:
    creds = Credentials("a", "b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        creds.access_key_secret = "c"  # type: ignore[misc]


def test_source_reprs_hide_secrets(emulator: Emulator, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(OIDC_TOKEN)
    secret_creds = Credentials(AK, SK, "CAIS-static-token-s3cr3t")
    sources: list[CredentialSource] = [
        StaticSource(secret_creds, name="sts"),
        StaticSource(Credentials(bearer_token="bearer-s3cr3t-token"), name="bearer"),
        assume_role_source(emulator, security_token="CAIS-base-token-s3cr3t"),
        build_credential_source(
            settings_for(
                emulator.url,
                login=None,
                password=None,
                auth_type="oidc_role_arn",
                oidc_provider_arn=OIDC_ARN,
                oidc_token_file_path=str(token_file),
            ),
            parse_endpoint("sts_endpoint", emulator.url),
        ),
        LibrarySource(
            settings_for(
                emulator.url,
                login=None,
                password=None,
                auth_type="credentials_uri",
                role_arn=None,
                credentials_uri=f"{emulator.url}/_emulator/credentials",
            )
        ),
    ]
    for source in sources:
        text = repr(source)
        assert text.startswith(type(source).__name__)
        assert_hides(
            text, SK, "CAIS-static-token-s3cr3t", "bearer-s3cr3t-token", "CAIS-base-token-s3cr3t", OIDC_TOKEN
        )
        client_text = repr(AlibabaCloudClient(source))
        assert_hides(
            client_text, SK, "CAIS-static-token-s3cr3t", "bearer-s3cr3t-token", "CAIS-base-token-s3cr3t"
        )
    assert repr(sources[0]) == "StaticSource(name='sts')"
    assert repr(sources[2]) == "AssumeRoleSource(name='ram_role_arn')"
    assert repr(sources[3]) == "OidcRoleSource(name='oidc_role_arn')"
    assert repr(sources[4]) == "LibrarySource(name='credentials_uri')"


# --------------------------------------------------------------------------------------- static


async def test_static_source() -> None:
    creds = Credentials(AK, SK)
    source = StaticSource(creds)
    assert source.name == "access_key"
    assert source.get() is creds
    assert await source.aget() is creds
    assert source.refreshable is False
    source.invalidate()  # a no-op for static credentials
    assert source.get() is creds


def test_base_source_is_abstract() -> None:
    source = CredentialSource()
    with pytest.raises(NotImplementedError):
        source.get()
    with pytest.raises(NotImplementedError):
        asyncio.run(source.aget())


@pytest.mark.parametrize(
    ("auth_type", "extra", "cls", "name"),
    [
        ("access_key", {}, StaticSource, "access_key"),
        ("sts", {"security_token": "CAIS-tok"}, StaticSource, "sts"),
        ("bearer", {"bearer_token": "bearer-tok"}, StaticSource, "bearer"),
        ("ram_role_arn", {"role_arn": ROLE_ARN}, AssumeRoleSource, "ram_role_arn"),
        (
            "oidc_role_arn",
            {
                "role_arn": ROLE_ARN,
                "oidc_provider_arn": OIDC_ARN,
                "oidc_token_file_path": "/nonexistent/token",
            },
            OidcRoleSource,
            "oidc_role_arn",
        ),
        (
            "credentials_uri",
            {"credentials_uri": "http://127.0.0.1:9/creds"},
            LibrarySource,
            "credentials_uri",
        ),
    ],
)
def test_build_credential_source(
    emulator: Emulator, auth_type: str, extra: dict[str, Any], cls: type, name: str
) -> None:
    settings = settings_for(emulator.url, **{"auth_type": auth_type, "role_arn": None, **extra})
    source = build_credential_source(settings, parse_endpoint("sts_endpoint", emulator.url))
    assert type(source) is cls
    assert source.name == name
    assert source.refreshable is (cls is not StaticSource)
    assert emulator.request_count("sts") == 0  # building a source never calls STS


def test_static_sts_and_bearer_credentials(emulator: Emulator) -> None:
    sts = settings_for(emulator.url, auth_type="sts", role_arn=None, security_token="CAIS-tok")
    creds = build_credential_source(sts, parse_endpoint("x", emulator.url)).get()
    assert (creds.access_key_id, creds.access_key_secret, creds.security_token) == (AK, SK, "CAIS-tok")
    bearer = settings_for(
        emulator.url, auth_type="bearer", role_arn=None, bearer_token="bearer-tok", login=None, password=None
    )
    creds = build_credential_source(bearer, parse_endpoint("x", emulator.url)).get()
    assert creds.bearer_token == "bearer-tok"
    assert creds.access_key_id is None


# ---------------------------------------------------------------------------------- AssumeRole


def test_assume_role_cached_until_near_expiry(emulator: Emulator) -> None:
    source = assume_role_source(emulator)
    first = source.get()
    assert_sts(first)
    assert first.expiration is not None
    assert 3000 < first.expiration - time.time() <= 3601
    for _ in range(5):
        assert source.get() is first
    assert emulator.request_count("sts") == 1
    identity = caller_identity(emulator, first)
    assert identity["IdentityType"] == "AssumedRoleUser"
    assert identity["Arn"] == "acs:ram::1234567890123456:assumed-role/airflow/airflow-aliyun-tasks"
    # invalidate() forgets the cached value: the next get() calls AssumeRole again
    source.invalidate()
    second = source.get()
    assert second.access_key_id != first.access_key_id
    assert emulator.request_count("sts") == 3  # AssumeRole, GetCallerIdentity, AssumeRole


async def test_assume_role_cached_async(emulator: Emulator, aclose_pool: None) -> None:
    source = assume_role_source(emulator)
    first = await source.aget()
    assert_sts(first)
    for _ in range(5):
        assert await source.aget() is first
    assert source.get() is first  # the sync and async paths share the cache
    assert emulator.request_count("sts") == 1


def test_assume_role_session_name_and_duration(emulator: Emulator) -> None:
    source = assume_role_source(emulator, role_session_name="etl.nightly", role_session_expiration=900)
    creds = source.get()
    assert creds.expiration is not None
    assert 850 < creds.expiration - time.time() <= 901
    identity = caller_identity(emulator, creds)
    assert identity["Arn"].endswith(":assumed-role/airflow/etl.nightly")


def test_assume_role_with_sts_base_credentials(emulator: Emulator) -> None:
    base = emulator.issue_sts_credentials()
    source = assume_role_source(
        emulator,
        login=base["AccessKeyId"],
        password=base["AccessKeySecret"],
        security_token=base["SecurityToken"],
    )
    creds = source.get()
    assert_sts(creds)
    assert creds.access_key_id != base["AccessKeyId"]


def _sleep_until_stale(creds: Credentials, fetched_before: float) -> None:
    assert creds.expiration is not None
    lifetime = creds.expiration - fetched_before
    stale_at = creds.expiration - credentials_module._refresh_margin(lifetime)
    time.sleep(max(0.0, stale_at - time.time()) + 0.05)


def test_assume_role_refreshed_after_expiry() -> None:
    with Emulator(sts_ttl_seconds=2) as emu:
        source = assume_role_source(emu)
        started = time.time()
        first = source.get()
        assert first.expiration is not None
        assert first.expiration - time.time() <= 2.0
        assert source.get() is first
        assert emu.request_count("sts") == 1
        _sleep_until_stale(first, started)
        second = source.get()
        assert second.access_key_id != first.access_key_id
        assert emu.request_count("sts") == 2
        assert source.get() is second
        assert caller_identity(emu, second)["IdentityType"] == "AssumedRoleUser"


async def test_assume_role_refreshed_after_expiry_async(aclose_pool: None) -> None:
    with Emulator(sts_ttl_seconds=2) as emu:
        source = assume_role_source(emu)
        started = time.time()
        first = await source.aget()
        assert await source.aget() is first
        assert emu.request_count("sts") == 1
        await asyncio.sleep(0)
        assert first.expiration is not None
        lifetime = first.expiration - started
        stale_at = first.expiration - credentials_module._refresh_margin(lifetime)
        await asyncio.sleep(max(0.0, stale_at - time.time()) + 0.05)
        second = await source.aget()
        assert second.access_key_id != first.access_key_id
        assert emu.request_count("sts") == 2
        assert await source.aget() is second


async def test_assume_role_single_flight_async(emulator: Emulator, aclose_pool: None) -> None:
    source = assume_role_source(emulator)
    results = await asyncio.gather(*(source.aget() for _ in range(50)))
    assert emulator.request_count("sts") == 1
    assert len({id(c) for c in results}) == 1
    assert_sts(results[0])


def test_assume_role_single_flight_threads(emulator: Emulator) -> None:
    source = assume_role_source(emulator)
    barrier = threading.Barrier(20)
    results: list[Credentials] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        creds = source.get()
        with lock:
            results.append(creds)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 20
    assert len({id(c) for c in results}) == 1
    assert emulator.request_count("sts") == 1


def test_assume_role_rejected_base_key(emulator: Emulator) -> None:
    source = assume_role_source(emulator, password="WrongSecret-0000000000")
    with pytest.raises(AuthenticationError) as info:
        source.get()
    assert info.value.code == "SignatureDoesNotMatch"
    assert_hides(str(info.value) + repr(info.value), "WrongSecret-0000000000", SK)
    # a failure is not cached: the next get() asks STS again
    with pytest.raises(AuthenticationError):
        source.get()
    assert emulator.request_count("sts") == 2


def test_assume_role_bad_policy(emulator: Emulator) -> None:
    source = assume_role_source(emulator, policy="{not json")
    with pytest.raises(ApiError) as info:
        source.get()
    assert info.value.code == "InvalidParameter.PolicyGrammar"
    assert info.value.http_status == 400
    assert info.value.request_id


# ------------------------------------------------------------------------------------------- OIDC


def oidc_source(emu: Emulator, token_file: Path) -> OidcRoleSource:
    settings = settings_for(
        emu.url,
        login=None,
        password=None,
        auth_type="oidc_role_arn",
        oidc_provider_arn=OIDC_ARN,
        oidc_token_file_path=str(token_file),
        role_session_name="oidc-session",
    )
    source = build_credential_source(settings, parse_endpoint("sts_endpoint", emu.url))
    assert isinstance(source, OidcRoleSource)
    return source


def test_oidc_role_source(emulator: Emulator, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(OIDC_TOKEN + "\n")
    source = oidc_source(emulator, token_file)
    creds = source.get()
    assert_sts(creds)
    assert source.get() is creds
    assert emulator.request_count("sts") == 1
    identity = caller_identity(emulator, creds)
    assert identity["Arn"].endswith(":assumed-role/airflow/oidc-session")
    # the token file is read afresh at every refresh, not once
    token_file.unlink()
    assert source.get() is creds  # still cached
    source.invalidate()
    with pytest.raises(ConfigurationError) as info:
        source.get()
    assert info.value.field == "oidc_token_file_path"
    assert_hides(str(info.value), OIDC_TOKEN)


async def test_oidc_role_source_async(emulator: Emulator, tmp_path: Path, aclose_pool: None) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(OIDC_TOKEN)
    source = oidc_source(emulator, token_file)
    results = await asyncio.gather(*(source.aget() for _ in range(10)))
    assert len({id(c) for c in results}) == 1
    assert_sts(results[0])
    assert emulator.request_count("sts") == 1


@pytest.mark.parametrize("content", [None, "", "  \n"])
def test_oidc_token_file_missing_or_empty(emulator: Emulator, tmp_path: Path, content: str | None) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    source = oidc_source(emulator, token_file)
    with pytest.raises(ConfigurationError) as info:
        source.get()
    assert info.value.field == "oidc_token_file_path"
    assert emulator.request_count("sts") == 0


# ------------------------------------------------------------------------------ credentials_uri


def uri_source(uri: str) -> LibrarySource:
    settings = settings_for(
        "http://127.0.0.1:9",
        login=None,
        password=None,
        auth_type="credentials_uri",
        role_arn=None,
        credentials_uri=uri,
    )
    source = build_credential_source(settings, parse_endpoint("sts_endpoint", "http://127.0.0.1:9"))
    assert isinstance(source, LibrarySource)
    return source


def test_credentials_uri_source(emulator: Emulator) -> None:
    source = uri_source(f"{emulator.url}/_emulator/credentials")
    assert source.refreshable is True
    creds = source.get()
    assert_sts(creds)
    assert source.get().access_key_id == creds.access_key_id  # the library caches until near expiry
    identity = caller_identity(emulator, creds)
    assert identity["IdentityType"] == "AssumedRoleUser"


async def test_credentials_uri_source_async(emulator: Emulator, aclose_pool: None) -> None:
    source = uri_source(f"{emulator.url}/_emulator/credentials")
    creds = await source.aget()
    assert_sts(creds)
    assert (await source.aget()).access_key_id == creds.access_key_id
    identity = await asyncio.to_thread(caller_identity, emulator, creds)
    assert identity["IdentityType"] == "AssumedRoleUser"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_credentials_uri_unreachable() -> None:
    source = uri_source(f"http://127.0.0.1:{_closed_port()}/creds")
    with pytest.raises(AuthenticationError) as info:
        source.get()
    assert info.value.code == "CredentialsUnavailable"
    assert "credentials_uri" in str(info.value)
    assert not info.value.retryable


async def test_credentials_uri_unreachable_async() -> None:
    source = uri_source(f"http://127.0.0.1:{_closed_port()}/creds")
    with pytest.raises(AuthenticationError) as info:
        await source.aget()
    assert info.value.code == "CredentialsUnavailable"


LEAKY_SECRET = "LeakySecretValue-0123456789"
LEAKY_TOKEN = "CAIS-leaky-security-token-0123456789"


@pytest.fixture
def leaky_credentials_server() -> Iterator[str]:
    """A loopback credentials URI whose answer lacks ``Expiration`` but carries secrets."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {
                    "Code": "Success",
                    "AccessKeySecret": LEAKY_SECRET,
                    "SecurityToken": LEAKY_TOKEN,
                    "AccessKeyId": "STS.leaky",
                }
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/creds"
    finally:
        server.shutdown()
        server.server_close()


def test_credentials_uri_error_hides_secrets_of_a_bad_answer(leaky_credentials_server: str) -> None:
    source = uri_source(leaky_credentials_server)
    with pytest.raises(AuthenticationError) as info:
        source.get()
    assert info.value.code == "CredentialsUnavailable"
    assert_hides(str(info.value) + repr(info.value), LEAKY_SECRET, LEAKY_TOKEN)


# --------------------------------------------------------------------------- parse_sts_credentials

GOOD_CREDS = {
    "AccessKeyId": "STS.abc",
    "AccessKeySecret": "secret",
    "SecurityToken": "CAIS-token",
    "Expiration": "2030-01-02T03:04:05Z",
}


def test_parse_sts_credentials() -> None:
    creds = parse_sts_credentials({"RequestId": "r", "Credentials": GOOD_CREDS})
    assert creds.access_key_id == "STS.abc"
    assert creds.access_key_secret == "secret"
    assert creds.security_token == "CAIS-token"
    assert creds.expiration == 1893553445.0  # 2030-01-02T03:04:05Z, UTC


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "Credentials",
        {},
        {"Credentials": None},
        {"Credentials": "x"},
        {"Credentials": []},
        {"Credentials": {k: v for k, v in GOOD_CREDS.items() if k != "AccessKeyId"}},
        {"Credentials": {k: v for k, v in GOOD_CREDS.items() if k != "AccessKeySecret"}},
        {"Credentials": {k: v for k, v in GOOD_CREDS.items() if k != "SecurityToken"}},
        {"Credentials": {k: v for k, v in GOOD_CREDS.items() if k != "Expiration"}},
        {"Credentials": {**GOOD_CREDS, "Expiration": "2030-01-02 03:04:05"}},
        {"Credentials": {**GOOD_CREDS, "Expiration": "tomorrow"}},
        {"Credentials": {**GOOD_CREDS, "Expiration": None}},
        {"Credentials": {**GOOD_CREDS, "Expiration": 1893553445}},
    ],
)
def test_parse_sts_credentials_malformed(body: Any) -> None:
    with pytest.raises(BadResponseError) as info:
        parse_sts_credentials(body)
    assert isinstance(info.value, AlibabaCloudError)
    assert_hides(str(info.value), "secret", "CAIS-token")


@pytest.mark.parametrize(
    "creds",
    [
        {**GOOD_CREDS, "AccessKeyId": None},
        {**GOOD_CREDS, "AccessKeySecret": ""},
        {**GOOD_CREDS, "SecurityToken": {"nested": 1}},
    ],
)
def test_parse_sts_credentials_rejects_null_fields(creds: dict[str, Any]) -> None:
    with pytest.raises(BadResponseError):
        parse_sts_credentials({"Credentials": creds})


def test_malformed_assume_role_answer_is_bad_response(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real AssumeRole round trip whose body is then mangled: the source raises BadResponseError."""
    source = assume_role_source(emulator)
    real_send = source._client.send

    def send(call: Call) -> Any:
        response = real_send(call)
        return dataclasses.replace(response, body={"RequestId": "x", "Credentials": {"AccessKeyId": "STS.x"}})

    monkeypatch.setattr(source._client, "send", send)
    with pytest.raises(BadResponseError):
        source.get()
    assert emulator.request_count("sts") == 1


def test_refresh_margin() -> None:
    margin = credentials_module._refresh_margin
    assert margin(3600) == 900
    assert margin(43200) == 900
    assert margin(900) == 225
    assert margin(2) == 0.5
    assert margin(0) == 0.5


def test_credentials_uri_failure_logs_no_secret(
    leaky_credentials_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    source = uri_source(leaky_credentials_server)
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError):
        source.get()
    for record in caplog.records:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        assert_hides(text, LEAKY_SECRET, LEAKY_TOKEN)
