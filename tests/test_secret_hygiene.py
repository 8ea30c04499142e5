"""Secret hygiene: no AccessKey secret, STS token or bearer token in anything a user can see.

Every kind of credential (AccessKey, static STS, RAM role, OIDC role, credentials URI, bearer) is
used against an emulator with recognizable, random secrets; every error the client can raise
is provoked (wrong secret, unknown or revoked key, mismatched and expired STS tokens, unknown
bearer token, clock skew, unknown task, every injected fault, refused connection), sync and
async, through the hook and through the trigger. Then the exceptions are walked recursively
(``str``, ``repr``, ``args``, ``__cause__`` / ``__context__`` chains, ``__notes__`` and every
attribute), and so are the reprs of the hook, the client, the credential sources, the
credentials and the connection settings, the trigger's serialized kwargs and its events, and
every log record: none may contain a secret, or a 12-character piece of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from airflow_aliyun_tasks import credential_sources as credentials_module
from airflow_aliyun_tasks import hooks
from airflow_aliyun_tasks.client import aclose_shared_client
from airflow_aliyun_tasks.credential_sources import LibrarySource
from airflow_aliyun_tasks.credentials import Credentials
from airflow_aliyun_tasks.errors import AlibabaCloudError
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.testing import FAULT_KINDS, Emulator
from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger

AK_ID = "LTAI5tHygieneKey" + secrets.token_hex(4)
AK_SECRET = "HygSecret" + secrets.token_hex(16)
WRONG_SECRET = "HygWrong" + secrets.token_hex(16)
BEARER = "hyg-bearer-" + secrets.token_hex(24)
UNKNOWN_BEARER = "hyg-unknown-bearer-" + secrets.token_hex(24)
OIDC_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJoeWdpZW5lIn0." + secrets.token_urlsafe(48)
ROLE_ARN = "acs:ram::1234567890123456:role/hygiene"
OIDC_ARN = "acs:ram::1234567890123456:oidc-provider/hygiene"
from airflow_aliyun_tasks.config import ENDPOINT_EXTRAS as ENDPOINTS  # noqa: E402

PIECE = 12  # a secret's piece this long, found anywhere, is a leak
KINDS = ("access_key", "wrong_secret", "sts", "ram_role_arn", "oidc_role_arn", "credentials_uri", "bearer")


class Secrets:
    """Every secret of the test run: the fixed ones, and every STS key and token minted."""

    def __init__(self) -> None:
        self.values: set[str] = {AK_SECRET, WRONG_SECRET, BEARER, UNKNOWN_BEARER, OIDC_TOKEN}
        self.key_ids: set[str] = {AK_ID}  # not secrets: what to revoke

    def revoke_all(self, emu: Emulator) -> None:
        for key_id in self.key_ids:
            emu.revoke_key(key_id)

    def add(self, *values: str | None) -> None:
        self.values.update(v for v in values if v)

    def add_credentials(self, creds: Credentials) -> Credentials:
        self.add(creds.access_key_secret, creds.security_token, creds.bearer_token)
        if creds.access_key_id:
            self.key_ids.add(creds.access_key_id)
        return creds

    def leaks(self, text: str) -> list[str]:
        found = []
        for value in self.values:
            pieces = {value[i : i + PIECE] for i in range(0, max(len(value) - PIECE, 0) + 1, 4)}
            if value in text or any(p in text for p in pieces):
                found.append(value[:6] + "...")
        return found


def texts(obj: Any, *, depth: int = 0, seen: set[int] | None = None) -> Iterator[str]:
    """Every string reachable from ``obj``: str, repr, and (recursively) exception args, causes,
    contexts, notes and attributes, and the items of containers."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 12:
        return
    seen.add(id(obj))
    if obj is None or isinstance(obj, bool | int | float | type) or inspect.ismodule(obj):
        return
    if isinstance(obj, str | bytes):
        yield obj if isinstance(obj, str) else obj.decode("latin-1")
        return
    for render in (str, repr):
        with contextlib.suppress(Exception):
            yield render(obj)
    nxt: dict[str, Any] = {"depth": depth + 1, "seen": seen}
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from texts(key, **nxt)
            yield from texts(value, **nxt)
        return
    if isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            yield from texts(item, **nxt)
        return
    if isinstance(obj, BaseException):
        yield from texts(list(obj.args), **nxt)
        yield from texts(obj.__cause__, **nxt)
        yield from texts(obj.__context__, **nxt)
        yield from texts(list(getattr(obj, "__notes__", [])), **nxt)
    attrs: dict[str, Any] = {}
    with contextlib.suppress(TypeError):
        attrs.update(vars(obj))
    for name in getattr(type(obj), "__slots__", ()):
        with contextlib.suppress(AttributeError):
            attrs[name] = getattr(obj, name)
    for name, value in attrs.items():
        if not callable(value) or isinstance(value, BaseException):
            yield name
            yield from texts(value, **nxt)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def hygiene_emulator() -> Iterator[Emulator]:
    emu = Emulator(access_keys={AK_ID: AK_SECRET}, bearer_tokens=[BEARER])
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emu(hygiene_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    hygiene_emulator.reset()
    monkeypatch.setattr(hygiene_emulator, "slow_seconds", 0.6)
    return hygiene_emulator


@pytest.fixture
def found(monkeypatch: pytest.MonkeyPatch) -> Secrets:
    """The run's secrets; STS keys and tokens are added as the package receives them."""
    known = Secrets()
    monkeypatch.setattr(hooks, "_clients", {})
    parse = credentials_module.parse_sts_credentials
    monkeypatch.setattr(
        credentials_module, "parse_sts_credentials", lambda body: known.add_credentials(parse(body))
    )
    convert = LibrarySource._convert
    monkeypatch.setattr(
        LibrarySource, "_convert", staticmethod(lambda model: known.add_credentials(convert(model)))
    )
    return known


@pytest.fixture
def token_file(tmp_path: Path) -> str:
    path = tmp_path / "oidc-token"
    path.write_text(OIDC_TOKEN, encoding="utf-8")
    return str(path)


def connect(
    monkeypatch: pytest.MonkeyPatch,
    emu: Emulator,
    found: Secrets,
    kind: str,
    token_file: str,
    **overrides: Any,
) -> str:
    """Define the ``aliyun_hygiene_<kind>`` connection (max_retries 0, a short timeout)."""
    login: str | None = AK_ID
    password: str | None = AK_SECRET
    extra: dict[str, Any] = {
        "region_id": "cn-hangzhou",
        "pds_domain_id": "bj1",
        "timeout": 0.3,
        "max_retries": 0,
    }
    extra.update(dict.fromkeys(ENDPOINTS, emu.url))
    if kind == "wrong_secret":
        password = WRONG_SECRET
    elif kind == "sts":
        minted = emu.issue_sts_credentials()
        found.add(minted["AccessKeySecret"], minted["SecurityToken"])
        found.key_ids.add(minted["AccessKeyId"])
        login, password = minted["AccessKeyId"], minted["AccessKeySecret"]
        extra.update(auth_type="sts", security_token=minted["SecurityToken"])
    elif kind == "ram_role_arn":
        extra.update(auth_type="ram_role_arn", role_arn=ROLE_ARN)
    elif kind == "oidc_role_arn":
        login = password = None
        extra.update(
            auth_type="oidc_role_arn",
            role_arn=ROLE_ARN,
            oidc_provider_arn=OIDC_ARN,
            oidc_token_file_path=token_file,
        )
    elif kind == "credentials_uri":
        login = password = None
        extra.update(auth_type="credentials_uri", credentials_uri=f"{emu.url}/_emulator/credentials")
    elif kind == "bearer":
        login = password = None
        extra.update(auth_type="bearer", bearer_token=BEARER)
    login = overrides.pop("login", login)
    password = overrides.pop("password", password)
    extra.update(overrides)
    conn_id = f"aliyun_hygiene_{kind}"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps({"conn_type": "aliyun", "login": login, "password": password, "extra": extra}),
    )
    return conn_id


