"""Names that moved between the task SDK releases of Airflow 3.1, 3.2 and 3.3, imported from
where the running version has them. The only module of the package that tries an Airflow import
and falls back: everything else imports these names from here.

- Task SDK 1.1 (Airflow 3.1) keeps the exceptions in core's ``airflow.exceptions``; from 1.2
  (Airflow 3.2) ``airflow.sdk.exceptions`` defines them and core re-exports them.
- ``airflow.sdk.conf`` arrived with task SDK 1.2 (Airflow 3.2); before, ``airflow.configuration``.
- A connection's extras, read without blocking an event loop: :func:`aextra_dejson`.
- An asset watcher's trigger kwargs, still encoded by Airflow 3.2: :func:`plain_kwarg`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from airflow.sdk import __version__ as _TASK_SDK_VERSION
from packaging.version import Version

#: Whether a synchronous request to the supervisor may be sent from a thread other than the
#: event loop's (task SDK 1.2+, Airflow 3.2+). With task SDK 1.1 (Airflow 3.1) the triggerer's
#: channel sends it from an event loop of its own, which reads the answers meant for the triggers
#: of the main loop: "Response read out of order!", and the triggerer's runner dies.
SYNC_CALLS_FROM_THREADS = Version(_TASK_SDK_VERSION).release >= (1, 2)

try:
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferralTimeout,
    )
except ImportError:  # task SDK 1.1 (Airflow 3.1): core defines them
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined,unused-ignore]
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferralTimeout,
    )

try:
    from airflow.sdk import conf
except ImportError:  # task SDK 1.1 (Airflow 3.1)
    from airflow.configuration import conf  # type: ignore[no-redef,assignment,unused-ignore]


#: The keys of a value Airflow's DAG serialization encoded: ``__type`` and ``__var``, or the names
#: of their enum members ("Encoding.TYPE") where the encoded form was written out as JSON with
#: ``str()`` of the keys (the triggerer of Airflow 3.2 receives watchers' kwargs so).
_TYPE_KEYS = frozenset({"__type", "Encoding.TYPE"})
_VAR_KEYS = frozenset({"__var", "Encoding.VAR"})


def plain_kwarg(value: Any) -> Any:
    """A trigger kwarg as the trigger was given it.

    Airflow 3.2's triggerer hands an asset watcher's trigger its kwargs as the DAG serialization
    encoded them: a dict arrives as ``{"__type": "dict", "__var": {...}}`` (or with the keys
    spelled ``Encoding.TYPE`` and ``Encoding.VAR``), a tuple or a set as a list under
    ``"tuple"``/``"set"``. Airflow 3.3 decodes them first. Anything else is returned as it is.
    """
    if isinstance(value, Mapping) and len(value) == 2:
        keys = {str(key) for key in value}
        type_key = next((k for k in value if str(k) in _TYPE_KEYS), None)
        var_key = next((k for k in value if str(k) in _VAR_KEYS), None)
        if type_key is not None and var_key is not None and len(keys) == 2:
            kind = str(getattr(value[type_key], "value", value[type_key])).rsplit(".", 1)[-1].lower()
            inner = value[var_key]
            if kind == "dict" and isinstance(inner, Mapping):
                return {str(key): plain_kwarg(item) for key, item in inner.items()}
            if kind in ("tuple", "set") and isinstance(inner, list):
                return [plain_kwarg(item) for item in inner]
    if isinstance(value, list):
        return [plain_kwarg(item) for item in value]
    return value


def triggerer_calls_on_kill() -> bool:
    """Whether the triggerer calls a trigger's ``on_kill`` when a user marks its deferred task
    failed or success, or clears it (Airflow 3.3+: ``BaseTrigger.on_kill``)."""
    from airflow.triggers.base import BaseTrigger

    return hasattr(BaseTrigger, "on_kill")


async def aextra_dejson(conn: Any) -> Any:
    """``conn.extra_dejson`` without blocking the event loop.

    Reading the extras registers the sensitive ones with the secrets masker, which also tells
    the supervisor, a synchronous request. Airflow 3.3.2+ has ``aextra_dejson``. Before, the
    property runs in a thread (3.2 forwards the request to the loop), except on Airflow 3.1, where
    that request from a thread breaks the triggerer's channel (see :data:`SYNC_CALLS_FROM_THREADS`):
    there it runs on the loop, where telling the supervisor fails at once and is skipped (the
    masker of this process still masks them). The extras are a small JSON object: parsing them
    on the loop costs microseconds.
    """
    if hasattr(conn, "aextra_dejson"):
        return await conn.aextra_dejson()
    if not SYNC_CALLS_FROM_THREADS:
        return conn.extra_dejson
    return await asyncio.to_thread(lambda: conn.extra_dejson)


__all__ = [
    "SYNC_CALLS_FROM_THREADS",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "TaskDeferralTimeout",
    "aextra_dejson",
    "conf",
    "plain_kwarg",
    "triggerer_calls_on_kill",
]
