"""AnalyticDB for MySQL Spark applications (product ``adb``, API 2021-12-01, RPC):
``GetSparkAppState``.

Facts from the official SDK package ``alibabacloud-adb20211201`` 4.5.1 (``client.py``,
``models/``); every operation is RPC, ``POST /``, ``req_body_type='formData'``:

- ``GetSparkAppState``: ``AppId`` in the form body ("This parameter is required"),
  ``DBClusterId`` in the query. ``DBClusterId`` is optional (the model does not call it
  required, and the SDK sends it only when set), so the package sends ``AppId`` alone, as the ASF
  Alibaba provider's hook and DolphinScheduler's AnalyticDB Spark task do. Answer: ``{"RequestId",
  "Data": {"AppId", "AppName", "DBClusterId", "State", "Message"}}``; ``Message`` is "the alert
  message returned for the operation, such as task execution failure or insufficient resources.
  If no alert occurs, null is returned."
- Start: ``SubmitSparkApp``, a form body (``DBClusterId``, ``ResourceGroupName`` and ``Data``, the
  application's JSON configuration as text, are required; ``AppType``, ``AppName``,
  ``TemplateFileId``, ``AgentSource``, ``AgentVersion``), answers ``Data.AppId`` (and
  ``Data.State``, ``Data.Message``). It takes no client token: every accepted request submits an
  application.
- Cancel: ``KillSparkApp``, ``AppId`` in the form body and the optional ``DBClusterId`` in the
  query, as the status call; answers ``Data`` with the application's state.

Endpoint: ``adb.{region}.aliyuncs.com`` (VPC ``adb-vpc.{region}.aliyuncs.com``: the SDK's
regional rule for a network, not confirmed by a document). The SDK's endpoint map sends the
regions below to the central ``adb.aliyuncs.com`` (and ``me-east-1`` to
``adb.ap-northeast-1.aliyuncs.com``), and so does the package for public endpoints. The map also
lists internal, test and cell region ids (``cn-hangzhou-internal-test-1``,
``cn-shanghai-et15-b01``, ``ap-northeast-2-pop``...) that no customer uses; they are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_aliyun_tasks.services import _parse as p
from airflow_aliyun_tasks.services._spec import (
    CancelOperation,
    ConsoleLink,
    IdParam,
    ServiceSpec,
    StartOperation,
)
from airflow_aliyun_tasks.status import CANCELLED, FAILED, RUNNING, SUCCEEDED, UNKNOWN, TaskStatus

#: ``Data.State``, as the SDK's model (``GetSparkAppStateResponseBodyData.state``) lists the
#: values::
#:
#:     The execution state of the application. Valid values:
#:     *   **SUBMITTED**
#:     *   **STARTING**
#:     *   **RUNNING**
#:     *   **FAILING**
#:     *   **FAILED**
#:     *   **KILLING**
#:     *   **KILLED**
#:     *   **SUCCEEDING**
#:     *   **COMPLETED**
#:     *   **FATAL**
#:     *   **UNKNOWN**
#:
#: ``FAILING``, ``SUCCEEDING`` and ``KILLING`` are on their way to ``FAILED``, ``COMPLETED`` and
#: ``KILLED``: the wait goes on until the application gets there. ``FATAL`` is a failure as
#: ``FAILED`` is. ``UNKNOWN`` is the service not knowing the application's state: the wait goes
#: on, with a warning, as for any state not listed here.
ADB_SPARK_STATES: dict[str, str] = {
    "submitted": RUNNING,
    "starting": RUNNING,
    "running": RUNNING,
    "failing": RUNNING,
    "succeeding": RUNNING,
    "killing": RUNNING,
    "completed": SUCCEEDED,
    "failed": FAILED,
    "fatal": FAILED,
    "killed": CANCELLED,
    "unknown": UNKNOWN,
}

#: The regions of ``alibabacloud-adb20211201``'s endpoint map that are region ids customers use,
#: with the host the map gives them; the map's internal ones are left out.
_MAPPED_REGIONS: dict[str, str] = {
    **dict.fromkeys(
        (
            "ap-southeast-1",
            "cn-beijing",
            "cn-beijing-finance-1",
            "cn-hangzhou",
            "cn-hangzhou-finance",
            "cn-hongkong",
            "cn-north-2-gov-1",
            "cn-qingdao",
            "cn-shanghai",
            "cn-shanghai-finance-1",
            "cn-shenzhen",
            "cn-shenzhen-finance-1",
            "us-east-1",
            "us-west-1",
        ),
        "adb.aliyuncs.com",
    ),
    "me-east-1": "adb.ap-northeast-1.aliyuncs.com",
}


def parse_adb_spark(body: Mapping[str, Any], ids: dict[str, str], request_id: str | None) -> TaskStatus:
    data = p.obj(body, "Data", "AnalyticDB GetSparkAppState")
    raw_status = p.text(data.get("State"))
    state = p.state(ADB_SPARK_STATES, raw_status)
    return TaskStatus(
        service="adb_spark",
        ids=ids,
        state=state,
        raw_status=raw_status,
        # Message is an alert (a failure, or resources short while the application waits).
        message=p.text(data.get("Message")) if state != SUCCEEDED else None,
        request_id=p.text(body.get("RequestId")) or request_id,
        raw=p.raw(body),
    )


_SDK = "alibabacloud-adb20211201 4.5.1"

ADB_SPARK = ServiceSpec(
    name="adb_spark",
    label="AnalyticDB Spark",
    long_label="AnalyticDB for MySQL Spark applications",
    product="adb",
    action="GetSparkAppState",
    version="2021-12-01",
    style="RPC",
    method="POST",
    path="/",
    ids=(IdParam("app_id", "AppId", "body"),),
    signer="acs3",
    endpoint="adb.{region_id}.aliyuncs.com",
    vpc_endpoint="adb-vpc.{region_id}.aliyuncs.com",
    endpoint_exceptions=_MAPPED_REGIONS,
    ram_action="adb:GetSparkAppState",
    parse=parse_adb_spark,
    console=ConsoleLink(
        class_name="AdbSparkConsoleLink",
        title="AnalyticDB console",
        url="https://ads.console.aliyun.com/adb/{region_id}/instances",
        note="the AnalyticDB for MySQL cluster list of the region; a cluster's Spark applications "
        "need its cluster id, which GetSparkAppState returns (Data.DBClusterId in the task's XCom) "
        "but the status call does not need",
    ),
    start_operations=(
        StartOperation(
            action="SubmitSparkApp",
            method="POST",
            path="/",
            task_ids={"app_id": "Data.AppId"},
            note=f"{_SDK}: SubmitSparkAppResponseBody.Data.AppId; a form body (DBClusterId, "
            "ResourceGroupName and Data, the application's JSON configuration as text); no client "
            "token, so the operator sends it once (no retries) and relies on the task state store "
            "to reconnect on a retry",
        ),
    ),
    cancel=CancelOperation(
        action="KillSparkApp",
        method="POST",
        path="/",
        note=f"{_SDK}: KillSparkApp, AppId in the form body as GetSparkAppState sends it; the "
        "application goes through KILLING to KILLED",
    ),
    docs_page="docs/sensors/adb_spark.md",
    body_encoding="form",
)
