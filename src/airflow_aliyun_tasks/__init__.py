"""Apache Airflow provider for Alibaba Cloud async tasks: start them and wait for them, in the
triggerer or on a worker. Services: DLF, DataWorks (jobs), DataWorks workflow instances, MaxCompute
MMA, PDS, EMR Serverless Spark, PAI DLC, AnalyticDB Spark, Flink (Realtime Compute for Apache
Flink batch jobs) and Function Compute asynchronous invocations (the registry,
:mod:`airflow_aliyun_tasks.services`, describes each)."""

from __future__ import annotations

from airflow_aliyun_tasks.status import TaskStatus

__all__ = ["TaskStatus", "__version__"]

__version__ = "0.1.0"
