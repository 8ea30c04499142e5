"""The package's default host of every service, for every region of the official SDK's endpoint
map and both networks (public, VPC), against the SDK clients' own resolution (``get_endpoint``:
the map, else ``alibabacloud_tea_openapi``'s ``get_endpoint_rules``).

Each difference is either adopted (the spec's ``endpoint_exceptions``: no difference left) or
kept on purpose, listed in :data:`KEPT` with the sentence of docs/connection.md that gives the
reason.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from airflow_aliyun_tasks.services import SERVICES

pytest.importorskip("alibabacloud_tea_openapi")
from alibabacloud_tea_openapi.models import Config

DOCS = Path(__file__).resolve().parent.parent / "docs" / "connection.md"

#: service -> (SDK client module, the product id its client passes to get_endpoint)
SDK_CLIENTS = {
    "dlf": ("alibabacloud_datalake20200710.client", "datalake"),
    "dataworks": ("alibabacloud_dataworks_public20240518.client", "dataworks-public"),
    "mma": ("alibabacloud_maxcompute20220104.client", "maxcompute"),
    "emr_serverless_spark": ("alibabacloud_emr_serverless_spark20230808.client", "emr-serverless-spark"),
    # DataWorks workflow instances: the same SDK client as DataWorks' jobs.
    "dataworks_workflow": ("alibabacloud_dataworks_public20240518.client", "dataworks-public"),
    "pai_dlc": ("alibabacloud_pai_dlc20201203.client", "pai-dlc"),
    "adb_spark": ("alibabacloud_adb20211201.client", "adb"),
    "flink_job": ("alibabacloud_ververica20220718.client", "ververica"),
    "fc_async_task": ("alibabacloud_fc20230330.client", "fc"),
}
#: The ``"host"`` ids of a service whose host names more than the region (Function Compute's
#: account), as a connection supplies them.
HOST_IDS: dict[str, dict[str, str]] = {"fc_async_task": {"account_id": "1234567890123456"}}
#: Regions checked for a client without a map (its rule applies everywhere).
RULE_REGIONS = ("cn-hangzhou", "cn-beijing", "cn-shanghai", "cn-shenzhen", "ap-southeast-1", "eu-central-1")

#: Differences kept on purpose: (service, network, the SDK's host with ``{region}``) -> a phrase
#: of docs/connection.md that gives the reason.
KEPT: dict[tuple[str, str, str], str] = {
    (
        "dlf",
        "public",
        "datalake-daily.aliyuncs.com",
    ): "`datalake-daily.aliyuncs.com`, which looks like a test host",
    (
        "dlf",
        "vpc",
        "datalake-daily.aliyuncs.com",
    ): "`datalake-daily.aliyuncs.com`, which looks like a test host",
    ("dlf", "vpc", "dlf.{region}.aliyuncs.com"): "the SDKs' maps ignore the network",
    ("dataworks", "vpc", "dataworks.aliyuncs.com"): "the SDKs' maps ignore the network",
    ("dataworks", "vpc", "dataworks.{region}.aliyuncs.com"): "the SDKs' maps ignore the network",
    ("dataworks_workflow", "vpc", "dataworks.aliyuncs.com"): "the SDKs' maps ignore the network",
    ("dataworks_workflow", "vpc", "dataworks.{region}.aliyuncs.com"): "the SDKs' maps ignore the network",
    ("mma", "public", "maxcompute.aliyuncs.com"): "the central `maxcompute.aliyuncs.com`",
    ("mma", "vpc", "maxcompute.aliyuncs.com"): "the central `maxcompute.aliyuncs.com`",
    ("pai_dlc", "vpc", "pai-dlc.aliyuncs.com"): "the SDKs' maps ignore the network",
    ("adb_spark", "vpc", "adb.aliyuncs.com"): "the SDKs' maps ignore the network",
    ("adb_spark", "vpc", "adb.ap-northeast-1.aliyuncs.com"): "the SDKs' maps ignore the network",
    ("flink_job", "vpc", "ververica.{region}.aliyuncs.com"): "the SDKs' maps ignore the network",
    # Function Compute: the SDK's map names OpenAPI gateway hosts without the account, for both
    # networks (one with a stray tab, ap-southeast-5's); the package keeps the documented
    # account hosts.
    **{
        ("fc_async_task", network, host): "the documented account hosts"
        for network in ("public", "vpc")
        for host in ("fcv3.{region}.aliyuncs.com", "fcv3.{region}.aliyuncs.com\t", "{region}.fc.aliyuncs.com")
    },
}

#: Region ids of an SDK's map that no customer uses (internal, test and cell ids), per service
#: whose spec leaves them out (its module says so), with the phrase of docs/connection.md that
#: says it. Every other region of the map is compared as above.
INTERNAL_REGIONS: dict[str, tuple[frozenset[str], str]] = {
    "pai_dlc": (
        frozenset(
            {
                "ap-northeast-2-pop",
                "cn-beijing-finance-pop",
                "cn-beijing-gov-1",
                "cn-beijing-nu16-b01",
                "cn-edge-1",
                "cn-fujian",
                "cn-haidian-cm12-c01",
                "cn-hangzhou-bj-b01",
                "cn-hangzhou-internal-prod-1",
                "cn-hangzhou-internal-test-1",
                "cn-hangzhou-internal-test-2",
                "cn-hangzhou-internal-test-3",
                "cn-hangzhou-test-306",
                "cn-hongkong-finance-pop",
                "cn-huhehaote-nebula-1",
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
            }
        ),
        "internal, test and cell region ids",
    ),
    "adb_spark": (
        frozenset(
            {
                "ap-northeast-2-pop",
                "cn-beijing-finance-pop",
                "cn-beijing-gov-1",
                "cn-beijing-nu16-b01",
                "cn-edge-1",
                "cn-fujian",
                "cn-haidian-cm12-c01",
                "cn-hangzhou-bj-b01",
                "cn-hangzhou-internal-prod-1",
                "cn-hangzhou-internal-test-1",
                "cn-hangzhou-internal-test-2",
                "cn-hangzhou-internal-test-3",
                "cn-hangzhou-test-306",
                "cn-hongkong-finance-pop",
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
                "cn-zhangbei-na61-b01",
                "cn-zhangjiakou-na62-a01",
                "cn-zhengzhou-nebula-1",
                "eu-west-1-oxs",
                "rus-west-1-pop",
            }
        ),
        "internal, test and cell region ids",
    ),
}


def _sdk_hosts(service: str) -> dict[tuple[str, str], str]:
    module, product = SDK_CLIENTS[service]
    client_cls = importlib.import_module(module).Client
    client: Any = client_cls(Config(region_id="cn-hangzhou", access_key_id="a", access_key_secret="b"))
    endpoint_map = client._endpoint_map or {}
    regions = sorted(endpoint_map) or list(RULE_REGIONS)
    hosts = {}
    for region in regions:
        for network in ("public", "vpc"):
            hosts[region, network] = client.get_endpoint(
                product,
                region,
                client._endpoint_rule,
                "" if network == "public" else network,
                client._suffix,
                endpoint_map,
                None,
            )
    return hosts


def test_every_service_with_a_regional_sdk_is_compared() -> None:
    regional = {name for name, spec in SERVICES.items() if "{region_id}" in spec.endpoint}
    assert regional <= set(SDK_CLIENTS)


@pytest.mark.parametrize("service", sorted(SDK_CLIENTS))
def test_default_hosts_match_the_sdk_or_differ_on_purpose(service: str) -> None:
    spec = SERVICES[service]
    docs = DOCS.read_text()
    unexplained = []
    internal, reason = INTERNAL_REGIONS.get(service, (frozenset(), ""))
    if internal:
        assert reason in docs, f"docs/connection.md must say why {service} leaves out {reason}"
    hosts = _sdk_hosts(service)
    regions = {region for region, _ in hosts}
    assert internal <= regions, "an internal region left the SDK's map"
    assert set(spec.endpoint_exceptions) <= regions, "an exception the SDK's map does not make"
    for (region, network), theirs in hosts.items():
        ours = spec.host_for(region, HOST_IDS.get(service, {}), vpc=network == "vpc")
        if ours == theirs or region in internal:
            continue
        key = (service, network, theirs.replace(region, "{region}"))
        if key not in KEPT:
            unexplained.append(f"{region} {network}: SDK {theirs}, package {ours}")
            continue
        assert KEPT[key] in docs, f"docs/connection.md must give the reason for {key}"
    assert unexplained == []


def test_pds_host_as_the_gateway_resolves_it() -> None:
    pds = pytest.importorskip("alibabacloud_gateway_pds.client")
    gateway: Any = pds.Client()
    spec = SERVICES["pds"]
    for network in ("public", "vpc"):
        theirs = gateway.get_endpoint(network if network == "vpc" else "", "bj1.api.aliyunpds.com")
        assert spec.host_for("cn-hangzhou", {"domain_id": "bj1"}, vpc=network == "vpc") == theirs
