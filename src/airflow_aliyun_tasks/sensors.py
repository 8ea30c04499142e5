"""Sensors that wait on Alibaba Cloud async tasks: deferrable, poke/reschedule, or started
straight in the triggerer (``start_from_trigger=True``).

Cheap to import (DAG parsing): the hook and the trigger are imported when the sensor runs, and
Airflow's ``StartTriggerArgs`` only by a sensor built with ``start_from_trigger=True``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_aliyun_tasks._compat import (
    AirflowException,
    AirflowSkipException,
    conf,
)
from airflow_aliyun_tasks._poll import GAVE_UP, PollTracker, Step
from airflow_aliyun_tasks._wait import MIN_POLL_INTERVAL, TRIGGER_CLASSPATH, TaskWaitMixin
from airflow_aliyun_tasks.exceptions import AlibabaCloudTaskFailedError, AlibabaCloudTaskSensorTimeout
from airflow_aliyun_tasks.links import console_link
from airflow_aliyun_tasks.services import get_service
from airflow_aliyun_tasks.status import OUTCOME_CANCELLED, OUTCOME_FAILED, OUTCOME_SUCCESS

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import StartTriggerArgs


__all__ = [
    "AdbSparkAppSensor",
    "AlibabaCloudTaskFailedError",
    "AlibabaCloudTaskSensor",
    "AlibabaCloudTaskSensorTimeout",
    "DataWorksJobSensor",
    "DataWorksWorkflowInstanceSensor",
    "DlfAsyncTaskSensor",
    "EmrServerlessSparkJobRunSensor",
    "FcAsyncTaskSensor",
    "FlinkJobSensor",
    "MmaAsyncTaskSensor",
    "PaiDlcJobSensor",
    "PdsAsyncTaskSensor",
]

_OVERRIDE = "_start_trigger_args_override"
_UNSET: Any = object()


class _SensorStartTriggerArgs:
    """The sensors' ``start_trigger_args``: built from the sensor's attributes whenever Airflow
    reads it (at DAG serialization), so that it always matches the ids the sensor was given.

    ``None`` on the class (mapped sensors do not start in the triggerer), on a sensor without
    ``start_from_trigger``, and while the sensor is still being constructed (its ids not set
    yet). Assigning a value replaces the computed one.
    """

    def __get__(self, obj: AlibabaCloudTaskSensor | None, objtype: type | None = None) -> Any:
        if obj is None:
            return None
        override = obj.__dict__.get(_OVERRIDE, _UNSET)
        if override is not _UNSET:
            return override
        if not obj.__dict__.get("start_from_trigger"):
            return None
        if not all(name in obj.__dict__ for name in type(obj).template_fields):
            return None  # a subclass's __init__ has not set its ids yet
        return obj._build_start_trigger_args()

    def __set__(self, obj: AlibabaCloudTaskSensor, value: StartTriggerArgs | None) -> None:
        obj.__dict__[_OVERRIDE] = value


class AlibabaCloudTaskSensor(TaskWaitMixin, BaseSensorOperator):
    """Base class: wait until an Alibaba Cloud async task of :attr:`service` ends.

    Subclasses name the service (a name of :data:`~airflow_aliyun_tasks.services.SERVICES`) and
    take its ids as keyword arguments stored under the same names (they are the templated fields);
    :meth:`task_ids` reads them by the spec's id names.

    :param aliyun_conn_id: the ``aliyun`` connection.
    :param region_id: the task's region, instead of the connection's ``region_id``. Templated;
        passed to the trigger (it is not a secret).
    :param deferrable: wait in the triggerer instead of a worker slot (default
        ``[operators] default_deferrable``). The sensor pokes once on the worker first.
    :param success_states: extra raw status values that count as success.
    :param failure_states: extra raw status values that count as failure.
    :param max_consecutive_failures: transient poll failures (throttling, 5xx, timeouts, after the
        client's own retries) tolerated in a row before the sensor fails.
    :param start_from_trigger: start the wait in the triggerer: the scheduler hands the task
        straight to the triggerer, no worker slot is taken until the task ends (a worker then
        runs :meth:`execute_complete` for a moment, as in deferrable mode). The events and
        outcomes are those of deferrable mode. Templated ids (``"{{ params.job_id }}"``,
        ``"{{ ti.xcom_pull(task_ids='start', map_indexes=-1) }}"``) are rendered in the
        triggerer; they must be strings or numbers at DAG parse time, not ``XComArg`` objects,
        and ``xcom_pull`` needs an explicit ``map_indexes=-1`` (Airflow 3.3's triggerer cannot
        serve the read ``xcom_pull`` makes without it: the wait would hang). ``timeout`` is
        enforced by Airflow's trigger timeout (the trigger has no deadline of its own); it fails
        the task with ``AirflowSensorTimeout``, or skips it with ``soft_fail``. Needs a running
        triggerer; ``dag.test()`` ignores it and runs :meth:`execute`. Not for mapped sensors
        (``.partial().expand()``): they run on a worker as usual. Airflow 3.3+: the schedulers
        of 3.1 and 3.2 never start a task in the triggerer, so there the sensor runs on a
        worker as it would without the option, and its log says so once.

    Success returns the final :meth:`TaskStatus.to_dict` (pushed to XCom). A failed or cancelled
    task raises :class:`~airflow_aliyun_tasks.exceptions.AlibabaCloudTaskFailedError` with the
    service's error code, message and request id. ``timeout`` is honoured in every mode (deferred,
    the trigger's deadline raises
    :class:`~airflow_aliyun_tasks.exceptions.AlibabaCloudTaskSensorTimeout`, an
    ``AirflowSensorTimeout``), ``soft_fail`` skips instead of failing.

    Each sensor has an operator extra link to the service's console for the connection's region
    (see :mod:`airflow_aliyun_tasks.links`); its parameters (region and ids, no secret) are
    stored in XCom under ``aliyun_console_link`` when the sensor runs on a worker.
    """

    service: ClassVar[str]
    ui_color = "#ff6a00"
    start_trigger_args = _SensorStartTriggerArgs()
    start_from_trigger = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Every sensor's region is templated, beside the ids its subclass declares.
        if "region_id" not in cls.template_fields:
            cls.template_fields = (*cls.template_fields, "region_id")

    def __init__(
        self,
        *,
        aliyun_conn_id: str = "aliyun_default",
        region_id: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        success_states: Iterable[str] | None = None,
        failure_states: Iterable[str] | None = None,
        max_consecutive_failures: int = 5,
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aliyun_conn_id = aliyun_conn_id
        self.region_id = region_id
        self.deferrable = deferrable
        self.start_from_trigger = bool(start_from_trigger)
        self.success_states = [str(s) for s in (success_states or ())]
        self.failure_states = [str(s) for s in (failure_states or ())]
        self.max_consecutive_failures = max_consecutive_failures
        self._tracker: PollTracker | None = None  # made at the first poke

    # ---- what subclasses provide

    def task_ids(self) -> dict[str, Any]:
        """The ids of the task to wait on, keyed as the hook's ``get_task_status`` takes them."""
        names = get_service(self.service).id_names
        missing = [name for name in names if not hasattr(self, name)]
        if missing:
            raise NotImplementedError(
                f"{type(self).__name__} must store its ids as attributes named as the service's ids "
                f"({', '.join(names)}); missing: {', '.join(missing)}"
            )
        return {name: getattr(self, name) for name in names}

    @property
    def partial_success_ok(self) -> bool:
        return False

    # ---- shared machinery

    def _ids(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.task_ids().items() if v is not None and v != ""}

    def _poll_interval(self) -> float:
        return max(float(self.poke_interval), MIN_POLL_INTERVAL)

    def _trigger_kwargs(
        self, ids: dict[str, Any], end_time: float | None, initial_delay: float
    ) -> dict[str, Any]:
        """``AlibabaCloudTaskTrigger``'s kwargs for this sensor, deferred or started in the triggerer."""
        return {
            "service": self.service,
            "ids": ids,
            "aliyun_conn_id": self.aliyun_conn_id,
            "region_id": self.region_id or None,
            "poll_interval": self._poll_interval(),
            "end_time": end_time,
            "max_consecutive_failures": self.max_consecutive_failures,
            "initial_delay": initial_delay,
            "success_states": list(self.success_states),
            "failure_states": list(self.failure_states),
            "partial_success_ok": self.partial_success_ok,
        }

    def _build_start_trigger_args(self) -> StartTriggerArgs:
        """Start arguments for ``start_from_trigger``: plain values only, computable at DAG parse
        time. The ids go in as flat kwargs named like this sensor's templated fields, so that
        the triggerer renders them; no absolute deadline (``end_time=None``): ``timeout`` is the
        trigger timeout. Must match ``AlibabaCloudTaskTrigger``'s kwargs."""
        from airflow.triggers.base import StartTriggerArgs

        flat: dict[str, Any] = {}
        for name, value in self.task_ids().items():
            if value is None or value == "":
                continue
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise ValueError(
                    f"{type(self).__name__} {self.task_id!r}: with start_from_trigger=True, {name} must be a "
                    f"string or an integer when the DAG is parsed (a template such as "
                    f"\"{{{{ ti.xcom_pull(task_ids='start', map_indexes=-1) }}}}\" is fine), not {type(value).__name__}"
                )
            if isinstance(value, str) and "xcom_pull" in value and "map_indexes" not in value:
                raise ValueError(
                    f"{type(self).__name__} {self.task_id!r}: with start_from_trigger=True, pull XCom with an "
                    f"explicit map_indexes=-1 in {name} (for example \"{{{{ ti.xcom_pull(task_ids='start', "
                    f'map_indexes=-1) }}}}"): the triggerer of Airflow 3.3 cannot serve the read that '
                    f"xcom_pull makes without it, and the wait would hang until its timeout"
                )
            flat[name] = value
        return StartTriggerArgs(
            trigger_cls=TRIGGER_CLASSPATH,
            trigger_kwargs={**self._trigger_kwargs({}, end_time=None, initial_delay=0.0), **flat},
            next_method="execute_complete",
            next_kwargs=None,
            timeout=timedelta(seconds=float(self.timeout)),
        )

    def _give_up(self, step: Step) -> NoReturn:
        """Polling cannot go on: skip with ``soft_fail``/``never_fail`` (as the deferred path
        does), else fail (:meth:`_raise_gave_up`)."""
        if self.soft_fail or self.never_fail:
            raise AirflowSkipException(step.message) from step.error
        self._raise_gave_up(step)

    def poke(self, context: Context) -> PokeReturnValue:
        if self._tracker is None:
            self._tracker = self._poll_tracker()
        step = self._poll(self._tracker)
        if step.outcome is None:
            return PokeReturnValue(is_done=False)
        if step.outcome == GAVE_UP:
            self._give_up(step)
        status = self._tracker.last
        assert status is not None
        if step.outcome == OUTCOME_SUCCESS:
            return PokeReturnValue(is_done=True, xcom_value=status.to_dict())
        raise self._wait_error(AlibabaCloudTaskFailedError, step.outcome, step.message, status.to_dict())

    def execute(self, context: Context) -> Any:
        self._store_console_link(context)
        if self.start_from_trigger:
            # Airflow 3.1 and 3.2 (their scheduler's start in the triggerer is switched off) and
            # dag.test() run the task on a worker: it waits as the same sensor without the option.
            self.log.warning(
                "start_from_trigger=True, but the task runs on a worker: this Airflow's scheduler "
                "did not start it in the triggerer (Airflow 3.3+ does; dag.test() never does). It "
                "waits as %s sensor instead",
                "a deferrable" if self.deferrable else "a poking",
            )
        if not self.deferrable:
            return super().execute(context)
        deadline = time.time() + float(self.timeout)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger

        remaining = max(deadline - time.time(), 1.0)
        self.log.info("Deferring: polling every %s s for up to %.0f s more", self.poke_interval, remaining)
        self.defer(
            trigger=AlibabaCloudTaskTrigger(
                **self._trigger_kwargs(self._ids(), end_time=deadline, initial_delay=self._poll_interval())
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=remaining),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: return the final status on success, raise otherwise.

        The same for a sensor that deferred and one that started in the triggerer."""
        status, message = self._validate_event(event)
        assert event is not None
        if status == OUTCOME_SUCCESS:
            self.log.info("%s", message)
            return event["task_status"]
        if status in ("timeout", OUTCOME_FAILED, OUTCOME_CANCELLED):
            cls = AlibabaCloudTaskSensorTimeout if status == "timeout" else AlibabaCloudTaskFailedError
            raise self._wait_error(cls, status, message, event.get("task_status"), event.get("ids"))
        raise AirflowException(f"Polling failed: {message}")

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        if self.start_from_trigger:
            self._store_console_link(context)  # execute() never ran on a worker
        return super().resume_execution(next_method, next_kwargs, context)


class DlfAsyncTaskSensor(AlibabaCloudTaskSensor):
    """Wait for a Data Lake Formation async task (``GetAsyncTaskStatus``).

    :param async_task_id: the ``TaskId`` an async DLF operation returned. Templated.
    :param catalog_id: the catalog (usually the account UID). Templated.
    """

    service = "dlf"
    template_fields: Sequence[str] = ("async_task_id", "catalog_id")
    operator_extra_links = (console_link("dlf"),)

    def __init__(self, *, async_task_id: str, catalog_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.async_task_id = async_task_id
        self.catalog_id = catalog_id


class DataWorksJobSensor(AlibabaCloudTaskSensor):
    """Wait for a DataWorks asynchronous job (``GetJobStatus``, API 2024-05-18).

    :param job_id: the job id (for example the ``AsyncJob.Id`` of ``ImportWorkflowDefinition``). Templated.
    """

    service = "dataworks"
    template_fields: Sequence[str] = ("job_id",)
    operator_extra_links = (console_link("dataworks"),)

    def __init__(self, *, job_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id


class MmaAsyncTaskSensor(AlibabaCloudTaskSensor):
    """Wait for a MaxCompute Migration Assist async task (``GetMmsAsyncTask``).

    :param source_id: the MMA data source id (an integer). Templated.
    :param async_task_id: the async task id (an integer). Templated.
    """

    service = "mma"
    template_fields: Sequence[str] = ("source_id", "async_task_id")
    operator_extra_links = (console_link("mma"),)

    def __init__(self, *, source_id: int | str, async_task_id: int | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_id = source_id
        self.async_task_id = async_task_id


class PdsAsyncTaskSensor(AlibabaCloudTaskSensor):
    """Wait for a Drive and Photo Service async task (``/v2/async_task/get``).

    :param async_task_id: the ``async_task_id`` an operation such as ``ArchiveFiles`` returned. Templated.
    :param domain_id: the PDS domain; defaults to the connection's ``pds_domain_id``. Templated.
    :param partial_success_ok: treat ``PartialSucceed`` as success (default: failure).
    """

    service = "pds"
    template_fields: Sequence[str] = ("async_task_id", "domain_id")
    operator_extra_links = (console_link("pds"),)

    def __init__(
        self,
        *,
        async_task_id: str,
        domain_id: str | None = None,
        partial_success_ok: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.async_task_id = async_task_id
        self.domain_id = domain_id
        self._partial_success_ok = partial_success_ok

    @property
    def partial_success_ok(self) -> bool:
        return self._partial_success_ok


class EmrServerlessSparkJobRunSensor(AlibabaCloudTaskSensor):
    """Wait for an EMR Serverless Spark job run (``GetJobRun``, API 2023-08-08).

    :param workspace_id: the workspace (``w-...``). Templated.
    :param job_run_id: the job run (``jr-...``), for example what ``StartJobRun`` returned. Templated.
    """

    service = "emr_serverless_spark"
    template_fields: Sequence[str] = ("workspace_id", "job_run_id")
    operator_extra_links = (console_link("emr_serverless_spark"),)

    def __init__(self, *, workspace_id: str, job_run_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workspace_id = workspace_id
        self.job_run_id = job_run_id


class DataWorksWorkflowInstanceSensor(AlibabaCloudTaskSensor):
    """Wait for a DataWorks workflow instance (``GetWorkflowInstance``, API 2024-05-18).

    :param workflow_instance_id: the workflow instance (an integer), for example what
        ``ExecuteAdhocWorkflowInstance`` returned. Templated.
    """

    service = "dataworks_workflow"
    template_fields: Sequence[str] = ("workflow_instance_id",)
    operator_extra_links = (console_link("dataworks_workflow"),)

    def __init__(self, *, workflow_instance_id: int | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workflow_instance_id = workflow_instance_id


class PaiDlcJobSensor(AlibabaCloudTaskSensor):
    """Wait for a PAI DLC (Deep Learning Containers) job (``GetJob``, API 2020-12-03).

    :param job_id: the job (``dlc...``), for example what ``CreateJob`` returned. Templated.
    """

    service = "pai_dlc"
    template_fields: Sequence[str] = ("job_id",)
    operator_extra_links = (console_link("pai_dlc"),)

    def __init__(self, *, job_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id


class AdbSparkAppSensor(AlibabaCloudTaskSensor):
    """Wait for an AnalyticDB for MySQL Spark application (``GetSparkAppState``, API 2021-12-01).

    :param app_id: the Spark application (``s2024...``), for example what ``SubmitSparkApp``
        returned. Templated.
    """

    service = "adb_spark"
    template_fields: Sequence[str] = ("app_id",)
    operator_extra_links = (console_link("adb_spark"),)

    def __init__(self, *, app_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_id = app_id


class FlinkJobSensor(AlibabaCloudTaskSensor):
    """Wait for a Realtime Compute for Apache Flink job instance (``GetJob``, API 2022-07-18).
    For batch jobs: a streaming job does not finish, and the wait ends only with its timeout.

    :param workspace_id: the workspace (sent as the ``workspace`` header). Templated.
    :param namespace: the namespace (``default-namespace``...). Templated.
    :param job_id: the job instance, for example what ``StartJobWithParams`` returned. Templated.
    """

    service = "flink_job"
    template_fields: Sequence[str] = ("workspace_id", "namespace", "job_id")
    operator_extra_links = (console_link("flink_job"),)

    def __init__(self, *, workspace_id: str, namespace: str, job_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workspace_id = workspace_id
        self.namespace = namespace
        self.job_id = job_id


class FcAsyncTaskSensor(AlibabaCloudTaskSensor):
    """Wait for a Function Compute asynchronous invocation (``GetAsyncTask``, API 2023-03-30).

    :param function_name: the function. Templated.
    :param async_task_id: the task id (the ``x-fc-async-task-id`` of the invocation). Templated.
    :param qualifier: the function's version or alias the task was invoked on. Templated.
    :param account_id: the Alibaba Cloud account that owns the function (part of the host);
        defaults to the connection's ``fc_account_id``. Templated.
    """

    service = "fc_async_task"
    template_fields: Sequence[str] = ("function_name", "async_task_id", "qualifier", "account_id")
    operator_extra_links = (console_link("fc_async_task"),)

    def __init__(
        self,
        *,
        function_name: str,
        async_task_id: str,
        qualifier: str | None = None,
        account_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.function_name = function_name
        self.async_task_id = async_task_id
        self.qualifier = qualifier
        self.account_id = account_id
