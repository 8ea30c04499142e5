"""Credentials over time: short-lived STS credentials expiring during a wait, and revoked keys.

A wait (``AlibabaCloudTaskTrigger.run()`` on an event loop, as the triggerer runs it) lasts several
credential lifetimes of an emulator whose STS keys live a few seconds. It must end with the
task's outcome and no failed poll, the credentials refreshed before they expire and without a
blocking call on the event loop. A key revoked mid-wait must end the wait with a clear
authentication error after a bounded number of requests, not retry forever.

How "not blocking" is checked, without timing assertions: every synchronous path that could
fetch credentials or send a request (``AlibabaCloudClient.send``, the sources' ``get``,
``_fetch`` and the OIDC token read) records a violation when called on a thread that runs an
event loop; the loop runs in asyncio debug mode with a generous slow-callback threshold, whose
warnings must not appear; a ticker's largest gap is printed for information.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from airflow_aliyun_tasks.client import AlibabaCloudClient
from airflow_aliyun_tasks.credential_sources import AssumeRoleSource, OidcRoleSource
from airflow_aliyun_tasks.credentials import Credentials, _CachingSource
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.testing import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, Emulator
from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger

pytestmark = pytest.mark.usefixtures("fresh_clients")

STS_TTL = 4  # seconds an STS key lives in the short-lived emulator
POLL = 0.5
POLLS = 16  # polls of a full wait: at least (POLLS - 1) * POLL = 7.5 s, close to two STS lifetimes
SLOW_CALLBACK = 1.0  # seconds: a loop step this long is reported by asyncio's debug mode
ROLE_ARN = "acs:ram::1234567890123456:role/airflow-etl"
OIDC_ARN = "acs:ram::1234567890123456:oidc-provider/ack-rrsa"
from airflow_aliyun_tasks.config import ENDPOINT_EXTRAS as ENDPOINTS  # noqa: E402


def oidc_token(subject: str) -> str:
    import base64

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    claims = {"sub": subject, "iss": "https://oidc.example", "aud": "sts.aliyuncs.com"}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.fixture(scope="module")
def short_sts_emulator() -> Iterator[Emulator]:
    emu = Emulator(sts_ttl_seconds=STS_TTL)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def sts_emu(short_sts_emulator: Emulator) -> Emulator:
    short_sts_emulator.reset()
    return short_sts_emulator


def connect(
    monkeypatch: pytest.MonkeyPatch,
    emu: Emulator,
    conn_id: str,
    *,
    login: str | None = DEFAULT_ACCESS_KEY_ID,
    password: str | None = DEFAULT_ACCESS_KEY_SECRET,
    **extra: Any,
) -> str:
    conn = {
        "conn_type": "aliyun",
        "login": login,
        "password": password,
        "extra": {"region_id": "cn-hangzhou", **dict.fromkeys(ENDPOINTS, emu.url), **extra},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


def trigger(conn_id: str, job_id: str, *, deadline: float = 120.0) -> AlibabaCloudTaskTrigger:
    return AlibabaCloudTaskTrigger(
        service="dataworks",
        ids={"job_id": job_id},
        aliyun_conn_id=conn_id,
        poll_interval=POLL,
        end_time=time.time() + deadline,
        max_consecutive_failures=3,
    )


class LoopGuard:
    """Records blocking calls on the event loop's thread, and how credentials were handed out."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.blocking: list[str] = []
        self.handed_out: list[tuple[float, Credentials]] = []  # (when, what) for every aget
        self.fetches: list[str] = []
        self.tokens: list[str] = []
        self.max_gap = 0.0
        for owner, name in (
            (AlibabaCloudClient, "send"),
            (_CachingSource, "get"),
            (AssumeRoleSource, "_fetch"),
            (OidcRoleSource, "_fetch"),
            (OidcRoleSource, "_token"),
        ):
            monkeypatch.setattr(owner, name, self._guard(getattr(owner, name), f"{owner.__name__}.{name}"))
        for owner in (AssumeRoleSource, OidcRoleSource):
            monkeypatch.setattr(owner, "_afetch", self._count(owner._afetch, owner.__name__))
        original_aget = _CachingSource.aget

        async def aget(source: _CachingSource) -> Credentials:
            creds = await original_aget(source)
            self.handed_out.append((time.time(), creds))
            return creds

        monkeypatch.setattr(_CachingSource, "aget", aget)

    def _guard(self, original: Callable[..., Any], name: str) -> Callable[..., Any]:
        guard = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass  # not on an event loop's thread (e.g. asyncio.to_thread): fine
            else:
                guard.blocking.append(name)
            result = original(*args, **kwargs)
            if name == "OidcRoleSource._token":
                guard.tokens.append(result)
            return result

        return wrapper

    def _count(self, original: Callable[..., Any], name: str) -> Callable[..., Any]:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.fetches.append(name)
            return await original(*args, **kwargs)

        return wrapper

    async def ticker(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - last)
            last = now

    def run(self, coro_factory: Callable[[], Any]) -> Any:
        """Run a coroutine in a fresh event loop in debug mode, with the ticker beside it."""

        async def main() -> Any:
            asyncio.get_running_loop().slow_callback_duration = SLOW_CALLBACK
            ticking = asyncio.create_task(self.ticker())
            try:
                return await coro_factory()
            finally:
                ticking.cancel()

        return asyncio.run(main(), debug=True)


