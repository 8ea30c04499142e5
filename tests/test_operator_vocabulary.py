"""The operator with the start operations of the next services, on synthetic specs and a fake
hook: an idempotency key in a header (a caller-chosen task id) with a format, constant headers,
raw bodies and empty answers; a two-phase start recorded before its follow-up is polled (a retry
resumes polling); several tasks per start, waited for on the worker and deferred one at a time,
cancelled together on kill; the trigger's ``cancel_also``.

The same with a real service against the emulator, and in real Airflow, is in the service's own
tests (DataWorks workflow instances).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from airflow_aliyun_tasks.errors import NotFoundError
from airflow_aliyun_tasks.exceptions import AlibabaCloudTaskError, AlibabaCloudTaskTimeoutError
from airflow_aliyun_tasks.operators import (
    STATE_KEY,
    TASK_IDS_XCOM_KEY,
    AlibabaCloudAsyncTaskOperator,
    client_token,
)
from airflow_aliyun_tasks.services import (
    DATAWORKS,
    SERVICES,
    CancelOperation,
    FollowUp,
    IdParam,
    StartOperation,
)
from airflow_aliyun_tasks.status import FAILED, RUNNING, SUCCEEDED, TaskStatus
from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger
from airflow_versions import AirflowException, TaskDeferred

FC = "synthetic_fc"
WF = "synthetic_workflow"

INVOKE = StartOperation(
    action="InvokeFunction",
    method="POST",
    path="/2023-03-30/functions/{functionName}/invocations",
    task_ids={"function_name": "request:functionName", "task_id": "request:x-fc-async-task-id"},
    idempotency_param="x-fc-async-task-id",
    idempotency_location="header",
    idempotency_format="airflow-{token}",
    headers={"x-fc-invocation-type": "Async"},
    body_encoding="raw",
    response_body="none",
)
FOLLOW_UP = FollowUp(
    action="GetCreateResult",
    method="GET",
    path="/",
    params={"OperationId": "OperationId"},
    status="Result.Status",
    pending=("Creating",),
    done=("Created",),
    failed=("CreateFailure",),
    message="Result.FailureMessage",
    task_ids={"instance_id": "Result.InstanceIds.*"},
    poll_interval=0.01,
)
CREATE = StartOperation(action="CreateInstances", method="POST", path="/", task_ids={}, follow_up=FOLLOW_UP)
RUN_ONE = StartOperation(action="RunOne", method="POST", path="/", task_ids={"instance_id": "InstanceId"})


@pytest.fixture(autouse=True)
def specs(monkeypatch: pytest.MonkeyPatch) -> None:
    fc = dataclasses.replace(
        DATAWORKS,
        name=FC,
        label="FC",
        style="ROA",
        path="/2023-03-30/functions/{functionName}/async-tasks/{taskId}",
        ids=(IdParam("function_name", "functionName", "path"), IdParam("task_id", "taskId", "path")),
        start_operations=(INVOKE,),
        body_encoding="json",
    )
    workflow = dataclasses.replace(
        DATAWORKS,
        name=WF,
        label="Workflow",
        ids=(IdParam("instance_id", "Id", "query", integer=True),),
        start_operations=(CREATE, RUN_ONE),
        cancel=CancelOperation(
            action="StopInstances",
            method="POST",
            path="/",
            params=(IdParam("instance_id", "Ids", "body", integer=True, as_list=True),),
        ),
    )
    monkeypatch.setitem(SERVICES, FC, fc)
    monkeypatch.setitem(SERVICES, WF, workflow)


class FakeTI:
    dag_id, task_id, run_id, map_index, try_number = "d", "t", "manual__1", -1, 1

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int) -> Any:
        assert (task_ids, map_indexes) == ("t", -1)
        return self.xcoms.get(key)


class FakeStore:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.history: list[Any] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        self.data[key] = value
        self.history.append(value)


class FakeHook:
    """Scripted answers: start calls by action, status polls by task (raw statuses; the last
    sticks); records every call."""

    def __init__(self, store: FakeStore | None = None) -> None:
        self.store = store
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, list[Any]] = {}
        self.statuses: dict[str, list[str]] = {}
        self.polls: dict[str, int] = {}
        self.cancelled: list[dict[str, str]] = []
        self.store_at_follow_up: list[Any] = []

    def call_api(self, action: str, version: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((action, kwargs))
        if action == FOLLOW_UP.action and self.store is not None:
            self.store_at_follow_up.append(self.store.data.get(STATE_KEY))
        answers = self.answers[action]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    def get_task_status(self, service: str, **ids: Any) -> TaskStatus:
        key = "/".join(str(v) for v in ids.values())
        if key not in self.statuses:
            raise NotFoundError(http_status=404, code="NotFound", message=key)
        n = self.polls.get(key, 0)
        self.polls[key] = n + 1
        raw = self.statuses[key][min(n, len(self.statuses[key]) - 1)]
        state = {"Running": RUNNING, "Success": SUCCEEDED, "Failure": FAILED}[raw]
        return TaskStatus(
            service=service, ids={k: str(v) for k, v in ids.items()}, state=state, raw_status=raw
        )

    def cancel_task(self, service: str, **ids: Any) -> dict[str, Any]:
        self.cancelled.append(dict(ids))
        return {}

    @property
    def settings(self) -> Any:
        raise RuntimeError("no connection in this test")  # the console link is skipped


def op(hook: FakeHook, **kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    params: dict[str, Any] = {"task_id": "t", "poll_interval": 0.01, "deferrable": False}
    params.update(kwargs)
    operator = AlibabaCloudAsyncTaskOperator(**params)
    operator._hook = hook  # type: ignore[assignment]
    return operator


def ctx(store: FakeStore | None) -> dict[str, Any]:
    context: dict[str, Any] = {"ti": FakeTI()}
    if store is not None:
        context["task_state_store"] = store
    return context


# --------------------------------------------------------------------------- a key in a header


def test_caller_chosen_task_id_in_a_header() -> None:
    """FC's InvokeFunction: ``x-fc-async-task-id`` derived from the task instance (starting with
    a letter, as FC wants), ``x-fc-invocation-type: Async``, a raw payload, an empty answer; the
    task's ids come from the request."""
    hook = FakeHook()
    hook.answers["InvokeFunction"] = [{}]
    hook.statuses["my-func/airflow-" + client_token("d", "t", "manual__1", -1, 0)] = ["Running", "Success"]
    store = FakeStore()
    result = op(
        hook,
        service=FC,
        action="InvokeFunction",
        path="/2023-03-30/functions/my-func/invocations",
        body=b"\x00event",
    ).execute(ctx(store))
    (action, kwargs), *_ = hook.calls
    token = "airflow-" + client_token("d", "t", "manual__1", -1, 0)
    assert action == "InvokeFunction"
    assert kwargs["headers"] == {"x-fc-invocation-type": "Async", "x-fc-async-task-id": token}
    assert (kwargs["body"], kwargs["body_encoding"], kwargs["response_body"]) == (b"\x00event", "raw", "none")
    assert kwargs["retries"] is True  # the key makes a repeated start idempotent
    assert result["ids"] == {"function_name": "my-func", "task_id": token}
    assert result["state"] == "succeeded"
    assert store.data[STATE_KEY] == {"service": FC, "ids": result["ids"], "generation": 0}


