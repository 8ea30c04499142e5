"""DAGs of the operator's ``dag.test()`` runs: start an EMR Serverless Spark job run, create a PAI
DLC job, submit an AnalyticDB Spark application (a form body), start a Flink batch job, invoke a Function Compute function asynchronously, or backfill DataWorks workflow instances (two phases, several instances), and wait for
every task, deferred (the trigger runs inline) or on the worker; a downstream task reads the
XComs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator

for _mode, _deferrable in (("deferrable", True), ("worker", False)):
    with DAG(
        dag_id=f"e2e_operator_{_mode}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"workspace": "w-e2e"},
    ):
        spark = AlibabaCloudAsyncTaskOperator(
            task_id="spark_job",
            service="emr_serverless_spark",
            action="StartJobRun",
            path="/api/v1/workspaces/{{ params.workspace }}/jobRuns",
            body={"name": "e2e", "codeType": "JAR"},
            deferrable=_deferrable,
            poll_interval=0.2,
        )

        @task
        def check(status: dict[str, Any], ti: Any = None) -> None:
            started = ti.xcom_pull(task_ids="spark_job", key="aliyun_task_ids")
            assert status["state"] == "succeeded", status
            assert status["ids"] == started["ids"], (status, started)
            assert started["service"] == "emr_serverless_spark"

        check(spark.output)

    with DAG(
        dag_id=f"e2e_operator_pai_dlc_{_mode}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"workspace": "1234"},
    ):
        train = AlibabaCloudAsyncTaskOperator(
            task_id="train",
            service="pai_dlc",
            action="CreateJob",
            path="/api/v1/jobs",
            body={
                "DisplayName": "e2e",
                "JobType": "PyTorchJob",
                "WorkspaceId": "{{ params.workspace }}",
                "UserCommand": "python train.py",
                "JobSpecs": [{"Type": "Worker", "Image": "pytorch:2.1", "PodCount": 1}],
            },
            deferrable=_deferrable,
            poll_interval=0.2,
        )

        @task
        def check_job(status: dict[str, Any], ti: Any = None, params: Any = None) -> None:
            started = ti.xcom_pull(task_ids="train", key="aliyun_task_ids")
            assert status["state"] == "succeeded", status
            assert status["ids"] == started["ids"], (status, started)
            assert started["service"] == "pai_dlc"
            assert status["raw"]["WorkspaceId"] == params["workspace"]

        check_job(train.output)

    with DAG(
        dag_id=f"e2e_operator_adb_spark_{_mode}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"cluster": "amv-e2e"},
    ):
        spark_app = AlibabaCloudAsyncTaskOperator(
            task_id="spark_app",
            service="adb_spark",
            action="SubmitSparkApp",
            body={
                "DBClusterId": "{{ params.cluster }}",
                "ResourceGroupName": "spark_rg",
                "AppType": "BATCH",
                "Data": {
                    "name": "e2e",
                    "file": "oss://bucket/pi.py",
                    "conf": {"spark.executor.instances": 1},
                },
            },
            deferrable=_deferrable,
            poll_interval=0.2,
        )

        @task
        def check_app(status: dict[str, Any], ti: Any = None, params: Any = None) -> None:
            started = ti.xcom_pull(task_ids="spark_app", key="aliyun_task_ids")
            assert status["state"] == "succeeded", status
            assert status["raw_status"] == "COMPLETED", status
            assert status["ids"] == started["ids"], (status, started)
            assert started["service"] == "adb_spark"
            assert status["raw"]["Data"]["DBClusterId"] == params["cluster"]

        check_app(spark_app.output)

    with DAG(
        dag_id=f"e2e_operator_flink_job_{_mode}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"workspace": "a14bd5d90a", "namespace": "default-namespace"},
    ):
        flink = AlibabaCloudAsyncTaskOperator(
            task_id="batch_job",
            service="flink_job",
            action="StartJobWithParams",
            path="/api/v2/namespaces/{{ params.namespace }}/jobs:start",
            headers={"workspace": "{{ params.workspace }}"},
            body={
                "deploymentId": "58718c99-3b29-4c5e-93bb-c9fc4ec61234",
                "restoreStrategy": {"kind": "NONE"},
            },
            deferrable=_deferrable,
            poll_interval=0.2,
        )

        @task
        def check_flink_job(status: dict[str, Any], ti: Any = None, params: Any = None) -> None:
            started = ti.xcom_pull(task_ids="batch_job", key="aliyun_task_ids")
            assert status["state"] == "succeeded", status
            assert status["ids"] == started["ids"], (status, started)
            assert started["ids"]["workspace_id"] == params["workspace"]
            assert status["raw"]["data"]["deploymentId"] == "58718c99-3b29-4c5e-93bb-c9fc4ec61234"

        check_flink_job.override(task_id="check_job")(flink.output)

    with DAG(
        dag_id=f"e2e_operator_fc_{_mode}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"function": "etl"},
    ):
        invoke = AlibabaCloudAsyncTaskOperator(
            task_id="invoke",
            service="fc_async_task",
            action="InvokeFunction",
            path="/2023-03-30/functions/{{ params.function }}/invocations",
            query={"qualifier": "prod"},
            body='{"run": "{{ run_id }}"}',
            deferrable=_deferrable,
            poll_interval=0.2,
        )

        @task
        def check_invocation(status: dict[str, Any], ti: Any = None, params: Any = None) -> None:
            started = ti.xcom_pull(task_ids="invoke", key="aliyun_task_ids")
            assert status["state"] == "succeeded", status
            assert status["ids"] == started["ids"], (status, started)
            assert started["service"] == "fc_async_task"
            # the task id the operator chose, derived from the task instance
            assert started["ids"]["async_task_id"].startswith("airflow-"), started
            assert started["ids"]["function_name"] == params["function"]
            assert started["ids"]["qualifier"] == status["raw"]["qualifier"] == "prod"

        check_invocation(invoke.output)


for _mode, _deferrable in (("deferrable", True), ("worker", False)):
    with DAG(
        dag_id=f"e2e_operator_workflow_{_mode}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"last_day": "2026-01-02"},
    ):
        backfill = AlibabaCloudAsyncTaskOperator(
            task_id="backfill",
            service="dataworks_workflow",
            action="CreateWorkflowInstances",
            body={
                "Name": "e2e backfill",
                "ProjectId": 10000,
                "WorkflowId": 42,
                "Type": "SupplementData",
                "Periods": {
                    "BizDates": [{"StartBizDate": "2026-01-01", "EndBizDate": "{{ params.last_day }}"}]
                },
            },
            deferrable=_deferrable,
            poll_interval=0.2,
        )

        @task
        def check_all(statuses: list[dict[str, Any]], ti: Any = None) -> None:
            started = ti.xcom_pull(task_ids="backfill", key="aliyun_task_ids")
            assert [s["state"] for s in statuses] == ["succeeded"] * len(statuses), statuses
            assert [s["ids"] for s in statuses] == started["tasks"], (statuses, started)
            assert started["ids"] == started["tasks"][0]

        check_all.override(task_id="check")(backfill.output)
