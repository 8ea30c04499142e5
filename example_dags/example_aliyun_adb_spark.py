"""Submit an AnalyticDB for MySQL Spark application and wait for it without holding a worker slot.

``SubmitSparkApp`` (API 2021-12-01, RPC, a form body) returns the application's ``Data.AppId``;
``GetSparkAppState`` is polled until the application ends: ``COMPLETED`` succeeds, ``FAILED`` and
``FATAL`` fail the task with AnalyticDB's message, ``KILLED`` is cancelled. ``Data`` (the
application's configuration) is an object here: the form carries it as JSON text, as the official
SDK sends it. ``SubmitSparkApp`` takes no client token, so the operator sends it once and relies
on Airflow 3.3's task state store: a retry of this task finds the application the first try
submitted instead of submitting another. Marking the task failed while it waits kills the
application (``KillSparkApp``). RAM actions needed: ``adb:SubmitSparkApp``,
``adb:GetSparkAppState`` and ``adb:KillSparkApp``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator

with DAG(
    dag_id="example_aliyun_adb_spark",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"cluster": "amv-bp1h405854m0000", "resource_group": "spark_rg"},
    tags=["example", "aliyun"],
) as dag:
    spark_pi = AlibabaCloudAsyncTaskOperator(
        task_id="spark_pi",
        service="adb_spark",
        action="SubmitSparkApp",
        body={
            "DBClusterId": "{{ params.cluster }}",
            "ResourceGroupName": "{{ params.resource_group }}",
            "AppType": "BATCH",
            "AppName": "airflow-spark-pi",
            "Data": {
                "name": "SparkPi",
                "file": "local:///tmp/spark-examples.jar",
                "className": "org.apache.spark.examples.SparkPi",
                "args": ["1000"],
                "conf": {"spark.driver.resourceSpec": "medium", "spark.executor.instances": 2},
            },
        },
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=6),
        retries=2,
    )
