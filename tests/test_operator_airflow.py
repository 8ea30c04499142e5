"""The start-and-wait operator in a real Airflow deployment: scheduler, LocalExecutor workers,
dag-processor, API server and a triggerer as separate processes on 127.0.0.1 (PostgreSQL when
one accepts ``postgres`` on 127.0.0.1:5432, else SQLite), the emulator in its own process.

The proofs of "never twice": a worker killed with SIGKILL after the start, a triggerer killed
while the operator waits, a remote task that fails, a lost answer to the start call. And of
"cancel on kill": marking a waiting task failed cancels the EMR Serverless Spark job run once,
on the worker and in the triggerer; for a service without a cancel operation the log says the
remote task keeps running.

The same for DataWorks workflow instances (``dataworks_workflow``): a start without a client
token reconnected after SIGKILL, a two-phase start killed while its follow-up is polled that
resumes polling instead of creating again, and a backfill of several instances whose every
instance is stopped when the task is marked failed (deferred and on the worker). PAI DLC, whose
``CreateJob`` takes no client token, shows the same with the task state store alone: one job
across a killed worker's retry, ``StopJob`` once on kill. AnalyticDB Spark, whose ``KillSparkApp``
sends the application id in a form body as the status call does, is killed once when the waiting
task is marked failed, from the triggerer and from the worker. Flink's ``StopJob`` on kill carries the
``workspace`` header and the ``stopStrategy`` body (the emulator refuses it without them).
Function Compute, whose ``InvokeFunction`` is named by the task id the operator derives: a lost
answer whose retry Function Compute refuses with 409 waits on the one invocation,
``StopAsyncTask`` (an empty answer) once on kill.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_versions import AIRFLOW_3_3, needs_airflow
from stack import AirflowStack, postgres_available, wait_until

pytestmark = [pytest.mark.airflow]

#: Airflow 3.3's task state store: a retry reconnects to the task an earlier try started. Older
#: versions are shown submitting again (and saying so) instead.
STATE_STORE = needs_airflow("3.3", "The task state store (a retry reconnects to an earlier try's task)")
#: Airflow 3.3's triggerer calls a trigger's on_kill when its deferred task is marked failed.
TRIGGER_ON_KILL = needs_airflow("3.3", "The triggerer's call of on_kill (a deferred task marked failed)")
OLDER_ONLY = pytest.mark.skipif(AIRFLOW_3_3, reason="Airflow 3.3+ has the feature whose absence this shows")
NO_STORE_SAYS = "No task state store (it arrived in Airflow 3.3)"

DAGS = Path(__file__).parent / "operator_dags"
DAG_IDS = (
    "op_worker",
    "op_worker_once",
    "op_deferred",
    "op_dataworks_deferred",
    "op_workflow_worker",
    "op_workflow_backfill_worker",
    "op_workflow_backfill_deferred",
    "op_dlc_worker",
    "op_dlc_deferred",
    "op_adb_worker",
    "op_adb_deferred",
    "op_flink_worker",
    "op_flink_deferred",
    "op_fc_worker",
    "op_fc_deferred",
)
EMR = "emr_serverless_spark"
TASK = "spark_job"
DLC = "pai_dlc"
DLC_TASK = "train"
FLINK = "flink_job"
FLINK_TASK = "batch_job"
FC = "fc_async_task"
FC_TASK = "invoke"


@pytest.fixture(scope="module")
def stack() -> Iterator[AirflowStack]:
    database = "postgres" if postgres_available() is None else "sqlite"
    with AirflowStack(
        dags_folder=DAGS,
        database=database,
        triggerers=1,
        parallelism=4,
        name="operator",
        connections=lambda s: {
            "aliyun_default": s.default_connection(),
            "aliyun_once": s.default_connection(max_retries=0),
        },
    ) as st:
        st.wait_for_dags(DAG_IDS)
        yield st


@pytest.fixture
def emu(stack: AirflowStack) -> AirflowStack:
    stack.emulator("POST", "reset")
    return stack


# ------------------------------------------------------------------------------------ helpers


def ti(stack: AirflowStack, dag_id: str, run_id: str, task_id: str = TASK) -> dict[str, Any]:
    rows = stack.query(
        "SELECT state, try_number, pid, trigger_id FROM task_instance "
        "WHERE dag_id = :d AND run_id = :r AND task_id = :t",
        d=dag_id,
        r=run_id,
        t=task_id,
    )
    return rows[0] if rows else {}


def runs_in(stack: AirflowStack, workspace: str) -> list[dict[str, Any]]:
    tasks = stack.emulator_stats()["tasks"]
    return [t for t in tasks if t["service"] == EMR and t["ids"]["workspace_id"] == workspace]


def starts(stack: AirflowStack, service: str, action: str) -> dict[str, int]:
    for row in stack.emulator_stats()["starts"]:
        if (row["service"], row["action"]) == (service, action):
            return {"requests": row["requests"], "accepted": row["accepted"]}
    raise AssertionError(f"no start operation {service} {action}")


def cancels(stack: AirflowStack, ids: dict[str, str], service: str = EMR) -> dict[str, int]:
    for row in stack.emulator_stats()["cancels"]:
        if row["service"] == service and row["ids"] == ids:
            return {"requests": row["requests"], "accepted": row["accepted"]}
    return {"requests": 0, "accepted": 0}


def lifecycle(stack: AirflowStack, statuses: list[str], service: str = EMR) -> None:
    stack.emulator("POST", "start_lifecycle", {"service": service, "statuses": statuses})


def final_state(
    stack: AirflowStack, dag_id: str, run_id: str, task_id: str = TASK, timeout: float = 150
) -> str:
    def done() -> str | None:
        state = ti(stack, dag_id, run_id, task_id).get("state")
        return state if state in ("success", "failed", "skipped", "upstream_failed") else None

    return str(wait_until(done, timeout=timeout, interval=0.5, what=f"{dag_id}/{run_id} to finish"))


def one_running_run(stack: AirflowStack, workspace: str, polls: int = 2) -> dict[str, Any]:
    """The job run of ``workspace`` once it was polled ``polls`` times (the start is recorded)."""

    def polled() -> dict[str, Any] | None:
        found = runs_in(stack, workspace)
        assert len(found) <= 1, found
        return found[0] if found and found[0]["polls"] >= polls else None

    result: dict[str, Any] = wait_until(
        polled, timeout=120, interval=0.3, what=f"a polled run in {workspace}"
    )
    return result


def deferred_and_exit_seen(stack: AirflowStack, dag_id: str, run_id: str, task_id: str = TASK) -> None:
    wait_until(
        lambda: ti(stack, dag_id, run_id, task_id).get("state") == "deferred",
        timeout=120,
        what=f"{dag_id}/{run_id} to defer",
    )
    # Airflow 3.3.2 mishandles a trigger event that arrives before the scheduler processed the
    # worker's exit after defer() (apache/airflow#67287): act only after it.
    wait_until(
        lambda: (dag_id, run_id, task_id, -1) in stack.deferral_exits_seen(),
        timeout=120,
        what="the scheduler to process the deferral",
    )


def mark_failed(stack: AirflowStack, dag_id: str, run_id: str, task_id: str = TASK) -> None:
    stack.api(
        "PATCH", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", json={"new_state": "failed"}
    )


def return_value(stack: AirflowStack, dag_id: str, run_id: str, task_id: str = TASK) -> Any:
    return stack.xcom_return_values(dag_id)[(run_id, task_id, -1)]


# ------------------------------------------------------------------------------------- proofs


@STATE_STORE
def test_worker_killed_after_the_start_reconnects_on_retry(emu: AirflowStack) -> None:
    stack, ws, run_id = emu, "w-kill-worker", "kill_worker"
    lifecycle(stack, ["Submitted", *["Running"] * 10, "Success"])
    stack.trigger_dag("op_worker", run_id, {"workspace": ws})
    run = one_running_run(stack, ws)
    pid = wait_until(lambda: ti(stack, "op_worker", run_id).get("pid"), timeout=30, what="the task's pid")
    stack.kill_task_process(pid)  # the process running the operator, started by the stack

    assert final_state(stack, "op_worker", run_id) == "success", stack.explain(
        "op_worker", [{"run_id": run_id, "task_id": TASK, "map_index": -1, "state": "?"}]
    )
    assert ti(stack, "op_worker", run_id)["try_number"] == 2
    assert starts(stack, EMR, "StartJobRun")["requests"] == 1
    assert len(runs_in(stack, ws)) == 1
    value = return_value(stack, "op_worker", run_id)
    assert value["state"] == "succeeded"
    assert value["ids"] == run["ids"]
    assert "Reconnecting to the task an earlier try started" in stack.task_log_text("op_worker", run_id, TASK)


@OLDER_ONLY
def test_without_a_task_state_store_a_killed_workers_retry_submits_again(emu: AirflowStack) -> None:
    """Airflow 3.1 and 3.2: the retry cannot find the job run the killed try started; it starts
    another (its derived client token differs by try), and each try says so once."""
    stack, ws, run_id = emu, "w-kill-worker-no-store", "kill_worker_no_store"
    lifecycle(stack, ["Submitted", *["Running"] * 6, "Success"])
    stack.trigger_dag("op_worker", run_id, {"workspace": ws})
    one_running_run(stack, ws)
    pid = wait_until(lambda: ti(stack, "op_worker", run_id).get("pid"), timeout=30, what="the task's pid")
    stack.kill_task_process(pid)

    assert final_state(stack, "op_worker", run_id) == "success"
    assert ti(stack, "op_worker", run_id)["try_number"] == 2
    assert starts(stack, EMR, "StartJobRun")["requests"] == 2
    assert len(runs_in(stack, ws)) == 2
    log = stack.task_log_text("op_worker", run_id, TASK)
    assert log.count(NO_STORE_SAYS) == 2, log[-4000:]
    assert "Reconnecting to the task an earlier try started" not in log


@OLDER_ONLY
def test_without_trigger_on_kill_marking_the_deferred_task_failed_leaves_the_remote_task(
    emu: AirflowStack,
) -> None:
    """Airflow 3.1 and 3.2: the triggerer does not call on_kill, so the job run is not cancelled;
    the task's log said so when it deferred."""
    stack, ws, run_id = emu, "w-cancel-deferred-old", "cancel_deferred_old"
    lifecycle(stack, ["Submitted", "Running"])
    stack.trigger_dag("op_deferred", run_id, {"workspace": ws})
    deferred_and_exit_seen(stack, "op_deferred", run_id)
    run = one_running_run(stack, ws)
    mark_failed(stack, "op_deferred", run_id)

    wait_until(lambda: ti(stack, "op_deferred", run_id)["state"] == "failed", timeout=60, what="failed")
    polls = runs_in(stack, ws)[0]["polls"]
    time.sleep(10)  # what a cancel would take: nothing comes
    assert cancels(stack, run["ids"]) == {"requests": 0, "accepted": 0}
    assert runs_in(stack, ws)[0]["polls"] >= polls
    log = stack.task_log_text("op_deferred", run_id, TASK)
    assert log.count("cancel_on_kill: this Airflow's triggerer does not tell a trigger") == 1, log[-4000:]


