"""Start an EMR Serverless Spark job run and wait for it without holding a worker slot.

``StartJobRun`` (API 2023-08-08) returns the run's ``jobRunId``; ``GetJobRun`` is polled until the
run ends. The client token makes a retried start return the same run instead of a second one.
RAM actions needed: ``emr-serverless-spark:StartJobRun`` and ``emr-serverless-spark:GetJobRun``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.sensors import EmrServerlessSparkJobRunSensor

with DAG(
    dag_id="example_aliyun_emr_serverless_spark",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"workspace_id": "w-1234abcd", "entry_point": "oss://example-bucket/jobs/wordcount.py"},
    tags=["example", "aliyun"],
) as dag:

    @task
    def start_job_run(params: dict | None = None, run_id: str | None = None) -> str:
        hook = AlibabaCloudTasksHook()
        body = hook.call_api(
            "StartJobRun",
            "2023-08-08",
            service="emr_serverless_spark",
            path=f"/api/v1/workspaces/{params['workspace_id']}/jobRuns",
            query={"regionId": hook.settings.region_id},
            body={
                "name": "airflow-wordcount",
                "codeType": "PYTHON",
                "releaseVersion": "esr-4.0.0",
                "resourceQueueId": "root_queue",
                # The same token for every try of this task: a retried start returns the same run.
                "clientToken": hashlib.sha256(f"{dag.dag_id}/{run_id}".encode()).hexdigest()[:64],
                "jobDriver": {"sparkSubmit": {"entryPoint": params["entry_point"]}},
            },
        )
        return body["jobRunId"]

    job_run_id = start_job_run()

    wait_for_spark = EmrServerlessSparkJobRunSensor(
        task_id="wait_for_spark",
        workspace_id="{{ params.workspace_id }}",
        job_run_id="{{ ti.xcom_pull(task_ids='start_job_run') }}",
        deferrable=True,
        poke_interval=timedelta(seconds=5),
        timeout=timedelta(minutes=30),
    )

    job_run_id >> wait_for_spark
