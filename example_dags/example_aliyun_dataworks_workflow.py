"""Backfill a DataWorks workflow over two business dates and wait for every workflow instance.

``CreateWorkflowInstances`` (API 2024-05-18) starts no instance itself: it answers an
``OperationId``. The operator records that operation in the task state store (a retry resumes it
instead of creating the backfill again), polls ``GetCreateWorkflowInstancesResult`` until the
instances exist (``Created``; ``CreateFailure`` fails the task with DataWorks' message), then
waits in the triggerer for every instance, one per business date, and returns the list of their
final statuses: the task succeeds only if all succeed. Marking the task failed while it waits
stops every instance still running (``StopWorkflowInstances``; DataWorks then reports them as
``Failure``: it has no cancelled state). The request body is a form: ``Periods`` goes as JSON
text, as the official SDK sends it. The operation takes no client token.

RAM: the API reference documents no action of their own for these operations (``dataworks:*``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator

with DAG(
    dag_id="example_aliyun_dataworks_workflow",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"project_id": 10000, "workflow_id": 42, "first_day": "2026-01-01", "last_day": "2026-01-02"},
    tags=["example", "aliyun"],
) as dag:
    backfill = AlibabaCloudAsyncTaskOperator(
        task_id="backfill",
        service="dataworks_workflow",
        action="CreateWorkflowInstances",
        body={
            "Name": "airflow-backfill-{{ params.first_day }}",
            "ProjectId": "{{ params.project_id }}",
            "WorkflowId": "{{ params.workflow_id }}",
            "Type": "SupplementData",
            "EnvType": "Prod",
            "Periods": {
                "BizDates": [
                    {"StartBizDate": "{{ params.first_day }}", "EndBizDate": "{{ params.last_day }}"}
                ]
            },
        },
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=6),
        retries=2,
    )
