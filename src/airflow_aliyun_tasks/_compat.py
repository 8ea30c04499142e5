"""Names that moved between the task SDK releases of Airflow 3.1, 3.2 and 3.3, imported from
where the running version has them. The only module of the package that tries an Airflow import
and falls back: everything else imports these names from here.

- Task SDK 1.1 (Airflow 3.1) keeps the exceptions in core's ``airflow.exceptions``; from 1.2
  (Airflow 3.2) ``airflow.sdk.exceptions`` defines them and core re-exports them.
- ``airflow.sdk.conf`` arrived with task SDK 1.2 (Airflow 3.2); before, ``airflow.configuration``.
"""

from __future__ import annotations

try:
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferralTimeout,
    )
except ImportError:  # task SDK 1.1 (Airflow 3.1): core defines them
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined,unused-ignore]
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferralTimeout,
    )

try:
    from airflow.sdk import conf
except ImportError:  # task SDK 1.1 (Airflow 3.1)
    from airflow.configuration import conf  # type: ignore[no-redef,assignment,unused-ignore]

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "TaskDeferralTimeout",
    "conf",
]
