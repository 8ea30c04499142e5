"""No growth over time: invalidating a library-backed credential source keeps its library client
(no new threads, no new file descriptors), and a loop's shared HTTP clients are dropped when the
loop shuts down."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from airflow_aliyun_tasks import _loop_clients as loop_clients
from airflow_aliyun_tasks.config import parse_connection
from airflow_aliyun_tasks.credential_sources import LibrarySource, _drop_cached_values


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def ecs_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the library build an ECS provider (it reads the switch at import). Nothing here
    fetches credentials: the metadata address is never contacted."""
    from alibabacloud_credentials.utils import auth_util

    monkeypatch.setattr(auth_util, "environment_ecs_metadata_disabled", "false")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_invalidating_a_library_source_1000_times_grows_nothing(ecs_allowed: None) -> None:
    settings = parse_connection(
        login=None, password=None, extra={"region_id": "cn-hangzhou", "auth_type": "ecs_ram_role"}
    )
    source = LibrarySource(settings)
    library_client = source._client
    threads, fds = threading.active_count(), _fds()
    for _ in range(1000):
        source.invalidate()
    assert source._client is library_client
    assert threading.active_count() == threads
    assert _fds() == fds


def test_invalidate_drops_the_library_cache(ecs_allowed: None) -> None:
    settings = parse_connection(
        login=None, password=None, extra={"region_id": "cn-hangzhou", "auth_type": "ecs_ram_role"}
    )
    source = LibrarySource(settings)
    supplier: Any = source._client.cloud_credential.provider._credentials_cache
    supplier._cached_value = object()
    source.invalidate()
    assert supplier._cached_value is None


def test_invalidate_reaches_the_default_chain() -> None:
    class Supplier:
        def __init__(self) -> None:
            self._cached_value = "cached"
            self._refresh_callable = print

    class Provider:
        def __init__(self) -> None:
            self._credentials_cache = Supplier()

    class Chain:
        def __init__(self) -> None:
            self._DefaultCredentialsProvider__providers_chain = [Provider(), Provider()]

    chain = Chain()
    assert _drop_cached_values(chain) == 2
    assert all(
        p._credentials_cache._cached_value is None for p in chain._DefaultCredentialsProvider__providers_chain
    )


def test_a_closed_loops_clients_are_dropped() -> None:
    """After asyncio.run ends, nothing of its loop stays in the shared client caches."""
    from airflow_aliyun_tasks.network import Route

    async def use() -> None:
        loop_clients.shared_async_client()
        loop_clients.route_async_client(Route(cafile=None))

    before = (len(loop_clients._async_clients), len(loop_clients._route_async_clients))
    for _ in range(5):
        asyncio.run(use())
    assert (len(loop_clients._async_clients), len(loop_clients._route_async_clients)) == before


def test_a_closed_loops_clients_are_dropped_after_a_request(emulator: Any) -> None:
    from airflow_aliyun_tasks.client import AlibabaCloudClient, Call
    from airflow_aliyun_tasks.config import parse_endpoint
    from airflow_aliyun_tasks.credentials import Credentials, StaticSource
    from airflow_aliyun_tasks.testing import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

    client = AlibabaCloudClient(StaticSource(Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)))
    call = Call(
        endpoint=parse_endpoint("sts_endpoint", emulator.url),
        action="GetCallerIdentity",
        version="2015-04-01",
    )

    async def poll() -> None:
        await client.asend(call)

    before = len(loop_clients._async_clients)
    for _ in range(3):
        asyncio.run(poll())
    assert len(loop_clients._async_clients) == before


def test_library_sources_warn_when_http_proxy_would_carry_metadata_requests(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://user:Pr0xyPassw0rd@127.0.0.1:9")
    settings = parse_connection(
        login=None, password=None, extra={"region_id": "cn-hangzhou", "auth_type": "default"}
    )
    with caplog.at_level("WARNING", logger="airflow_aliyun_tasks.credential_sources"):
        LibrarySource(settings)
    assert "sends its ECS metadata" in caplog.text
    assert "Pr0xyPassw0rd" not in caplog.text


def test_credentials_uri_gets_the_connections_proxy() -> None:
    from airflow_aliyun_tasks.credential_sources import _library_proxy

    def settings(**extra: Any) -> Any:
        return parse_connection(
            login=None,
            password=None,
            extra={
                "region_id": "cn-hangzhou",
                "auth_type": "credentials_uri",
                "credentials_uri": "https://creds.example/latest",
                "trust_env": False,
                **extra,
            },
        )

    assert _library_proxy(settings()) is None
    assert _library_proxy(settings(https_proxy="http://u:p@proxy:3128")) == "http://u:p@proxy:3128"
    assert _library_proxy(settings(https_proxy="http://proxy:3128", no_proxy=".example")) is None
