"""The control API: unsigned JSON endpoints under ``/_emulator/`` to script a running emulator."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from airflow_aliyun_tasks.testing._base import http_date, iso_seconds

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

Payload = Any
Action = Callable[["Emulator", Payload], Response]


def _each(payload: Payload) -> list[dict[str, Any]]:
    return [dict(item) for item in (payload if isinstance(payload, list) else [payload])]


def _add_tasks(emu: Emulator, payload: Payload) -> Response:
    created = [{"service": spec.get("service"), "ids": emu.add_task(**spec)} for spec in _each(payload)]
    return JSONResponse({"ok": True, "tasks": created}, 201)


def _inject_faults(emu: Emulator, payload: Payload) -> Response:
    for fault in _each(payload):
        emu.inject_fault(
            str(fault["kind"]),
            int(fault.get("count", 1)),
            service=fault.get("service"),
            task=fault.get("task"),
        )
    return JSONResponse({"ok": True})


def _fault_rate(emu: Emulator, payload: Payload) -> Response:
    seed = payload.get("seed")
    emu.set_fault_rate(
        float(payload["rate"]),
        payload.get("kinds"),
        service=payload.get("service"),
        seed=None if seed is None else int(seed),
        exempt_tasks=[str(t) for t in payload.get("exempt_tasks", [])],
    )
    return JSONResponse({"ok": True})


def _slow_seconds(emu: Emulator, payload: Payload) -> Response:
    seconds = float(payload["seconds"])
    if not 0.0 <= seconds <= 600.0:
        raise ValueError("seconds must be between 0 and 600")
    emu.slow_seconds = seconds
    return JSONResponse({"ok": True, "seconds": emu.slow_seconds})


def _reset(emu: Emulator, payload: Payload) -> Response:
    emu.reset()
    return JSONResponse({"ok": True})


def _revoke(emu: Emulator, payload: Payload) -> Response:
    emu.revoke_key(str(payload["access_key_id"]))
    return JSONResponse({"ok": True})


def _clock(emu: Emulator, payload: Payload) -> Response:
    emu.clock_offset = float(payload["offset"])
    return JSONResponse({"ok": True, "offset": emu.clock_offset})


def _start_lifecycle(emu: Emulator, payload: Payload) -> Response:
    emu.set_start_lifecycle(str(payload["service"]), payload["statuses"])
    return JSONResponse({"ok": True})


def _dataworks_create_result(emu: Emulator, payload: Payload) -> Response:
    emu.set_dataworks_create_result(payload["statuses"], payload.get("failure_message"))
    return JSONResponse({"ok": True})


_GET: dict[str, Action] = {
    "health": lambda emu, _: JSONResponse({"ok": True, "server_time": iso_seconds(emu.now())}),
    "stats": lambda emu, _: JSONResponse(emu.stats()),
    "tasks": lambda emu, _: JSONResponse({"tasks": emu.tasks()}),
    "credentials": lambda emu, _: JSONResponse({"Code": "Success", **emu.issue_sts_credentials()}),
}
_POST: dict[str, Action] = {
    "tasks": _add_tasks,
    "faults": _inject_faults,
    "fault_rate": _fault_rate,
    "slow_seconds": _slow_seconds,
    "reset": _reset,
    "revoke": _revoke,
    "clock": _clock,
    "start_lifecycle": _start_lifecycle,
    "dataworks_create_result": _dataworks_create_result,
}


async def _payload(request: Request) -> Payload:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


async def _respond(emu: Emulator, request: Request) -> Response:
    name = request.path_params["name"].strip("/")
    action = {"GET": _GET, "POST": _POST}.get(request.method, {}).get(name)
    if action is None:
        return JSONResponse({"error": f"unknown control endpoint {request.method} /_emulator/{name}"}, 404)
    try:
        payload = await _payload(request) if request.method == "POST" else None
        return action(emu, payload)
    except (KeyError, TypeError, ValueError) as exc:
        return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, 400)


def control_endpoint(emu: Emulator) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of ``/_emulator/{name}``; every answer carries the emulator's ``Date``."""

    async def endpoint(request: Request) -> Response:
        response = await _respond(emu, request)
        response.headers["Date"] = http_date(emu.now())
        return response

    return endpoint
