"""End to end through real Airflow: ``dag.test()`` runs the sensors (and, for deferrable ones,
the trigger inline) against the emulator over real HTTP."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from airflow_aliyun_tasks.testing import Emulator

pytestmark = [pytest.mark.airflow]

DAGS = Path(__file__).parent / "dags"


@functools.cache
def _dagbag() -> Any:
    from airflow_versions import dagbag

    bag = dagbag(str(DAGS))
    assert not bag.import_errors, bag.import_errors
    return bag


def run_dag(dag_id: str, conf: dict[str, Any]) -> tuple[str, dict[str, str]]:
    dag = _dagbag().get_dag(dag_id)
    dr = dag.test(run_conf=conf)
    return dr.state, {ti.task_id: ti.state for ti in dr.get_task_instances()}


def test_dataworks_deferrable_success(airflow_db: str, emulator: Emulator, make_conn: Any) -> None:
    make_conn()
    emulator.add_dataworks_job("job-ok-1", ["Running", "Running", "Success"])
    state, states = run_dag("e2e_dataworks_deferrable", {"job_id": "job-ok-1"})
    assert state == "success", states
    assert emulator.poll_count("dataworks", job_id="job-ok-1") == 3


# ids of one task per service, as the e2e DAGs' params take them
def ids_for(service: str, n: int) -> dict[str, Any]:
    return {
        "dlf": {"async_task_id": f"dlf-task-{n}"},
        "dataworks": {"job_id": f"dw-job-{n}"},
        "mma": {"source_id": 2000028, "async_task_id": 1000 + n},
        "pds": {"async_task_id": f"pds-task-{n}"},
        "emr_serverless_spark": {"workspace_id": "w-e2e", "job_run_id": f"jr-{n}"},
        "dataworks_workflow": {"workflow_instance_id": 7_000_000 + n},
        "pai_dlc": {"job_id": f"dlc-e2e-{n}"},
        "adb_spark": {"app_id": f"s202612010000e2e{n:04d}"},
        "flink_job": {"workspace_id": "ws-e2e", "namespace": "default-namespace", "job_id": f"flink-e2e-{n}"},
        "fc_async_task": {"function_name": "etl-e2e", "async_task_id": f"airflow-e2e-{n}"},
    }[service]


def polls(emulator: Emulator, service: str, ids: dict[str, Any]) -> int:
    return emulator.poll_count(service, **ids)


def add_task(
    emulator: Emulator, service: str, ids: dict[str, Any], statuses: list[str], **options: Any
) -> None:
    if service == "dlf":
        emulator.add_dlf_task(ids["async_task_id"], statuses, **options)
    elif service == "dataworks":
        emulator.add_dataworks_job(ids["job_id"], statuses, **options)
    elif service == "mma":
        emulator.add_mma_task(ids["source_id"], ids["async_task_id"], statuses, **options)
    elif service == "emr_serverless_spark":
        emulator.add_emr_serverless_spark_job_run(ids["workspace_id"], ids["job_run_id"], statuses, **options)
    elif service == "dataworks_workflow":
        emulator.add_dataworks_workflow_instance(ids["workflow_instance_id"], statuses, **options)
    elif service == "pai_dlc":
        emulator.add_pai_dlc_job(ids["job_id"], statuses, **options)
    elif service == "adb_spark":
        emulator.add_adb_spark_app(ids["app_id"], statuses, **options)
    elif service == "flink_job":
        emulator.add_flink_job(ids["workspace_id"], ids["namespace"], ids["job_id"], statuses, **options)
    elif service == "fc_async_task":
        emulator.add_fc_async_task(ids["function_name"], ids["async_task_id"], statuses, **options)
    else:
        emulator.add_pds_task(ids["async_task_id"], statuses, domain_id="bj1", **options)


LIFECYCLES = {
    # service: (success, failure, cancelled or None)
    "dlf": (["Running", "Running", "Success"], ["Running", "Failed"], ["Running", "KILLED"]),
    "dataworks": (["Running", "Running", "Success"], ["Running", "Fail"], ["Running", "Cancel"]),
    "mma": (["INIT", "DOING", "DONE"], ["DOING", "FAILED"], ["DOING", "STOPPED"]),
    "pds": (["Running", "Running", "Succeed"], ["Running", "Failed"], None),
    "emr_serverless_spark": (
        ["Submitted", "Running", "Success"],
        ["Running", "Failed"],
        ["Running", "Cancelling", "Cancelled"],
    ),
    # no cancelled state: a stopped instance reports Failure
    "dataworks_workflow": (["NotRun", "Running", "Success"], ["Running", "Failure"], None),
    "pai_dlc": (
        ["Queuing", "Running", "Succeeded"],
        ["Running", "Failed"],
        ["Running", "Stopping", "Stopped"],
    ),
    "adb_spark": (
        ["SUBMITTED", "RUNNING", "COMPLETED"],
        ["RUNNING", "FATAL"],
        ["RUNNING", "KILLING", "KILLED"],
    ),
    "flink_job": (
        ["STARTING", "RUNNING", "FINISHED"],
        ["RUNNING", "FAILED"],
        ["RUNNING", "CANCELLING", "CANCELLED"],
    ),
    "fc_async_task": (
        ["Enqueued", "Running", "Succeeded"],
        ["Running", "Retrying", "Failed"],
        ["Running", "Stopping", "Stopped"],
    ),
}
FAILURE_OPTIONS = {
    "dlf": {"message": "database staging_tmp is locked by another task"},
    "dataworks": {"error": "workflow spec is invalid: node 3 has no script"},
    "mma": {"error_msg": "source table hive_db.t1 does not exist"},
    "pds": {
        "error_code": "InternalError.ArchiveFailed",
        "error_message": "file 9520943DC264 is not readable",
    },
    "emr_serverless_spark": {
        "state_change_reason_message": "Driver exited with code 1: NameError in wordcount.py",
        "state_change_reason_code": "ERR-200001",
    },
    "dataworks_workflow": {"name": "nightly"},
    "pai_dlc": {
        "reason_message": "worker-0 exited with code 1: CUDA out of memory",
        "reason_code": "JobFailed",
    },
    "adb_spark": {"message": "Driver exited with code 1: ModuleNotFoundError: No module named 'numpy'"},
    "flink_job": {
        "failure_message": "org.apache.flink.runtime.JobException: Recovery is suppressed",
        "failure_reason": "JobFailed",
    },
    "fc_async_task": {"error_message": "Traceback: KeyError 'day' in handler.py"},
}
#: what the log says of a failure, where it is not the first failure option
FAILURE_TEXT = {"pds": "is not readable", "dataworks_workflow": "its task instances say why"}


@pytest.mark.parametrize("service", list(LIFECYCLES))
def test_deferrable_success_failure_cancelled(
    service: str, airflow_db: str, emulator: Emulator, make_conn: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    make_conn()
    success, failure, cancelled = LIFECYCLES[service]
    ok, bad, gone = ids_for(service, 1), ids_for(service, 2), ids_for(service, 3)
    add_task(emulator, service, ok, success)
    add_task(emulator, service, bad, failure, **FAILURE_OPTIONS[service])

    state, states = run_dag(f"e2e_{service}_deferrable", ok)
    assert (state, states) == ("success", {"wait": "success"})
    assert polls(emulator, service, ok) == 3

    capfd.readouterr()
    state, states = run_dag(f"e2e_{service}_deferrable", bad)
    assert (state, states) == ("failed", {"wait": "failed"})
    out = capfd.readouterr()
    log = out.out + out.err
    expected = FAILURE_TEXT.get(service) or next(iter(FAILURE_OPTIONS[service].values()))
    assert expected in log
    assert "Task failed" in log

    if cancelled is not None:
        add_task(emulator, service, gone, cancelled)
        capfd.readouterr()
        state, states = run_dag(f"e2e_{service}_deferrable", gone)
        assert (state, states) == ("failed", {"wait": "failed"})
        out = capfd.readouterr()
        assert "Task was cancelled" in out.out + out.err


@pytest.mark.parametrize("service", ["dataworks", "pds"])
@pytest.mark.parametrize("soft_fail", [False, True])
def test_timeout_while_deferred(
    service: str,
    soft_fail: bool,
    airflow_db: str,
    emulator: Emulator,
    make_conn: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    make_conn()
    ids = ids_for(service, 10 + soft_fail)
    add_task(emulator, service, ids, ["Running"])
    dag_id = f"e2e_{service}_timeout{'_soft_fail' if soft_fail else ''}"
    state, states = run_dag(dag_id, ids)
    if soft_fail:
        assert states == {"wait": "skipped"}
    else:
        assert (state, states) == ("failed", {"wait": "failed"})
        out = capfd.readouterr()
        assert "Sensor timed out" in out.out + out.err
    assert polls(emulator, service, ids) >= 2


def test_transient_faults_mid_wait_are_survived(airflow_db: str, emulator: Emulator, make_conn: Any) -> None:
    # max_retries=0: every fault reaches the trigger, which tolerates them (limit 5 in a row)
    make_conn(max_retries=0, timeout=1)
    ids = ids_for("dataworks", 20)
    add_task(emulator, "dataworks", ids, ["Running", "Running", "Running", "Success"])
    for kind in ("503", "throttling", "drop", "malformed_json"):
        emulator.inject_fault(kind, service="dataworks")
    state, states = run_dag("e2e_dataworks_deferrable", ids)
    assert (state, states) == ("success", {"wait": "success"})
    assert sum(emulator.fault_counts.values()) == 4


@pytest.mark.parametrize("mode", ["poke", "reschedule"])
def test_poke_and_reschedule_modes(mode: str, airflow_db: str, emulator: Emulator, make_conn: Any) -> None:
    make_conn()
    ids = ids_for("mma", 30 if mode == "poke" else 31)
    add_task(emulator, "mma", ids, ["DOING", "DOING", "DONE"], progress=[10, 60, 100])
    state, states = run_dag(f"e2e_mma_{mode}", ids)
    assert (state, states) == ("success", {"wait": "success"})
    assert emulator.poll_count("mma", **ids) == 3


def test_workflow_instance_sensor_on_the_worker(airflow_db: str, emulator: Emulator, make_conn: Any) -> None:
    make_conn()
    ids = ids_for("dataworks_workflow", 32)
    add_task(emulator, "dataworks_workflow", ids, ["WaitResource", "Running", "Success"])
    state, states = run_dag("e2e_dataworks_workflow_poke", ids)
    assert (state, states) == ("success", {"wait": "success"})
    assert emulator.poll_count("dataworks_workflow", **ids) == 3


def test_ids_templated_from_upstream_xcom(airflow_db: str, emulator: Emulator, make_conn: Any) -> None:
    make_conn()
    emulator.add_dataworks_job("dw-from-xcom", ["Running", "Success"])
    state, states = run_dag("e2e_xcom_ids", {"job_id": "dw-from-xcom"})
    assert (state, states) == ("success", {"produce": "success", "wait": "success"})
    assert emulator.poll_count("dataworks", job_id="dw-from-xcom") == 2


@pytest.mark.parametrize("mode", ["deferrable", "worker"])
def test_operator_backfills_workflow_instances(
    mode: str, airflow_db: str, emulator: Emulator, make_conn: Any
) -> None:
    """Two phases, three instances (one per business date), each waited for; the list of their
    statuses goes to XCom."""
    make_conn()
    emulator.set_dataworks_create_result(["Creating", "Creating", "Created"])
    emulator.set_start_lifecycle("dataworks_workflow", ["NotRun", "Running", "Success"])
    state, states = run_dag(f"e2e_operator_workflow_{mode}", {"last_day": "2026-01-03"})
    assert state == "success", states
    assert states == {"backfill": "success", "check": "success"}
    assert emulator.start_count("dataworks_workflow", "CreateWorkflowInstances") == 1
    instances = emulator.tasks("dataworks_workflow")
    assert len(instances) == 3
    assert {i["history"][-1] for i in instances} == {"Success"}


@pytest.mark.parametrize("mode", ["deferrable", "worker"])
def test_operator_starts_and_waits(mode: str, airflow_db: str, emulator: Emulator, make_conn: Any) -> None:
    make_conn()
    state, states = run_dag(f"e2e_operator_{mode}", {"workspace": f"w-e2e-{mode}"})
    assert state == "success", states
    assert states == {"spark_job": "success", "check": "success"}
    assert emulator.start_count("emr_serverless_spark", "StartJobRun") == 1
    (run,) = emulator.tasks("emr_serverless_spark")
    assert run["ids"]["workspace_id"] == f"w-e2e-{mode}"
    assert run["history"][-1] == "Success"


@pytest.mark.parametrize(("raw", "state"), [("SucceededReserving", "success"), ("FailedReserving", "failed")])
def test_pai_dlc_reserving_states_end_the_wait(
    raw: str, state: str, airflow_db: str, emulator: Emulator, make_conn: Any
) -> None:
    """A DLC job that ended and keeps its nodes ends the wait: the sensor does not wait for the
    nodes to be released (the scripted final state is never polled)."""
    make_conn()
    ids = ids_for("pai_dlc", 40 + (state == "failed"))
    add_task(emulator, "pai_dlc", ids, ["Running", raw, raw, raw, raw.removesuffix("Reserving")])
    dag_state, states = run_dag("e2e_pai_dlc_deferrable", ids)
    assert (dag_state, states) == (state, {"wait": state})
    assert polls(emulator, "pai_dlc", ids) == 2


@pytest.mark.parametrize("mode", ["deferrable", "worker"])
def test_operator_creates_a_pai_dlc_job_and_waits(
    mode: str, airflow_db: str, emulator: Emulator, make_conn: Any
) -> None:
    make_conn()
    state, states = run_dag(f"e2e_operator_pai_dlc_{mode}", {"workspace": f"ws-{mode}"})
    assert state == "success", states
    assert states == {"train": "success", "check_job": "success"}
    assert emulator.start_count("pai_dlc", "CreateJob") == 1
    (job,) = emulator.tasks("pai_dlc")
    assert job["history"][-1] == "Succeeded"


@pytest.mark.parametrize("mode", ["deferrable", "worker"])
def test_operator_submits_an_adb_spark_app_and_waits(
    mode: str, airflow_db: str, emulator: Emulator, make_conn: Any
) -> None:
    """SubmitSparkApp's form body (Data, an object, sent as JSON text) through the operator; the
    application goes SUBMITTED, STARTING, RUNNING, COMPLETED."""
    make_conn()
    state, states = run_dag(f"e2e_operator_adb_spark_{mode}", {"cluster": f"amv-{mode}"})
    assert state == "success", states
    assert states == {"spark_app": "success", "check_app": "success"}
    assert emulator.start_count("adb_spark", "SubmitSparkApp") == 1
    (app,) = emulator.tasks("adb_spark")
    assert app["history"] == ["SUBMITTED", "STARTING", "RUNNING", "COMPLETED"]


def test_adb_spark_failing_and_unknown_states_keep_the_wait(
    airflow_db: str, emulator: Emulator, make_conn: Any
) -> None:
    """FAILING is on its way to FAILED and UNKNOWN is the service not knowing: neither ends the
    wait; FAILED does, with AnalyticDB's message."""
    make_conn()
    ids = ids_for("adb_spark", 50)
    add_task(emulator, "adb_spark", ids, ["UNKNOWN", "RUNNING", "FAILING", "FAILED"], message="OOM")
    dag_state, states = run_dag("e2e_adb_spark_deferrable", ids)
    assert (dag_state, states) == ("failed", {"wait": "failed"})
    assert polls(emulator, "adb_spark", ids) == 4


