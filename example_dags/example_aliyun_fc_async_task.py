"""Invoke a Function Compute function asynchronously and wait for it without holding a worker slot.

``InvokeFunction`` (API 2023-03-30) with ``x-fc-invocation-type: Async`` queues the invocation and
answers an empty 202; ``GetAsyncTask`` is polled until the task ends. The operator names the task
itself (``x-fc-async-task-id``, derived from the task instance): a retry of the invocation names
the same task, and Function Compute refuses it (HTTP 409) instead of running the function twice,
so the operator waits on the task that exists. Marking the task failed while it waits stops it
(``StopAsyncTask``). The function needs asynchronous tasks enabled (its async invocation
configuration), and the connection the account id (extra ``fc_account_id``): the host is
``<account id>.<region>.fc.aliyuncs.com``. RAM actions needed: ``fc:InvokeFunction``,
``fc:GetAsyncTask`` and ``fc:StopAsyncTask``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator

with DAG(
    dag_id="example_aliyun_fc_async_task",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"function_name": "nightly-etl", "qualifier": "LATEST"},
    tags=["example", "aliyun"],
) as dag:
    invoke = AlibabaCloudAsyncTaskOperator(
        task_id="invoke",
        service="fc_async_task",
        action="InvokeFunction",
        path="/2023-03-30/functions/{{ params.function_name }}/invocations",
        query={"qualifier": "{{ params.qualifier }}"},
        body='{"run": "{{ run_id }}", "source": "oss://raw/incoming/"}',  # the event, sent as it is
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=2),
        retries=2,
    )
