"""What the sensors and the operator share about waiting for a task: the hook, the outcome of
a status, one poll on the worker (with :class:`~airflow_aliyun_tasks._poll.PollTracker`), the
errors a wait ends with, the console link's parameters, and the validation of the trigger's event.

A mixin for Airflow operators (the sensor base and the operator); Airflow glue only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_aliyun_tasks._compat import AirflowException
from airflow_aliyun_tasks._poll import PollTracker, Step, log_lines
from airflow_aliyun_tasks.exceptions import AlibabaCloudTaskWaitError
from airflow_aliyun_tasks.links import CONSOLE_LINK_XCOM_KEY, link_params
from airflow_aliyun_tasks.services import get_service
from airflow_aliyun_tasks.status import OUTCOME_SUCCESS, TaskStatus, outcome_of

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

__all__ = ["MIN_POLL_INTERVAL", "TRIGGER_CLASSPATH", "TaskWaitMixin"]

#: Deferrable mode polls at least this far apart, whatever the poll interval says.
MIN_POLL_INTERVAL = 0.1

#: Class path of the trigger the sensors and the operator wait in.
TRIGGER_CLASSPATH = "airflow_aliyun_tasks.triggers.AlibabaCloudTaskTrigger"


class TaskWaitMixin:
    """Shared by :class:`~airflow_aliyun_tasks.sensors.AlibabaCloudTaskSensor` and
    :class:`~airflow_aliyun_tasks.operators.AlibabaCloudAsyncTaskOperator`.

    The class using it has ``service``, ``aliyun_conn_id``, ``region_id``, ``success_states``,
    ``failure_states``, ``partial_success_ok``, ``log`` and ``_ids()`` (the task's ids).
    """

    aliyun_conn_id: str
    region_id: str | None
    success_states: list[str]
    failure_states: list[str]
    max_consecutive_failures: int
    if TYPE_CHECKING:
        log: Any

        @property
        def partial_success_ok(self) -> bool: ...

        def _ids(self) -> dict[str, str]: ...

    @property
    def hook(self) -> AlibabaCloudTasksHook:
        from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

        return AlibabaCloudTasksHook(aliyun_conn_id=self.aliyun_conn_id, region_id=self.region_id or None)

    def _outcome(self, status: TaskStatus) -> str | None:
        return outcome_of(
            status,
            success_states=self.success_states,
            failure_states=self.failure_states,
            partial_success_ok=self.partial_success_ok,
        )

    def _poll_tracker(self) -> PollTracker:
        """A tracker for a wait on the worker, with this task's states and failure limit."""
        return PollTracker(
            success_states=self.success_states,
            failure_states=self.failure_states,
            partial_success_ok=self.partial_success_ok,
            max_failures=self.max_consecutive_failures,
        )

    def _poll(self, tracker: PollTracker, ids: Mapping[str, str] | None = None) -> Step:
        """Poll the task (``ids``, else this one's) once on the worker; what to do next, its
        lines already logged."""
        if ids is None:
            ids = self._ids()
        try:
            status = self.hook.get_task_status(str(getattr(self, "service")), **ids)  # noqa: B009
        except Exception as exc:
            step = tracker.failed(exc)
        else:
            step = tracker.polled(status)
        log_lines(self.log, step.logs)
        return step

    @staticmethod
    def _raise_gave_up(step: Step) -> NoReturn:
        """Polling gave up (:data:`~airflow_aliyun_tasks._poll.GAVE_UP`): raise a permanent error
        as it is, else an AirflowException saying how many polls failed; Airflow's task retries
        apply."""
        assert step.error is not None
        if step.permanent:
            raise step.error
        raise AirflowException(step.message) from step.error

    def _wait_error(
        self,
        cls: type[AlibabaCloudTaskWaitError],
        outcome: str,
        detail: str,
        task_status: Any,
        ids: Any = None,
    ) -> AlibabaCloudTaskWaitError:
        """``cls`` for ``outcome``, with this task's service and ids (``ids``: as an event gave
        them; this task's own when that is not a mapping) and the final status, if a dict."""
        return cls.for_outcome(
            outcome,
            detail,
            service=str(getattr(self, "service")),  # noqa: B009
            ids={str(k): str(v) for k, v in ids.items()} if isinstance(ids, Mapping) else self._ids(),
            task_status=task_status if isinstance(task_status, dict) else None,
        )

    def _store_console_link(self, context: Context) -> None:
        """Store the console link's parameters (region and ids, no secret) in XCom; a missing
        link never fails the task."""
        ti = context.get("ti") if isinstance(context, Mapping) else None
        if ti is None:
            return
        try:
            settings = self.hook.settings
            service = str(getattr(self, "service"))  # noqa: B009  (a class or an instance attribute)
            ids = get_service(service).with_defaults(self._ids(), settings.id_defaults)
            ti.xcom_push(key=CONSOLE_LINK_XCOM_KEY, value=link_params(service, settings.region_id, ids))
        except Exception as exc:
            self.log.warning("No console link for this task: %s", exc)

    @staticmethod
    def _validate_event(event: Any) -> tuple[str, str]:
        """The event's ``status`` and ``message``; anything malformed fails loudly."""
        from airflow_aliyun_tasks.triggers import EVENT_STATUSES

        if event is None:
            raise AirflowException(
                "Resumed without a trigger event: the event crosses the triggerer/worker boundary "
                "and must not be missing"
            )
        if not isinstance(event, dict):
            raise AirflowException(f"Malformed trigger event: expected a dict, got {type(event).__name__}")
        status = event.get("status")
        if status not in EVENT_STATUSES:
            raise AirflowException(f"Malformed trigger event: unknown status {status!r}")
        message = event.get("message")
        if not isinstance(message, str):
            raise AirflowException("Malformed trigger event: no message")
        task_status = event.get("task_status")
        if status == OUTCOME_SUCCESS:
            if not isinstance(task_status, dict):
                raise AirflowException("Malformed trigger event: success without a task status")
            try:
                TaskStatus.from_dict(task_status)
            except (TypeError, ValueError) as exc:
                raise AirflowException(f"Malformed trigger event: bad task status: {exc}") from None
        return status, message
