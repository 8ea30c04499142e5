"""DataWorks (product ``dataworks-public``, API 2024-05-18, RPC): ``GetJobStatus``.

Endpoint: ``dataworks.{region}.aliyuncs.com`` (VPC ``dataworks-vpc.{region}``). The regions the
official SDK's endpoint map sends to the central ``dataworks.aliyuncs.com`` (cn-qingdao,
cn-huhehaote and others without a regional DataWorks host) are followed, for public endpoints.
Request bodies are forms: every operation of ``alibabacloud-dataworks-public20240518`` 9.11.0 is
``req_body_type='formData'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_aliyun_tasks.services import _parse as p
from airflow_aliyun_tasks.services._spec import ConsoleLink, IdParam, ServiceSpec, StartOperation
from airflow_aliyun_tasks.status import CANCELLED, FAILED, RUNNING, SUCCEEDED, TaskStatus

#: DataWorks 2024-05-18 ``JobStatus.Status``: ``Success``, ``Fail``, ``Cancel``, ``Running``.
#: ``Completed`` is a *string* ``"True"``/``"False"`` and is not trusted (the documentation's
#: own example pairs ``Completed: "False"`` with ``Status: "Success"``).
DATAWORKS_STATES: dict[str, str] = {
    "running": RUNNING,
    "success": SUCCEEDED,
    "fail": FAILED,
    "failed": FAILED,
    "cancel": CANCELLED,
    "cancelled": CANCELLED,
}

#: Regions of ``alibabacloud-dataworks-public20240518``'s endpoint map with the central host.
_CENTRAL_REGIONS = (
    "ap-northeast-2-pop",
    "ap-south-1",
    "ap-southeast-2",
    "cn-beijing-finance-pop",
    "cn-beijing-gov-1",
    "cn-beijing-nu16-b01",
    "cn-edge-1",
    "cn-fujian",
    "cn-haidian-cm12-c01",
    "cn-hangzhou-bj-b01",
    "cn-hangzhou-finance",
    "cn-hangzhou-internal-prod-1",
    "cn-hangzhou-internal-test-1",
    "cn-hangzhou-internal-test-2",
    "cn-hangzhou-internal-test-3",
    "cn-hangzhou-test-306",
    "cn-hongkong-finance-pop",
    "cn-huhehaote",
    "cn-huhehaote-nebula-1",
    "cn-qingdao",
    "cn-qingdao-nebula",
    "cn-shanghai-et15-b01",
    "cn-shanghai-et2-b01",
    "cn-shanghai-inner",
    "cn-shanghai-internal-test-1",
    "cn-shenzhen-inner",
    "cn-shenzhen-st4-d01",
    "cn-shenzhen-su18-b01",
    "cn-wuhan",
    "cn-yushanfang",
    "cn-zhangbei",
    "cn-zhangbei-na61-b01",
    "cn-zhangjiakou-na62-a01",
    "cn-zhengzhou-nebula-1",
    "eu-west-1-oxs",
    "rus-west-1-pop",
)


def parse_dataworks(body: Mapping[str, Any], ids: dict[str, str], request_id: str | None) -> TaskStatus:
    js = p.obj(body, "JobStatus", "DataWorks GetJobStatus")
    raw_status = p.text(js.get("Status"))
    state = p.state(DATAWORKS_STATES, raw_status)
    error = p.text(js.get("Error"))
    return TaskStatus(
        service="dataworks",
        ids=ids,
        state=state,
        raw_status=raw_status,
        message=error if state != SUCCEEDED else None,
        request_id=p.text(body.get("RequestId")) or request_id,
        raw=p.raw(body),
    )


DATAWORKS = ServiceSpec(
    name="dataworks",
    label="DataWorks",
    product="dataworks-public",
    action="GetJobStatus",
    version="2024-05-18",
    style="RPC",
    method="GET",
    path="/",
    ids=(IdParam("job_id", "JobId", "query"),),
    signer="acs3",
    endpoint="dataworks.{region_id}.aliyuncs.com",
    vpc_endpoint="dataworks-vpc.{region_id}.aliyuncs.com",
    endpoint_exceptions=dict.fromkeys(_CENTRAL_REGIONS, "dataworks.aliyuncs.com"),
    ram_action="dataworks:GetJobStatus",
    parse=parse_dataworks,
    console=ConsoleLink(
        class_name="DataWorksConsoleLink",
        title="DataWorks console",
        url="https://dataworks.console.aliyun.com/overview?regionId={region_id}",
        note="the documented entry page; regionId is the query parameter other consoles take for "
        "the region (not documented for DataWorks). Async jobs have no console page of their own",
    ),
    start_operations=(
        StartOperation(
            action="ImportWorkflowDefinition",
            method="POST",
            path="/",
            task_ids={"job_id": "AsyncJob.Id"},
            note="alibabacloud-dataworks-public20240518: ImportWorkflowDefinitionResponseBody.AsyncJob.Id; "
            "the request takes no client token",
        ),
    ),
    docs_page="docs/sensors/dataworks.md",
    body_encoding="form",
)
