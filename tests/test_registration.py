"""The provider as Airflow registers it, on every supported Airflow version: ``airflow providers
list`` names it, and the connection form the API server gives the UI has every field of the
table of extras. Airflow 3.1 builds that form from the hook's legacy classmethods
(``_legacy_form``), 3.2 and later from the provider info's ``conn-fields``: the same assertions
hold for both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest

from airflow_aliyun_tasks.config import EXTRAS
from airflow_aliyun_tasks.get_provider_info import CONN_FIELDS, get_provider_info
from test_links import ApiServer

FORM = [extra for extra in EXTRAS if extra.form]


def _cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    return env


def test_providers_list_names_the_package(airflow_db: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        check=True,
        capture_output=True,
        text=True,
        env=_cli_env(),
        timeout=300,
    ).stdout
    providers = {p["package_name"]: p for p in json.loads(out[out.index("[") :])}
    ours = providers["airflow-aliyun-tasks"]
    assert ours["version"] == version("airflow-aliyun-tasks")
    # the CLI shows the description without its final full stop
    assert ours["description"].rstrip(".") == get_provider_info()["description"].rstrip(".")


@pytest.fixture(scope="module")
def hook_meta(airflow_db: str) -> Iterator[dict[str, Any]]:
    """``GET /ui/connections/hook_meta`` of a real API server: what the UI's form is built from."""
    server = ApiServer(airflow_db)
    try:
        server.wait_healthy()
        token = server.http.get(f"{server.url}/auth/token").json()["access_token"]
        resp = server.http.get(
            f"{server.url}/ui/connections/hook_meta", headers={"Authorization": f"Bearer {token}"}
        )
        resp.raise_for_status()
        yield {m["connection_type"]: m for m in resp.json()}
    finally:
        server.stop()


def test_the_form_has_the_hook_name_and_the_standard_fields(hook_meta: dict[str, Any]) -> None:
    aliyun = hook_meta["aliyun"]
    assert aliyun["hook_name"] == "Alibaba Cloud async tasks"
    assert aliyun["hook_class_name"] == "airflow_aliyun_tasks.hooks.AlibabaCloudTasksHook"
    std = aliyun["standard_fields"]
    assert std["login"]["title"] == "AccessKey ID"
    assert std["login"]["placeholder"] == "LTAI..."
    assert std["password"]["title"] == "AccessKey Secret"
    for hidden in ("host", "port", "url_schema"):
        assert std[hidden]["hidden"] is True, hidden


def test_the_form_has_every_extra_of_the_table(hook_meta: dict[str, Any]) -> None:
    extra = hook_meta["aliyun"]["extra_fields"]
    assert list(extra) == list(CONN_FIELDS) == [e.name for e in FORM]
    for field in FORM:
        shown = extra[field.name]
        schema = shown["schema"]
        assert schema["title"] == field.label, field.name
        assert shown["description"] == field.help, field.name
        assert (schema.get("format") == "password") == field.secret, field.name
        if field.choices:
            assert set(field.choices) <= set(schema["enum"]), field.name
        if field.kind in ("boolean", "integer"):
            assert field.kind in schema["type"], field.name
        if field.required:
            assert shown["value"] == field.example, field.name
        elif field.kind == "boolean" or field.choices:
            assert shown["value"] == field.default, field.name
        else:
            assert shown["value"] is None, field.name


# --------------------------------------------------------------------------- the legacy form itself


class _Field:
    def __init__(self, label: str, validators: Any = None, description: str = "", **kwargs: Any) -> None:
        self.label, self.validators, self.description, self.kwargs = (
            label,
            validators or [],
            description,
            kwargs,
        )


class _AnyOf:
    def __init__(self, values: list[str]) -> None:
        self.values = values


@pytest.fixture
def fake_wtforms(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    """Stand-ins for WTForms, Flask-Babel and Flask AppBuilder's widgets, as Airflow 3.1's API
    server puts mocks in their place: the legacy form is checked on every Airflow version."""
    fields = {
        name: type(name, (_Field,), {})
        for name in ("StringField", "IntegerField", "PasswordField", "BooleanField")
    }
    widgets = {
        name: type(name, (), {})
        for name in ("BS3TextFieldWidget", "BS3TextAreaFieldWidget", "BS3PasswordFieldWidget")
    }
    modules = {
        "wtforms": types.SimpleNamespace(**fields),
        "wtforms.validators": types.SimpleNamespace(Optional=type("Optional", (), {}), any_of=_AnyOf),
        "flask_babel": types.SimpleNamespace(lazy_gettext=lambda text: text),
        "flask_appbuilder": types.SimpleNamespace(),
        "flask_appbuilder.fieldwidgets": types.SimpleNamespace(**widgets),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return {**fields, **widgets}


def test_the_legacy_form_is_the_table_of_extras(fake_wtforms: dict[str, type]) -> None:
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

    widgets = AlibabaCloudTasksHook.get_connection_form_widgets()
    assert list(widgets) == list(CONN_FIELDS)
    for extra in FORM:
        field = widgets[extra.name]
        assert (field.label, field.description) == (extra.label, extra.help), extra.name
        kind = type(field).__name__
        if extra.secret:
            assert kind == "PasswordField", extra.name
        elif extra.kind == "boolean":
            assert (kind, field.kwargs["default"]) == ("BooleanField", extra.default), extra.name
        elif extra.kind == "integer":
            assert kind == "IntegerField", extra.name
        else:
            assert kind == "StringField", extra.name
            widget = "BS3TextAreaFieldWidget" if extra.kind == "object" else "BS3TextFieldWidget"
            assert type(field.kwargs["widget"]).__name__ == widget, extra.name
        choices = [v.values for v in field.validators if isinstance(v, _AnyOf)]
        assert choices == ([list(extra.choices)] if extra.choices else []), extra.name
        if extra.required:
            assert field.kwargs["default"] == extra.example, extra.name


def test_the_legacy_field_behaviour_is_the_declarative_one() -> None:
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

    (declared,) = get_provider_info()["connection-types"]
    behaviour = AlibabaCloudTasksHook.get_ui_field_behaviour()
    assert behaviour == {k.replace("-", "_"): v for k, v in declared["ui-field-behaviour"].items()}
    assert behaviour["hidden_fields"] == ["host", "port", "schema"]
    assert behaviour["relabeling"] == {"login": "AccessKey ID", "password": "AccessKey Secret"}
