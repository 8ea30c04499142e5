"""A DAG for the real-triggerer test: one deferrable sensor per service, ids from ``params``.

Each DAG run gets its own ``prefix`` (DLF, DataWorks, PDS ids) and ``source_id`` (MMA), so that
several runs wait at once on distinct emulator tasks.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_aliyun_tasks.sensors import (
    DataWorksJobSensor,
    DlfAsyncTaskSensor,
    MmaAsyncTaskSensor,
    PdsAsyncTaskSensor,
)

WAIT = {"deferrable": True, "poke_interval": 1, "timeout": 900, "retries": 0}

with DAG(
    dag_id="rt_waits",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"prefix": "p", "source_id": 1},
    tags=["aliyun-tasks-tests"],
):
    DlfAsyncTaskSensor(task_id="dlf", async_task_id="{{ params.prefix }}-dlf", **WAIT)
    DataWorksJobSensor(task_id="dataworks", job_id="{{ params.prefix }}-dw", **WAIT)
    MmaAsyncTaskSensor(task_id="mma", source_id="{{ params.source_id }}", async_task_id="7", **WAIT)
    PdsAsyncTaskSensor(task_id="pds", async_task_id="{{ params.prefix }}-pds", **WAIT)
