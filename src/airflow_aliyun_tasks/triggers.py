"""Triggers for every service of the registry.

- :class:`AlibabaCloudTaskTrigger`: waits for one task on behalf of a deferred sensor (or of a
  sensor that starts in the triggerer, ``start_from_trigger=True``) and yields one event.
- :class:`AlibabaCloudTaskEventTrigger`: an asset watcher's trigger (event-driven scheduling):
  yields one asset event when a task ends, and never again for the same task.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from airflow_aliyun_tasks._compat import plain_kwarg
from airflow_aliyun_tasks._poll import PollTracker, Step, log_lines
from airflow_aliyun_tasks.errors import ConfigurationError
from airflow_aliyun_tasks.services import ID_NAMES, get_service
from airflow_aliyun_tasks.status import TaskStatus, describe_ids

__all__ = [
    "EVENT_OUTCOMES",
    "EVENT_STATUSES",
    "ID_FIELDS",
    "MAX_FAILURE_BACKOFF",
    "STATE_KEY_PREFIX",
    "STATE_STORE_TIMEOUT",
    "AlibabaCloudTaskEventTrigger",
    "AlibabaCloudTaskTrigger",
]

#: Event ``status`` values: the three outcomes of :func:`~airflow_aliyun_tasks.status.outcome_of`,
#: plus ``timeout`` (the deadline passed) and ``error`` (a permanent error, or too many
#: transient failures in a row).
EVENT_STATUSES = frozenset({"success", "failed", "cancelled", "timeout", "error"})

#: The id names of every service of the registry, accepted as flat keyword arguments by
#: :class:`AlibabaCloudTaskTrigger` (they are the sensors' templated fields, so that a sensor
#: started in the triggerer has its ids rendered there).
ID_FIELDS: tuple[str, ...] = ID_NAMES


def _plain_ids(ids: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(ids, Mapping):
        raise ConfigurationError("ids", f"must be a mapping of id names to strings, got {type(ids).__name__}")
    return {str(k): str(v) for k, v in ids.items() if v is not None}


def _wait_kwargs(trigger: Any, **own: Any) -> dict[str, Any]:
    """The serialized kwargs both triggers share, around each one's ``own`` (in the order the
    trigger rows have always had: the event trigger's kwargs identify its watcher)."""
    return {
        "service": trigger.service,
        "ids": dict(trigger.ids),
        "aliyun_conn_id": trigger.aliyun_conn_id,
        "poll_interval": trigger.poll_interval,
        **own,
        "success_states": list(trigger.success_states),
        "failure_states": list(trigger.failure_states),
        "partial_success_ok": trigger.partial_success_ok,
    }


async def _poll_once(trigger: Any, hook: Any, tracker: PollTracker, ids: Mapping[str, str]) -> Step:
    """One poll of a trigger's task, judged by its tracker; the step's lines logged."""
    try:
        status: TaskStatus = await hook.aget_task_status(trigger.service, **ids)
    except Exception as exc:
        step = tracker.failed(exc)
    else:
        step = tracker.polled(status)
    if step.logs:
        log_lines(trigger.log, step.logs)
    return step


def _class_log(trigger: BaseTrigger) -> Any:
    """The logger of ``trigger``'s class, shared by all its triggers (Airflow's default is one per
    trigger, a few hundred bytes each in a triggerer holding thousands). The triggerer tells the
    triggers' lines apart by the context variables it binds per trigger, not by the logger. A
    logger given to one trigger (its ``_log``) still wins."""
    own = trigger.__dict__.get("_log")
    if own is not None:
        return own
    cls = type(trigger)
    log = cls.__dict__.get("_log")
    if log is None:
        cls._log = None  # not a parent class's: the logger is named after this class
        log = cls.logger()
    return log