def call(mode: str, conn_id: str, service: str, ids: dict[str, Any]) -> Any:
    """One status read; returns the TaskStatus or the exception raised."""
    hook = AlibabaCloudTasksHook(conn_id)
    try:
        if mode == "sync":
            return hook.get_task_status(service, **ids)

        async def go() -> Any:
            try:
                return await hook.aget_task_status(service, **ids)
            finally:
                await aclose_shared_client()

        return asyncio.run(go())
    except Exception as exc:
        return exc


def service_for(kind: str) -> tuple[str, dict[str, Any]]:
    return (
        ("pds", {"async_task_id": "hyg-task"}) if kind == "bearer" else ("dataworks", {"job_id": "hyg-task"})
    )


def add_task(emu: Emulator, kind: str, statuses: tuple[str, ...] = ("Running",)) -> None:
    if kind == "bearer":
        emu.add_pds_task("hyg-task", statuses)
    else:
        emu.add_dataworks_job("hyg-task", statuses)


def assert_clean(found: Secrets, *objects: Any, logs: Any = ()) -> None:
    leaks = []
    for obj in (*objects, *logs):
        for text in texts(obj):
            hit = found.leaks(text)
            if hit:
                leaks.append((hit, text[:300]))
                break
    assert not leaks, leaks[:5]