@pytest.mark.parametrize("soft_fail", [False, True])
def test_a_streaming_flink_job_never_ends_the_wait(
    soft_fail: bool, airflow_db: str, emulator: Emulator, make_conn: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """A streaming job RUNNING is running: the sensor (for batch jobs) waits until its timeout."""
    make_conn()
    ids = ids_for("flink_job", 50 + soft_fail)
    add_task(emulator, "flink_job", ids, ["STARTING", "RUNNING"], execution_mode="STREAM")
    dag_id = f"e2e_flink_job_timeout{'_soft_fail' if soft_fail else ''}"
    state, states = run_dag(dag_id, ids)
    if soft_fail:
        assert states == {"wait": "skipped"}
    else:
        assert (state, states) == ("failed", {"wait": "failed"})
        out = capfd.readouterr()
        assert "Sensor timed out" in out.out + out.err
    assert polls(emulator, "flink_job", ids) >= 2
    assert emulator.cancel_count("flink_job", **ids) == 0  # a sensor never stops the job


@pytest.mark.parametrize("mode", ["deferrable", "worker"])
def test_operator_starts_a_flink_job_and_waits(
    mode: str, airflow_db: str, emulator: Emulator, make_conn: Any
) -> None:
    make_conn()
    state, states = run_dag(f"e2e_operator_flink_job_{mode}", {"workspace": f"ws-{mode}"})
    assert state == "success", states
    assert states == {"batch_job": "success", "check_job": "success"}
    assert emulator.start_count("flink_job", "StartJobWithParams") == 1
    (job,) = emulator.tasks("flink_job")
    assert job["ids"]["workspace_id"] == f"ws-{mode}"
    assert job["ids"]["namespace"] == "default-namespace"
    assert job["history"][-1] == "FINISHED"


@pytest.mark.parametrize("mode", ["deferrable", "worker"])
def test_operator_invokes_a_function_and_waits(
    mode: str, airflow_db: str, emulator: Emulator, make_conn: Any
) -> None:
    """InvokeFunction, asynchronously, with the task id the operator derives; the wait reads it
    back from the request (the answer is an empty 202)."""
    make_conn()
    state, states = run_dag(f"e2e_operator_fc_{mode}", {"function": f"etl-{mode}"})
    assert state == "success", states
    assert states == {"invoke": "success", "check_invocation": "success"}
    assert emulator.start_count("fc_async_task", "InvokeFunction") == 1
    (invocation,) = emulator.tasks("fc_async_task")
    assert invocation["ids"]["function_name"] == f"etl-{mode}"
    assert invocation["history"][-1] == "Succeeded"
