"""Import a DataWorks workflow and wait for the import job without holding a worker slot.

``ImportWorkflowDefinition`` (DataWorks API 2024-05-18) is asynchronous: it returns an
``AsyncJob`` whose ``Id`` is polled with ``GetJobStatus``. It takes no client token: the
operator records the job in the task state store (Airflow 3.3+) right after the start, so a
retry waits on the same job instead of importing twice. RAM actions needed:
``dataworks:ImportWorkflowDefinition`` and ``dataworks:GetJobStatus``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator

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
    import_workflow = AlibabaCloudAsyncTaskOperator(
        task_id="import_workflow",
        service="dataworks",
        action="ImportWorkflowDefinition",
        query={"ProjectId": "{{ params.project_id }}", "Spec": json.dumps(WORKFLOW_SPEC)},
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(minutes=30),
        retries=2,
    )
