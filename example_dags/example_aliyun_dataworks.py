"""Import a DataWorks workflow and wait for the import job without holding a worker slot.

``ImportWorkflowDefinition`` (DataWorks API 2024-05-18) is asynchronous: it returns an
``AsyncJob`` whose ``Id`` is polled with ``GetJobStatus``. RAM actions needed:
``dataworks:ImportWorkflowDefinition`` and ``dataworks:GetJobStatus``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.sensors import DataWorksJobSensor

WORKFLOW_SPEC = {
    "version": "1.1.0",
    "kind": "CycleWorkflow",
    "spec": {"workflows": [{"script": {"path": "airflow_import_example"}, "name": "airflow_import_example"}]},
}

with DAG(
    dag_id="example_aliyun_dataworks",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"project_id": 10000},
    tags=["example", "aliyun"],
) as dag:

    @task
    def start_import(params: dict | None = None) -> str:
        body = AlibabaCloudTasksHook().call_api(
            "ImportWorkflowDefinition",
            "2024-05-18",
            service="dataworks",
            query={"ProjectId": params["project_id"], "Spec": json.dumps(WORKFLOW_SPEC)},
        )
        return body["AsyncJob"]["Id"]

    job_id = start_import()

    wait_for_import = DataWorksJobSensor(
        task_id="wait_for_import",
        job_id="{{ ti.xcom_pull(task_ids='start_import') }}",
        deferrable=True,
        poke_interval=timedelta(seconds=5),
        timeout=timedelta(minutes=30),
    )

    job_id >> wait_for_import
