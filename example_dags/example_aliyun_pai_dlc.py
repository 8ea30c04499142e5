"""Create a PAI DLC training job and wait for it without holding a worker slot.

``CreateJob`` (API 2020-12-03) returns the job's ``JobId``; ``GetJob`` is polled until the job
ends (``SucceededReserving`` and ``FailedReserving``, a job that ended and keeps its nodes for a
while, end the wait too). ``CreateJob`` takes no client token, so the operator sends it once and
relies on Airflow 3.3's task state store: a retry of this task finds the job the first try
created instead of creating another. Marking the task failed while it waits stops the job
(``StopJob``). RAM actions needed: ``paidlc:CreateJob``, ``paidlc:GetJob`` and
``paidlc:StopJob``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator

with DAG(
    dag_id="example_aliyun_pai_dlc",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"workspace_id": "1234", "image": "dsw-registry.cn-hangzhou.cr.aliyuncs.com/pai/pytorch:2.1"},
    tags=["example", "aliyun"],
) as dag:
    train = AlibabaCloudAsyncTaskOperator(
        task_id="train",
        service="pai_dlc",
        action="CreateJob",
        path="/api/v1/jobs",
        body={
            "DisplayName": "airflow-mnist-{{ run_id | replace(':', '-') | replace('+', '-') }}",
            "JobType": "PyTorchJob",
            "WorkspaceId": "{{ params.workspace_id }}",
            "UserCommand": "python /mnt/code/mnist.py --epochs 3",
            "JobSpecs": [
                {"Type": "Worker", "Image": "{{ params.image }}", "PodCount": 1, "EcsSpec": "ecs.g6.xlarge"}
            ],
        },
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=12),
        retries=2,
    )
