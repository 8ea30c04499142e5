"""Apache Airflow provider for waiting on Alibaba Cloud async tasks (DLF, DataWorks, MMA, PDS)."""

from __future__ import annotations

from airflow_aliyun_tasks.status import TaskStatus

__all__ = ["TaskStatus", "__version__"]

__version__ = "0.1.0"
