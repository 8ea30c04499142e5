"""Drop a Data Lake Formation database asynchronously and wait for the drop to finish.

DLF ``DeleteDatabase`` with ``Async=true`` returns a ``TaskId`` that
``GetAsyncTaskStatus`` reports on. RAM actions needed: ``dlf:DeleteDatabase`` and
``dlf:GetAsyncTaskStatus``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.sensors import DlfAsyncTaskSensor

with DAG(
    dag_id="example_aliyun_dlf",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"catalog_id": "1344371", "database": "staging_tmp"},
    tags=["example", "aliyun"],
) as dag:

    @task
    def drop_database(params: dict | None = None) -> str:
        body = AlibabaCloudTasksHook().call_api(
            "DeleteDatabase",
            "2020-07-10",
            service="dlf",
            method="DELETE",
            path="/api/metastore/catalogs/databases",
            query={
                "CatalogId": params["catalog_id"],
                "Name": params["database"],
                "Cascade": True,
                "Async": True,
            },
        )
        return body["TaskId"]

    wait_for_drop = DlfAsyncTaskSensor(
        task_id="wait_for_drop",
        async_task_id=drop_database(),
        catalog_id="{{ params.catalog_id }}",
        deferrable=True,
        poke_interval=timedelta(seconds=5),
        timeout=timedelta(minutes=30),
    )