@contextlib.contextmanager
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[list[Any]]:
    caplog.set_level(logging.DEBUG)
    records: list[Any] = []
    with structlog.testing.capture_logs() as events:
        yield records
    records.extend(events)
    records.extend(r.getMessage() for r in caplog.records)
    records.extend(str(r.exc_info) for r in caplog.records if r.exc_info)


# --------------------------------------------------------------------------- errors, provoked


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", KINDS)
def test_errors_of_every_fault_and_rejection_hide_the_secrets(
    emu: Emulator,
    found: Secrets,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    token_file: str,
    kind: str,
    mode: str,
) -> None:
    conn = connect(monkeypatch, emu, found, kind, token_file)
    service, ids = service_for(kind)
    add_task(emu, kind)
    outcomes: list[Any] = []
    with captured_logs(caplog) as logs:
        outcomes.append(call(mode, conn, service, ids))  # the first call: credentials fetched
        for fault in FAULT_KINDS:
            emu.inject_fault(fault, service=service)
            outcomes.append(call(mode, conn, service, ids))
        outcomes.append(call(mode, conn, service, {**ids, next(iter(ids)): "no-such-task"}))
        emu.clock_offset = 3600
        outcomes.append(call(mode, conn, service, ids))
        emu.clock_offset = 0
        found.revoke_all(emu)
        outcomes.append(call(mode, conn, service, ids))
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(e, AlibabaCloudError) for e in errors), errors
    # max_retries 0: every fault is an error; so are the unknown task and (signed calls) the skew.
    assert len(errors) >= len(FAULT_KINDS) + (1 if kind == "bearer" else 2), outcomes
    assert_clean(found, *outcomes, logs=logs)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_rejected_credentials_hide_the_secrets(
    emu: Emulator,
    found: Secrets,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    token_file: str,
    mode: str,
) -> None:
    emu.add_dataworks_job("hyg-task", ["Running"])
    emu.add_pds_task("hyg-task", ["Running"])
    other = emu.issue_sts_credentials()
    expiring = emu.issue_sts_credentials(duration_seconds=1)
    found.add(
        other["AccessKeySecret"],
        other["SecurityToken"],
        expiring["AccessKeySecret"],
        expiring["SecurityToken"],
    )
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        # (kind, overrides, service, the error code expected)
        ("wrong_secret", {}, "dataworks", "SignatureDoesNotMatch"),
        ("wrong_secret", {}, "pds", "SignatureDoesNotMatch"),
        ("ram_role_arn", {"password": WRONG_SECRET}, "dataworks", "SignatureDoesNotMatch"),
        ("sts", {"security_token": other["SecurityToken"]}, "dataworks", "InvalidSecurityToken"),
        ("sts", {"security_token": other["SecurityToken"]}, "pds", "InvalidSecurityToken"),
        (
            "sts",
            {
                "login": expiring["AccessKeyId"],
                "password": expiring["AccessKeySecret"],
                "security_token": expiring["SecurityToken"],
            },
            "dataworks",
            "InvalidSecurityToken.Expired",
        ),
        ("bearer", {"bearer_token": UNKNOWN_BEARER}, "pds", "AccessTokenInvalid"),
        (
            "bearer",
            {},
            "dataworks",
            "auth_type",
        ),  # a bearer token cannot sign POP calls: refused before sending
        (
            "oidc_role_arn",
            {"oidc_token_file_path": token_file + ".missing"},
            "dataworks",
            "oidc_token_file_path",
        ),
        (
            "credentials_uri",
            {"credentials_uri": f"http://127.0.0.1:{_closed_port()}/creds"},
            "dataworks",
            "Credentials",
        ),
        ("access_key", {"dataworks_endpoint": f"http://127.0.0.1:{_closed_port()}"}, "dataworks", "Connect"),
    ]
    time.sleep(1.2)  # the expiring STS key is now expired (its lifetime is 1 s)
    outcomes = []
    with captured_logs(caplog) as logs:
        for kind, overrides, service, code in cases:
            monkeypatch.setattr(hooks, "_clients", {})
            conn = connect(monkeypatch, emu, found, kind, token_file, **overrides)
            ids = {"job_id": "hyg-task"} if service == "dataworks" else {"async_task_id": "hyg-task"}
            outcome = call(mode, conn, service, ids)
            assert isinstance(outcome, AlibabaCloudError), (kind, overrides, outcome)
            assert code in str(outcome), (kind, code, str(outcome))
            outcomes.append(outcome)
            _ok, message = AlibabaCloudTasksHook(conn).test_connection()
            outcomes.append(message)
    assert_clean(found, *outcomes, logs=logs)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- objects


