"""Clock skew, end to end: the hook (sync and async), the Test button and the trigger.

The emulator's ``clock_offset`` plays a machine whose clock is off. Without ``correct_clock_skew``
every service answers ``InvalidTimeStamp.Expired`` (ACS3: DLF, DataWorks, MMA, STS) or
``RequestTimeTooSkewed`` (PDS), and the error must say that this machine's clock is off and by
how much (read from the response's ``Date`` header), after one request. With the connection extra
``correct_clock_skew: true`` the calls succeed: one rejected request, then every call signs with
the server's time.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from airflow_aliyun_tasks.client import aclose_shared_client
from airflow_aliyun_tasks.errors import AuthenticationError
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.status import RUNNING, SUCCEEDED
from airflow_aliyun_tasks.testing import Emulator
from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger

pytestmark = pytest.mark.usefixtures("fresh_clients")

MakeConn = Callable[..., str]
MODES = ("sync", "async")
OFFSETS = (3600, -1200)  # the server's clock ahead of, and behind, this machine's
TOLERANCE = 5  # seconds: the Date header has one-second resolution, plus processing time
SKEW_CODE = {
    "dlf": "InvalidTimeStamp.Expired",
    "dataworks": "InvalidTimeStamp.Expired",
    "mma": "InvalidTimeStamp.Expired",
    "pds": "RequestTimeTooSkewed",
}
ROLE_ARN = "acs:ram::1234567890123456:role/airflow"
OIDC_ARN = "acs:ram::1234567890123456:oidc-provider/ack-rrsa"
OIDC_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3b3JrZXIiLCJpc3MiOiJodHRwczovL29pZGMiLCJhdWQiOiJzdHMifQ.c2ln"


def add_task(emu: Emulator, service: str, name: str, statuses: list[str]) -> dict[str, Any]:
    """Script a task; return its ids as the hook's ``get_task_status`` takes them."""
    if service == "dlf":
        emu.add_dlf_task(name, statuses)
        return {"async_task_id": name}
    if service == "dataworks":
        emu.add_dataworks_job(name, statuses)
        return {"job_id": name}
    if service == "mma":
        emu.add_mma_task(77, 4242, statuses)
        return {"source_id": 77, "async_task_id": 4242}
    emu.add_pds_task(name, statuses)
    return {"async_task_id": name}


LIFECYCLE = {
    "dlf": ["Running", "Success"],
    "dataworks": ["Running", "Success"],
    "mma": ["DOING", "DONE"],
    "pds": ["Running", "Succeed"],
}


def status(mode: str, conn_id: str, service: str, ids: dict[str, Any], times: int = 1) -> list[str]:
    hook = AlibabaCloudTasksHook(conn_id)
    if mode == "sync":
        return [hook.get_task_status(service, **ids).state for _ in range(times)]

    async def go() -> list[str]:
        try:
            return [(await hook.aget_task_status(service, **ids)).state for _ in range(times)]
        finally:
            await aclose_shared_client()

    return asyncio.run(go())


def offset_in(text: str) -> int:
    match = re.search(r"clock is ([+-]\d+) s from it", text)
    assert match, text
    return int(match.group(1))


def assert_explains(err: BaseException, offset: int, code: str) -> None:
    assert isinstance(err, AuthenticationError), repr(err)
    assert err.code == code
    text = str(err)
    assert "This machine's clock is off" in text
    assert abs(offset_in(text) - offset) <= TOLERANCE, text
    assert "correct_clock_skew" in text


# --------------------------------------------------------------------------- through the hook


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("service", list(SKEW_CODE))
def test_hook_explains_the_skew(
    emulator: Emulator, make_conn: MakeConn, service: str, offset: int, mode: str
) -> None:
    conn = make_conn("aliyun_skewed")
    ids = add_task(emulator, service, "skew-1", LIFECYCLE[service])
    emulator.clock_offset = offset
    with pytest.raises(AuthenticationError) as info:
        status(mode, conn, service, ids)
    assert_explains(info.value, offset, SKEW_CODE[service])
    assert emulator.request_count(service) == 1  # not retried: retrying cannot help


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("service", list(SKEW_CODE))
def test_hook_corrects_the_skew(
    emulator: Emulator, make_conn: MakeConn, service: str, offset: int, mode: str
) -> None:
    conn = make_conn("aliyun_corrected", correct_clock_skew=True)
    ids = add_task(emulator, service, "skew-2", LIFECYCLE[service])
    emulator.clock_offset = offset
    assert status(mode, conn, service, ids, times=3) == [RUNNING, SUCCEEDED, SUCCEEDED]
    # One rejected request, then one request per call.
    assert emulator.request_count(service) == 4


