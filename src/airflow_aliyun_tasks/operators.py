"""Start an Alibaba Cloud async operation and wait for its task, in one Airflow task.

:class:`AlibabaCloudAsyncTaskOperator` submits the operation with the connection's credentials,
reads the task's ids from the response, and waits with the sensors' trigger (deferrable) or by
polling on the worker. It never submits twice across retries: on Airflow 3.3+ the ids go to the
task state store right after the start and a retry reconnects; where the API takes a client
token, the token is derived from the task instance, so even a lost answer cannot start a second
task. On kill it cancels the remote task where the service can.

A start operation may start several tasks (a two-phase start such as DataWorks
``CreateWorkflowInstances``, whose follow-up call names every workflow instance created): the
operator then waits for every one, and succeeds only if all succeed.

Cheap to import (DAG parsing): the hook and the trigger are imported when the operator runs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, get_args

from airflow.sdk import BaseOperator

from airflow_aliyun_tasks._compat import (
    AirflowException,
    AirflowSkipException,
    TaskDeferralTimeout,
    conf,
    triggerer_calls_on_kill,
)
from airflow_aliyun_tasks._poll import GAVE_UP, PollTracker
from airflow_aliyun_tasks._wait import MIN_POLL_INTERVAL, TaskWaitMixin
from airflow_aliyun_tasks.exceptions import AlibabaCloudTaskError, AlibabaCloudTaskTimeoutError
from airflow_aliyun_tasks.links import AlibabaCloudTaskConsoleLink
from airflow_aliyun_tasks.services import (
    ApiRequest,
    BodyEncoding,
    FollowUp,
    StartOperation,
    get_service,
    request_values,
    tasks_from_response,
)
from airflow_aliyun_tasks.status import (
    OUTCOME_CANCELLED,
    OUTCOME_FAILED,
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
#: ``{"service", "ids", "generation"}``; with several tasks also ``"tasks"`` (the ids of each;
#: ``"ids"`` is the first's); during a two-phase start, before any task exists,
#: ``{"service", "follow_up", "generation"}`` (the follow-up call's parameters). Renaming it
#: would break retries in flight.
STATE_KEY = "airflow_aliyun_tasks.task"

#: XCom key of the started task's ids (``{"service", "ids"}``, and ``"tasks"`` when the start
#: started several), pushed right after the start.
TASK_IDS_XCOM_KEY = "aliyun_task_ids"

#: XCom key of the state of a deferred wait on several tasks (``{"tasks", "ended", "waiting",
#: "deadline"}``), for a resume that does not get the deferral's kwargs back.
WAIT_XCOM_KEY = "aliyun_wait"

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
    :param method, path, query, body: the request (RPC APIs: ``query`` and path ``/``, or a form
        ``body``; ROA APIs: ``path`` and a JSON ``body``).
    :param headers: request headers of the start call (beside the constant ones the registry
        knows for the operation, such as Function Compute's ``x-fc-invocation-type``).
    :param body_encoding: ``"json"``, ``"form"`` or ``"raw"``: how ``body`` is sent; default:
        as the registry says for the operation, else as the service's requests are.
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
        the package does not know (``"body:clientToken"``, ``"query:ClientToken"`` or
        ``"header:<name>"``).
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

    A start operation that may start several tasks (an id path with ``*``, such as the
    follow-up of DataWorks ``CreateWorkflowInstances``) returns the list of their final
    statuses, and succeeds only when every one succeeded (else it fails naming each that did
    not, once all have ended). Deferred, it waits in the trigger for one task at a time and
    polls the others once on the worker at each resume; on the worker it polls them all each
    interval. A two-phase start's follow-up call is polled on the worker, after the operation
    is recorded in the task state store: a retry resumes polling it instead of creating again.
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
        "headers",
        "domain_id",
        "id_paths",
        "client_token",
        "region_id",
    )
    template_fields_renderers = {"body": "json", "query": "json", "id_paths": "json", "headers": "json"}
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
        headers: Mapping[str, Any] | None = None,
        body_encoding: str | None = None,
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
        self.service, self.action, self.version = service, action, version
        self.endpoint = endpoint
        self.method, self.path = method, path
        self.query = dict(query) if query is not None else None
        self.body = body
        self.headers = dict(headers) if headers is not None else None
        self.body_encoding = _checked_body_encoding(body_encoding)
        self.domain_id = domain_id
        self.id_paths = dict(id_paths) if id_paths is not None else None
        self.client_token = client_token
        self.client_token_param = _checked_client_token_param(client_token_param)
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
        self._init_run_state()

    def _init_run_state(self) -> None:
        """What one run of the task learns as it goes (none of it is a parameter)."""
        self._task_ids: dict[str, str] = {}  # the ids of the task being waited on (the first one)
        self._tasks: list[dict[str, str]] = []  # the ids of every task started
        self._ended: list[dict[str, Any] | None] = []  # each task's final status, once it ended
        self._several = False  # the start may start several tasks: the result is a list
        self._creating: dict[str, str] | None = None  # a two-phase start's follow-up, before any task
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

    def _id_paths(self) -> tuple[dict[str, str], StartOperation | None]:
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

    def _token_param(self, op: StartOperation | None) -> tuple[str, str] | None:
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

    def _start(
        self, context: Context, generation: int, has_store: bool
    ) -> tuple[list[dict[str, str]] | None, dict[str, str] | None]:
        """Submit the operation: the tasks it started (``None``: it finished at once, no task),
        or, for a two-phase start, the follow-up call's parameters (no task yet)."""
        spec = get_service(self.service)
        paths, op = self._id_paths()
        query, body, headers, token_param, token = self._with_client_token(op, context, generation, has_store)
        self.log.info("Starting %s %s", spec.label, self.action)
        response = self._send_start(op, query, body, headers, token if token_param else None)
        follow_up = op.follow_up if op is not None and not self.id_paths else None
        if follow_up is not None:
            values, missing = follow_up.values(response)
            if missing:
                raise AirflowException(
                    f"{spec.label} {self.action}: the response has no "
                    + ", ".join(f"{n} (at {follow_up.params[n]})" for n in missing)
                    + f" for {follow_up.action}; response keys: {_keys(response)}"
                )
            return None, values
        # A raw payload (FC's event) is opaque: no id is read from it, even if it looks like a form.
        raw = (self.body_encoding or (op.body_encoding if op is not None else None)) == "raw"
        request = request_values(
            op.path if op is not None else self.path, self.path, query, None if raw else body, headers
        )
        return self._tasks_started(op, paths, response, request), None

    def _send_start(
        self,
        op: StartOperation | None,
        query: Mapping[str, Any] | None,
        body: Any,
        headers: Mapping[str, Any],
        token: str | None,
    ) -> dict[str, Any]:
        """Send the start; its answer. Sent with the client's retries only when it carries a
        client token: without one a repeated start could start a second task."""
        from airflow_aliyun_tasks.errors import ApiError

        spec = get_service(self.service)
        try:
            return self.hook.call_api(
                self.action,
                self.version or spec.version,
                service=None if self.endpoint else self.service,
                endpoint=self.endpoint,
                method=self.method,
                path=self.path,
                query=query,
                body=body,
                domain_id=self.domain_id,
                retries=bool(token),
                **self._call_options(op, headers),
            )
        except ApiError as exc:
            # A caller-chosen task id the API has seen: the task exists (an earlier attempt of
            # this start took effect and its answer was lost). Wait on it.
            duplicate = op.duplicate_status if op is not None and token and not self.id_paths else None
            if duplicate is None or exc.http_status != duplicate:
                raise
            self.log.warning(
                "%s %s: the task %s exists already (%s); waiting on it", spec.label, self.action, token, exc
            )
            return {}

    def _with_client_token(
        self, op: StartOperation | None, context: Context, generation: int, has_store: bool
    ) -> tuple[dict[str, Any] | None, Any, dict[str, Any], tuple[str, str] | None, str | None]:
        """The start's query, body and headers with the client token placed where the operation
        takes it (a token the caller gave in the request wins), the token's place and value."""
        query = dict(self.query) if self.query else None
        body = self.body
        headers: dict[str, Any] = {**(op.headers if op is not None else {}), **(self.headers or {})}
        token_param = self._token_param(op)
        token = self._client_token(context, generation, has_store) if token_param else None
        if token_param and token:
            location, name = token_param
            if op is not None and not self.client_token and not self.client_token_param:
                token = op.idempotency_format.format(token=token)
            if location == "query":
                query = dict(query or {})
                token = str(query.setdefault(name, token))
            elif location == "header":
                given = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
                if given is None:
                    headers[name] = token
                token = str(given if given is not None else token)
            elif body is None or isinstance(body, Mapping):
                body = dict(body or {})
                token = str(body.setdefault(name, token))
            self.log.info("Client token %s=%s", name, token)
        return query, body, headers, token_param, token

    def _tasks_started(
        self,
        op: StartOperation | None,
        paths: Mapping[str, str],
        response: Mapping[str, Any],
        request: Mapping[str, Any],
    ) -> list[dict[str, str]] | None:
        """The ids of the tasks the start's answer names (``None``: it finished at once)."""
        spec = get_service(self.service)
        optional = {p.name for p in spec.ids if not p.required}
        tasks, missing = tasks_from_response(paths, response, request, optional)
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
                + f"; response keys: {_keys(response)}"
            )
        for ids in tasks:
            if self.domain_id and "domain_id" in spec.id_names and "domain_id" not in ids:
                ids["domain_id"] = str(self.domain_id)
        return [spec.validate_ids(ids) for ids in tasks]

    def _call_options(self, op: StartOperation | None, headers: Mapping[str, Any]) -> dict[str, Any]:
        """``call_api``'s options for the start: given only where they differ from its defaults
        (a start of the first services is sent as it always was)."""
        options: dict[str, Any] = {}
        if headers:
            options["headers"] = dict(headers)
        encoding = self.body_encoding or (op.body_encoding if op is not None else None)
        service_encoding = get_service(self.service).body_encoding
        if not encoding and self.endpoint and service_encoding != "json":
            encoding = service_encoding  # an explicit endpoint still takes the service's bodies
        if encoding:
            options["body_encoding"] = encoding
        if op is not None and op.response_body != "json":
            options["response_body"] = op.response_body
        return options

    # ---- a two-phase start's follow-up

    def _follow_up(self) -> FollowUp:
        _, op = self._id_paths()
        assert op is not None
        assert op.follow_up is not None
        return op.follow_up

    def _call_follow_up(self, follow_up: FollowUp, req: ApiRequest) -> dict[str, Any]:
        spec = get_service(self.service)
        return self.hook.call_api(
            follow_up.action,
            self.version or spec.version,
            service=None if self.endpoint else self.service,
            endpoint=self.endpoint,
            method=req.method,
            path=req.path,
            query=req.query or None,
            body=req.body or None,
            headers=dict(req.headers) or None,
            body_encoding=follow_up.body_encoding or spec.body_encoding,
        )

    def _await_follow_up(self, values: dict[str, str]) -> list[dict[str, str]] | None:
        """Poll the follow-up call of a two-phase start on the worker until the tasks exist;
        their ids. ``None``: the operation is gone (logged): submit afresh. A creation that
        failed raises :class:`_CreationFailedError` (logged). Transient errors are tolerated
        ``max_consecutive_failures`` times in a row."""
        from airflow_aliyun_tasks.errors import NotFoundError, is_transient

        spec = get_service(self.service)
        follow_up = self._follow_up()
        self._creating = dict(values)
        what = f"{spec.label} {follow_up.action} " + " ".join(f"{k}={v}" for k, v in values.items())
        req = follow_up.build_request(values, spec.body_encoding)
        interval = max(min(follow_up.poll_interval, self.poll_interval), MIN_POLL_INTERVAL)
        deadline = time.monotonic() + min(follow_up.timeout, self.timeout)
        failures = 0
        last: str | None = None
        self.log.info("Waiting for the tasks of %s", what)
        while True:
            if self._killed:
                raise AirflowException("The task was killed while the start operation was creating its tasks")
            try:
                response = self._call_follow_up(follow_up, req)
            except NotFoundError as exc:
                self.log.warning("%s: the operation is gone; submitting afresh: %s", what, exc)
                return None
            except Exception as exc:
                failures += 1
                if not is_transient(exc) or failures > self.max_consecutive_failures:
                    raise
                self.log.warning(
                    "%s: poll failed (%d/%d): %s", what, failures, self.max_consecutive_failures, exc
                )
            else:
                failures = 0
                outcome, status = follow_up.outcome(response)
                if status != last:
                    self.log.info("%s: %s", what, status)
                    last = status
                if outcome == "failed":
                    reason = follow_up.message and lookup_text(response, follow_up.message)
                    self.log.warning(
                        "%s: %s%s; submitting afresh", what, status, f": {reason}" if reason else ""
                    )
                    self._creating = None
                    raise _CreationFailedError(f"{what}: {status}" + (f": {reason}" if reason else ""))
                if outcome == "done":
                    tasks, missing = tasks_from_response(follow_up.task_ids, response, {})
                    if missing:
                        raise AirflowException(
                            f"{what}: {status}, but the response has no "
                            + ", ".join(f"{n} (at {follow_up.task_ids[n]})" for n in missing)
                        )
                    self._creating = None
                    return [spec.validate_ids(ids) for ids in tasks]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AirflowException(
                    f"{what}: still {last or 'unknown'} after {min(follow_up.timeout, self.timeout):.0f} s"
                )
            time.sleep(min(interval, remaining))

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
                resumed = self._resume(context, recorded, store, generation)
                if resumed is not _SUBMIT:
                    return resumed
                generation += 1
        while True:
            tasks, follow_up = self._start(context, generation, store is not None)
            if follow_up is None:
                break
            # Recorded before polling: a retry resumes polling instead of creating again.
            self._record(
                store, {"service": spec.name, "follow_up": dict(follow_up), "generation": generation}
            )
            try:
                tasks = self._await_follow_up(follow_up)
            except _CreationFailedError as exc:
                raise AirflowException(str(exc)) from None
            if tasks is not None:
                break
            generation += 1  # the operation is gone: submit afresh
        if tasks is None:
            return TaskStatus(service=spec.name, ids={}, state=SUCCEEDED, raw={}).to_dict()
        return self._started(context, store, tasks, generation)

    def _started(self, context: Context, store: Any, tasks: list[dict[str, str]], generation: int) -> Any:
        """Record and announce the tasks started, then wait (or return their ids)."""
        _, op = self._id_paths()
        self._several = len(tasks) > 1 or (op is not None and op.several() and not self.id_paths)
        self._set_tasks(tasks)
        record: dict[str, Any] = {"service": self.service, "ids": dict(tasks[0]), "generation": generation}
        if self._several:
            record["tasks"] = [dict(ids) for ids in tasks]
        self._record(store, record)
        self._announce(context)
        if not self.wait_for_completion:
            return self._ids_result()
        return self._wait(context)

    def _record(self, store: Any, record: dict[str, Any]) -> None:
        if store is None:
            return
        try:
            store.set(STATE_KEY, record)
        except Exception as exc:  # the task runs: wait for it rather than fail and start another
            self.log.warning(
                "Could not record the task in the task state store (a retry of this try will "
                "not find it): %s",
                exc,
            )

    def _set_tasks(
        self, tasks: list[dict[str, str]], ended: list[dict[str, Any] | None] | None = None
    ) -> None:
        self._tasks = [dict(ids) for ids in tasks]
        self._task_ids = dict(tasks[0]) if tasks else {}
        self._ended = list(ended) if ended is not None else [None] * len(tasks)

    def _ids_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {"service": self.service, "ids": dict(self._task_ids)}
        if self._several:
            result["tasks"] = [dict(ids) for ids in self._tasks]
        return result

    def _announce(self, context: Context) -> None:
        """Log the ids, push them to XCom and store the console link's parameters."""
        if self._several:
            self.log.info(
                "%d tasks started: %s",
                len(self._tasks),
                "; ".join(describe_ids(self.service, ids) for ids in self._tasks),
            )
        else:
            self.log.info("Task started: %s", describe_ids(self.service, self._task_ids))
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=TASK_IDS_XCOM_KEY, value=self._ids_result())
        self._store_console_link(context)

    def _resume(self, context: Context, recorded: Mapping[str, Any], store: Any, generation: int) -> Any:
        """What an earlier try recorded: wait on its tasks if one still runs, return their
        statuses if all succeeded, resume polling a two-phase start's follow-up, or
        :data:`_SUBMIT` to submit afresh (a task failed, was cancelled or is gone)."""
        if isinstance(recorded.get("tasks"), list):
            self._several = True
            listed = [_plain(ids) for ids in recorded["tasks"] if isinstance(ids, Mapping)]
            return self._resume_tasks(context, listed) if listed else _SUBMIT
        if isinstance(recorded.get("ids"), Mapping):
            return self._resume_tasks(context, [_plain(recorded["ids"])])
        if isinstance(recorded.get("follow_up"), Mapping):
            values = _plain(recorded["follow_up"])
            self.log.info("Resuming the start an earlier try made: %s", values)
            try:
                tasks = self._await_follow_up(values)
            except _CreationFailedError:
                return _SUBMIT
            return _SUBMIT if tasks is None else self._started(context, store, tasks, generation)
        return _SUBMIT

    def _resume_tasks(self, context: Context, tasks: list[dict[str, str]]) -> Any:
        from airflow_aliyun_tasks.errors import NotFoundError

        statuses: list[TaskStatus] = []
        for ids in tasks:
            try:
                statuses.append(self.hook.get_task_status(self.service, **ids))
            except NotFoundError as exc:
                what = describe_ids(self.service, ids)
                self.log.warning(
                    "The task an earlier try started is gone (%s); submitting afresh: %s", what, exc
                )
                return _SUBMIT
        outcomes = [self._outcome(status) for status in statuses]
        if any(outcome is None for outcome in outcomes):
            ended = [None if o is None else s.to_dict() for s, o in zip(statuses, outcomes, strict=True)]
            self._set_tasks(tasks, ended)
            for status, outcome in zip(statuses, outcomes, strict=True):
                if outcome is None:
                    self.log.info("Reconnecting to the task an earlier try started: %s", describe(status))
            self._announce(context)
            if not self.wait_for_completion:
                return self._ids_result()
            return self._wait(context)
        if all(outcome == OUTCOME_SUCCESS for outcome in outcomes):
            self._set_tasks(tasks, [status.to_dict() for status in statuses])
            for status in statuses:
                self.log.info(
                    "The task an earlier try started has already succeeded; not submitting again: %s",
                    describe(status),
                )
            self._announce(context)
            if not self.wait_for_completion:
                return self._ids_result()
            return self._result(statuses)
        for status, outcome in zip(statuses, outcomes, strict=True):
            if outcome != OUTCOME_SUCCESS:
                self.log.warning(
                    "The task an earlier try started ended %s; submitting afresh: %s",
                    outcome,
                    describe(status),
                )
        self._set_tasks([])
        return _SUBMIT

    def _result(self, statuses: list[TaskStatus]) -> Any:
        """What the task returns for these final statuses: a list when the start may start
        several tasks, else the one status."""
        if self._several:
            return [status.to_dict() for status in statuses]
        return statuses[0].to_dict()

    # ---- waiting

    def _wait(self, context: Context) -> Any:
        if self._several:
            if self.deferrable:
                return self._defer_several(context, time.time() + self.timeout, poll_first=False)
            return self._poll_all_until_done()
        if self.deferrable:
            deadline = time.time() + self.timeout
            self.log.info("Deferring: polling every %s s for up to %.0f s", self.poll_interval, self.timeout)
            self.defer(
                trigger=self._trigger(self._task_ids, deadline),
                method_name="execute_complete",
                # A backstop: the trigger's own deadline normally ends the wait first.
                timeout=timedelta(seconds=self.timeout + 60),
            )
        return self._poll_until_done()

    def _trigger(
        self, ids: Mapping[str, str], deadline: float, cancel_also: Sequence[Mapping[str, str]] = ()
    ) -> Any:
        """The trigger that waits on the task ``ids`` until ``deadline`` (epoch seconds);
        ``cancel_also``: the other tasks its on_kill cancels too."""
        from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger

        if self.cancel_on_kill and not triggerer_calls_on_kill():
            self.log.warning(
                "cancel_on_kill: this Airflow's triggerer does not tell a trigger that its task was "
                "marked failed or success, or cleared (Airflow 3.3+ does): while the task waits "
                "deferred, that does not cancel the remote task"
            )

        return AlibabaCloudTaskTrigger(
            service=self.service,
            ids=dict(ids),
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
            cancel_also=[dict(other) for other in cancel_also] if self.cancel_on_kill else (),
        )

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

    # ---- waiting for several tasks

    def _tracker(self, ids: dict[str, str]) -> PollTracker:
        return PollTracker(
            what=describe_ids(self.service, ids),
            success_states=self.success_states,
            failure_states=self.failure_states,
            partial_success_ok=self.partial_success_ok,
            max_failures=self.max_consecutive_failures,
        )

    def _poll_all_until_done(self) -> Any:
        """Several tasks on the worker: poll every one not ended, each interval."""
        deadline = time.monotonic() + self.timeout
        trackers = [self._tracker(ids) for ids in self._tasks]
        while True:
            if self._killed:
                raise AirflowException("The task was killed while waiting")
            for i, ids in enumerate(self._tasks):
                if self._ended[i] is not None:
                    continue
                step = self._poll(trackers[i], ids)
                if step.outcome == GAVE_UP:
                    self._raise_gave_up(step)
                last = trackers[i].last
                if step.outcome is not None and last is not None:
                    self._ended[i] = last.to_dict()
            if all(e is not None for e in self._ended):
                return self._finish_several()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                running = [i for i, e in enumerate(self._ended) if e is None]
                last = trackers[running[0]].last
                self._fail(
                    "timeout",
                    f"{len(running)} of {len(self._tasks)} tasks still running after {self.timeout:.0f} s",
                    last,
                )
            time.sleep(min(max(self.poll_interval, MIN_POLL_INTERVAL), max(remaining, 0.0)))

    def _poll_pending_once(self) -> None:
        """Poll every task not ended once, on the worker (a resume between two deferrals)."""
        for i, ids in enumerate(self._tasks):
            if self._ended[i] is not None:
                continue
            try:
                status = self.hook.get_task_status(self.service, **ids)
            except Exception as exc:  # the trigger polls it again, with its failure limit
                self.log.warning("%s: poll failed: %s", describe_ids(self.service, ids), exc)
                continue
            if self._outcome(status) is not None:
                self.log.info("%s", describe(status))
                self._ended[i] = status.to_dict()

    def _defer_several(self, context: Context, deadline: float, *, poll_first: bool) -> Any:
        """Defer on the first task still running; the others are polled at each resume. The
        trigger cancels them all on kill (its ``cancel_also``). The wait's state goes in the
        deferral's kwargs, and in XCom (``aliyun_wait``) for a runner that resumes without
        them (``dag.test()`` of Airflow 3.3 replaces them with the event)."""
        if poll_first:
            self._poll_pending_once()
        running = [i for i, e in enumerate(self._ended) if e is None]
        if not running:
            return self._finish_several()
        if time.time() >= deadline:
            self._fail("timeout", f"{len(running)} of {len(self._tasks)} tasks still running at the deadline")
        waiting = running[0]
        state = {"tasks": self._tasks, "ended": self._ended, "waiting": waiting, "deadline": deadline}
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=WAIT_XCOM_KEY, value=state)
        self.log.info(
            "Deferring on %s (%d of %d tasks still running)",
            describe_ids(self.service, self._tasks[waiting]),
            len(running),
            len(self._tasks),
        )
        self.defer(
            trigger=self._trigger(self._tasks[waiting], deadline, [self._tasks[i] for i in running[1:]]),
            method_name="execute_several_complete",
            kwargs=state,
            timeout=timedelta(seconds=max(deadline - time.time(), 0.0) + 60),
        )

    def execute_several_complete(
        self, context: Context, event: dict[str, Any] | None = None, **state: Any
    ) -> Any:
        """Resume after the trigger ended one of several tasks: poll the others once, and defer
        again on one still running, or finish. ``state``: the deferral's kwargs (``tasks``,
        ``ended``, ``waiting``, ``deadline``), else what :meth:`_defer_several` left in XCom."""
        status, message = self._validate_event(event)
        assert event is not None
        if not state:
            ti = context.get("ti")
            pulled = (
                ti.xcom_pull(task_ids=self.task_id, key=WAIT_XCOM_KEY, map_indexes=ti.map_index)
                if ti
                else None
            )
            state = dict(pulled) if isinstance(pulled, Mapping) else {}
        try:
            tasks, ended, waiting, deadline = (state[k] for k in ("tasks", "ended", "waiting", "deadline"))
        except KeyError:
            raise AirflowException("Resumed without the state of the wait on several tasks") from None
        self._several = True
        self._set_tasks([_plain(ids) for ids in tasks], list(ended))
        if status == "error":
            raise AirflowException(f"Polling failed: {message}")
        if status == "timeout":
            return self._fail("timeout", message, event.get("task_status"))
        task_status = event.get("task_status")
        if isinstance(task_status, dict):
            self._ended[int(waiting)] = task_status
        else:  # an end without a status (malformed): the next poll reads it
            self.log.warning(
                "%s ended %s without a status", describe_ids(self.service, tasks[waiting]), status
            )
        return self._defer_several(context, float(deadline), poll_first=True)

    def _finish_several(self) -> Any:
        """Every task ended: their statuses if all succeeded, else fail naming each that did not."""
        statuses = [TaskStatus.from_dict(e) for e in self._ended if e is not None]
        bad = [(s, self._outcome(s)) for s in statuses if self._outcome(s) != OUTCOME_SUCCESS]
        if not bad:
            self.log.info("All %d tasks succeeded", len(statuses))
            return self._result(statuses)
        outcome = OUTCOME_FAILED if any(o != OUTCOME_CANCELLED for _, o in bad) else OUTCOME_CANCELLED
        message = f"{len(bad)} of {len(statuses)} tasks did not succeed: " + "; ".join(
            f"{describe(s)} ({o})" for s, o in bad
        )
        return self._fail(outcome, message, bad[0][0])

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
        """The worker is killing this task (marked failed, timed out, SIGTERM): cancel every
        remote task not ended where the service can, else log that they keep running."""
        self._killed = True
        pending = [ids for ids, e in zip(self._tasks, self._ended, strict=False) if e is None]
        if not self._tasks and self._task_ids:  # set by a subclass or a test
            pending = [self._task_ids]
        if not pending:
            if self._creating:
                self.log.warning(
                    "The start operation was still creating its tasks (%s): what it creates keeps running",
                    self._creating,
                )
            return
        from airflow_aliyun_tasks._cancel import cancel_remote_task

        for ids in pending:
            if not self.cancel_on_kill:
                self.log.warning(
                    "cancel_on_kill is off: the remote task keeps running (%s)",
                    describe_ids(self.service, ids),
                )
                continue
            cancel_remote_task(self.hook, self.service, ids, self.log)


def _plain(ids: Mapping[Any, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(ids).items()}


def _keys(response: Any) -> str:
    return str(sorted(response)) if isinstance(response, Mapping) else type(response).__name__


def lookup_text(body: Any, dotted: str) -> str | None:
    """The text at ``dotted`` in ``body``, if any."""
    from airflow_aliyun_tasks.services import lookup

    value = lookup(body, dotted)
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) and str(value) else None


def _checked_body_encoding(value: str | None) -> str | None:
    if value not in (None, *get_args(BodyEncoding)):
        raise ValueError("body_encoding must be 'json', 'form' or 'raw'")
    return value


def _checked_client_token_param(value: str | None) -> str | None:
    if value is not None and value.split(":", 1)[0] not in ("body", "query", "header"):
        raise ValueError("client_token_param must look like 'body:<name>', 'query:<name>' or 'header:<name>'")
    return value


class _CreationFailedError(Exception):
    """A two-phase start's follow-up says the creation failed."""


#: :meth:`AlibabaCloudAsyncTaskOperator._resume`'s "submit afresh".
_SUBMIT: Any = object()