def test_triggerer_killed_while_the_operator_waits(emu: AirflowStack) -> None:
    stack, ws, run_id = emu, "w-kill-triggerer", "kill_triggerer"
    lifecycle(stack, ["Submitted", "Running"])  # runs until released below
    stack.trigger_dag("op_deferred", run_id, {"workspace": ws})
    deferred_and_exit_seen(stack, "op_deferred", run_id)
    run = one_running_run(stack, ws, polls=2)
    stack.kill_triggerer(0)
    stack.start_triggerer(0)
    before = runs_in(stack, ws)[0]["polls"]
    wait_until(
        lambda: runs_in(stack, ws)[0]["polls"] > before + 1, timeout=120, what="the new triggerer to poll"
    )
    stack.add_tasks([{"service": EMR, **run["ids"], "statuses": ["Running", "Success"]}])

    assert final_state(stack, "op_deferred", run_id) == "success"
    assert ti(stack, "op_deferred", run_id)["try_number"] == 1
    assert starts(stack, EMR, "StartJobRun")["requests"] == 1
    assert len(runs_in(stack, ws)) == 1
    assert return_value(stack, "op_deferred", run_id)["ids"] == run["ids"]


def test_remote_task_fails_and_the_retry_submits_exactly_one_new_task(emu: AirflowStack) -> None:
    stack, ws, run_id = emu, "w-remote-fails", "remote_fails"
    lifecycle(stack, ["Running", "Failed"])
    stack.trigger_dag("op_worker", run_id, {"workspace": ws})
    wait_until(
        lambda: ti(stack, "op_worker", run_id).get("state") == "up_for_retry",
        timeout=120,
        interval=0.3,
        what="the first try to fail",
    )
    lifecycle(stack, ["Running", "Success"])  # what the retry's new job run does

    assert final_state(stack, "op_worker", run_id) == "success"
    assert ti(stack, "op_worker", run_id)["try_number"] == 2
    assert starts(stack, EMR, "StartJobRun")["requests"] == 2
    found = runs_in(stack, ws)
    assert sorted(t["history"][-1] for t in found) == ["Failed", "Success"]
    log = stack.task_log_text("op_worker", run_id, TASK)
    assert "Task failed" in log
    if AIRFLOW_3_3:
        assert "submitting afresh" in log  # the retry found the failed run in the state store
    else:
        assert log.count(NO_STORE_SAYS) == 2, log[-4000:]  # once per try


