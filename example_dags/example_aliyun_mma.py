"""Wait for a MaxCompute Migration Assist async task with a sensor: the two-task pattern, for
tasks started elsewhere (the other examples start and wait in one task with
``AlibabaCloudAsyncTaskOperator``).

``CreateMmsJob`` returns the ``asyncTaskId`` of the job creation, which ``GetMmsAsyncTask``
reports on (with a progress percentage). RAM actions needed: ``odps:CreateMmsJob`` and
``odps:GetMmsAsyncTask``. To wait on a task started elsewhere, trigger the DAG with
``{"async_task_id": ...}`` in its params.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.sensors import MmaAsyncTaskSensor

with DAG(
    dag_id="example_aliyun_mma",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"source_id": 2000028, "src_db": "hive_db", "dst_db": "mc_project", "async_task_id": None},
    tags=["example", "aliyun"],
) as dag:

    @task
    def create_migration_job(params: dict | None = None) -> int:
        if params.get("async_task_id"):
            return int(params["async_task_id"])
        body = AlibabaCloudTasksHook().call_api(
            "CreateMmsJob",
            "2022-01-04",
            service="mma",
            path=f"/api/v1/mms/datasources/{int(params['source_id'])}/jobs",
            body={
                "name": "airflow_migration",
                "srcDbName": params["src_db"],
                "dstDbName": params["dst_db"],
                "dbName": params["src_db"],
            },
        )
        return body["data"]["asyncTaskId"]

    wait_for_migration = MmaAsyncTaskSensor(
        task_id="wait_for_migration",
        source_id="{{ params.source_id }}",
        async_task_id=create_migration_job(),
        deferrable=True,
        poke_interval=timedelta(seconds=5),
        timeout=timedelta(hours=6),
    )
