"""Provider metadata for Airflow's provider discovery (entry point ``apache_airflow_provider``).

The connection form is declared here (``conn-fields`` and ``ui-field-behaviour``): Airflow 3.2+
renders it without importing the hook.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_aliyun_tasks.services import SERVICES, connection_defaults


def _field(label: str, description: str, *, secret: bool = False, **schema: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"type": ["string", "null"], **schema}
    if secret:
        s["format"] = "password"
    return {"label": label, "description": description, "schema": s}


def _placeholders(template: str) -> str:
    """``dlf.{region_id}.aliyuncs.com`` as the form shows it: ``dlf.<region>.aliyuncs.com``."""
    return re.sub(r"\{(\w+)\}", lambda m: "<region>" if m[1] == "region_id" else f"<{m[1]}>", template)


CONN_FIELDS: dict[str, Any] = {
    "region_id": _field("Region", "Region id, for example cn-hangzhou (required).", default="cn-hangzhou"),
    "auth_type": _field(
        "Auth type",
        "How to authenticate: access_key (default), sts, ram_role_arn, ecs_ram_role, oidc_role_arn, "
        "credentials_uri, bearer (PDS access token) or default (the credentials library's chain).",
        enum=[
            "access_key",
            "sts",
            "ram_role_arn",
            "ecs_ram_role",
            "oidc_role_arn",
            "credentials_uri",
            "bearer",
            "default",
            None,
        ],
        default="access_key",
    ),
    "security_token": _field(
        "STS security token", "For auth_type sts (or a ram_role_arn base).", secret=True
    ),
    "role_arn": _field("RAM role ARN", "For ram_role_arn and oidc_role_arn: acs:ram::<uid>:role/<name>."),
    "role_session_name": _field("Role session name", "For ram_role_arn and oidc_role_arn."),
    "external_id": _field("External id", "For ram_role_arn, when the role's trust policy asks for one."),
    "policy": _field("Session policy", "Optional policy JSON that narrows the assumed role."),
    "role_session_expiration": {
        "label": "Role session seconds",
        "description": "Lifetime of assumed-role credentials (900-43200, default 3600).",
        "schema": {"type": ["integer", "null"], "minimum": 900, "maximum": 43200},
    },
    "role_name": _field("ECS RAM role name", "For ecs_ram_role; empty means the instance's role."),
    "oidc_provider_arn": _field("OIDC provider ARN", "For oidc_role_arn."),
    "oidc_token_file_path": _field("OIDC token file", "For oidc_role_arn: path of the OIDC token file."),
    "credentials_uri": _field(
        "Credentials URI", "For credentials_uri: URL that serves temporary credentials."
    ),
    "bearer_token": _field("PDS access token", "For bearer: a PDS user access token.", secret=True),
    **{
        extra: _field(
            param.label or extra,
            f"Default {param.name} of the calls that pass none"
            + (f", for example {param.example}." if param.example else "."),
        )
        for extra, param in connection_defaults().items()
    },
    **{
        spec.endpoint_extra: _field(
            f"{spec.label} endpoint",
            f"Override, a host or URL (default {_placeholders(spec.endpoint)}).",
        )
        for spec in SERVICES.values()
    },
    "sts_endpoint": _field("STS endpoint", "Override, a host or URL (default sts.<region>.aliyuncs.com)."),
    "use_vpc_endpoints": {
        "label": "Use VPC endpoints",
        "description": "Use the services' VPC endpoints instead of the public ones.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
    "timeout": {
        "label": "Timeout (s)",
        "description": "Seconds per HTTP attempt (default 10).",
        "schema": {"type": ["number", "null"], "minimum": 0.1, "maximum": 300},
    },
    "connect_timeout": {
        "label": "Connect timeout (s)",
        "description": "Seconds to set up a connection: TCP, proxy tunnel and TLS (default: the timeout).",
        "schema": {"type": ["number", "null"], "minimum": 0.1, "maximum": 300},
    },
    "https_proxy": _field(
        "HTTPS proxy",
        "Proxy URL for https endpoints, http://[user:password@]host:port (tunnelled with CONNECT: "
        "TLS stays end to end). Wins over the HTTPS_PROXY environment variable.",
        secret=True,
    ),
    "http_proxy": _field(
        "HTTP proxy", "Proxy URL for plain http endpoints. Wins over HTTP_PROXY.", secret=True
    ),
    "no_proxy": _field(
        "No proxy", "Comma-separated hosts, domains (.example.com) or * that go direct. Wins over NO_PROXY."
    ),
    "trust_env": {
        "label": "Trust environment",
        "description": "Read HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY, SSL_CERT_FILE and SSL_CERT_DIR "
        "from the environment (default true).",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "ca_bundle": _field(
        "CA bundle",
        "Path of a PEM file of the CA certificates to trust (a private CA, a TLS-inspecting proxy).",
    ),
    "user_agent": _field("User-Agent suffix", "Appended to the package's User-Agent header."),
    "max_retries": {
        "label": "Max retries",
        "description": "Retries of throttled, failed or timed-out requests (default 3).",
        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 10},
    },
    "correct_clock_skew": {
        "label": "Correct clock skew",
        "description": "When the server rejects the request time, sign with the server's clock from then on.",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-aliyun-tasks",
        "name": "Alibaba Cloud async tasks",
        "description": "Operators that start and wait, deferrable sensors, async triggers (asset watchers included) and a hook for "
        "Alibaba Cloud async tasks: "
        "Data Lake Formation, DataWorks, MaxCompute Migration Assist and Drive and Photo Service.",
        "integrations": [
            {
                "integration-name": "Alibaba Cloud async tasks",
                "external-doc-url": "https://www.alibabacloud.com/help/en/",
                "tags": ["alibaba"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Alibaba Cloud async tasks",
                "python-modules": ["airflow_aliyun_tasks.hooks"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Alibaba Cloud async tasks",
                "python-modules": ["airflow_aliyun_tasks.sensors"],
            }
        ],
        "operators": [
            {
                "integration-name": "Alibaba Cloud async tasks",
                "python-modules": ["airflow_aliyun_tasks.operators"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Alibaba Cloud async tasks",
                "python-modules": ["airflow_aliyun_tasks.triggers"],
            }
        ],
        "extra-links": [
            *(f"airflow_aliyun_tasks.links.{spec.console.class_name}" for spec in SERVICES.values()),
            "airflow_aliyun_tasks.links.AlibabaCloudTaskConsoleLink",
        ],
        "connection-types": [
            {
                "connection-type": "aliyun",
                "hook-class-name": "airflow_aliyun_tasks.hooks.AlibabaCloudTasksHook",
                "hook-name": "Alibaba Cloud async tasks",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "port", "schema"],
                    "relabeling": {"login": "AccessKey ID", "password": "AccessKey Secret"},
                    "placeholders": {
                        "login": "LTAI...",
                        "region_id": "cn-hangzhou",
                        "role_arn": "acs:ram::1234567890123456:role/airflow",
                        **{extra: p.example for extra, p in connection_defaults().items() if p.example},
                    },
                },
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
