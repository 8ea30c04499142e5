"""Start a Realtime Compute for Apache Flink batch job and wait for it without holding a worker
slot.

``StartJobWithParams`` (API 2022-07-18) starts a job instance of a deployment and answers it as
``data``; the task's ids are the ``workspace`` header and the namespace of the request and the
answer's ``data.jobId``. ``GetJob`` is polled until ``data.status.currentJobStatus`` ends the job
(``FINISHED``, ``FAILED``, ``CANCELLED``). Use it for a BATCH deployment: a streaming job does not
finish, and a wait on one ends only with its timeout. ``StartJobWithParams`` takes no client token,
so the operator sends it once and relies on Airflow 3.3's task state store: a retry of this task
finds the job the first try started instead of starting another. Marking the task failed while it
waits stops the job (``StopJob``, ``stopStrategy`` ``NONE``). RAM actions needed:
``stream:StartJobWithParams``, ``stream:GetJob`` and ``stream:StopJob``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator

with DAG(
    dag_id="example_aliyun_flink_job",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "workspace": "a14bd5d90a1234",
        "namespace": "default-namespace",
        "deployment_id": "58718c99-3b29-4c5e-93bb-c9fc4ec61234",
    },
    tags=["example", "aliyun"],
) as dag:
    batch_job = AlibabaCloudAsyncTaskOperator(
        task_id="batch_job",
        service="flink_job",
        action="StartJobWithParams",
        path="/api/v2/namespaces/{{ params.namespace }}/jobs:start",
        headers={"workspace": "{{ params.workspace }}"},
        body={
            "deploymentId": "{{ params.deployment_id }}",
            "restoreStrategy": {"kind": "NONE"},
            "localVariables": [{"name": "bizdate", "value": "{{ ds_nodash }}"}],
        },
        deferrable=True,
        poll_interval=10,
        timeout=timedelta(hours=6),
        retries=2,
    )
