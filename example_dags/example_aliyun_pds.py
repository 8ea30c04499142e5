"""Archive files in a PDS drive and wait for the archive, in one task.

PDS ``ArchiveFiles`` returns an ``async_task_id`` that ``/v2/async_task/get`` reports on, with
processed/total counts; the final status's ``result`` is the archive's download ``url``. The
connection's ``pds_domain_id`` (or the operator's ``domain_id``) selects the PDS domain.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator

FILE_IDS = ["9520943DC264", "9520943DC265"]

with DAG(
    dag_id="example_aliyun_pds",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"drive_id": "1", "name": "reports.zip"},
    tags=["example", "aliyun"],
) as dag:
    archive = AlibabaCloudAsyncTaskOperator(
        task_id="archive_files",
        service="pds",
        action="ArchiveFiles",
        path="/v2/file/archive_files",
        body={
            "drive_id": "{{ params.drive_id }}",
            "file_ids": FILE_IDS,
            "name": "{{ params.name }}",
        },
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(minutes=30),
        retries=2,
    )

    @task
    def announce(status: dict) -> None:
        print(f"archive ready at {status['result']}")

    announce(archive.output)