def slow_callbacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "asyncio" and "took" in r.getMessage()]


async def drive(trig: AlibabaCloudTaskTrigger) -> list[Any]:
    return [event.payload async for event in trig.run()]


def poll_failures(logs: list[dict[str, Any]]) -> list[str]:
    return [str(e["event"]) for e in logs if "poll failed" in str(e.get("event", ""))]


# --------------------------------------------------------------------------- the detector itself


def test_the_slow_callback_detector_sees_a_blocking_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The checks below rely on asyncio's debug mode reporting a loop step that blocks."""
    guard = LoopGuard(monkeypatch)
    caplog.set_level(logging.WARNING, logger="asyncio")

    async def blocks() -> None:
        await asyncio.sleep(0)
        time.sleep(SLOW_CALLBACK + 0.2)  # a blocking call on the loop, on purpose

    guard.run(blocks)
    assert slow_callbacks(caplog), "asyncio debug mode did not report a blocking step"


# --------------------------------------------------------------------------- refresh mid-wait


def _assert_refreshed_in_time(guard: LoopGuard, emu: Emulator, source_name: str) -> None:
    # The wait outlived at least one STS lifetime: the credentials were fetched again.
    assert guard.fetches.count(source_name) >= 2, guard.fetches
    assert emu.request_count("sts") == len(guard.fetches)
    keys = {creds.access_key_id for _, creds in guard.handed_out}
    assert len(keys) == len(guard.fetches) >= 2
    # Never handed out past (or at) expiry: the refresh happens before it.
    for when, creds in guard.handed_out:
        assert creds.expiration is not None
        assert when < creds.expiration, (when, creds.expiration)