def test_a_task_id_the_caller_gives_wins() -> None:
    hook = FakeHook()
    hook.answers["InvokeFunction"] = [{}]
    hook.statuses["my-func/mine"] = ["Success"]
    result = op(
        hook,
        service=FC,
        action="InvokeFunction",
        path="/2023-03-30/functions/my-func/invocations",
        headers={"X-Fc-Async-Task-Id": "mine"},
        wait_for_completion=False,
    ).execute(ctx(None))
    headers = hook.calls[0][1]["headers"]
    assert headers == {"x-fc-invocation-type": "Async", "X-Fc-Async-Task-Id": "mine"}
    assert result == {"service": FC, "ids": {"function_name": "my-func", "task_id": "mine"}}


def test_a_header_token_for_an_operation_the_registry_does_not_know() -> None:
    hook = FakeHook()
    hook.answers["Other"] = [{"InstanceId": 5}]
    hook.statuses["5"] = ["Success"]
    op(
        hook,
        service=WF,
        action="Other",
        id_paths={"instance_id": "InstanceId"},
        client_token_param="header:x-idempotency-key",
    ).execute(ctx(FakeStore()))
    assert hook.calls[0][1]["headers"] == {"x-idempotency-key": client_token("d", "t", "manual__1", -1, 0)}
    with pytest.raises(ValueError, match="header:<name>"):
        op(hook, service=WF, action="Other", client_token_param="cookie:x")