@STATE_STORE
def test_lost_start_answer_gives_the_retry_the_same_job_run(emu: AirflowStack) -> None:
    stack, ws, run_id = emu, "w-lost-answer", "lost_answer"
    lifecycle(stack, ["Running", "Success"])
    stack.emulator("POST", "faults", {"kind": "drop_after_accept", "count": 1, "service": EMR})
    stack.trigger_dag("op_worker_once", run_id, {"workspace": ws})

    assert final_state(stack, "op_worker_once", run_id) == "success"
    assert ti(stack, "op_worker_once", run_id)["try_number"] == 2  # the first try lost the answer
    assert starts(stack, EMR, "StartJobRun") == {"requests": 2, "accepted": 2}
    (run,) = runs_in(stack, ws)  # one job run: the retry's token found the first one
    assert return_value(stack, "op_worker_once", run_id)["ids"] == run["ids"]


@TRIGGER_ON_KILL
def test_marking_the_deferred_task_failed_cancels_the_job_run_once(emu: AirflowStack) -> None:
    stack, ws, run_id = emu, "w-cancel-deferred", "cancel_deferred"
    lifecycle(stack, ["Submitted", "Running"])
    stack.trigger_dag("op_deferred", run_id, {"workspace": ws})
    deferred_and_exit_seen(stack, "op_deferred", run_id)
    run = one_running_run(stack, ws)
    mark_failed(stack, "op_deferred", run_id)

    wait_until(
        lambda: cancels(stack, run["ids"])["accepted"] == 1,
        timeout=90,
        what="CancelJobRun from the triggerer",
    )
    time.sleep(3)
    assert cancels(stack, run["ids"]) == {"requests": 1, "accepted": 1}
    assert ti(stack, "op_deferred", run_id)["state"] == "failed"
    assert "Cancelled the remote task with EMR Serverless Spark CancelJobRun" in stack.task_log_text(
        "op_deferred", run_id, TASK
    )


