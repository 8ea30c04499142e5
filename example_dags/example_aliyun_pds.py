"""Archive files in a PDS drive and wait for the archive task.

PDS ``ArchiveFiles`` returns an ``async_task_id`` that ``/v2/async_task/get`` reports on,
with processed/total counts. The connection's ``pds_domain_id`` (or the sensor's
``domain_id``) selects the PDS domain.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.sensors import PdsAsyncTaskSensor

with DAG(
    dag_id="example_aliyun_pds",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"drive_id": "1", "file_ids": ["9520943DC264", "9520943DC265"], "name": "reports.zip"},
    tags=["example", "aliyun"],
) as dag:

    @task
    def archive_files(params: dict | None = None) -> str:
        body = AlibabaCloudTasksHook().call_api(
            "ArchiveFiles",
            "2022-03-01",
            service="pds",
            path="/v2/file/archive_files",
            body={"drive_id": params["drive_id"], "file_ids": params["file_ids"], "name": params["name"]},
        )
        return body["async_task_id"]

    wait_for_archive = PdsAsyncTaskSensor(
        task_id="wait_for_archive",
        async_task_id=archive_files(),
        deferrable=True,
        poke_interval=timedelta(seconds=5),
        timeout=timedelta(minutes=30),
    )
