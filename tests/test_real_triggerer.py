"""Deferrable sensors in a real Airflow deployment: scheduler, dag-processor, API server and one
triggerer as separate processes on 127.0.0.1, SQLite, LocalExecutor, the emulator over HTTP.

Three DAG runs each wait on one task per service at once. The emulator keeps every task
``Running`` until all twelve sensors are observed in the ``deferred`` state, then plays each
task's final lifecycle: most succeed, one fails, one is cancelled.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_versions import needs_airflow
from stack import AirflowStack, find_secrets, wait_until

pytestmark = [pytest.mark.airflow]

DAGS = Path(__file__).parent / "deploy_dags"
DAG_ID = "rt_waits"
RUNS = {"run0": ("r0", 100), "run1": ("r1", 101), "run2": ("r2", 102)}
SERVICES = ("dlf", "dataworks", "mma", "pds")
TRIGGER_KWARGS = {
    "service",
    "ids",
    "aliyun_conn_id",
    "poll_interval",
    "end_time",
    "max_consecutive_failures",
    "initial_delay",
    "success_states",
    "failure_states",
    "partial_success_ok",
}
DLF_FAILURE = "database sales_tmp is locked by another task"

#: (run_id, task_id) -> expected outcome; everything else succeeds
OUTCOMES = {("run1", "dlf"): "failed", ("run2", "dataworks"): "cancelled"}


def emulator_task(run_id: str, service: str, statuses: list[str], **options: Any) -> dict[str, Any]:
    prefix, source_id = RUNS[run_id]
    ids: dict[str, Any] = {
        "dlf": {"task_id": f"{prefix}-dlf"},
        "dataworks": {"job_id": f"{prefix}-dw"},
        "mma": {"source_id": source_id, "async_task_id": 7},
        "pds": {"async_task_id": f"{prefix}-pds"},
    }[service]
    return {"service": service, **ids, "statuses": statuses, **options}


RUNNING = {"dlf": ["Running"], "dataworks": ["Running"], "mma": ["DOING"], "pds": ["Running"]}
FINAL = {
    "success": {
        "dlf": ["Running", "Success"],
        "dataworks": ["Running", "Success"],
        "mma": ["DOING", "DONE"],
        "pds": ["Running", "Succeed"],
    },
    "failed": {"dlf": ["Running", "Failed"]},
    "cancelled": {"dataworks": ["Running", "Cancel"]},
}


def wait_ready_to_release(stack: AirflowStack, tis: set[tuple[str, str]]) -> None:
    """Wait until the triggerer polls every task while deferred (the first poll was the sensor's)
    and the scheduler has processed every deferral: Airflow 3.3.2 fails a task whose trigger
    fires before the scheduler has processed the worker's exit after defer() (apache/airflow#67287),
    so a test releases its tasks only after that."""
    wait_until(
        lambda: all(t["polls"] >= 3 for t in stack.emulator_stats()["tasks"]),
        timeout=120,
        what="the triggerer to poll every task",
    )
    wanted = {(DAG_ID, r, s, -1) for r, s in tis}
    wait_until(
        lambda: wanted <= stack.deferral_exits_seen(),
        timeout=300,
        what="the scheduler to process every deferral",
    )


def finished(stack: AirflowStack) -> dict[tuple[str, str], str] | None:
    """Every task instance's state by (run_id, task_id), once none is still to finish."""
    states = {(t["run_id"], t["task_id"]): t["state"] for t in stack.task_instances(DAG_ID)}
    done = all(state in ("success", "failed", "skipped") for state in states.values())
    return states if done else None


def test_sensors_defer_to_a_real_triggerer_and_finish_right() -> None:
    with AirflowStack(dags_folder=DAGS, database="sqlite", triggerers=1, name="real-triggerer") as stack:
        stack.wait_for_dags([DAG_ID])
        # Every task stays running until released below.
        stack.add_tasks([emulator_task(r, s, RUNNING[s]) for r in RUNS for s in SERVICES])
        for run_id, (prefix, source_id) in RUNS.items():
            stack.trigger_dag(DAG_ID, run_id, {"prefix": prefix, "source_id": source_id})

        expected_tis = {(r, s) for r in RUNS for s in SERVICES}

        def all_deferred() -> bool:
            tis = stack.task_instances(DAG_ID)
            failed = [t for t in tis if t["state"] in ("failed", "upstream_failed", "up_for_retry")]
            assert not failed, f"{len(failed)} tasks failed before any wait ended:\n" + stack.explain(
                DAG_ID, failed
            )
            deferred = {(t["run_id"], t["task_id"]) for t in tis if t["state"] == "deferred"}
            return deferred == expected_tis

        wait_until(all_deferred, timeout=300, interval=0.5, what="all 12 sensors to be deferred")

        # The trigger rows: one per wait, our trigger, plain kwargs without any credential.
        triggers = stack.triggers()
        assert len(triggers) == len(expected_tis)
        for row in triggers:
            assert row["classpath"] == "airflow_aliyun_tasks.triggers.AlibabaCloudTaskTrigger"
            assert set(row["kwargs"]) == TRIGGER_KWARGS
            assert row["kwargs"]["aliyun_conn_id"] == "aliyun_default"
            raw = str(row["kwargs_raw"])
            assert stack.access_key_secret not in raw
            assert stack.access_key_id not in raw

        wait_ready_to_release(stack, expected_tis)

        # Release: every task plays its final lifecycle.
        final = []
        for run_id, service in sorted(expected_tis):
            outcome = OUTCOMES.get((run_id, service), "success")
            options = {"message": DLF_FAILURE} if outcome == "failed" else {}
            final.append(emulator_task(run_id, service, FINAL[outcome][service], **options))
        stack.add_tasks(final)

        states = wait_until(lambda: finished(stack), timeout=300, interval=1.0, what="every wait to finish")
        expected_states = {
            key: ("success" if OUTCOMES.get(key, "success") == "success" else "failed")
            for key in expected_tis
        }
        assert states == expected_states

        # Successful waits push the final status to XCom; failed ones say why in the task log.
        xcoms = stack.xcom_return_values(DAG_ID)
        for (run_id, service), outcome in sorted(expected_states.items()):
            log = stack.task_log_text(DAG_ID, run_id, service)
            assert "Deferring: polling every" in log
            if outcome == "success":
                value = xcoms[(run_id, service, -1)]
                assert value["state"] == "succeeded"
                assert value["service"] == service
            else:
                assert (run_id, service, -1) not in xcoms
        assert DLF_FAILURE in stack.task_log_text(DAG_ID, "run1", "dlf")
        assert "Task failed" in stack.task_log_text(DAG_ID, "run1", "dlf")
        assert "Task was cancelled" in stack.task_log_text(DAG_ID, "run2", "dataworks")

        # The triggerer wrote the trigger's log lines next to the task's log.
        trigger_logs = sorted((stack.home / "logs").rglob("*.log.trigger.*.log"))
        assert len(trigger_logs) == len(expected_tis)
        assert all(
            re.search(r"running \(raw status '(Running|DOING)'\)", p.read_text()) for p in trigger_logs
        )

        # No secret in any log file under AIRFLOW_HOME, nor anywhere in the metadata database.
        files = {str(p.relative_to(stack.home)): p.read_text(errors="replace") for p in stack.log_files()}
        tables = {f"table {k}": v for k, v in stack.dump_tables().items()}
        needles = {"AccessKey secret": stack.access_key_secret}
        assert find_secrets(files, needles) == {"AccessKey secret": []}
        assert find_secrets(tables, needles) == {"AccessKey secret": []}
        assert any("component-logs/triggerer-0.log" in name for name in files)


@needs_airflow("3.2", "[logging] namespace_levels")
def test_the_triggerer_deadlock_workaround_keeps_info_lines_off_the_log_socket() -> None:
    """The workaround docs/troubleshooting.md gives for Airflow's triggerer deadlock (the runner
    blocked writing trigger log lines while the supervisor is blocked sending it triggers):
    ``AIRFLOW__LOGGING__NAMESPACE_LEVELS=airflow_aliyun_tasks=WARNING`` on the triggerer. With it,
    the package's triggers send the runner's log socket no INFO line (the trigger log files are
    what the supervisor read from that socket), still send their warnings, and wait as before.
    ``bench/triggerer.py`` shows the effect at scale: 10,000 waits starting without a stall."""
    quiet = {"AIRFLOW__LOGGING__NAMESPACE_LEVELS": "airflow_aliyun_tasks=WARNING"}
    with AirflowStack(
        dags_folder=DAGS, database="sqlite", triggerers=1, name="quiet-triggerer", env=quiet
    ) as stack:
        stack.wait_for_dags([DAG_ID])
        stack.add_tasks([emulator_task("run0", s, RUNNING[s]) for s in SERVICES])
        stack.trigger_dag(DAG_ID, "run0", {"prefix": "r0", "source_id": 100})
        wait_ready_to_release(stack, {("run0", s) for s in SERVICES})
        # Release: an unknown status first (a warning), then success.
        final = [emulator_task("run0", s, FINAL["success"][s]) for s in SERVICES if s != "dataworks"]
        final.append(emulator_task("run0", "dataworks", ["Mystery", "Success"]))
        stack.add_tasks(final)

        states = wait_until(lambda: finished(stack), timeout=300, interval=1.0, what="every wait to finish")
        assert states == {("run0", s): "success" for s in SERVICES}

        trigger_logs = {str(p): p.read_text() for p in (stack.home / "logs").rglob("*.log.trigger.*.log")}
        assert len(trigger_logs) == len(SERVICES)
        # The lines the triggers wrote (Airflow's own lines about them come from its runner).
        lines = [json.loads(line) for text in trigger_logs.values() for line in text.splitlines() if line]
        ours = [line for line in lines if line.get("filename") != "triggerer_job_runner.py"]
        # Without the setting, each trigger logs "running (raw status ...)" at INFO (the test above).
        assert ours
        assert all(line["level"] in ("warning", "error") for line in ours), ours
        assert any("raw status 'Mystery' is not one this package knows" in line["event"] for line in ours), (
            ours
        )