def test_skew_within_the_allowed_window_needs_no_correction(emulator: Emulator, make_conn: MakeConn) -> None:
    conn = make_conn("aliyun_small_skew")
    ids = add_task(emulator, "dataworks", "skew-small", ["Running"])
    emulator.clock_offset = 600  # less than the 15 minutes the gateways allow
    assert status("sync", conn, "dataworks", ids) == [RUNNING]
    assert emulator.request_count("dataworks") == 1


def test_test_connection_explains_the_skew(emulator: Emulator, make_conn: MakeConn) -> None:
    emulator.clock_offset = 3600
    ok, message = AlibabaCloudTasksHook(make_conn("aliyun_skew_test")).test_connection()
    assert not ok
    assert "InvalidTimeStamp.Expired" in message
    assert "This machine's clock is off" in message
    assert abs(offset_in(message) - 3600) <= TOLERANCE
    assert emulator.request_count("sts") == 1


def test_test_connection_honours_correct_clock_skew(emulator: Emulator, make_conn: MakeConn) -> None:
    emulator.clock_offset = 3600
    conn = make_conn("aliyun_skew_fixed", correct_clock_skew=True)
    ok, message = AlibabaCloudTasksHook(conn).test_connection()
    assert ok, message


def test_oidc_role_with_correct_clock_skew(emulator: Emulator, make_conn: MakeConn, tmp_path: Path) -> None:
    """AssumeRoleWithOIDC is not signed; the service calls signed with its keys are corrected."""
    token_file = tmp_path / "token"
    token_file.write_text(OIDC_TOKEN, encoding="utf-8")
    conn = make_conn(
        "aliyun_skew_oidc",
        login=None,
        password=None,
        auth_type="oidc_role_arn",
        role_arn=ROLE_ARN,
        oidc_provider_arn=OIDC_ARN,
        oidc_token_file_path=str(token_file),
        correct_clock_skew=True,
    )
    ids = add_task(emulator, "dlf", "skew-oidc", ["Running", "Success"])
    emulator.clock_offset = -3600
    assert status("async", conn, "dlf", ids, times=2) == [RUNNING, SUCCEEDED]
    assert emulator.request_count("dlf") == 3


# --------------------------------------------------------------------------- through the trigger


def run_trigger(conn_id: str, service: str, ids: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    trig = AlibabaCloudTaskTrigger(
        service=service,
        ids=ids,
        aliyun_conn_id=conn_id,
        poll_interval=0.1,
        end_time=time.time() + 60,
        max_consecutive_failures=2,
    )

    async def go() -> list[dict[str, Any]]:
        return [event.payload async for event in trig.run()]

    with structlog.testing.capture_logs() as logs:
        events = asyncio.run(go())
    return events, logs


@pytest.mark.parametrize("service", list(SKEW_CODE))
def test_trigger_ends_with_a_clear_error(emulator: Emulator, make_conn: MakeConn, service: str) -> None:
    conn = make_conn("aliyun_skewed_trigger")
    ids = add_task(emulator, service, "skew-3", LIFECYCLE[service])
    emulator.clock_offset = 3600
    events, _ = run_trigger(conn, service, ids)
    assert len(events) == 1
    event = events[0]
    assert event["status"] == "error", event
    assert SKEW_CODE[service] in event["message"]
    assert "This machine's clock is off" in event["message"]
    assert abs(offset_in(event["message"]) - 3600) <= TOLERANCE
    # A permanent error: the wait ends at once, not after max_consecutive_failures polls.
    assert emulator.request_count(service) == 1


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("service", list(SKEW_CODE))
def test_trigger_succeeds_with_correct_clock_skew(
    emulator: Emulator, make_conn: MakeConn, service: str, offset: int
) -> None:
    conn = make_conn("aliyun_corrected_trigger", correct_clock_skew=True)
    lifecycle = [LIFECYCLE[service][0]] * 3 + [LIFECYCLE[service][1]]
    ids = add_task(emulator, service, "skew-4", lifecycle)
    emulator.clock_offset = offset
    events, logs = run_trigger(conn, service, ids)
    assert [e["status"] for e in events] == ["success"], events
    assert events[0]["polls"] == 4
    assert [e for e in logs if "poll failed" in str(e.get("event", ""))] == []
    assert emulator.request_count(service) == 5  # the first poll's rejected attempt, then one each