def test_marking_the_task_failed_on_the_worker_cancels_the_job_run_once(emu: AirflowStack) -> None:
    stack, ws, run_id = emu, "w-cancel-worker", "cancel_worker"
    lifecycle(stack, ["Submitted", "Running"])
    stack.trigger_dag("op_worker", run_id, {"workspace": ws})
    run = one_running_run(stack, ws)
    mark_failed(stack, "op_worker", run_id)

    try:
        wait_until(
            lambda: cancels(stack, run["ids"])["accepted"] == 1, timeout=90, what="CancelJobRun from on_kill"
        )
    except Exception:
        print(stack.task_log_text("op_worker", run_id, TASK)[-6000:])
        print(stack.component_logs.joinpath("scheduler.log").read_text()[-4000:])
        raise
    wait_until(
        lambda: not _alive(ti(stack, "op_worker", run_id).get("pid")), timeout=60, what="the task to exit"
    )
    assert cancels(stack, run["ids"]) == {"requests": 1, "accepted": 1}
    assert ti(stack, "op_worker", run_id)["state"] == "failed"
    assert starts(stack, EMR, "StartJobRun")["requests"] == 1


@TRIGGER_ON_KILL
def test_marking_a_task_without_a_cancel_operation_failed_says_it_keeps_running(emu: AirflowStack) -> None:
    stack, run_id, task_id = emu, "no_cancel", "import_workflow"
    lifecycle(stack, ["Running"], service="dataworks")
    stack.trigger_dag("op_dataworks_deferred", run_id)
    deferred_and_exit_seen(stack, "op_dataworks_deferred", run_id, task_id)

    # The trigger polls only once it runs in the triggerer: a task marked failed before the
    # triggerer picked its trigger up is never run, and so never killed.
    def polled() -> bool:
        return any(t["polls"] >= 1 for t in stack.emulator_stats()["tasks"] if t["service"] == "dataworks")

    wait_until(polled, timeout=120, interval=0.3, what="the trigger's first poll")
    mark_failed(stack, "op_dataworks_deferred", run_id, task_id)

    def logged() -> str | None:
        log = stack.task_log_text("op_dataworks_deferred", run_id, task_id)
        return log if "the remote task keeps running" in log else None

    log = wait_until(logged, timeout=90, what="the trigger's on_kill log line")
    (job,) = [t for t in stack.emulator_stats()["tasks"] if t["service"] == "dataworks"]
    assert f"job_id={job['ids']['job_id']}" in log
    assert ti(stack, "op_dataworks_deferred", run_id, task_id)["state"] == "failed"


