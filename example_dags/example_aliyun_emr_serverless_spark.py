"""Start an EMR Serverless Spark job run and wait for it without holding a worker slot.

``StartJobRun`` (API 2023-08-08) returns the run's ``jobRunId``; ``GetJobRun`` is polled until
the run ends. The operator sends a ``clientToken`` derived from the task instance, the same for
every try: a retried start, even after a lost answer, returns the same run instead of a second
one. Marking the task failed while it waits cancels the run (``CancelJobRun``). RAM actions
needed: ``emr-serverless-spark:StartJobRun``, ``emr-serverless-spark:GetJobRun`` and
``emr-serverless-spark:CancelJobRun``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator

with DAG(
    dag_id="example_aliyun_emr_serverless_spark",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"workspace_id": "w-1234abcd", "entry_point": "oss://example-bucket/jobs/wordcount.py"},
    tags=["example", "aliyun"],
) as dag:
    spark_job = AlibabaCloudAsyncTaskOperator(
        task_id="spark_job",
        service="emr_serverless_spark",
        action="StartJobRun",
        path="/api/v1/workspaces/{{ params.workspace_id }}/jobRuns",
        body={
            "name": "airflow-wordcount",
            "codeType": "PYTHON",
            "releaseVersion": "esr-4.0.0",
            "resourceQueueId": "root_queue",
            "jobDriver": {"sparkSubmit": {"entryPoint": "{{ params.entry_point }}"}},
        },
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(minutes=30),
        retries=2,
    )
