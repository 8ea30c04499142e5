"""One async trigger for all four services: :class:`AlibabaCloudTaskTrigger`."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_aliyun_tasks.errors import ConfigurationError, is_transient
from airflow_aliyun_tasks.services import get_service
from airflow_aliyun_tasks.status import UNKNOWN, TaskStatus, describe, outcome_of

#: Event ``status`` values: the three outcomes of :func:`~airflow_aliyun_tasks.status.outcome_of`,
#: plus ``timeout`` (the deadline passed) and ``error`` (a permanent error, or too many
#: transient failures in a row).
EVENT_STATUSES = frozenset({"success", "failed", "cancelled", "timeout", "error"})


def _plain_ids(ids: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(ids, Mapping):
        raise ConfigurationError("ids", f"must be a mapping of id names to strings, got {type(ids).__name__}")
    return {str(k): str(v) for k, v in ids.items() if v is not None}


class AlibabaCloudTaskTrigger(BaseTrigger):
    """Poll one Alibaba Cloud async task until it ends, the deadline passes, or polling fails.

    Every kwarg is a plain string, number, bool or list of strings, and none is a credential:
    trigger kwargs are stored as plain JSON in Airflow's metadata database. Credentials come
    from the connection ``aliyun_conn_id``, resolved in the triggerer.

    :param service: ``dlf``, ``dataworks``, ``mma`` or ``pds``.
    :param ids: the task's ids, as the hook's ``get_task_status`` takes them.
    :param aliyun_conn_id: the ``aliyun`` connection.
    :param poll_interval: seconds between polls.
    :param end_time: absolute deadline, epoch seconds; past it the trigger yields ``timeout``.
    :param max_consecutive_failures: transient poll failures tolerated in a row (each after the
        client's own retries); one more yields ``error``. Any successful poll resets the count.
    :param initial_delay: seconds before the first poll (the sensor has just poked itself).
    :param success_states / failure_states: extra raw status values that end the wait.
    :param partial_success_ok: PDS ``PartialSucceed`` counts as success.

    Yields exactly one :class:`TriggerEvent` whose payload is plain JSON: ``status`` (one of
    :data:`EVENT_STATUSES`), ``task_status`` (the last :meth:`TaskStatus.to_dict`, or ``None``
    if no poll succeeded), ``message``, ``service``, ``ids`` and ``polls``.
    """

    def __init__(
        self,
        *,
        service: str,
        ids: Mapping[str, Any],
        aliyun_conn_id: str = "aliyun_default",
        poll_interval: float = 30.0,
        end_time: float,
        max_consecutive_failures: int = 5,
        initial_delay: float = 0.0,
        success_states: Iterable[str] = (),
        failure_states: Iterable[str] = (),
        partial_success_ok: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.service = get_service(service).name
        self.ids = _plain_ids(ids)
        self.aliyun_conn_id = str(aliyun_conn_id)
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time)
        self.max_consecutive_failures = int(max_consecutive_failures)
        self.initial_delay = float(initial_delay)
        self.success_states = [str(s) for s in success_states]
        self.failure_states = [str(s) for s in failure_states]
        self.partial_success_ok = bool(partial_success_ok)
        for name in ("poll_interval", "end_time", "initial_delay"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigurationError(name, "must be a finite number")
        if self.poll_interval <= 0:
            raise ConfigurationError("poll_interval", "must be a positive number of seconds")
        if self.max_consecutive_failures < 0:
            raise ConfigurationError("max_consecutive_failures", "must not be negative")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "service": self.service,
                "ids": dict(self.ids),
                "aliyun_conn_id": self.aliyun_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "max_consecutive_failures": self.max_consecutive_failures,
                "initial_delay": self.initial_delay,
                "success_states": list(self.success_states),
                "failure_states": list(self.failure_states),
                "partial_success_ok": self.partial_success_ok,
            },
        )

    def _hook(self) -> Any:
        from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

        return AlibabaCloudTasksHook(aliyun_conn_id=self.aliyun_conn_id)

    def _event(self, status: str, message: str, task_status: TaskStatus | None, polls: int) -> TriggerEvent:
        return TriggerEvent(  # type: ignore[no-untyped-call]
            {
                "status": status,
                "message": message,
                "task_status": task_status.to_dict() if task_status is not None else None,
                "service": self.service,
                "ids": dict(self.ids),
                "polls": polls,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        what = f"{self.service} " + " ".join(f"{k}={v}" for k, v in self.ids.items())
        failures = 0
        polls = 0
        last: TaskStatus | None = None
        last_seen: tuple[str, str | None, float | None] | None = None
        warned_unknown: set[str | None] = set()
        if self.initial_delay > 0:
            await asyncio.sleep(min(self.initial_delay, max(self.end_time - time.time(), 0.0)))
        while True:
            if time.time() >= self.end_time:
                yield self._event(
                    "timeout",
                    f"{what}: still {last.state if last else 'unpolled'} at the deadline "
                    f"({time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.end_time))})",
                    last,
                    polls,
                )
                return
            try:
                status: TaskStatus = await hook.aget_task_status(self.service, **self.ids)
            except Exception as exc:
                if not is_transient(exc):
                    yield self._event("error", f"{what}: {exc}", last, polls)
                    return
                failures += 1
                if failures > self.max_consecutive_failures:
                    yield self._event(
                        "error",
                        f"{what}: {failures} polls in a row failed (limit {self.max_consecutive_failures}); "
                        f"last error: {exc}",
                        last,
                        polls,
                    )
                    return
                self.log.warning(
                    "%s: poll failed (%d/%d): %s", what, failures, self.max_consecutive_failures, exc
                )
            else:
                polls += 1
                failures = 0
                last = status
                seen = (status.state, status.raw_status, status.progress)
                if seen != last_seen:
                    self.log.info("%s", describe(status))
                    last_seen = seen
                if status.state == UNKNOWN and status.raw_status not in warned_unknown:
                    warned_unknown.add(status.raw_status)
                    self.log.warning(
                        "%s: raw status %r is not one this package knows; still waiting. Add it to "
                        "success_states or failure_states to end the wait on it.",
                        what,
                        status.raw_status,
                    )
                outcome = outcome_of(
                    status,
                    success_states=self.success_states,
                    failure_states=self.failure_states,
                    partial_success_ok=self.partial_success_ok,
                )
                if outcome is not None:
                    yield self._event(outcome, describe(status), status, polls)
                    return
            await asyncio.sleep(min(self.poll_interval, max(self.end_time - time.time(), 0.0)))