# ------------------------------------------------------------------------------------- PAI DLC


def dlc_jobs(stack: AirflowStack) -> list[dict[str, Any]]:
    return [t for t in stack.emulator_stats()["tasks"] if t["service"] == DLC]


def one_running_job(stack: AirflowStack, polls: int = 2) -> dict[str, Any]:
    """The one PAI DLC job once it was polled ``polls`` times (the create is recorded)."""

    def polled() -> dict[str, Any] | None:
        found = dlc_jobs(stack)
        assert len(found) <= 1, found
        return found[0] if found and found[0]["polls"] >= polls else None

    result: dict[str, Any] = wait_until(polled, timeout=120, interval=0.3, what="a polled PAI DLC job")
    return result


@STATE_STORE
def test_dlc_worker_killed_after_the_create_reconnects_on_retry(emu: AirflowStack) -> None:
    """No client token: only the task state store keeps the retry from creating a second job."""
    stack, dag_id, run_id = emu, "op_dlc_worker", "dlc_kill_worker"
    lifecycle(stack, ["Queuing", *["Running"] * 10, "Succeeded"], service=DLC)
    stack.trigger_dag(dag_id, run_id)
    job = one_running_job(stack)
    pid = wait_until(
        lambda: ti(stack, dag_id, run_id, DLC_TASK).get("pid"), timeout=30, what="the task's pid"
    )
    stack.kill_task_process(pid)

    assert final_state(stack, dag_id, run_id, DLC_TASK) == "success"
    assert ti(stack, dag_id, run_id, DLC_TASK)["try_number"] == 2
    assert starts(stack, DLC, "CreateJob")["requests"] == 1
    assert len(dlc_jobs(stack)) == 1
    value = return_value(stack, dag_id, run_id, DLC_TASK)
    assert (value["state"], value["ids"]) == ("succeeded", job["ids"])
    assert "Reconnecting to the task an earlier try started" in stack.task_log_text(dag_id, run_id, DLC_TASK)


@pytest.mark.parametrize(
    ("dag_id", "where"),
    [pytest.param("op_dlc_deferred", "triggerer", marks=TRIGGER_ON_KILL), ("op_dlc_worker", "worker")],
)
def test_marking_a_waiting_dlc_task_failed_stops_the_job_once(
    emu: AirflowStack, dag_id: str, where: str
) -> None:
    stack, run_id = emu, f"dlc_cancel_{where}"
    lifecycle(stack, ["Queuing", "Running"], service=DLC)
    stack.trigger_dag(dag_id, run_id)
    if where == "triggerer":
        deferred_and_exit_seen(stack, dag_id, run_id, DLC_TASK)
    job = one_running_job(stack)
    mark_failed(stack, dag_id, run_id, DLC_TASK)

    wait_until(
        lambda: cancels(stack, job["ids"], DLC)["accepted"] == 1, timeout=90, what=f"StopJob from the {where}"
    )
    if where == "worker":
        wait_until(
            lambda: not _alive(ti(stack, dag_id, run_id, DLC_TASK).get("pid")),
            timeout=60,
            what="the task to exit",
        )
    else:
        time.sleep(3)
    assert cancels(stack, job["ids"], DLC) == {"requests": 1, "accepted": 1}
    assert ti(stack, dag_id, run_id, DLC_TASK)["state"] == "failed"
    assert starts(stack, DLC, "CreateJob")["requests"] == 1
    assert dlc_jobs(stack)[0]["statuses"][-2:] == ["Stopping", "Stopped"]
    if where == "triggerer":
        log = stack.task_log_text(dag_id, run_id, DLC_TASK)
        assert "Cancelled the remote task with PAI DLC StopJob" in log


# ------------------------------------------------------------------------------ AnalyticDB Spark

ADB = "adb_spark"
ADB_TASK = "spark_app"