# --------------------------------------------------------------------------- two phases, several tasks


def _two_phase(hook: FakeHook, statuses: dict[str, list[str]], ids: list[int]) -> None:
    hook.answers["CreateInstances"] = [{"OperationId": "op-1", "RequestId": "r"}]
    hook.answers[FOLLOW_UP.action] = [
        {"Result": {"Status": "Creating"}},
        {"Result": {"Status": "Created", "InstanceIds": ids}},
    ]
    hook.statuses.update(statuses)


def test_two_phase_start_records_the_operation_then_waits_for_every_task() -> None:
    store = FakeStore()
    hook = FakeHook(store)
    _two_phase(hook, {"11": ["Running", "Success"], "12": ["Running", "Running", "Success"]}, [11, 12])
    context = ctx(store)
    result = op(hook, service=WF, action="CreateInstances", body={"Name": "n"}).execute(context)
    # the operation was in the state store before its follow-up was polled
    assert hook.store_at_follow_up[0] == {
        "service": WF,
        "follow_up": {"OperationId": "op-1"},
        "generation": 0,
    }
    follow = [kw for action, kw in hook.calls if action == FOLLOW_UP.action]
    assert len(follow) == 2
    assert follow[0]["method"] == "GET"
    assert follow[0]["query"] == {"OperationId": "op-1"}
    assert [r["ids"] for r in result] == [{"instance_id": "11"}, {"instance_id": "12"}]
    assert [r["state"] for r in result] == ["succeeded", "succeeded"]
    assert store.data[STATE_KEY] == {
        "service": WF,
        "ids": {"instance_id": "11"},
        "tasks": [{"instance_id": "11"}, {"instance_id": "12"}],
        "generation": 0,
    }
    assert context["ti"].xcoms[TASK_IDS_XCOM_KEY]["tasks"] == [{"instance_id": "11"}, {"instance_id": "12"}]


def test_one_instance_of_a_list_start_is_still_a_list() -> None:
    hook = FakeHook()
    _two_phase(hook, {"11": ["Success"]}, [11])
    result = op(hook, service=WF, action="CreateInstances").execute(ctx(None))
    assert isinstance(result, list)
    assert [r["ids"] for r in result] == [{"instance_id": "11"}]
    # a start of one task returns one status, as it always has
    hook.answers["RunOne"] = [{"InstanceId": 7}]
    hook.statuses["7"] = ["Success"]
    assert op(hook, service=WF, action="RunOne").execute(ctx(None))["ids"] == {"instance_id": "7"}


def test_a_retry_resumes_polling_the_follow_up_instead_of_creating_again() -> None:
    store = FakeStore()
    store.data[STATE_KEY] = {"service": WF, "follow_up": {"OperationId": "op-1"}, "generation": 0}
    hook = FakeHook(store)
    _two_phase(hook, {"11": ["Success"], "12": ["Success"]}, [11, 12])
    result = op(hook, service=WF, action="CreateInstances").execute(ctx(store))
    assert [action for action, _ in hook.calls].count("CreateInstances") == 0
    assert len(result) == 2
    assert store.data[STATE_KEY]["tasks"] == [{"instance_id": "11"}, {"instance_id": "12"}]


