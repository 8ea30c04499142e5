"""The demo: run every example DAG through ``airflow dags test`` against the local emulator.

Starts the emulator on 127.0.0.1, makes a throwaway ``AIRFLOW_HOME`` (SQLite), points the
``aliyun_default`` connection at the emulator, runs each DAG in ``example_dags/``, prints a
summary table, and stops what it started. Nothing leaves the loopback interface.

    make demo        # or: python scripts/demo.py [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_dags"
DAGS = [  # (dag id, service, id of the task that waits: an operator, or the sensor of mma's two tasks)
    ("example_aliyun_dlf", "dlf", "drop_database"),
    ("example_aliyun_dataworks", "dataworks", "import_workflow"),
    ("example_aliyun_mma", "mma", "wait_for_migration"),
    ("example_aliyun_pds", "pds", "archive_files"),
    ("example_aliyun_emr_serverless_spark", "emr_serverless_spark", "spark_job"),
    ("example_aliyun_dataworks_workflow", "dataworks_workflow", "backfill"),
    ("example_aliyun_pai_dlc", "pai_dlc", "train"),
    ("example_aliyun_adb_spark", "adb_spark", "spark_pi"),
    ("example_aliyun_flink_job", "flink_job", "batch_job"),
    ("example_aliyun_fc_async_task", "fc_async_task", "invoke"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
        return json.load(resp)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the emulator exited before it was ready")
        try:
            get_json(f"{url}/_emulator/stats")
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the emulator did not start in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the AIRFLOW_HOME and logs afterwards")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="aliyun-tasks-demo-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    from airflow_aliyun_tasks.config import ENDPOINT_EXTRAS
    from airflow_aliyun_tasks.testing import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

    env = dict(os.environ)
    env.update(
        {
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_ALIYUN_DEFAULT": json.dumps(
                {
                    "conn_type": "aliyun",
                    "login": DEFAULT_ACCESS_KEY_ID,
                    "password": DEFAULT_ACCESS_KEY_SECRET,
                    "extra": {
                        "region_id": "cn-hangzhou",
                        "pds_domain_id": "demo",
                        **dict.fromkeys(ENDPOINT_EXTRAS, url),
                    },
                }
            ),
        }
    )
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    airflow = [sys.executable, "-m", "airflow"]
    emulator = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "airflow_aliyun_tasks.testing", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    rows: list[tuple[str, str, str, int, float, str]] = []
    failed = False
    try:
        wait_ready(url, emulator)
        print(f"Emulator on {url}; AIRFLOW_HOME={home}")
        subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True)  # noqa: S603
        for dag_id, service, sensor in DAGS:
            log = home / f"{dag_id}.log"
            started = time.monotonic()
            with log.open("wb") as out:
                proc = subprocess.run(  # noqa: S603
                    [*airflow, "dags", "test", dag_id], env=env, stdout=out, stderr=subprocess.STDOUT
                )
            wall = time.monotonic() - started
            final, tasks = read_result(home / "airflow.db", dag_id, sensor)
            polls = count_polls(url, service, tasks)
            task_id = shown(tasks)
            outcome = "ok" if proc.returncode == 0 and final == "succeeded" else f"FAILED (see {log})"
            failed |= outcome != "ok"
            rows.append((service, task_id, final, polls, wall, outcome))
            print(f"  {dag_id}: {final} in {wall:.1f} s")
    finally:
        emulator.terminate()
        try:
            emulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            emulator.kill()
        if not args.keep and not failed:
            shutil.rmtree(home, ignore_errors=True)

    print()
    header = ("service", "task id", "final state", "polls", "wall time", "")
    table = [header, *[(s, t, f, str(p), f"{w:.1f} s", o) for s, t, f, p, w, o in rows]]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 1 if failed else 0


def read_result(db: Path, dag_id: str, sensor: str) -> tuple[str, list[dict[str, Any]]]:
    """The final state and the ids of the tasks waited on, from the XCom return value of the
    task that waits in the SQLite metadata DB: one TaskStatus, or a list of them (a start that
    started several tasks)."""
    with sqlite3.connect(db) as con:
        row = con.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value' "
            "ORDER BY timestamp DESC LIMIT 1",
            (dag_id, sensor),
        ).fetchone()
        if row is None:
            state = con.execute(
                "SELECT state FROM task_instance WHERE dag_id = ? AND task_id = ?", (dag_id, sensor)
            ).fetchone()
            return (state[0] if state else "not run") or "none", []
    value = row[0]
    result = json.loads(value) if isinstance(value, str | bytes) else value
    if isinstance(result, str):  # stored twice-encoded by some Airflow versions
        result = json.loads(result)
    statuses = result if isinstance(result, list) else [result]
    states = {s.get("state", "?") for s in statuses}
    return (states.pop() if len(states) == 1 else "mixed"), [s.get("ids", {}) for s in statuses]


#: ids that do not name the task itself (a host, a catalog, a workspace, a function's version)
_NOT_SHOWN = ("domain_id", "catalog_id", "workspace_id", "qualifier", "account_id")


def _task_id(ids: dict[str, Any]) -> str:
    return "/".join(str(v) for k, v in ids.items() if k not in _NOT_SHOWN)


def shown(tasks: list[dict[str, Any]]) -> str:
    """The task ids as the summary shows them (a count for several)."""
    if len(tasks) > 1:
        return f"{len(tasks)} instances"
    return _task_id(tasks[0]) if tasks else "-"


def count_polls(url: str, service: str, tasks: list[dict[str, Any]]) -> int:
    """Status polls of the tasks waited on (summed over several)."""
    wanted = {_task_id(ids) for ids in tasks}
    total = 0
    for task in get_json(f"{url}/_emulator/stats")["tasks"]:
        if task.get("service") != service:
            continue
        ids = task.get("ids", {})
        values = {str(v) for k, v in ids.items() if k not in _NOT_SHOWN}
        if _task_id(ids) in wanted or wanted & values:
            total += int(task.get("polls", 0))
    return total


if __name__ == "__main__":
    sys.exit(main())
