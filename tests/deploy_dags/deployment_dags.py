"""The DAG of the deployment test: many deferrable waits per run, across the four services.

Each run maps every sensor over ``WAITS_PER_SERVICE`` ids built from the run's ``params``
(``prefix`` for DLF, DataWorks and PDS ids, ``source_id`` for MMA), and adds four waits whose
connections carry other kinds of secrets: STS credentials, a RAM role to assume, a PDS bearer
token.
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

WAITS_PER_SERVICE = 17
POKE_INTERVAL = 2
WAIT = {"deferrable": True, "poke_interval": POKE_INTERVAL, "timeout": 3600, "retries": 0}
PREFIX = "{{ params.prefix }}"

with DAG(
    dag_id="deploy_waits",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"prefix": "p", "source_id": 1},
    max_active_tasks=1024,
    tags=["aliyun-tasks-tests"],
):
    ids = range(WAITS_PER_SERVICE)
    DlfAsyncTaskSensor.partial(task_id="dlf", **WAIT).expand(async_task_id=[f"{PREFIX}-dlf-{i}" for i in ids])
    DataWorksJobSensor.partial(task_id="dataworks", **WAIT).expand(job_id=[f"{PREFIX}-dw-{i}" for i in ids])
    MmaAsyncTaskSensor.partial(task_id="mma", source_id="{{ params.source_id }}", **WAIT).expand(
        async_task_id=[str(1000 + i) for i in ids]
    )
    PdsAsyncTaskSensor.partial(task_id="pds", **WAIT).expand(async_task_id=[f"{PREFIX}-pds-{i}" for i in ids])
    # Waits whose connections hold other secrets than the AccessKey pair.
    DataWorksJobSensor(
        task_id="dataworks_sts", job_id=f"{PREFIX}-dw-sts", aliyun_conn_id="aliyun_sts", **WAIT
    )
    DlfAsyncTaskSensor(
        task_id="dlf_role", async_task_id=f"{PREFIX}-dlf-role", aliyun_conn_id="aliyun_role", **WAIT
    )
    MmaAsyncTaskSensor(
        task_id="mma_role",
        source_id="{{ params.source_id }}",
        async_task_id="999",
        aliyun_conn_id="aliyun_role",
        **WAIT,
    )
    PdsAsyncTaskSensor(
        task_id="pds_bearer", async_task_id=f"{PREFIX}-pds-bearer", aliyun_conn_id="aliyun_bearer", **WAIT
    )