def test_a_retry_of_several_tasks_reconnects_or_returns() -> None:
    store = FakeStore()
    tasks = [{"instance_id": "11"}, {"instance_id": "12"}]
    store.data[STATE_KEY] = {"service": WF, "ids": tasks[0], "tasks": tasks, "generation": 0}
    hook = FakeHook(store)
    hook.statuses.update({"11": ["Success"], "12": ["Running", "Success"]})
    result = op(hook, service=WF, action="CreateInstances").execute(ctx(store))
    assert [r["state"] for r in result] == ["succeeded", "succeeded"]
    assert hook.calls == []  # nothing started, nothing created
    # all succeeded already: their statuses, no call at all
    hook = FakeHook(store)
    hook.statuses.update({"11": ["Success"], "12": ["Success"]})
    assert len(op(hook, service=WF, action="CreateInstances").execute(ctx(store))) == 2
    assert hook.calls == []


def test_a_failed_creation_fails_and_its_retry_submits_afresh() -> None:
    store = FakeStore()
    hook = FakeHook(store)
    hook.answers["CreateInstances"] = [{"OperationId": "op-1"}]
    failure = {"Result": {"Status": "CreateFailure", "FailureMessage": "the workflow has no nodes"}}
    hook.answers[FOLLOW_UP.action] = [failure]
    with pytest.raises(AirflowException, match="CreateFailure: the workflow has no nodes"):
        op(hook, service=WF, action="CreateInstances").execute(ctx(store))
    assert store.data[STATE_KEY]["follow_up"] == {"OperationId": "op-1"}
    # the retry finds the failed creation and creates again, with the next generation
    hook.answers["CreateInstances"] = [{"OperationId": "op-2"}]
    hook.answers[FOLLOW_UP.action] = [failure, {"Result": {"Status": "Created", "InstanceIds": [21]}}]
    hook.statuses["21"] = ["Success"]
    result = op(hook, service=WF, action="CreateInstances").execute(ctx(store))
    assert [r["ids"] for r in result] == [{"instance_id": "21"}]
    assert [a for a, _ in hook.calls].count("CreateInstances") == 2
    assert store.data[STATE_KEY]["generation"] == 1


def test_a_creation_that_never_ends_times_out_and_a_missing_operation_id_fails() -> None:
    hook = FakeHook()
    hook.answers["CreateInstances"] = [{"OperationId": "op-1"}]
    hook.answers[FOLLOW_UP.action] = [{"Result": {"Status": "Creating"}}]
    with pytest.raises(AirflowException, match="still Creating"):
        op(hook, service=WF, action="CreateInstances", timeout=0.05).execute(ctx(None))
    hook.answers["CreateInstances"] = [{"RequestId": "r"}]
    with pytest.raises(AirflowException, match=r"no OperationId \(at OperationId\)"):
        op(hook, service=WF, action="CreateInstances").execute(ctx(None))


def test_several_tasks_fail_together_naming_each_failed_one() -> None:
    hook = FakeHook()
    _two_phase(
        hook,
        {"11": ["Running", "Failure"], "12": ["Running", "Running", "Success"], "13": ["Failure"]},
        [11, 12, 13],
    )
    with pytest.raises(AlibabaCloudTaskError) as info:
        op(hook, service=WF, action="CreateInstances").execute(ctx(None))
    text = str(info.value)
    assert "2 of 3 tasks did not succeed" in text
    assert "instance_id=11" in text
    assert "instance_id=13" in text
    assert "instance_id=12" not in text
    assert hook.polls["12"] == 3  # the failures did not stop the wait for the others
    assert info.value.outcome == "failed"


