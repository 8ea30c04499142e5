"""How a wait for an Alibaba Cloud task ended, when it did not succeed: the exceptions the sensors
and :class:`~airflow_aliyun_tasks.operators.AlibabaCloudAsyncTaskOperator` raise.

Every one is an :class:`AlibabaCloudTaskWaitError` and carries the task's ``service``, ``ids``,
the ``outcome`` (``failed``, ``cancelled`` or ``timeout``) and, where known, the final
``task_status`` (a :meth:`~airflow_aliyun_tasks.status.TaskStatus.to_dict`), for callbacks
(``context["exception"]``) and for code that catches them::

    AlibabaCloudTaskWaitError (AirflowException)
    ├── AlibabaCloudTaskError                the task failed or was cancelled (the operator:
    │   │                                    Airflow's retries apply, a retry submits afresh)
    │   └── AlibabaCloudTaskFailedError      the sensors' (also an AirflowFailException: a
    │                                        sensor's retry would find the same task)
    └── AlibabaCloudTaskTimeoutError         the operator's wait outlasted its timeout
        └── AlibabaCloudTaskSensorTimeout    the sensors' (also an AirflowSensorTimeout, which
                                             Airflow's soft_fail handling looks for)

The errors of the calls themselves (a bad key, throttling, a task that does not exist) are
:mod:`airflow_aliyun_tasks.errors`, which knows nothing of Airflow; polling that gives up raises
those, or an ``AirflowException`` after too many transient failures in a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from airflow_aliyun_tasks._compat import AirflowException, AirflowFailException, AirflowSensorTimeout

__all__ = [
    "AlibabaCloudTaskError",
    "AlibabaCloudTaskFailedError",
    "AlibabaCloudTaskSensorTimeout",
    "AlibabaCloudTaskTimeoutError",
    "AlibabaCloudTaskWaitError",
]


class AlibabaCloudTaskWaitError(AirflowException):
    """A wait for an Alibaba Cloud task ended without success.

    :param message: the error's text.
    :param service: the task's service (a name of :data:`~airflow_aliyun_tasks.services.SERVICES`).
    :param ids: the task's ids.
    :param outcome: ``failed``, ``cancelled`` or ``timeout``.
    :param task_status: the last status read (:meth:`TaskStatus.to_dict`), ``None`` if unknown.

    All but ``message`` have defaults, so that the error can be rebuilt from its text alone
    (pickling, Airflow's exception serialization).
    """

    #: The message's first words per outcome (:meth:`for_outcome`).
    headlines: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        message: str = "",
        *,
        service: str = "",
        ids: Mapping[str, str] | None = None,
        outcome: str = "",
        task_status: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.ids: dict[str, str] = dict(ids or {})
        self.outcome = outcome
        self.task_status = task_status

    @classmethod
    def for_outcome(
        cls,
        outcome: str,
        detail: str,
        *,
        service: str,
        ids: Mapping[str, str],
        task_status: dict[str, Any] | None = None,
    ) -> Self:
        """The error for ``outcome``, its message ``"<headline>: <detail>"``."""
        return cls(
            f"{cls.headlines[outcome]}: {detail}",
            service=service,
            ids=ids,
            outcome=outcome,
            task_status=task_status,
        )


class AlibabaCloudTaskError(AlibabaCloudTaskWaitError):
    """The remote task failed or was cancelled. Raised by the operator, where Airflow's retries
    apply (a retry submits afresh); the sensors raise :class:`AlibabaCloudTaskFailedError`."""

    headlines: ClassVar[Mapping[str, str]] = {"failed": "Task failed", "cancelled": "Task was cancelled"}


class AlibabaCloudTaskFailedError(AlibabaCloudTaskError, AirflowFailException):
    """The task a sensor waits on failed or was cancelled; retrying the sensor will not change
    that (an ``AirflowFailException``: the task fails without retries)."""


class AlibabaCloudTaskTimeoutError(AlibabaCloudTaskWaitError):
    """The remote task did not end within the operator's ``timeout``."""

    headlines: ClassVar[Mapping[str, str]] = {"timeout": "Timed out waiting for the task"}


class AlibabaCloudTaskSensorTimeout(AlibabaCloudTaskTimeoutError, AirflowSensorTimeout):
    """The task a sensor waits on did not end within the sensor's ``timeout`` (an
    ``AirflowSensorTimeout``: the task fails without retries, or is skipped with ``soft_fail``)."""

    headlines: ClassVar[Mapping[str, str]] = {"timeout": "Sensor timed out"}
