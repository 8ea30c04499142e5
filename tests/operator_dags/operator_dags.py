"""DAGs of the operator's real-Airflow proofs (``tests/test_operator_airflow.py``).

Each run names its own EMR Serverless Spark workspace (``conf["workspace"]``), so that a test
can tell its job runs apart in the emulator. The DataWorks workflow DAGs start one instance
(``ExecuteAdhocWorkflowInstance``) or a backfill of two business dates in two phases
(``CreateWorkflowInstances``); their tests reset the emulator and count every instance. The PAI
DLC DAGs create a job (``CreateJob``, no client token) and wait on it; the AnalyticDB Spark DAGs
submit an application (``SubmitSparkApp``, a form body, no client token) and wait on it; the Flink DAGs start a
job instance (``StartJobWithParams``, the workspace in a header, no client token) and wait on it. The Function Compute
DAGs invoke a function asynchronously (``InvokeFunction``, the task named by the operator) and
wait on the task.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator

DEFAULTS: dict[str, Any] = {"retries": 2, "retry_delay": timedelta(seconds=4)}


def spark_job(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    return AlibabaCloudAsyncTaskOperator(
        task_id="spark_job",
        service="emr_serverless_spark",
        action="StartJobRun",
        method="POST",
        path="/api/v1/workspaces/{{ params.workspace }}/jobRuns",
        body={"name": "nightly-etl", "codeType": "JAR", "resourceQueueId": "root_queue"},
        poll_interval=1,
        **kwargs,
    )


def dag(dag_id: str) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"workspace": "w-default"},
        default_args=DEFAULTS,
    )


with dag("op_worker"):
    spark_job(deferrable=False)

with dag("op_worker_once"):
    # A connection without the client's own retries: a lost answer fails the try.
    spark_job(deferrable=False, aliyun_conn_id="aliyun_once")

with dag("op_deferred"):
    spark_job(deferrable=True)

with dag("op_dataworks_deferred"):
    AlibabaCloudAsyncTaskOperator(
        task_id="import_workflow",
        service="dataworks",
        action="ImportWorkflowDefinition",
        query={"ProjectId": "1001", "Spec": '{"version": "1.1.0", "kind": "CycleWorkflow"}'},
        poll_interval=1,
        deferrable=True,
    )


def workflow_adhoc(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    return AlibabaCloudAsyncTaskOperator(
        task_id="workflow",
        service="dataworks_workflow",
        action="ExecuteAdhocWorkflowInstance",
        body={
            "Name": "adhoc",
            "Owner": "1234567890123456",
            "ProjectId": 10000,
            "Tasks": [{"ClientUniqueCode": "count-rows", "Name": "count rows", "Type": "ODPS_SQL"}],
        },
        poll_interval=1,
        **kwargs,
    )


def workflow_backfill(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    return AlibabaCloudAsyncTaskOperator(
        task_id="workflow",
        service="dataworks_workflow",
        action="CreateWorkflowInstances",
        body={
            "Name": "backfill",
            "ProjectId": 10000,
            "WorkflowId": 42,
            "Type": "SupplementData",
            "Periods": {"BizDates": [{"StartBizDate": "2026-01-01", "EndBizDate": "2026-01-02"}]},
        },
        poll_interval=1,
        **kwargs,
    )


with dag("op_workflow_worker"):
    workflow_adhoc(deferrable=False)

with dag("op_workflow_backfill_worker"):
    workflow_backfill(deferrable=False)

with dag("op_workflow_backfill_deferred"):
    workflow_backfill(deferrable=True)


def dlc_job(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    return AlibabaCloudAsyncTaskOperator(
        task_id="train",
        service="pai_dlc",
        action="CreateJob",
        path="/api/v1/jobs",
        body={
            "DisplayName": "nightly-train",
            "JobType": "PyTorchJob",
            "WorkspaceId": "1234",
            "UserCommand": "python train.py",
            "JobSpecs": [{"Type": "Worker", "Image": "pytorch:2.1", "PodCount": 1}],
        },
        poll_interval=1,
        **kwargs,
    )


with dag("op_dlc_worker"):
    dlc_job(deferrable=False)

with dag("op_dlc_deferred"):
    dlc_job(deferrable=True)


def adb_app(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    return AlibabaCloudAsyncTaskOperator(
        task_id="spark_app",
        service="adb_spark",
        action="SubmitSparkApp",
        body={
            "DBClusterId": "amv-airflow",
            "ResourceGroupName": "spark_rg",
            "AppType": "BATCH",
            "Data": {"name": "nightly", "file": "oss://bucket/etl.py", "args": ["{{ run_id }}"]},
        },
        poll_interval=1,
        **kwargs,
    )


with dag("op_adb_worker"):
    adb_app(deferrable=False)

with dag("op_adb_deferred"):
    adb_app(deferrable=True)


def flink_job(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    return AlibabaCloudAsyncTaskOperator(
        task_id="batch_job",
        service="flink_job",
        action="StartJobWithParams",
        path="/api/v2/namespaces/default-namespace/jobs:start",
        headers={"workspace": "a14bd5d90a"},
        body={"deploymentId": "58718c99-3b29-4c5e-93bb-c9fc4ec61234"},
        poll_interval=1,
        **kwargs,
    )


with dag("op_flink_worker"):
    flink_job(deferrable=False)

with dag("op_flink_deferred"):
    flink_job(deferrable=True)


def fc_invocation(**kwargs: Any) -> AlibabaCloudAsyncTaskOperator:
    return AlibabaCloudAsyncTaskOperator(
        task_id="invoke",
        service="fc_async_task",
        action="InvokeFunction",
        path="/2023-03-30/functions/nightly-etl/invocations",
        body='{"run": "{{ run_id }}"}',
        poll_interval=1,
        **kwargs,
    )


with dag("op_fc_worker"):
    fc_invocation(deferrable=False)

with dag("op_fc_deferred"):
    fc_invocation(deferrable=True)
