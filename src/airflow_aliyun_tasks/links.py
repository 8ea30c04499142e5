"""Operator extra links: from a sensor's task in the Airflow UI to the Alibaba Cloud console.

How a link is made (the pattern of the Amazon provider): when a sensor runs on a worker it stores
the link's parameters, the connection's region and the task's ids, in XCom under
:data:`CONSOLE_LINK_XCOM_KEY`; :meth:`AlibabaCloudConsoleLink.get_link` builds the URL from them.
No secret is stored and no connection is read when the link is built. In Airflow 3 the worker
calls ``get_link`` when a task run ends (a deferral included, so the link is there while the
sensor waits) and stores the URL; the API server and the UI only read that URL.

Console URLs: Alibaba Cloud publishes no deep links to the async tasks these sensors wait on, so
each link opens the service's console page for the connection's region (the pages documented in
Alibaba Cloud's help). The URL, the title and the class name of each link are in the service's
spec (:class:`~airflow_aliyun_tasks.services.ConsoleLink`); each class here names its service and
the base class reads the rest from the spec. The task's ids are in the task's XCom and logs.

Cheap to import: only ``airflow.sdk``'s ``BaseOperatorLink``, the registry and the region pattern of
:mod:`~airflow_aliyun_tasks.config` at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperatorLink

from airflow_aliyun_tasks.config import REGION_RE
from airflow_aliyun_tasks.services import get_service

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "CONSOLE_LINKS",
    "CONSOLE_LINK_XCOM_KEY",
    "AdbSparkConsoleLink",
    "AlibabaCloudConsoleLink",
    "AlibabaCloudTaskConsoleLink",
    "DataWorksConsoleLink",
    "DataWorksWorkflowConsoleLink",
    "DlfConsoleLink",
    "EmrServerlessSparkConsoleLink",
    "FcAsyncTaskConsoleLink",
    "FlinkJobConsoleLink",
    "MmaConsoleLink",
    "PaiDlcConsoleLink",
    "PdsConsoleLink",
    "console_link",
    "link_params",
]

#: XCom key under which the sensors store ``{"service", "region_id", "ids"}`` for their link.
CONSOLE_LINK_XCOM_KEY = "aliyun_console_link"


def link_params(service: str, region_id: str, ids: Mapping[str, Any]) -> dict[str, Any]:
    """The XCom value a sensor stores for its console link: plain JSON, no secret."""
    return {
        "service": str(service),
        "region_id": str(region_id),
        "ids": {str(k): str(v) for k, v in ids.items() if v is not None and v != ""},
    }


class AlibabaCloudConsoleLink(BaseOperatorLink):
    """Base class: a link to the console of :attr:`service`, built from stored parameters.

    A subclass sets :attr:`service`; its :attr:`name` (the button's title), its URL and the end
    of its docstring (the URL template and the spec's note) come from that service's spec
    (:attr:`~airflow_aliyun_tasks.services.ServiceSpec.console`).
    """

    name: ClassVar[str] = "Alibaba Cloud console"
    service: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.service:
            return
        console = get_service(cls.service).console
        cls.name = console.title
        cls.__doc__ = f"{cls.__doc__ or ''}\n\n{console.title}: ``{console.url}``" + (
            f" ({console.note})." if console.note else "."
        )

    def format_link(self, region_id: str, ids: Mapping[str, str]) -> str:
        """The URL for ``region_id`` and the task's ``ids``: the spec's URL template."""
        return get_service(self.service).console_url(region_id, ids)

    def url_for(self, params: Any) -> str:
        """The URL for a stored :func:`link_params` value; ``""`` when it does not fit this link."""
        if not isinstance(params, Mapping) or params.get("service") != self.service:
            return ""
        region = params.get("region_id")
        ids = params.get("ids")
        if not isinstance(region, str) or not REGION_RE.match(region) or not isinstance(ids, Mapping):
            return ""
        return self.format_link(region, {str(k): str(v) for k, v in ids.items()})

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return self.url_for(XCom.get_value(key=CONSOLE_LINK_XCOM_KEY, ti_key=ti_key))


# One class per service, written out: serialized DAGs store their import paths
# (``airflow_aliyun_tasks.links.DlfConsoleLink``), so a class's name is its spec's
# ``console.class_name`` and never changes.


class DlfConsoleLink(AlibabaCloudConsoleLink):
    """Link to the Data Lake Formation (DLF) console."""

    service = "dlf"


class DataWorksConsoleLink(AlibabaCloudConsoleLink):
    """Link to the DataWorks console."""

    service = "dataworks"


class MmaConsoleLink(AlibabaCloudConsoleLink):
    """Link to the MaxCompute console, where MaxCompute Migration Assist is."""

    service = "mma"


class PdsConsoleLink(AlibabaCloudConsoleLink):
    """Link to the Drive and Photo Service (PDS) console."""

    service = "pds"


class EmrServerlessSparkConsoleLink(AlibabaCloudConsoleLink):
    """Link to the EMR Serverless Spark console."""

    service = "emr_serverless_spark"


class DataWorksWorkflowConsoleLink(AlibabaCloudConsoleLink):
    """Link to the DataWorks console, for a workflow instance."""

    service = "dataworks_workflow"


class PaiDlcConsoleLink(AlibabaCloudConsoleLink):
    """Link to the PAI console's DLC jobs."""

    service = "pai_dlc"


class AdbSparkConsoleLink(AlibabaCloudConsoleLink):
    """Link to the AnalyticDB for MySQL console's clusters."""

    service = "adb_spark"


class FlinkJobConsoleLink(AlibabaCloudConsoleLink):
    """Link to the Realtime Compute for Apache Flink console."""

    service = "flink_job"


class FcAsyncTaskConsoleLink(AlibabaCloudConsoleLink):
    """Link to the function's page in the Function Compute console."""

    service = "fc_async_task"


#: Link class per service, as the sensors use them: one per service of the registry (a test
#: checks that none is missing and that each class is named as its spec says).
CONSOLE_LINKS: dict[str, type[AlibabaCloudConsoleLink]] = {
    cls.service: cls
    for cls in (
        DlfConsoleLink,
        DataWorksConsoleLink,
        MmaConsoleLink,
        PdsConsoleLink,
        EmrServerlessSparkConsoleLink,
        DataWorksWorkflowConsoleLink,
        PaiDlcConsoleLink,
        AdbSparkConsoleLink,
        FlinkJobConsoleLink,
        FcAsyncTaskConsoleLink,
    )
}


class AlibabaCloudTaskConsoleLink(AlibabaCloudConsoleLink):
    """The console of whichever service the stored parameters name: the link of the generic
    operator, whose service is a (templated) argument rather than its class's."""

    name: ClassVar[str] = "Alibaba Cloud console"

    def url_for(self, params: Any) -> str:
        service = params.get("service") if isinstance(params, Mapping) else None
        link = CONSOLE_LINKS.get(service) if isinstance(service, str) else None
        return link().url_for(params) if link is not None else ""


def console_link(service: str) -> AlibabaCloudConsoleLink:
    """An instance of the console link of ``service``."""
    return CONSOLE_LINKS[service]()