@pytest.mark.parametrize(
    ("dag_id", "where"),
    [pytest.param("op_adb_deferred", "triggerer", marks=TRIGGER_ON_KILL), ("op_adb_worker", "worker")],
)
def test_marking_a_waiting_adb_spark_task_failed_kills_the_app_once(
    emu: AirflowStack, dag_id: str, where: str
) -> None:
    stack, run_id = emu, f"adb_cancel_{where}"
    lifecycle(stack, ["SUBMITTED", "RUNNING"], service=ADB)
    stack.trigger_dag(dag_id, run_id)
    if where == "triggerer":
        deferred_and_exit_seen(stack, dag_id, run_id, ADB_TASK)

    def polled() -> dict[str, Any] | None:
        found = [t for t in stack.emulator_stats()["tasks"] if t["service"] == ADB]
        assert len(found) <= 1, found
        return found[0] if found and found[0]["polls"] >= 2 else None

    app = wait_until(polled, timeout=120, interval=0.3, what="a polled AnalyticDB Spark application")
    mark_failed(stack, dag_id, run_id, ADB_TASK)

    wait_until(
        lambda: cancels(stack, app["ids"], ADB)["accepted"] == 1,
        timeout=90,
        what=f"KillSparkApp from the {where}",
    )
    if where == "worker":
        wait_until(
            lambda: not _alive(ti(stack, dag_id, run_id, ADB_TASK).get("pid")),
            timeout=60,
            what="the task to exit",
        )
    else:
        time.sleep(3)
    assert cancels(stack, app["ids"], ADB) == {"requests": 1, "accepted": 1}
    assert ti(stack, dag_id, run_id, ADB_TASK)["state"] == "failed"
    assert starts(stack, ADB, "SubmitSparkApp")["requests"] == 1
    (killed,) = [t for t in stack.emulator_stats()["tasks"] if t["service"] == ADB]
    assert killed["statuses"][-2:] == ["KILLING", "KILLED"]
    if where == "triggerer":
        log = stack.task_log_text(dag_id, run_id, ADB_TASK)
        assert "Cancelled the remote task with AnalyticDB Spark KillSparkApp" in log


# ----------------------------------------------------------------------------- Function Compute


def fc_tasks(stack: AirflowStack) -> list[dict[str, Any]]:
    return [t for t in stack.emulator_stats()["tasks"] if t["service"] == FC]


def test_fc_lost_invoke_answer_waits_on_the_one_invocation(emu: AirflowStack) -> None:
    """The answer of the invocation is lost after Function Compute took it; the client's retry
    names the same task and is refused with 409; the operator waits on the task: one run of the
    function, the task succeeds on its first try."""
    stack, dag_id, run_id = emu, "op_fc_worker", "fc_lost_answer"
    lifecycle(stack, ["Enqueued", "Running", "Succeeded"], service=FC)
    stack.emulator("POST", "faults", {"kind": "drop_after_accept", "count": 1, "service": FC})
    stack.trigger_dag(dag_id, run_id)

    assert final_state(stack, dag_id, run_id, FC_TASK) == "success"
    assert ti(stack, dag_id, run_id, FC_TASK)["try_number"] == 1
    assert starts(stack, FC, "InvokeFunction") == {"requests": 2, "accepted": 1}
    (task,) = fc_tasks(stack)
    value = return_value(stack, dag_id, run_id, FC_TASK)
    assert (value["state"], value["ids"]) == ("succeeded", task["ids"])
    assert task["ids"]["async_task_id"].startswith("airflow-")
    assert "exists already" in stack.task_log_text(dag_id, run_id, FC_TASK)


@pytest.mark.parametrize(
    ("dag_id", "where"),
    [pytest.param("op_fc_deferred", "triggerer", marks=TRIGGER_ON_KILL), ("op_fc_worker", "worker")],
)
def test_marking_a_waiting_fc_task_failed_stops_the_task_once(
    emu: AirflowStack, dag_id: str, where: str
) -> None:
    stack, run_id = emu, f"fc_cancel_{where}"
    lifecycle(stack, ["Enqueued", "Running"], service=FC)
    stack.trigger_dag(dag_id, run_id)
    if where == "triggerer":
        deferred_and_exit_seen(stack, dag_id, run_id, FC_TASK)
    task = wait_until(
        lambda: next((t for t in fc_tasks(stack) if t["polls"] >= 2), None),
        timeout=120,
        what="a polled FC task",
    )
    mark_failed(stack, dag_id, run_id, FC_TASK)

    wait_until(
        lambda: cancels(stack, task["ids"], FC)["accepted"] == 1,
        timeout=90,
        what=f"StopAsyncTask from the {where}",
    )
    if where == "worker":
        wait_until(
            lambda: not _alive(ti(stack, dag_id, run_id, FC_TASK).get("pid")),
            timeout=60,
            what="the task to exit",
        )
    else:
        time.sleep(3)
    assert cancels(stack, task["ids"], FC) == {"requests": 1, "accepted": 1}
    assert ti(stack, dag_id, run_id, FC_TASK)["state"] == "failed"
    assert starts(stack, FC, "InvokeFunction")["requests"] == 1
    assert fc_tasks(stack)[0]["statuses"][-2:] == ["Stopping", "Stopped"]
    if where == "triggerer":
        log = stack.task_log_text(dag_id, run_id, FC_TASK)
        assert "Cancelled the remote task with Function Compute StopAsyncTask" in log