@pytest.mark.parametrize("kind", KINDS)
def test_reprs_of_hook_client_sources_credentials_and_settings(
    emu: Emulator, found: Secrets, monkeypatch: pytest.MonkeyPatch, token_file: str, kind: str
) -> None:
    conn = connect(monkeypatch, emu, found, kind, token_file)
    service, ids = service_for(kind)
    add_task(emu, kind)
    hook = AlibabaCloudTasksHook(conn)
    status = call("sync", conn, service, ids)
    client = hook.client
    source = client.credentials
    creds = source.get()
    found.add_credentials(creds)
    objects = [hook, client, source, creds, hook.settings, status]
    for obj in objects:
        for render in (str, repr):
            assert not found.leaks(render(obj)), (type(obj).__name__, render(obj)[:300])
    # The settings hide their secret fields, and say so by leaving them out.
    assert "access_key_secret" not in repr(hook.settings)
    assert "security_token" not in repr(hook.settings)
    assert "bearer_token" not in repr(hook.settings)


# --------------------------------------------------------------------------- the trigger


def _events(trig: AlibabaCloudTaskTrigger) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return [event.payload async for event in trig.run()]

    return asyncio.run(go())


@pytest.mark.parametrize("kind", KINDS)
def test_trigger_kwargs_and_events_hide_the_secrets(
    emu: Emulator,
    found: Secrets,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    token_file: str,
    kind: str,
) -> None:
    conn = connect(monkeypatch, emu, found, kind, token_file)
    service, ids = service_for(kind)
    add_task(emu, kind, ("Running", "Running", "Failed"))

    def trigger(**kw: Any) -> AlibabaCloudTaskTrigger:
        kwargs: dict[str, Any] = {
            "service": service,
            "ids": ids,
            "aliyun_conn_id": conn,
            "poll_interval": 0.05,
            "end_time": time.time() + 30,
            "max_consecutive_failures": 1,
        }
        kwargs.update(kw)
        return AlibabaCloudTaskTrigger(**kwargs)

    artifacts: list[Any] = []
    with captured_logs(caplog) as logs:
        # A failed task (events carry the task's status and raw body)...
        first = trigger()
        artifacts += [first.serialize(), repr(first), _events(first)]
        # ...a wait ended by faults (transient errors, then too many in a row)...
        emu.inject_fault("503", service=service)
        emu.inject_fault("drop", service=service)
        artifacts.append(_events(trigger()))
        # ...a deadline...
        emu.add_dataworks_job("hyg-forever", ["Running"])
        emu.add_pds_task("hyg-forever", ["Running"])
        forever = {k: "hyg-forever" if k != "source_id" else v for k, v in ids.items()}
        artifacts.append(_events(trigger(ids=forever, end_time=time.time() + 0.3)))
        # ...and a permanent error: the credentials (cached by the process) revoked.
        found.revoke_all(emu)
        artifacts.append(_events(trigger()))
    events = [a[0] for a in artifacts if isinstance(a, list)]
    # Revoking the keys ends the last wait, unless the source can mint new ones without them:
    # a temporary key the server no longer knows is refreshed once (OIDC needs no AccessKey,
    # the credentials URI hands out new keys), and the wait then sees the task fail.
    refreshed = ["failed", "error", "timeout", "failed"]
    expected = {
        "wrong_secret": ["error"] * 4,
        "bearer": refreshed,
        "oidc_role_arn": refreshed,
        "credentials_uri": refreshed,
    }.get(kind, ["failed", "error", "timeout", "error"])
    assert [e["status"] for e in events] == expected, events
    kwargs = artifacts[0][1]
    assert set(kwargs) >= {"service", "ids", "aliyun_conn_id"}
    assert json.loads(json.dumps(kwargs)) == kwargs  # plain JSON: stored as is in the metadata DB
    assert_clean(found, *artifacts, logs=logs)


def test_the_walker_finds_a_secret_hidden_deep_in_an_exception(found: Secrets) -> None:
    """The checks above are only as good as this walk."""

    class Holder:
        def __init__(self) -> None:
            self.deep = {"list": [("x", AK_SECRET[3:20])]}

    inner = ValueError("harmless")
    inner.__notes__ = ["note"]  # type: ignore[attr-defined]
    outer = AlibabaCloudError("also harmless")
    outer.detail = Holder()  # type: ignore[attr-defined]
    try:
        try:
            raise inner
        except ValueError:
            raise outer from None
    except AlibabaCloudError as exc:
        caught = exc
    assert any(found.leaks(t) for t in texts(caught))
    context_only = RuntimeError("harmless")
    context_only.__context__ = KeyError(BEARER)
    assert any(found.leaks(t) for t in texts(context_only))