def test_ram_role_arn_credentials_expire_during_a_wait(
    sts_emu: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    conn = connect(monkeypatch, sts_emu, "aliyun_role_over_time", auth_type="ram_role_arn", role_arn=ROLE_ARN)
    sts_emu.add_dataworks_job("role-wait", ["Running"] * (POLLS - 1) + ["Success"])
    guard = LoopGuard(monkeypatch)
    caplog.set_level(logging.WARNING)
    with structlog.testing.capture_logs() as logs:
        events = guard.run(lambda: drive(trigger(conn, "role-wait")))
    print(f"\nram_role_arn: {len(guard.fetches)} STS fetches, largest loop gap {guard.max_gap:.3f} s")

    assert [e["status"] for e in events] == ["success"], events
    assert events[0]["polls"] == POLLS
    assert poll_failures(logs) == []
    # Every poll was one request: no attempt was rejected for an expired token and retried.
    assert sts_emu.request_count("dataworks") == POLLS
    assert not [r for r in caplog.records if "attempt" in r.getMessage() and "failed" in r.getMessage()]
    _assert_refreshed_in_time(guard, sts_emu, "AssumeRoleSource")
    assert guard.blocking == [], f"blocking calls on the event loop: {guard.blocking}"
    assert slow_callbacks(caplog) == []


def test_oidc_role_arn_credentials_expire_during_a_wait(
    sts_emu: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(oidc_token("first"), encoding="utf-8")
    conn = connect(
        monkeypatch,
        sts_emu,
        "aliyun_oidc_over_time",
        login=None,
        password=None,
        auth_type="oidc_role_arn",
        role_arn=ROLE_ARN,
        oidc_provider_arn=OIDC_ARN,
        oidc_token_file_path=str(token_file),
    )
    sts_emu.add_dataworks_job("oidc-wait", ["Running"] * (POLLS - 1) + ["Success"])
    guard = LoopGuard(monkeypatch)
    # The token file is rotated (as ACK RRSA does) right after its first read.
    original_token = OidcRoleSource._token  # the guard's recording wrapper

    def rotating_token(source: OidcRoleSource) -> str:
        token = original_token(source)
        token_file.write_text(oidc_token("rotated"), encoding="utf-8")
        return token

    monkeypatch.setattr(OidcRoleSource, "_token", rotating_token)
    caplog.set_level(logging.WARNING)
    with structlog.testing.capture_logs() as logs:
        events = guard.run(lambda: drive(trigger(conn, "oidc-wait")))
    print(f"\noidc_role_arn: {len(guard.fetches)} STS fetches, largest loop gap {guard.max_gap:.3f} s")

    assert [e["status"] for e in events] == ["success"], events
    assert poll_failures(logs) == []
    assert sts_emu.request_count("dataworks") == POLLS
    _assert_refreshed_in_time(guard, sts_emu, "OidcRoleSource")
    # The token file is read afresh at every refresh (off the loop's thread).
    assert guard.tokens[0] == oidc_token("first")
    assert set(guard.tokens[1:]) == {oidc_token("rotated")}
    assert guard.blocking == [], f"blocking calls on the event loop: {guard.blocking}"
    assert slow_callbacks(caplog) == []


# --------------------------------------------------------------------------- revoked and expired keys


def revoke_after(monkeypatch: pytest.MonkeyPatch, polls: int, revoke: Callable[[], None]) -> list[str]:
    """Call ``revoke`` right after the ``polls``-th successful poll; returns the poll log."""
    seen: list[str] = []
    original = AlibabaCloudTasksHook.aget_task_status

    async def polling(self: AlibabaCloudTasksHook, service: str, **ids: Any) -> Any:
        try:
            status = await original(self, service, **ids)
        except Exception as exc:
            seen.append(f"fail: {exc}")
            raise
        seen.append("ok")
        if seen.count("ok") == polls:
            revoke()
        return status

    monkeypatch.setattr(AlibabaCloudTasksHook, "aget_task_status", polling)
    return seen


def test_access_key_revoked_mid_wait_fails_fast(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connect(monkeypatch, emulator, "aliyun_revoked_key")
    emulator.add_dataworks_job("revoked", ["Running"])  # never ends on its own
    seen = revoke_after(monkeypatch, 2, lambda: emulator.revoke_key(DEFAULT_ACCESS_KEY_ID))
    events = asyncio.run(drive(trigger(conn, "revoked", deadline=60)))

    assert len(events) == 1
    event = events[0]
    assert event["status"] == "error", event
    assert "InvalidAccessKeyId" in event["message"]
    assert event["task_status"]["raw_status"] == "Running"  # the last good poll
    # Not retried: one request after the revocation, and the wait ended.
    assert seen[:2] == ["ok", "ok"]
    assert len(seen) == 3
    assert emulator.request_count("dataworks") == 3


def test_ram_role_base_key_revoked_mid_wait_fails_at_the_next_refresh(
    sts_emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connect(monkeypatch, sts_emu, "aliyun_role_revoked", auth_type="ram_role_arn", role_arn=ROLE_ARN)
    sts_emu.add_dataworks_job("role-revoked", ["Running"])
    seen = revoke_after(monkeypatch, 1, lambda: sts_emu.revoke_key(DEFAULT_ACCESS_KEY_ID))
    events = asyncio.run(drive(trigger(conn, "role-revoked", deadline=60)))

    assert len(events) == 1
    event = events[0]
    assert event["status"] == "error", event
    assert "InvalidAccessKeyId" in event["message"]
    # The minted STS key kept working until its refresh; the refresh (AssumeRole with the
    # revoked base key) failed once, without retries, and ended the wait.
    assert seen[-1].startswith("fail")
    assert all(s == "ok" for s in seen[:-1])
    assert sts_emu.request_count("sts") == 2
    assert sts_emu.request_count("dataworks") == len(seen) - 1


def test_static_sts_credentials_expiring_mid_wait_end_the_wait(
    sts_emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = sts_emu.issue_sts_credentials(duration_seconds=2)
    conn = connect(
        monkeypatch,
        sts_emu,
        "aliyun_static_sts",
        login=creds["AccessKeyId"],
        password=creds["AccessKeySecret"],
        auth_type="sts",
        security_token=creds["SecurityToken"],
    )
    sts_emu.add_dataworks_job("static-sts", ["Running"])
    seen = revoke_after(monkeypatch, 10**9, lambda: None)
    events = asyncio.run(drive(trigger(conn, "static-sts", deadline=60)))

    assert len(events) == 1
    event = events[0]
    assert event["status"] == "error", event
    assert "InvalidSecurityToken.Expired" in event["message"]
    assert creds["SecurityToken"] not in event["message"]
    # Static credentials cannot be refreshed: one rejected request ends the wait.
    assert seen[-1].startswith("fail")
    assert all(s == "ok" for s in seen[:-1])
    assert sts_emu.request_count("dataworks") == len(seen)