def _alive(pid: Any) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# --------------------------------------------------------------------------- DataWorks workflow instances

WF = "dataworks_workflow"
WF_TASK = "workflow"


def instances(stack: AirflowStack) -> list[dict[str, Any]]:
    return [t for t in stack.emulator_stats()["tasks"] if t["service"] == WF]


def polled_instances(stack: AirflowStack, count: int, polls: int = 1) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]] | None:
        seen = instances(stack)
        return seen if len(seen) == count and all(t["polls"] >= polls for t in seen) else None

    result: list[dict[str, Any]] = wait_until(
        found, timeout=120, interval=0.3, what=f"{count} polled instances"
    )
    return result


@STATE_STORE
def test_workflow_worker_killed_after_the_start_reconnects_on_retry(emu: AirflowStack) -> None:
    stack, dag_id, run_id = emu, "op_workflow_worker", "wf_kill_worker"
    lifecycle(stack, ["NotRun", *["Running"] * 10, "Success"], service=WF)
    stack.trigger_dag(dag_id, run_id)
    (instance,) = polled_instances(stack, 1, polls=2)
    pid = wait_until(lambda: ti(stack, dag_id, run_id, WF_TASK).get("pid"), timeout=30, what="the task's pid")
    stack.kill_task_process(pid)

    assert final_state(stack, dag_id, run_id, WF_TASK) == "success"
    assert ti(stack, dag_id, run_id, WF_TASK)["try_number"] == 2
    assert starts(stack, WF, "ExecuteAdhocWorkflowInstance")["requests"] == 1
    assert len(instances(stack)) == 1
    assert return_value(stack, dag_id, run_id, WF_TASK)["ids"] == instance["ids"]
    assert "Reconnecting to the task an earlier try started" in stack.task_log_text(dag_id, run_id, WF_TASK)


@STATE_STORE
def test_workflow_two_phase_start_killed_while_creating_resumes_polling(emu: AirflowStack) -> None:
    stack, dag_id, run_id = emu, "op_workflow_backfill_worker", "wf_kill_creating"
    lifecycle(stack, ["Running", "Success"], service=WF)
    stack.emulator("POST", "dataworks_create_result", {"statuses": [*["Creating"] * 12, "Created"]})
    stack.trigger_dag(dag_id, run_id)
    # the start, then two polls of GetCreateWorkflowInstancesResult: the operation is recorded
    wait_until(
        lambda: stack.emulator_stats()["requests"][WF] >= 3,
        timeout=120,
        interval=0.3,
        what="the follow-up polls",
    )
    assert instances(stack) == []
    pid = wait_until(lambda: ti(stack, dag_id, run_id, WF_TASK).get("pid"), timeout=30, what="the task's pid")
    stack.kill_task_process(pid)

    assert final_state(stack, dag_id, run_id, WF_TASK, timeout=180) == "success"
    assert ti(stack, dag_id, run_id, WF_TASK)["try_number"] == 2
    assert starts(stack, WF, "CreateWorkflowInstances")["requests"] == 1
    created = instances(stack)
    assert len(created) == 2
    value = return_value(stack, dag_id, run_id, WF_TASK)
    assert sorted(v["ids"]["workflow_instance_id"] for v in value) == sorted(
        t["ids"]["workflow_instance_id"] for t in created
    )
    assert {v["state"] for v in value} == {"succeeded"}
    assert "Resuming the start an earlier try made" in stack.task_log_text(dag_id, run_id, WF_TASK)


