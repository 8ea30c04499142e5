"""Operator extra links: from a sensor's task in the Airflow UI to the Alibaba Cloud console.

How a link is made (the pattern of the Amazon provider): when a sensor runs on a worker it stores
the link's parameters, the connection's region and the task's ids, in XCom under
:data:`CONSOLE_LINK_XCOM_KEY`; :meth:`AlibabaCloudConsoleLink.get_link` builds the URL from them.
No secret is stored and no connection is read when the link is built. In Airflow 3 the worker
calls ``get_link`` when a task run ends (a deferral included, so the link is there while the
sensor waits) and stores the URL; the API server and the UI only read that URL.

Console URLs: Alibaba Cloud publishes no deep links to the async tasks these sensors wait on, so
each link opens the service's console page for the connection's region (the pages documented in
Alibaba Cloud's help; see each class). The task's ids are in the task's XCom and logs.

Cheap to import: only ``airflow.sdk``'s ``BaseOperatorLink`` at import time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

#: XCom key under which the sensors store ``{"service", "region_id", "ids"}`` for their link.
CONSOLE_LINK_XCOM_KEY = "aliyun_console_link"

#: The console's host name suffix (the China site; international accounts are sent on by Alibaba
#: Cloud's sign-in).
CONSOLE_DOMAIN = "console.aliyun.com"

_REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+){1,4}$")


def link_params(service: str, region_id: str, ids: Mapping[str, Any]) -> dict[str, Any]:
    """The XCom value a sensor stores for its console link: plain JSON, no secret."""
    return {
        "service": str(service),
        "region_id": str(region_id),
        "ids": {str(k): str(v) for k, v in ids.items() if v is not None and v != ""},
    }


class AlibabaCloudConsoleLink(BaseOperatorLink):
    """Base class: a link to the console of :attr:`service`, built from stored parameters."""

    name: ClassVar[str] = "Alibaba Cloud console"
    service: ClassVar[str] = ""

    def format_link(self, region_id: str, ids: Mapping[str, str]) -> str:
        """The URL for ``region_id`` and the task's ``ids``."""
        raise NotImplementedError

    def url_for(self, params: Any) -> str:
        """The URL for a stored :func:`link_params` value; ``""`` when it does not fit this link."""
        if not isinstance(params, Mapping) or params.get("service") != self.service:
            return ""
        region = params.get("region_id")
        ids = params.get("ids")
        if not isinstance(region, str) or not _REGION_RE.match(region) or not isinstance(ids, Mapping):
            return ""
        return self.format_link(region, {str(k): str(v) for k, v in ids.items()})

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return self.url_for(XCom.get_value(key=CONSOLE_LINK_XCOM_KEY, ti_key=ti_key))


def _q(value: str) -> str:
    return quote(value, safe="")


class DlfConsoleLink(AlibabaCloudConsoleLink):
    """Data Lake Formation console, the catalogs page of the region:
    ``https://dlf.console.aliyun.com/<region>/metadata/catalog`` (the page Alibaba Cloud's API
    reference sends readers to). No deep link to a catalog or an async task is documented."""

    name: ClassVar[str] = "DLF console"
    service: ClassVar[str] = "dlf"

    def format_link(self, region_id: str, ids: Mapping[str, str]) -> str:
        return f"https://dlf.{CONSOLE_DOMAIN}/{_q(region_id)}/metadata/catalog"


class DataWorksConsoleLink(AlibabaCloudConsoleLink):
    """DataWorks console: ``https://dataworks.console.aliyun.com/overview?regionId=<region>``.

    ``/overview`` is the documented entry page; DataWorks picks the region in its top bar, and
    ``regionId`` is the query parameter other Alibaba Cloud consoles take for it (not documented
    for DataWorks: without it the console opens on the last region used). Async jobs such as
    ``ImportWorkflowDefinition`` have no console page of their own."""

    name: ClassVar[str] = "DataWorks console"
    service: ClassVar[str] = "dataworks"

    def format_link(self, region_id: str, ids: Mapping[str, str]) -> str:
        return f"https://dataworks.{CONSOLE_DOMAIN}/overview?regionId={_q(region_id)}"


class MmaConsoleLink(AlibabaCloudConsoleLink):
    """MaxCompute console of the region: ``https://maxcompute.console.aliyun.com/<region>/overview``.

    MaxCompute Migration Assist (Migration Service) lives in this console's left navigation; no
    deep link to a data source or an async task is documented."""

    name: ClassVar[str] = "MaxCompute console"
    service: ClassVar[str] = "mma"

    def format_link(self, region_id: str, ids: Mapping[str, str]) -> str:
        return f"https://maxcompute.{CONSOLE_DOMAIN}/{_q(region_id)}/overview"


class PdsConsoleLink(AlibabaCloudConsoleLink):
    """Drive and Photo Service console: ``https://pds.console.aliyun.com/``.

    PDS domains are global (the console is not per region) and no deep link to a domain or an
    async task is documented; the domain is in the task's XCom (``ids.domain_id``)."""

    name: ClassVar[str] = "PDS console"
    service: ClassVar[str] = "pds"

    def format_link(self, region_id: str, ids: Mapping[str, str]) -> str:
        return f"https://pds.{CONSOLE_DOMAIN}/"


#: Link class per service, as the sensors use them.
CONSOLE_LINKS: dict[str, type[AlibabaCloudConsoleLink]] = {
    cls.service: cls for cls in (DlfConsoleLink, DataWorksConsoleLink, MmaConsoleLink, PdsConsoleLink)
}
