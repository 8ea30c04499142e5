"""Provider metadata for Airflow's provider discovery (entry point ``apache_airflow_provider``).

The connection form is declared here (``conn-fields`` and ``ui-field-behaviour``): Airflow 3.2+
renders it without importing the hook.
"""

from __future__ import annotations

from typing import Any

from airflow_aliyun_tasks.config import EXTRAS, Extra
from airflow_aliyun_tasks.services import SERVICES


def _form_field(extra: Extra) -> dict[str, Any]:
    """The form's field of one extra. A control that must show a value (a boolean, a list of
    choices) starts at the default; the required region starts at its example; numbers and
    strings start empty, so that the package's defaults apply."""
    schema: dict[str, Any] = {"type": [extra.kind, "null"]}
    if extra.choices:
        schema["enum"] = [*extra.choices, None]
    if extra.required:
        schema["default"] = extra.example
    elif extra.kind == "boolean" or extra.choices:
        schema["default"] = extra.default
    if extra.minimum is not None:
        schema["minimum"] = extra.minimum
    if extra.maximum is not None:
        schema["maximum"] = extra.maximum
    if extra.secret:
        schema["format"] = "password"
    return {"label": extra.label, "description": extra.help, "schema": schema}


#: The connection form's extra fields (``conn-fields``): field name -> label, description, schema.
#: The extras left out of the form (each service's ``<service>_endpoint``: the form has one
#: ``endpoints`` field for all) are accepted all the same.
CONN_FIELDS: dict[str, Any] = {extra.name: _form_field(extra) for extra in EXTRAS if extra.form}


def _services() -> str:
    names = [spec.long_label or spec.label for spec in SERVICES.values()]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-aliyun-tasks",
        "name": "Alibaba Cloud async tasks",
        "description": "Operators that start and wait, deferrable sensors, async triggers (asset watchers "
        f"included) and a hook for Alibaba Cloud async tasks: {_services()}.",
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
                        **{extra.name: extra.example for extra in EXTRAS if extra.example and extra.form},
                    },
                },
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