class AlibabaCloudTaskTrigger(BaseTrigger):
    """Poll one Alibaba Cloud async task until it ends, the deadline passes, or polling fails.

    Every kwarg is a plain string, number, bool or list of strings, and none is a credential:
    trigger kwargs are stored as plain JSON in Airflow's metadata database. Credentials come
    from the connection ``aliyun_conn_id``, resolved in the triggerer.

    :param service: a service of :data:`~airflow_aliyun_tasks.services.SERVICES`.
    :param ids: the task's ids, as the hook's ``get_task_status`` takes them.
    :param aliyun_conn_id: the ``aliyun`` connection.
    :param region_id: the region to poll, instead of the connection's (not a secret).
    :param poll_interval: seconds between polls.
    :param end_time: absolute deadline, epoch seconds; past it the trigger yields ``timeout``.
        ``None``: no deadline of the trigger's own (a sensor started in the triggerer relies on
        Airflow's trigger timeout, which resumes the task with a sensor timeout).
    :param max_consecutive_failures: transient poll failures tolerated in a row (each after the
        client's own retries); one more yields ``error``. Any successful poll resets the count.
    :param initial_delay: seconds before the first poll (the sensor has just poked itself).
    :param success_states / failure_states: extra raw status values that end the wait.
    :param partial_success_ok: PDS ``PartialSucceed`` counts as success.
    :param cancel_on_kill: when a user marks the waiting task failed or success, or clears it
        (Airflow 3.3+ calls :meth:`on_kill` then), cancel the remote task with the service's
        cancel operation; a service without one gets a log line saying the remote task keeps
        running. Serialized only when true. The operator sets it; sensors do not (they did not
        start the task).
    :param cancel_also: the ids of other tasks to cancel with this one on kill (an operator
        that started several tasks waits on one at a time). Used by :meth:`on_kill` only, never
        by :meth:`run`; serialized only when given.
    :param flat_ids: ids given one by one, by the names in :data:`ID_FIELDS` (they override the
        same names in ``ids``). A sensor that starts in the triggerer passes
        its templated ids this way: Airflow renders a template in the triggerer only for a
        templated field of the sensor that is also a trigger kwarg and a trigger attribute.
        Only the ids given are serialized.

    Yields exactly one :class:`TriggerEvent` whose payload is plain JSON: ``status`` (one of
    :data:`EVENT_STATUSES`), ``task_status`` (the last :meth:`TaskStatus.to_dict`, or ``None``
    if no poll succeeded), ``message``, ``service``, ``ids`` and ``polls``.
    """

    log = property(_class_log)

    def __init__(
        self,
        *,
        service: str,
        ids: Mapping[str, Any] | None = None,
        aliyun_conn_id: str = "aliyun_default",
        region_id: str | None = None,
        poll_interval: float = 30.0,
        end_time: float | None = None,
        max_consecutive_failures: int = 5,
        initial_delay: float = 0.0,
        success_states: Iterable[str] = (),
        failure_states: Iterable[str] = (),
        partial_success_ok: bool = False,
        cancel_on_kill: bool = False,
        cancel_also: Iterable[Mapping[str, Any]] = (),
        **flat_ids: Any,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.service = get_service(service).name
        self.cancel_on_kill = bool(cancel_on_kill)
        self.cancel_also = [_plain_ids(other) for other in cancel_also]
        self.ids = _plain_ids({} if ids is None else ids)
        self.aliyun_conn_id = str(aliyun_conn_id)
        self.region_id = None if region_id is None or region_id == "" else str(region_id)
        self.poll_interval = float(poll_interval)
        self.end_time = None if end_time is None else float(end_time)
        self.max_consecutive_failures = int(max_consecutive_failures)
        self.initial_delay = float(initial_delay)
        self.success_states = [str(s) for s in success_states]
        self.failure_states = [str(s) for s in failure_states]
        self.partial_success_ok = bool(partial_success_ok)
        unknown = sorted(set(flat_ids) - set(ID_FIELDS))
        if unknown:
            raise TypeError(f"{type(self).__name__} got an unexpected keyword argument {unknown[0]!r}")
        # One attribute per id name: Airflow renders a templated id in the triggerer only into a
        # trigger attribute of the same name. Only the ids given are set on the trigger; the
        # others read the class's None (set below the class), so that a trigger's attributes stay
        # within the 30 keys of CPython's shared instance dicts (past them, each trigger of
        # thousands in a triggerer gets a dict of its own, 1.5 KB).
        for name in ID_FIELDS:
            value = flat_ids.get(name)
            if value is not None:
                setattr(self, name, str(value))
        for name in ("poll_interval", "end_time", "initial_delay"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ConfigurationError(name, "must be a finite number")
        if self.poll_interval <= 0:
            raise ConfigurationError("poll_interval", "must be a positive number of seconds")
        if self.max_consecutive_failures < 0:
            raise ConfigurationError("max_consecutive_failures", "must not be negative")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = _wait_kwargs(
            self,
            end_time=self.end_time,
            max_consecutive_failures=self.max_consecutive_failures,
            initial_delay=self.initial_delay,
        )
        if self.region_id is not None:  # only when given: a wait in the connection's region
            kwargs["region_id"] = self.region_id  # keeps the trigger row it always had
        if self.cancel_on_kill:
            kwargs["cancel_on_kill"] = True
        if self.cancel_also:
            kwargs["cancel_also"] = [dict(other) for other in self.cancel_also]
        for name in ID_FIELDS:
            value = getattr(self, name)
            if value is not None:
                kwargs[name] = value
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    def task_ids(self) -> dict[str, str]:
        """The ids polled: ``ids``, overridden by the ids given one by one (as rendered)."""
        ids = dict(self.ids)
        for name in ID_FIELDS:
            value = getattr(self, name)
            if value is not None and value != "":
                ids[name] = str(value)
        return ids

    def _polled_ids(self) -> dict[str, str]:
        """:meth:`task_ids`, or ``ids`` itself when no id was given one by one (the common case:
        a waiting trigger keeps one dict of ids, not two)."""
        for name in ID_FIELDS:
            value = getattr(self, name)
            if value is not None and value != "":
                return self.task_ids()
        return self.ids

    def _hook(self) -> Any:
        from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

        return AlibabaCloudTasksHook(aliyun_conn_id=self.aliyun_conn_id, region_id=self.region_id)

    def _event(
        self, status: str, message: str, task_status: TaskStatus | None, polls: int, ids: Mapping[str, str]
    ) -> TriggerEvent:
        return TriggerEvent(  # type: ignore[no-untyped-call]
            {
                "status": status,
                "message": message,
                "task_status": task_status.to_dict() if task_status is not None else None,
                "service": self.service,
                "ids": dict(ids),
                "polls": polls,
            }
        )

    def _remaining(self) -> float:
        """Seconds to the deadline (infinite without one)."""
        return math.inf if self.end_time is None else max(self.end_time - time.time(), 0.0)

    async def on_kill(self) -> None:
        """A user acted on the waiting task (marked it failed or success, or cleared it): with
        ``cancel_on_kill``, cancel the remote task where the service can (Airflow 3.3+ calls
        this; never on a triggerer restart, a timeout or a normal end)."""
        if not self.cancel_on_kill:
            return
        from airflow_aliyun_tasks._cancel import cancel_remote_task_async

        hook = self._hook()
        for ids in (self.task_ids(), *self.cancel_also):
            await cancel_remote_task_async(hook, self.service, ids, self.log)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        ids = self._polled_ids()
        what = describe_ids(self.service, ids)
        tracker = PollTracker(
            what=what,
            success_states=self.success_states,
            failure_states=self.failure_states,
            partial_success_ok=self.partial_success_ok,
            max_failures=self.max_consecutive_failures,
        )
        if self.initial_delay > 0:
            await asyncio.sleep(min(self.initial_delay, self._remaining()))
        while True:
            if self.end_time is not None and time.time() >= self.end_time:
                last = tracker.last
                yield self._event(
                    "timeout",
                    f"{what}: still {last.state if last else 'unpolled'} at the deadline "
                    f"({time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.end_time))})",
                    last,
                    tracker.polls,
                    ids,
                )
                return
            step = await _poll_once(self, hook, tracker, ids)
            if step.outcome is not None:
                yield self._event(step.outcome, step.message, tracker.last, tracker.polls, ids)
                return
            await asyncio.sleep(min(self.poll_interval, self._remaining()))


# Every id a trigger was not given reads None from the class (see AlibabaCloudTaskTrigger.__init__).
for _name in ID_FIELDS:
    setattr(AlibabaCloudTaskTrigger, _name, None)
del _name


#: Outcomes an :class:`AlibabaCloudTaskEventTrigger` can report.
EVENT_OUTCOMES = ("success", "failed", "cancelled")

#: Longest wait between polls of an event trigger after failed polls (unless ``poll_interval``
#: is longer).
MAX_FAILURE_BACKOFF = 600.0

#: Prefix of the asset state store keys in which event triggers record reported tasks.
STATE_KEY_PREFIX = "airflow_aliyun_tasks"

#: Seconds an event trigger waits for one asset state store read or write before going on
#: without it (a watcher must never hang on its bookkeeping).
STATE_STORE_TIMEOUT = 60.0


class AlibabaCloudTaskEventTrigger(BaseEventTrigger):
    """Asset-watcher trigger: one asset event when an Alibaba Cloud async task ends.

    Use it in an :class:`~airflow.sdk.AssetWatcher` to update an asset, and so start the DAGs
    scheduled on that asset, when for example a DataWorks job or a PDS task finishes::

        Asset(
            "dataworks_import",
            watchers=[
                AssetWatcher(
                    name="dataworks_import_done",
                    trigger=AlibabaCloudTaskEventTrigger(service="dataworks", ids={"job_id": "..."}),
                )
            ],
        )

    Airflow identifies a watcher by a hash of its class path and kwargs, so the kwargs are
    deterministic: plain strings, numbers and sorted lists, no timestamps, no secrets (credentials
    come from the connection ``aliyun_conn_id``, resolved in the triggerer).

    :param service: a service of :data:`~airflow_aliyun_tasks.services.SERVICES`.
    :param ids: the task's ids, as the hook's ``get_task_status`` takes them.
    :param aliyun_conn_id: the ``aliyun`` connection.
    :param region_id: the region to poll, instead of the connection's (not a secret).
    :param poll_interval: seconds between polls (default 60).
    :param outcomes: which ends produce an asset event: any of ``success``, ``failed`` and
        ``cancelled`` (default all three; the event says which). A task that ends otherwise is
        recorded and not polled again, without an event.
    :param success_states / failure_states: extra raw status values that end the task.
    :param partial_success_ok: PDS ``PartialSucceed`` counts as success.

    The event's payload (stored in the asset event's ``extra["payload"]``) is plain JSON:
    ``status`` (the outcome), ``message``, ``task_status`` (the final
    :meth:`TaskStatus.to_dict`), ``service``, ``ids`` and ``polls``.

    **One event per task.** The triggerer runs a watcher's trigger for as long as the asset is
    watched: a trigger that returns, or fails, is started again about a second later, and after
    a triggerer restart or a move to another triggerer it starts from scratch. A terminal task
    never changes, so re-running would report it again and again. This trigger therefore never
    returns after the task ends (it idles until Airflow cancels it), and it records the end in
    the watched asset's state store (Airflow 3.3+), under :meth:`state_key`, right after
    yielding the event. A fresh run that finds the record does not poll and yields nothing. The
    one window left is a triggerer that dies between queueing the event and recording it; then
    the event can repeat (at least once, never lost). To watch the same task again, delete the
    key (``DELETE /api/v2/assets/{asset_id}/state-store/{key}``). Without a state store (older
    Airflow, or the trigger run on its own) only the first guarantee holds.

    Polling errors never end the watch (there is no task to fail): transient ones are logged as
    warnings, permanent ones (bad credentials, unknown task) as errors, and polls back off
    (doubling, up to ten minutes) until a poll succeeds again, for example after the connection
    is fixed.
    """

    supports_triggerer_queue = False
    log = property(_class_log)

    def __init__(
        self,
        *,
        service: str,
        ids: Mapping[str, Any],
        aliyun_conn_id: str = "aliyun_default",
        region_id: str | None = None,
        poll_interval: float = 60.0,
        outcomes: Iterable[str] = EVENT_OUTCOMES,
        success_states: Iterable[str] = (),
        failure_states: Iterable[str] = (),
        partial_success_ok: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        ids, outcomes, success_states, failure_states = (
            plain_kwarg(ids),
            plain_kwarg(outcomes),
            plain_kwarg(success_states),
            plain_kwarg(failure_states),
        )
        spec = get_service(service)
        self.service = spec.name
        self.ids = dict(sorted(_plain_ids(ids).items()))
        if not self.ids:
            raise ConfigurationError("ids", "the task's ids are required")
        self.aliyun_conn_id = str(aliyun_conn_id)
        self.region_id = None if region_id is None or region_id == "" else str(region_id)
        self.poll_interval = float(poll_interval)
        given = [outcomes] if isinstance(outcomes, str) else list(outcomes)
        self.outcomes = sorted({str(o) for o in given})
        self.success_states = sorted({str(s) for s in success_states})
        self.failure_states = sorted({str(s) for s in failure_states})
        self.partial_success_ok = bool(partial_success_ok)
        if not math.isfinite(self.poll_interval) or self.poll_interval <= 0:
            raise ConfigurationError("poll_interval", "must be a positive number of seconds")
        unknown = [o for o in self.outcomes if o not in EVENT_OUTCOMES]
        if unknown or not self.outcomes:
            raise ConfigurationError(
                "outcomes", f"must be one or more of {', '.join(EVENT_OUTCOMES)}, got {given!r}"
            )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = _wait_kwargs(self, outcomes=list(self.outcomes))
        if self.region_id is not None:  # only when given: the kwargs hash identifies the watcher
            kwargs["region_id"] = self.region_id
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    def state_key(self) -> str:
        """The asset state store key recording that this task ended (and was reported)."""
        return f"{STATE_KEY_PREFIX}:{self.service}:" + "&".join(f"{k}={v}" for k, v in self.ids.items())

    def _hook(self) -> Any:
        from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

        return AlibabaCloudTasksHook(aliyun_conn_id=self.aliyun_conn_id, region_id=self.region_id)

    # ---- the watched assets' state store (Airflow 3.3+)

    def _state_accessors(self) -> list[Any]:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return []
        # One trigger can watch several assets (same class path and kwargs): record in each.
        accessors = [*getattr(store, "_by_name", {}).values(), *getattr(store, "_by_uri", {}).values()]
        return accessors or [store]

    async def _recorded(self, what: str) -> Any:
        for accessor in self._state_accessors():
            try:
                value = await asyncio.wait_for(accessor.aget(self.state_key()), STATE_STORE_TIMEOUT)
            except Exception as exc:
                self.log.warning("%s: could not read the asset state store: %s", what, exc)
                continue
            if value is not None:
                return value
        return None

    async def _record(self, what: str, value: dict[str, Any]) -> None:
        for accessor in self._state_accessors():
            try:
                await asyncio.wait_for(accessor.aset(self.state_key(), value), STATE_STORE_TIMEOUT)
            except Exception as exc:
                self.log.warning("%s: could not record the end in the asset state store: %s", what, exc)

    @staticmethod
    async def _idle() -> None:
        """Wait until Airflow cancels the trigger (a watcher that returns is started again)."""
        await asyncio.Event().wait()

    def _backoff(self, failures: int) -> float:
        return min(
            self.poll_interval * 2.0 ** min(failures - 1, 16), max(self.poll_interval, MAX_FAILURE_BACKOFF)
        )

    def _event(self, status: str, message: str, task_status: TaskStatus, polls: int) -> TriggerEvent:
        return TriggerEvent(  # type: ignore[no-untyped-call]
            {
                "status": status,
                "message": message,
                "task_status": task_status.to_dict(),
                "service": self.service,
                "ids": dict(self.ids),
                "polls": polls,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        what = describe_ids(self.service, self.ids)
        if not self._state_accessors():
            self.log.warning(
                "%s: no asset state store (it arrived in Airflow 3.3): the end of the task is not "
                "recorded, so a triggerer restart, or this watcher started again, reports it again",
                what,
            )
        recorded = await self._recorded(what)
        if recorded is not None:
            self.log.info(
                "%s: already ended and recorded (%s); not polling again. Delete the asset state store "
                "key %r to watch it again.",
                what,
                recorded,
                self.state_key(),
            )
            await self._idle()
            return
        hook = self._hook()
        tracker = PollTracker(
            what=what,
            success_states=self.success_states,
            failure_states=self.failure_states,
            partial_success_ok=self.partial_success_ok,
            max_failures=None,  # a watcher never gives up: it backs off
            backoff=self._backoff,
        )
        while True:
            step = await _poll_once(self, hook, tracker, self.ids)
            outcome = step.outcome
            if outcome is None:
                await asyncio.sleep(self.poll_interval if step.delay is None else step.delay)
                continue
            status = tracker.last  # an outcome comes only from a status
            assert status is not None
            reported = outcome in self.outcomes
            if reported:
                yield self._event(outcome, step.message, status, tracker.polls)
            else:
                self.log.info(
                    "%s: ended %s, which this watcher does not report (outcomes=%s)",
                    what,
                    outcome,
                    self.outcomes,
                )
            await self._record(
                what,
                {"outcome": outcome, "raw_status": status.raw_status, "reported": reported},
            )
            await self._idle()
            return
