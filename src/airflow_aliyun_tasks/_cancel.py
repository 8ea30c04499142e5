"""Cancelling a remote task on kill, shared by the operator (worker side) and the trigger
(triggerer side): the service's cancel operation where its API has one, else a log line that
says the remote task keeps running, with its ids."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from airflow_aliyun_tasks.services import get_service

#: Seconds one cancel call may take (Airflow 3.3 bounds a trigger's ``on_kill`` to
#: ``[triggerer] on_kill_timeout``, 30 s by default).
CANCEL_TIMEOUT = 20.0


def _describe(service: str, ids: Mapping[str, str]) -> str:
    return f"{service} " + " ".join(f"{k}={v}" for k, v in ids.items())


def cancel_remote_task(hook: Any, service: str, ids: Mapping[str, str], log: Any) -> bool:
    """Cancel the task (``hook.cancel_task``); ``True`` when the service accepted the cancel.
    Never raises: on_kill must not fail."""
    spec = get_service(service)
    what = _describe(service, ids)
    if spec.cancel is None:
        log.warning(
            "%s has no operation that cancels a task: the remote task keeps running (%s)", spec.label, what
        )
        return False
    try:
        hook.cancel_task(service, **ids)
    except Exception as exc:
        log.warning("%s %s failed for %s: %s", spec.label, spec.cancel.action, what, exc)
        return False
    log.info("Cancelled the remote task with %s %s: %s", spec.label, spec.cancel.action, what)
    return True


async def cancel_remote_task_async(hook: Any, service: str, ids: Mapping[str, str], log: Any) -> bool:
    """Async :func:`cancel_remote_task` (``hook.acancel_task``, bounded by :data:`CANCEL_TIMEOUT`)."""
    spec = get_service(service)
    what = _describe(service, ids)
    if spec.cancel is None:
        log.warning(
            "%s has no operation that cancels a task: the remote task keeps running (%s)", spec.label, what
        )
        return False
    try:
        await asyncio.wait_for(hook.acancel_task(service, **ids), CANCEL_TIMEOUT)
    except Exception as exc:
        log.warning("%s %s failed for %s: %s", spec.label, spec.cancel.action, what, exc)
        return False
    log.info("Cancelled the remote task with %s %s: %s", spec.label, spec.cancel.action, what)
    return True
