"""Cancelling a remote task on kill, shared by the operator (worker side) and the trigger
(triggerer side): the service's cancel operation where its API has one, else a log line that
says the remote task keeps running, with its ids."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from airflow_aliyun_tasks.services import get_service
from airflow_aliyun_tasks.status import describe_ids

#: Seconds one cancel call may take (Airflow 3.3 bounds a trigger's ``on_kill`` to
#: ``[triggerer] on_kill_timeout``, 30 s by default).
CANCEL_TIMEOUT = 20.0


def _cancel_action(service: str, ids: Mapping[str, str], log: Any) -> str | None:
    """The service's cancel action; ``None``, with the log line saying the remote task keeps
    running, when it has none."""
    spec = get_service(service)
    if spec.cancel is None:
        log.warning(
            "%s has no operation that cancels a task: the remote task keeps running (%s)",
            spec.label,
            describe_ids(service, ids),
        )
        return None
    return f"{spec.label} {spec.cancel.action}"


def _report(action: str, service: str, ids: Mapping[str, str], log: Any, exc: Exception | None) -> bool:
    if exc is not None:
        log.warning("%s failed for %s: %s", action, describe_ids(service, ids), exc)
        return False
    log.info("Cancelled the remote task with %s: %s", action, describe_ids(service, ids))
    return True


def cancel_remote_task(hook: Any, service: str, ids: Mapping[str, str], log: Any) -> bool:
    """Cancel the task (``hook.cancel_task``); ``True`` when the service accepted the cancel.
    Never raises: on_kill must not fail."""
    action = _cancel_action(service, ids, log)
    if action is None:
        return False
    try:
        hook.cancel_task(service, **ids)
    except Exception as exc:
        return _report(action, service, ids, log, exc)
    return _report(action, service, ids, log, None)


async def cancel_remote_task_async(hook: Any, service: str, ids: Mapping[str, str], log: Any) -> bool:
    """Async :func:`cancel_remote_task` (``hook.acancel_task``, bounded by :data:`CANCEL_TIMEOUT`)."""
    action = _cancel_action(service, ids, log)
    if action is None:
        return False
    try:
        await asyncio.wait_for(hook.acancel_task(service, **ids), CANCEL_TIMEOUT)
    except Exception as exc:
        return _report(action, service, ids, log, exc)
    return _report(action, service, ids, log, None)