@TRIGGER_ON_KILL
def test_marking_the_deferred_backfill_failed_stops_every_instance(emu: AirflowStack) -> None:
    stack, dag_id, run_id = emu, "op_workflow_backfill_deferred", "wf_cancel_deferred"
    lifecycle(stack, ["Running"], service=WF)
    stack.trigger_dag(dag_id, run_id)
    deferred_and_exit_seen(stack, dag_id, run_id, WF_TASK)
    # the trigger polls the first instance; the second waits for the operator's next resume
    wait_until(
        lambda: any(t["polls"] >= 1 for t in instances(stack)),
        timeout=120,
        interval=0.3,
        what="a trigger poll",
    )
    created = instances(stack)
    assert len(created) == 2
    mark_failed(stack, dag_id, run_id, WF_TASK)

    for instance in created:
        wait_until(
            lambda i=instance: cancels(stack, i["ids"], WF)["accepted"] == 1,
            timeout=90,
            what="StopWorkflowInstances from the triggerer",
        )
    time.sleep(3)
    assert [cancels(stack, i["ids"], WF) for i in created] == [{"requests": 1, "accepted": 1}] * 2
    assert ti(stack, dag_id, run_id, WF_TASK)["state"] == "failed"
    assert "Cancelled the remote task with DataWorks workflow StopWorkflowInstances" in stack.task_log_text(
        dag_id, run_id, WF_TASK
    )


def test_marking_the_backfill_failed_on_the_worker_stops_every_instance(emu: AirflowStack) -> None:
    stack, dag_id, run_id = emu, "op_workflow_backfill_worker", "wf_cancel_worker"
    lifecycle(stack, ["Running"], service=WF)
    stack.trigger_dag(dag_id, run_id)
    created = polled_instances(stack, 2, polls=2)
    mark_failed(stack, dag_id, run_id, WF_TASK)

    for instance in created:
        wait_until(
            lambda i=instance: cancels(stack, i["ids"], WF)["accepted"] == 1,
            timeout=90,
            what="StopWorkflowInstances from on_kill",
        )
    wait_until(
        lambda: not _alive(ti(stack, dag_id, run_id, WF_TASK).get("pid")), timeout=60, what="the task to exit"
    )
    assert [cancels(stack, i["ids"], WF) for i in created] == [{"requests": 1, "accepted": 1}] * 2
    assert ti(stack, dag_id, run_id, WF_TASK)["state"] == "failed"
    assert starts(stack, WF, "CreateWorkflowInstances")["requests"] == 1


# ------------------------------------------------------------------------------------- Flink


@pytest.mark.parametrize(
    ("dag_id", "where"),
    [pytest.param("op_flink_deferred", "triggerer", marks=TRIGGER_ON_KILL), ("op_flink_worker", "worker")],
)
def test_marking_a_waiting_flink_task_failed_stops_the_job_once(
    emu: AirflowStack, dag_id: str, where: str
) -> None:
    stack, run_id = emu, f"flink_cancel_{where}"
    lifecycle(stack, ["STARTING", "RUNNING"], service=FLINK)
    stack.trigger_dag(dag_id, run_id)
    if where == "triggerer":
        deferred_and_exit_seen(stack, dag_id, run_id, FLINK_TASK)

    def polled() -> dict[str, Any] | None:
        found = [t for t in stack.emulator_stats()["tasks"] if t["service"] == FLINK]
        assert len(found) <= 1, found
        return found[0] if found and found[0]["polls"] >= 2 else None

    job: dict[str, Any] = wait_until(polled, timeout=120, interval=0.3, what="a polled Flink job")
    assert job["ids"]["workspace_id"] == "a14bd5d90a"
    mark_failed(stack, dag_id, run_id, FLINK_TASK)

    wait_until(
        lambda: cancels(stack, job["ids"], FLINK)["accepted"] == 1,
        timeout=90,
        what=f"StopJob from the {where}",
    )
    if where == "worker":
        wait_until(
            lambda: not _alive(ti(stack, dag_id, run_id, FLINK_TASK).get("pid")),
            timeout=60,
            what="the task to exit",
        )
    else:
        time.sleep(3)
    assert cancels(stack, job["ids"], FLINK) == {"requests": 1, "accepted": 1}
    assert ti(stack, dag_id, run_id, FLINK_TASK)["state"] == "failed"
    assert starts(stack, FLINK, "StartJobWithParams")["requests"] == 1
    (stopped,) = [t for t in stack.emulator_stats()["tasks"] if t["service"] == FLINK]
    assert stopped["statuses"][-2:] == ["CANCELLING", "CANCELLED"]
    if where == "triggerer":
        log = stack.task_log_text(dag_id, run_id, FLINK_TASK)
        assert "Cancelled the remote task with Flink StopJob" in log
