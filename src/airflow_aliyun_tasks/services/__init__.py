"""The service registry: one declarative description per service, and the parsers that turn
their bodies into :class:`~airflow_aliyun_tasks.status.TaskStatus`.

Each module here describes one service completely (:class:`ServiceSpec`): product and endpoint
rule, signing scheme, request shape, ids, parser and state table, console link, RAM action, and
the operations that start or cancel its tasks. The rest of the package derives what it needs
from :data:`SERVICES`: the connection's ``<service>_endpoint`` extras and form fields, the
trigger's id keywords, the console links, error messages and the docs tables. Adding a service
is one module here, one line in :data:`SERVICES` and a thin sensor subclass.

No Airflow and no HTTP here: importing the registry is cheap.
"""

from __future__ import annotations

from airflow_aliyun_tasks.errors import ConfigurationError
from airflow_aliyun_tasks.services._spec import (
    FORM_CONTENT_TYPE,
    HOST_LABEL_RE,
    MAX_ID_LENGTH,
    RAW_CONTENT_TYPE,
    ApiRequest,
    ApiStyle,
    BodyEncoding,
    CancelCheck,
    CancelOperation,
    ConsoleLink,
    FollowUp,
    IdempotencyLocation,
    IdLocation,
    IdParam,
    Parser,
    ResponseBody,
    ServiceSpec,
    SignerKind,
    StartOperation,
    check_header_name,
    check_header_value,
    decode_form,
    encode_body,
    form_value,
    ids_from_response,
    is_list_path,
    lookup,
    request_values,
    tasks_from_response,
    validate_id,
)
from airflow_aliyun_tasks.services.adb_spark import ADB_SPARK, ADB_SPARK_STATES, parse_adb_spark
from airflow_aliyun_tasks.services.dataworks import DATAWORKS, DATAWORKS_STATES, parse_dataworks
from airflow_aliyun_tasks.services.dataworks_workflow import (
    DATAWORKS_WORKFLOW,
    DATAWORKS_WORKFLOW_STATES,
    parse_dataworks_workflow,
)
from airflow_aliyun_tasks.services.dlf import DLF, DLF_STATES, parse_dlf
from airflow_aliyun_tasks.services.emr_serverless_spark import (
    EMR_SERVERLESS_SPARK,
    EMR_SERVERLESS_SPARK_STATES,
    parse_emr_serverless_spark,
)
from airflow_aliyun_tasks.services.fc_async_task import (
    FC_ASYNC_TASK,
    FC_ASYNC_TASK_STATES,
    parse_fc_async_task,
)
from airflow_aliyun_tasks.services.flink_job import FLINK_JOB, FLINK_JOB_STATES, parse_flink_job
from airflow_aliyun_tasks.services.mma import MMA, MMA_STATES, parse_mma
from airflow_aliyun_tasks.services.pai_dlc import PAI_DLC, PAI_DLC_STATES, parse_pai_dlc
from airflow_aliyun_tasks.services.pds import PDS, PDS_STATES, parse_pds

__all__ = [
    "ADB_SPARK",
    "ADB_SPARK_STATES",
    "DATAWORKS",
    "DATAWORKS_STATES",
    "DATAWORKS_WORKFLOW",
    "DATAWORKS_WORKFLOW_STATES",
    "DLF",
    "DLF_STATES",
    "EMR_SERVERLESS_SPARK",
    "EMR_SERVERLESS_SPARK_STATES",
    "FC_ASYNC_TASK",
    "FC_ASYNC_TASK_STATES",
    "FLINK_JOB",
    "FLINK_JOB_STATES",
    "FORM_CONTENT_TYPE",
    "HOST_LABEL_RE",
    "ID_NAMES",
    "MAX_ID_LENGTH",
    "MMA",
    "MMA_STATES",
    "PAI_DLC",
    "PAI_DLC_STATES",
    "PDS",
    "PDS_STATES",
    "RAW_CONTENT_TYPE",
    "SERVICES",
    "ApiRequest",
    "ApiStyle",
    "BodyEncoding",
    "CancelCheck",
    "CancelOperation",
    "ConsoleLink",
    "FollowUp",
    "IdLocation",
    "IdParam",
    "IdempotencyLocation",
    "Parser",
    "ResponseBody",
    "ServiceSpec",
    "SignerKind",
    "StartOperation",
    "check_header_name",
    "check_header_value",
    "connection_defaults",
    "decode_form",
    "encode_body",
    "form_value",
    "get_service",
    "ids_from_response",
    "is_list_path",
    "lookup",
    "parse_adb_spark",
    "parse_dataworks",
    "parse_dataworks_workflow",
    "parse_dlf",
    "parse_emr_serverless_spark",
    "parse_fc_async_task",
    "parse_flink_job",
    "parse_mma",
    "parse_pai_dlc",
    "parse_pds",
    "request_values",
    "tasks_from_response",
    "validate_id",
]

#: Every service, by name, in the order the docs list them.
SERVICES: dict[str, ServiceSpec] = {
    s.name: s
    for s in (
        DLF,
        DATAWORKS,
        MMA,
        PDS,
        EMR_SERVERLESS_SPARK,
        DATAWORKS_WORKFLOW,
        PAI_DLC,
        ADB_SPARK,
        FLINK_JOB,
        FC_ASYNC_TASK,
    )
}

#: Every id name of every service, in registry order, without repeats (the trigger's flat id
#: keywords, and so the templated fields a sensor started in the triggerer may render).
ID_NAMES: tuple[str, ...] = tuple(dict.fromkeys(n for s in SERVICES.values() for n in s.id_names))


def connection_defaults() -> dict[str, IdParam]:
    """The connection extras that supply an id's default (``pds_domain_id``), with their id."""
    return {p.connection_default: p for s in SERVICES.values() for p in s.ids if p.connection_default}


def get_service(name: str) -> ServiceSpec:
    """The spec of ``name`` (one of :data:`SERVICES`)."""
    try:
        return SERVICES[name]
    except (KeyError, TypeError):
        raise ConfigurationError(
            "service", f"unknown service {name!r} (expected one of: {', '.join(SERVICES)})"
        ) from None
