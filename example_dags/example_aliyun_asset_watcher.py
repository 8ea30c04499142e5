"""Run a DAG when an Alibaba Cloud async task finishes: an asset watched by an event trigger.

Event-driven scheduling (Airflow 3): the asset ``aliyun_dataworks_import`` has an
``AssetWatcher`` whose trigger, ``AlibabaCloudTaskEventTrigger``, runs in the triggerer and polls
DataWorks ``GetJobStatus`` for one job, for example a long ``ImportWorkflowDefinition`` started
outside Airflow. When the job succeeds the trigger yields one event; Airflow records an asset
event (the job's final status is in ``extra["payload"]``) and runs this DAG, which is scheduled on
the asset. No worker slot is used while waiting, and the same job is reported only once (see the
trigger's docstring).

The job id and poll interval come from the environment of the DAG processor
(``ALIYUN_EXAMPLE_DATAWORKS_JOB_ID``, ``ALIYUN_EXAMPLE_POLL_INTERVAL``). Watcher kwargs must be
deterministic (Airflow identifies a watcher by them), so never compute them from the clock.
RAM action needed: ``dataworks:GetJobStatus``. Needs a running ``airflow triggerer``.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_aliyun_tasks.triggers import AlibabaCloudTaskEventTrigger

JOB_ID = os.environ.get("ALIYUN_EXAMPLE_DATAWORKS_JOB_ID", "70ecdaec-bf21-4c11-8ecb-4f77453ceea8")
POLL_INTERVAL = float(os.environ.get("ALIYUN_EXAMPLE_POLL_INTERVAL", "60"))

dataworks_import = Asset(
    name="aliyun_dataworks_import",
    watchers=[
        AssetWatcher(
            name="dataworks_import_finished",
            trigger=AlibabaCloudTaskEventTrigger(
                service="dataworks",
                ids={"job_id": JOB_ID},
                aliyun_conn_id="aliyun_default",
                poll_interval=POLL_INTERVAL,
                outcomes=["success"],  # only a successful import updates the asset
            ),
        )
    ],
)

with DAG(
    dag_id="example_aliyun_asset_watcher",
    schedule=[dataworks_import],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "aliyun"],
):

    @task
    def use_the_import(triggering_asset_events=None) -> list[dict]:
        """Read which job finished, and how, from the asset events that started this run."""
        finished = []
        for events in (triggering_asset_events or {}).values():
            for event in events:
                payload = (event.extra or {}).get("payload", {})
                print(f"{payload.get('service')} {payload.get('ids')}: {payload.get('status')}")
                finished.append({"ids": payload.get("ids"), "status": payload.get("status")})
        return finished

    use_the_import()
