"""Start an Alibaba Cloud async operation and wait for its task, in one Airflow task.

:class:`AlibabaCloudAsyncTaskOperator` submits the operation with the connection's credentials,
reads the task's ids from the response, and waits with the sensors' trigger (deferrable) or by
polling on the worker. It never submits twice across retries: on Airflow 3.3+ the ids go to the
task state store right after the start and a retry reconnects; where the API takes a client
token, the token is derived from the task instance, so even a lost answer cannot start a second
task. On kill it cancels the remote task where the service can.

Cheap to import (DAG parsing): the hook and the trigger are imported when the operator runs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_aliyun_tasks._compat import (
    AirflowException,
    AirflowSkipException,
    TaskDeferralTimeout,
    conf,
)
from airflow_aliyun_tasks._poll import GAVE_UP
from airflow_aliyun_tasks._wait import MIN_POLL_INTERVAL, TaskWaitMixin
from airflow_aliyun_tasks.exceptions import AlibabaCloudTaskError, AlibabaCloudTaskTimeoutError
from airflow_aliyun_tasks.links import AlibabaCloudTaskConsoleLink
from airflow_aliyun_tasks.services import get_service, ids_from_response, request_values
from airflow_aliyun_tasks.status import (
    OUTCOME_SUCCESS,
    SUCCEEDED,
    TaskStatus,
    describe,
    describe_ids,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

__all__ = [
    "STATE_KEY",
    "TASK_IDS_XCOM_KEY",
    "AlibabaCloudAsyncTaskOperator",
    "AlibabaCloudTaskError",
    "AlibabaCloudTaskTimeoutError",
    "client_token",
]

#: Task state store key under which the operator records the task it started (Airflow 3.3+):
#: ``{"service", "ids", "generation"}``. Renaming it would break retries in flight.
STATE_KEY = "airflow_aliyun_tasks.task"

#: XCom key of the started task's ids (``{"service", "ids"}``), pushed right after the start.
TASK_IDS_XCOM_KEY = "aliyun_task_ids"

#: Namespace of the client tokens the operator derives (UUID 5).
CLIENT_TOKEN_NAMESPACE = uuid.UUID("6f3a1c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b")

#: Default wait limit, as the sensors' (``[sensors] default_timeout``): seven days.
DEFAULT_TIMEOUT = 7 * 24 * 3600.0


def client_token(dag_id: str, task_id: str, run_id: str, map_index: int, generation: int | str = 0) -> str:
    """The client token of one task instance: the same for every try (``generation`` counts
    the fresh submissions after a remote task that ended badly)."""
    name = f"{dag_id}\n{task_id}\n{run_id}\n{map_index}\n{generation}"
    return str(uuid.uuid5(CLIENT_TOKEN_NAMESPACE, name))


class AlibabaCloudAsyncTaskOperator(TaskWaitMixin, BaseOperator):
    """Start an Alibaba Cloud async operation and wait until its task ends.

    The start call takes what :meth:`~airflow_aliyun_tasks.hooks.AlibabaCloudTasksHook.call_api`
    takes (all templated):

    :param service: the service whose task is started and waited on (a name of
        :data:`~airflow_aliyun_tasks.services.SERVICES`). The start call goes to the
        connection's endpoint for it, signed as the service signs, unless ``endpoint`` is given.
    :param action: the start operation (``StartJobRun``, ``ImportWorkflowDefinition``, ...).
    :param version: the API version; default: the service's (the start operations the package
        knows share their service's version).
    :param endpoint: an explicit host or URL for the start call (then ``service`` only says
        how to wait).
    :param method, path, query, body: the request (RPC APIs: ``query`` and path ``/``; ROA
        APIs: ``path`` and a JSON ``body``).
    :param domain_id: the domain of a service whose host names one (PDS); also the task's
        ``domain_id`` when waiting.
    :param id_paths: where the task's ids are, for an operation the package does not know:
        id name (as the service's sensor names it) to a dotted path in the start response
        (``"data.asyncTaskId"``) or ``"request:<name>"`` for an id the request carries (a path
        parameter, a query or body key). For a known start operation the registry says it.
    :param client_token: the client token to send, where the operation takes one
        (``client_token_param``); default: derived from the DAG id, task id, run id and map
        index, the same for every try (see the docs). Ignored where the API takes none.
    :param client_token_param: the request parameter of the client token, for an operation
        the package does not know (``"body:clientToken"`` or ``"query:ClientToken"``).
    :param aliyun_conn_id: the ``aliyun`` connection.
    :param region_id: the task's region, instead of the connection's ``region_id``. Templated.
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param wait_for_completion: ``False`` returns the ids right after the start.
    :param poll_interval: seconds between status polls.
    :param timeout: seconds the wait may last (default seven days); past it the task fails
        with :class:`~airflow_aliyun_tasks.exceptions.AlibabaCloudTaskTimeoutError`
        (``soft_fail``: skipped). A remote task that fails or is cancelled raises
        :class:`~airflow_aliyun_tasks.exceptions.AlibabaCloudTaskError` (Airflow's retries apply).
    :param soft_fail: skip the task instead of failing it when the remote task fails, is
        cancelled or the wait times out (the start call's own errors still fail it).
    :param durable: record the task in Airflow's task state store (3.3+) right after the
        start, so that a retry reconnects to it instead of submitting again, and send the
        derived client token. ``False``: every try submits afresh, with no derived token.
    :param cancel_on_kill: cancel the remote task when the Airflow task is killed (worker:
        ``on_kill``; deferred: a user marks it failed or success, or clears it, Airflow 3.3+),
        where the service has a cancel operation; elsewhere a log line says it keeps running.
    :param success_states, failure_states, partial_success_ok, max_consecutive_failures: as
        for the sensors.

    Returns (and pushes to XCom) the final :meth:`TaskStatus.to_dict`; the task's ids are also
    pushed right after the start under ``aliyun_task_ids``. With ``wait_for_completion=False``
    it returns ``{"service": ..., "ids": {...}}``.
    """

    template_fields: Sequence[str] = (
        "service",
        "action",
        "version",
        "endpoint",
        "method",
        "path",
        "query",
        "body",
        "domain_id",
        "id_paths",
        "client_token",
        "region_id",
    )
    template_fields_renderers = {"body": "json", "query": "json", "id_paths": "json"}
    ui_color = "#ff6a00"
    operator_extra_links = (AlibabaCloudTaskConsoleLink(),)

    def __init__(
        self,
        *,
        service: str,
        action: str,
        version: str | None = None,
        endpoint: str | None = None,
        method: str = "POST",
        path: str = "/",
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        domain_id: str | None = None,
        id_paths: Mapping[str, str] | None = None,
        client_token: str | None = None,
        client_token_param: str | None = None,
        aliyun_conn_id: str = "aliyun_default",
        region_id: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        wait_for_completion: bool = True,
        poll_interval: float = 30.0,
        timeout: float | timedelta = DEFAULT_TIMEOUT,
        soft_fail: bool = False,
        durable: bool = True,
        cancel_on_kill: bool = True,
        success_states: Sequence[str] | None = None,
        failure_states: Sequence[str] | None = None,
        partial_success_ok: bool = False,
        max_consecutive_failures: int = 5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.action = action
        self.version = version
        self.endpoint = endpoint
        self.method = method
        self.path = path
        self.query = dict(query) if query is not None else None
        self.body = body
        self.domain_id = domain_id
        self.id_paths = dict(id_paths) if id_paths is not None else None
        self.client_token = client_token
        if client_token_param is not None and client_token_param.split(":", 1)[0] not in ("body", "query"):
            raise ValueError("client_token_param must look like 'body:<name>' or 'query:<name>'")
        self.client_token_param = client_token_param
        self.aliyun_conn_id = aliyun_conn_id
        self.region_id = region_id
        self.deferrable = deferrable
        self.wait_for_completion = wait_for_completion
        self.poll_interval = float(poll_interval)
        self.timeout = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        self.soft_fail = soft_fail
        self.durable = durable
        self.cancel_on_kill = cancel_on_kill
        self.success_states = [str(s) for s in (success_states or ())]
        self.failure_states = [str(s) for s in (failure_states or ())]
        self._partial_success_ok = partial_success_ok
        self.max_consecutive_failures = max_consecutive_failures
        self._task_ids: dict[str, str] = {}  # the ids of the task being waited on
        self._killed = False
        self._hook: AlibabaCloudTasksHook | None = None

    @property
    def partial_success_ok(self) -> bool:
        return self._partial_success_ok

    @property
    def hook(self) -> AlibabaCloudTasksHook:
        """One hook per task run: its connection, read once, is still there when :meth:`on_kill`
        runs in a signal handler (no round trip to the task's supervisor then)."""
        if self._hook is None:
            from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

            self._hook = AlibabaCloudTasksHook(
                aliyun_conn_id=self.aliyun_conn_id, region_id=self.region_id or None
            )
        return self._hook

    def _ids(self) -> dict[str, str]:
        return dict(self._task_ids)

    # ---- the start operation

    def _id_paths(self) -> tuple[dict[str, str], Any]:
        """Where the ids are, and the registry's start operation (``None`` when unknown)."""
        spec = get_service(self.service)
        op = spec.start_operation(self.action)
        if self.id_paths:
            return dict(self.id_paths), op
        if op is None:
            known = ", ".join(o.action for o in spec.start_operations) or "none"
            raise AirflowException(
                f"{self.action} is not a start operation the package knows for {spec.label} (known: "
                f"{known}); pass id_paths to say where the task's ids are in its response"
            )
        return dict(op.task_ids), op

    def _token_param(self, op: Any) -> tuple[str, str] | None:
        """``(location, name)`` of the client token, or ``None``."""
        if self.client_token_param:
            location, name = self.client_token_param.split(":", 1)
            return location, name
        if op is not None and op.idempotency_param:
            return op.idempotency_location, op.idempotency_param
        return None

    def _client_token(self, context: Context, generation: int, has_store: bool) -> str | None:
        if self.client_token:
            return str(self.client_token)
        if not self.durable:
            return None
        ti = context.get("ti")
        if ti is None:
            return None
        map_index = getattr(ti, "map_index", -1)
        map_index = -1 if map_index is None else int(map_index)
        # Without a state store a retry cannot learn that the task it would get back failed:
        # the token then changes with each try (it still covers the client's own retries).
        suffix: int | str = generation if has_store else f"try{getattr(ti, 'try_number', 1)}"
        return client_token(ti.dag_id, ti.task_id, ti.run_id, map_index, suffix)

    def _start(self, context: Context, generation: int, has_store: bool) -> dict[str, str] | None:
        """Submit the operation; the task's ids (``None``: it finished at once, no task)."""
        spec = get_service(self.service)
        paths, op = self._id_paths()
        query = dict(self.query) if self.query else None
        body = self.body
        token_param = self._token_param(op)
        token = self._client_token(context, generation, has_store) if token_param else None
        if token_param and token:
            location, name = token_param
            if location == "query":
                query = dict(query or {})
                token = str(query.setdefault(name, token))
            elif body is None or isinstance(body, Mapping):
                body = dict(body or {})
                token = str(body.setdefault(name, token))
            self.log.info("Client token %s=%s", name, token)
        idempotent = bool(token_param and token)
        self.log.info("Starting %s %s", spec.label, self.action)
        response = self.hook.call_api(
            self.action,
            self.version or spec.version,
            service=None if self.endpoint else self.service,
            endpoint=self.endpoint,
            method=self.method,
            path=self.path,
            query=query,
            body=body,
            domain_id=self.domain_id,
            # Without a client token a repeated start could start a second task.
            retries=idempotent,
        )
        request = request_values(op.path if op is not None else self.path, self.path, query, body)
        ids, missing = ids_from_response(paths, response, request)
        if missing:
            from_response = [n for n in missing if not paths[n].startswith("request:")]
            if (
                op is not None
                and op.may_finish_at_once
                and len(from_response) == len([p for p in paths.values() if not p.startswith("request:")])
            ):
                self.log.info("%s %s finished at once: no async task to wait for", spec.label, self.action)
                return None
            raise AirflowException(
                f"{spec.label} {self.action}: the response has no "
                + ", ".join(f"{n} (at {paths[n]})" for n in missing)
                + f"; response keys: {sorted(response) if isinstance(response, Mapping) else type(response).__name__}"
            )
        if self.domain_id and "domain_id" in spec.id_names and "domain_id" not in ids:
            ids["domain_id"] = str(self.domain_id)
        return spec.validate_ids(ids)

    # ---- execute

    def execute(self, context: Context) -> Any:
        spec = get_service(self.service)
        store = context.get("task_state_store") if self.durable else None
        if self.durable and store is None:
            self.log.warning(
                "No task state store (it arrived in Airflow 3.3): a retry of this task cannot reconnect "
                "to the task this try starts, and will submit again"
            )
        generation = 0
        if store is not None:
            recorded: Any = store.get(STATE_KEY)
            if isinstance(recorded, Mapping) and recorded.get("service") == spec.name:
                generation = int(recorded.get("generation") or 0)
                ids = {str(k): str(v) for k, v in dict(recorded.get("ids") or {}).items()}
                resumed = self._resume(context, ids)
                if resumed is not _SUBMIT:
                    return resumed
                generation += 1
        ids_or_none = self._start(context, generation, store is not None)
        if ids_or_none is None:
            return TaskStatus(service=spec.name, ids={}, state=SUCCEEDED, raw={}).to_dict()
        self._task_ids = ids_or_none
        if store is not None:
            record: Any = {"service": spec.name, "ids": dict(self._task_ids), "generation": generation}
            try:
                store.set(STATE_KEY, record)
            except Exception as exc:  # the task runs: wait for it rather than fail and start another
                self.log.warning(
                    "Could not record the task in the task state store (a retry of this try will "
                    "not find it): %s",
                    exc,
                )
        self._announce(context)
        if not self.wait_for_completion:
            return {"service": spec.name, "ids": dict(self._task_ids)}
        return self._wait(context)

    def _announce(self, context: Context) -> None:
        """Log the ids, push them to XCom and store the console link's parameters."""
        self.log.info("Task started: %s", describe_ids(self.service, self._task_ids))
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=TASK_IDS_XCOM_KEY, value={"service": self.service, "ids": dict(self._task_ids)})
        self._store_console_link(context)

    def _resume(self, context: Context, ids: dict[str, str]) -> Any:
        """A task an earlier try started: wait on it if it still runs, return its status if it
        succeeded, :data:`_SUBMIT` to submit afresh if it failed or was cancelled (or is gone)."""
        from airflow_aliyun_tasks.errors import NotFoundError

        what = describe_ids(self.service, ids)
        try:
            status = self.hook.get_task_status(self.service, **ids)
        except NotFoundError as exc:
            self.log.warning("The task an earlier try started is gone (%s); submitting afresh: %s", what, exc)
            return _SUBMIT
        outcome = self._outcome(status)
        self._task_ids = ids
        if outcome is None:
            self.log.info("Reconnecting to the task an earlier try started: %s", describe(status))
            self._announce(context)
            if not self.wait_for_completion:
                return {"service": self.service, "ids": dict(ids)}
            return self._wait(context)
        if outcome == OUTCOME_SUCCESS:
            self.log.info(
                "The task an earlier try started has already succeeded; not submitting again: %s",
                describe(status),
            )
            self._announce(context)
            if not self.wait_for_completion:
                return {"service": self.service, "ids": dict(ids)}
            return status.to_dict()
        self.log.warning(
            "The task an earlier try started ended %s; submitting afresh: %s", outcome, describe(status)
        )
        self._task_ids = {}
        return _SUBMIT

    # ---- waiting

    def _wait(self, context: Context) -> Any:
        if self.deferrable:
            from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger

            deadline = time.time() + self.timeout
            self.log.info("Deferring: polling every %s s for up to %.0f s", self.poll_interval, self.timeout)
            self.defer(
                trigger=AlibabaCloudTaskTrigger(
                    service=self.service,
                    ids=dict(self._task_ids),
                    aliyun_conn_id=self.aliyun_conn_id,
                    region_id=self.region_id or None,
                    poll_interval=max(self.poll_interval, MIN_POLL_INTERVAL),
                    end_time=deadline,
                    max_consecutive_failures=self.max_consecutive_failures,
                    initial_delay=max(self.poll_interval, MIN_POLL_INTERVAL),
                    success_states=list(self.success_states),
                    failure_states=list(self.failure_states),
                    partial_success_ok=self.partial_success_ok,
                    cancel_on_kill=self.cancel_on_kill,
                ),
                method_name="execute_complete",
                # A backstop: the trigger's own deadline normally ends the wait first.
                timeout=timedelta(seconds=self.timeout + 60),
            )
        return self._poll_until_done()

    def _poll_until_done(self) -> Any:
        deadline = time.monotonic() + self.timeout
        tracker = self._poll_tracker()
        while True:
            if self._killed:
                raise AirflowException("The task was killed while waiting")
            step = self._poll(tracker)
            if step.outcome == GAVE_UP:
                self._raise_gave_up(step)
            last = tracker.last
            if step.outcome == OUTCOME_SUCCESS and last is not None:
                return last.to_dict()
            if step.outcome is not None:
                self._fail(step.outcome, step.message, last)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                state = last.state if last else "unpolled"
                self._fail("timeout", f"still {state} after {self.timeout:.0f} s", last)
            time.sleep(min(max(self.poll_interval, MIN_POLL_INTERVAL), max(remaining, 0.0)))

    def _fail(
        self, outcome: str, message: str, task_status: TaskStatus | dict[str, Any] | None = None
    ) -> Any:
        """Fail (or skip, ``soft_fail``) with the error of ``outcome``: ``failed``, ``cancelled``
        or ``timeout``."""
        if isinstance(task_status, TaskStatus):
            task_status = task_status.to_dict()
        cls = AlibabaCloudTaskTimeoutError if outcome == "timeout" else AlibabaCloudTaskError
        error = self._wait_error(cls, outcome, message, task_status)
        if self.soft_fail:
            raise AirflowSkipException(str(error))
        raise error

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: the final status on success, else fail as :meth:`execute` would."""
        status, message = self._validate_event(event)
        assert event is not None
        self._task_ids = {str(k): str(v) for k, v in dict(event.get("ids") or {}).items()}
        if status == OUTCOME_SUCCESS:
            self.log.info("%s", message)
            return event["task_status"]
        if status == "error":
            raise AirflowException(f"Polling failed: {message}")
        return self._fail(status, message, event.get("task_status"))

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout as exc:
            return self._fail("timeout", str(exc) or "the deferral timed out")

    # ---- kill

    def on_kill(self) -> None:
        """The worker is killing this task (marked failed, timed out, SIGTERM): cancel the
        remote task where the service can, else log that it keeps running."""
        self._killed = True
        if not self._task_ids:
            return
        from airflow_aliyun_tasks._cancel import cancel_remote_task

        if not self.cancel_on_kill:
            self.log.warning(
                "cancel_on_kill is off: the remote task keeps running (%s)",
                describe_ids(self.service, self._task_ids),
            )
            return
        cancel_remote_task(self.hook, self.service, self._task_ids, self.log)


#: :meth:`AlibabaCloudAsyncTaskOperator._resume`'s "submit afresh".
_SUBMIT: Any = object()
