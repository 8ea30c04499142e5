"""The tests' names for what moved between Airflow 3.1, 3.2 and 3.3 (the package's own are in
``airflow_aliyun_tasks._compat``), and the marker for tests of a feature an older Airflow lacks.

``make test-compat`` runs the tests that apply on Airflow 3.1 and 3.2; a test of something that
only a newer Airflow has is skipped there with :func:`needs_airflow`, which names the reason.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow import __version__ as _AIRFLOW_VERSION
from packaging.version import Version

from airflow_aliyun_tasks._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferralTimeout,
)

AIRFLOW_VERSION = Version(Version(_AIRFLOW_VERSION).base_version)
AIRFLOW_3_2 = Version("3.2") <= AIRFLOW_VERSION
AIRFLOW_3_3 = Version("3.3") <= AIRFLOW_VERSION

if AIRFLOW_3_2:
    from airflow.sdk.exceptions import TaskDeferred
    from airflow.sdk.serde import deserialize, serialize
else:  # Airflow 3.1: core has them
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]
    from airflow.serialization.serde import deserialize, serialize  # type: ignore[no-redef]


def dagbag(dag_folder: str) -> Any:
    """A DagBag of ``dag_folder`` (``airflow.dag_processing.dagbag`` from 3.2, before in models)."""
    if AIRFLOW_3_2:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag(dag_folder=dag_folder)


def dag_serialization() -> Any:
    """The DAG serializer (``DagSerialization`` from 3.2, before ``SerializedDAG``)."""
    from airflow.serialization import serialized_objects

    return getattr(serialized_objects, "DagSerialization", None) or serialized_objects.SerializedDAG


def needs_airflow(version: str, what: str) -> pytest.MarkDecorator:
    """Skip on an Airflow older than ``version``, saying which feature it lacks."""
    return pytest.mark.skipif(
        Version(version) > AIRFLOW_VERSION,
        reason=f"{what} arrived in Airflow {version}; this is Airflow {_AIRFLOW_VERSION}",
    )


__all__ = [
    "AIRFLOW_3_2",
    "AIRFLOW_3_3",
    "AIRFLOW_VERSION",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "TaskDeferralTimeout",
    "TaskDeferred",
    "dag_serialization",
    "dagbag",
    "deserialize",
    "needs_airflow",
    "serialize",
]
