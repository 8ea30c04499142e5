"""DAGs the end-to-end tests run with ``dag.test()``; ids and knobs come from ``params``."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_aliyun_tasks.sensors import (
    AdbSparkAppSensor,
    DataWorksJobSensor,
    DataWorksWorkflowInstanceSensor,
    DlfAsyncTaskSensor,
    EmrServerlessSparkJobRunSensor,
    FcAsyncTaskSensor,
    FlinkJobSensor,
    MmaAsyncTaskSensor,
    PaiDlcJobSensor,
    PdsAsyncTaskSensor,
)

SENSORS = {
    "dlf": (DlfAsyncTaskSensor, ("async_task_id",)),
    "dataworks": (DataWorksJobSensor, ("job_id",)),
    "mma": (MmaAsyncTaskSensor, ("source_id", "async_task_id")),
    "pds": (PdsAsyncTaskSensor, ("async_task_id",)),
    "emr_serverless_spark": (EmrServerlessSparkJobRunSensor, ("workspace_id", "job_run_id")),
    "dataworks_workflow": (DataWorksWorkflowInstanceSensor, ("workflow_instance_id",)),
    "pai_dlc": (PaiDlcJobSensor, ("job_id",)),
    "adb_spark": (AdbSparkAppSensor, ("app_id",)),
    "flink_job": (FlinkJobSensor, ("workspace_id", "namespace", "job_id")),
    "fc_async_task": (FcAsyncTaskSensor, ("function_name", "async_task_id")),
}
MODES = {
    "deferrable": {"deferrable": True},
    "poke": {"deferrable": False, "mode": "poke"},
    "reschedule": {"deferrable": False, "mode": "reschedule"},
}

for _service, (_cls, _fields) in SENSORS.items():
    for _mode, _mode_kwargs in MODES.items():
        with DAG(
            dag_id=f"e2e_{_service}_{_mode}",
            schedule=None,
            start_date=datetime(2026, 1, 1),
            catchup=False,
            params={field: "" for field in _fields},
        ):
            _cls(
                task_id="wait",
                **{field: "{{ params." + field + " }}" for field in _fields},
                poke_interval=0.2,
                timeout=timedelta(seconds=60),
                **_mode_kwargs,
            )

    for _soft_fail in (False, True):
        with DAG(
            dag_id=f"e2e_{_service}_timeout{'_soft_fail' if _soft_fail else ''}",
            schedule=None,
            start_date=datetime(2026, 1, 1),
            catchup=False,
            params={field: "" for field in _fields},
        ):
            _cls(
                task_id="wait",
                **{field: "{{ params." + field + " }}" for field in _fields},
                poke_interval=0.3,
                timeout=3,
                deferrable=True,
                soft_fail=_soft_fail,
            )


with DAG(
    dag_id="e2e_xcom_ids",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"job_id": ""},
):

    @task
    def produce(params: dict | None = None) -> dict:
        return {"job": params["job_id"]}

    produced = produce()
    DataWorksJobSensor(
        task_id="wait",
        job_id="{{ ti.xcom_pull(task_ids='produce')['job'] }}",
        poke_interval=0.2,
        timeout=60,
        deferrable=True,
    ).set_upstream(produced)