def test_several_tasks_time_out_on_the_worker() -> None:
    hook = FakeHook()
    _two_phase(hook, {"11": ["Success"], "12": ["Running"]}, [11, 12])
    with pytest.raises(AlibabaCloudTaskTimeoutError, match="1 of 2 tasks still running"):
        op(hook, service=WF, action="CreateInstances", timeout=0.1).execute(ctx(None))


def test_several_tasks_deferred_one_at_a_time() -> None:
    store = FakeStore()
    hook = FakeHook(store)
    _two_phase(hook, {"11": ["Running"], "12": ["Running"], "13": ["Running"]}, [11, 12, 13])
    operator = op(hook, service=WF, action="CreateInstances", deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        operator.execute(ctx(store))
    _, kwargs = info.value.trigger.serialize()
    assert kwargs["ids"] == {"instance_id": "11"}
    assert kwargs["cancel_also"] == [{"instance_id": "12"}, {"instance_id": "13"}]
    assert info.value.method_name == "execute_several_complete"
    resume = dict(info.value.kwargs or {})
    assert resume["waiting"] == 0
    assert resume["ended"] == [None, None, None]

    # the trigger saw 11 succeed; on resume 12 has ended too, 13 still runs: defer on 13
    hook.statuses.update({"12": ["Success"], "13": ["Running"]})
    done_11 = TaskStatus(service=WF, ids={"instance_id": "11"}, state=SUCCEEDED, raw_status="Success")
    event = {"status": "success", "message": "ok", "task_status": done_11.to_dict(), "service": WF, "ids": {}}
    operator = op(hook, service=WF, action="CreateInstances", deferrable=True)
    with pytest.raises(TaskDeferred) as info:
        operator.execute_several_complete(ctx(store), event, **resume)
    _, kwargs = info.value.trigger.serialize()
    assert kwargs["ids"] == {"instance_id": "13"}
    assert "cancel_also" not in kwargs
    resume = dict(info.value.kwargs or {})
    assert resume["waiting"] == 2
    assert [e["raw_status"] if e else None for e in resume["ended"]] == ["Success", "Success", None]

    # 13 fails: all ended, the task fails naming 13
    done_13 = TaskStatus(service=WF, ids={"instance_id": "13"}, state=FAILED, raw_status="Failure")
    event = {"status": "failed", "message": "bad", "task_status": done_13.to_dict(), "service": WF, "ids": {}}
    with pytest.raises(AlibabaCloudTaskError, match=r"1 of 3 tasks did not succeed.*instance_id=13"):
        op(hook, service=WF, action="CreateInstances", deferrable=True).execute_several_complete(
            ctx(store), event, **resume
        )
    # or succeeds: the list of the three statuses
    done_13 = dataclasses.replace(done_13, state=SUCCEEDED, raw_status="Success")
    event["task_status"] = done_13.to_dict()
    event["status"] = "success"
    result = op(hook, service=WF, action="CreateInstances", deferrable=True).execute_several_complete(
        ctx(store), event, **resume
    )
    assert [r["ids"]["instance_id"] for r in result] == ["11", "12", "13"]
    # a timeout or an error event ends the wait at once
    timeout = {"status": "timeout", "message": "late", "task_status": None, "service": WF, "ids": {}}
    with pytest.raises(AlibabaCloudTaskTimeoutError):
        op(hook, service=WF, action="CreateInstances", deferrable=True).execute_several_complete(
            ctx(store), timeout, **resume
        )
    error = {**timeout, "status": "error"}
    with pytest.raises(AirflowException, match="Polling failed"):
        op(hook, service=WF, action="CreateInstances", deferrable=True).execute_several_complete(
            ctx(store), error, **resume
        )


def test_several_tasks_resume_from_xcom_without_the_deferral_kwargs() -> None:
    """``dag.test()`` of Airflow 3.3 resumes with the event alone (the deferral's kwargs are
    replaced): the wait's state comes back from XCom."""
    hook = FakeHook()
    _two_phase(hook, {"11": ["Running"], "12": ["Running"]}, [11, 12])
    context = ctx(None)
    with pytest.raises(TaskDeferred):
        op(hook, service=WF, action="CreateInstances", deferrable=True).execute(context)
    assert context["ti"].xcoms["aliyun_wait"]["tasks"] == [{"instance_id": "11"}, {"instance_id": "12"}]
    hook.statuses["12"] = ["Success"]
    done = TaskStatus(service=WF, ids={"instance_id": "11"}, state=SUCCEEDED, raw_status="Success")
    event = {"status": "success", "message": "ok", "task_status": done.to_dict(), "service": WF, "ids": {}}
    result = op(hook, service=WF, action="CreateInstances", deferrable=True).execute_several_complete(
        context, event
    )
    assert [r["ids"]["instance_id"] for r in result] == ["11", "12"]
    with pytest.raises(AirflowException, match="without the state"):
        op(hook, service=WF, action="CreateInstances", deferrable=True).execute_several_complete(
            ctx(None), event
        )


def test_on_kill_cancels_every_task_not_ended() -> None:
    hook = FakeHook()
    operator = op(hook, service=WF, action="CreateInstances")
    operator._set_tasks(
        [{"instance_id": "11"}, {"instance_id": "12"}, {"instance_id": "13"}],
        [None, {"state": "succeeded"}, None],
    )
    operator.on_kill()
    assert hook.cancelled == [{"instance_id": "11"}, {"instance_id": "13"}]
    hook.cancelled.clear()
    quiet = op(hook, service=WF, action="CreateInstances", cancel_on_kill=False)
    quiet._set_tasks([{"instance_id": "11"}])
    quiet.on_kill()
    assert hook.cancelled == []


def test_on_kill_while_creating_says_what_keeps_running(capfd: pytest.CaptureFixture[str]) -> None:
    operator = op(FakeHook(), service=WF, action="CreateInstances")
    operator._creating = {"OperationId": "op-1"}
    operator.on_kill()
    out = capfd.readouterr()
    assert "still creating its tasks" in out.out + out.err


# --------------------------------------------------------------------------- the trigger


def test_trigger_cancels_the_other_tasks_on_kill(monkeypatch: pytest.MonkeyPatch) -> None:
    trigger = AlibabaCloudTaskTrigger(
        service=WF, ids={"instance_id": "11"}, cancel_on_kill=True, cancel_also=[{"instance_id": 12}]
    )
    classpath, kwargs = trigger.serialize()
    assert kwargs["cancel_also"] == [{"instance_id": "12"}]
    assert AlibabaCloudTaskTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert "cancel_also" not in AlibabaCloudTaskTrigger(service=WF, ids={"instance_id": "11"}).serialize()[1]

    cancelled: list[dict[str, str]] = []

    class Hook:
        async def acancel_task(self, service: str, **ids: Any) -> dict[str, Any]:
            cancelled.append(dict(ids))
            return {}

    monkeypatch.setattr(AlibabaCloudTaskTrigger, "_hook", lambda self: Hook())
    asyncio.run(AlibabaCloudTaskTrigger(**kwargs).on_kill())
    assert cancelled == [{"instance_id": "11"}, {"instance_id": "12"}]
    cancelled.clear()
    asyncio.run(AlibabaCloudTaskTrigger(**{**kwargs, "cancel_on_kill": False}).on_kill())
    assert cancelled == []


def test_an_explicit_endpoint_still_sends_the_services_bodies() -> None:
    hook = FakeHook()
    hook.answers["RunOne"] = [{"InstanceId": 7}]
    hook.statuses["7"] = ["Success"]
    op(hook, service=WF, action="RunOne", endpoint="http://127.0.0.1:1", body={"A": 1}).execute(ctx(None))
    assert hook.calls[0][1]["body_encoding"] == "form"  # the synthetic workflow service's (DataWorks')
    assert hook.calls[0][1]["service"] is None
