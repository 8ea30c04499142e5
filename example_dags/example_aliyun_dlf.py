"""Drop a Data Lake Formation database asynchronously and wait for the drop to finish, in one task.

DLF ``DeleteDatabase`` with ``Async=true`` returns a ``TaskId`` that ``GetAsyncTaskStatus``
reports on; the operator knows where the id is. RAM actions needed: ``dlf:DeleteDatabase`` and
``dlf:GetAsyncTaskStatus``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator

with DAG(
    dag_id="example_aliyun_dlf",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"catalog_id": "1344371", "database": "staging_tmp"},
    tags=["example", "aliyun"],
) as dag:
    drop_database = AlibabaCloudAsyncTaskOperator(
        task_id="drop_database",
        service="dlf",
        action="DeleteDatabase",
        method="DELETE",
        path="/api/metastore/catalogs/databases",
        query={
            "CatalogId": "{{ params.catalog_id }}",
            "Name": "{{ params.database }}",
            "Cascade": True,
            "Async": True,
        },
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(minutes=30),
        retries=2,
    )
