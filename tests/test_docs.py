"""Every code example in README.md and docs/ is executed or validated.

- ``python`` blocks of one page run in order in one namespace (a page is one story).
- ``json`` blocks must parse; those that define an ``aliyun`` connection must pass
  ``parse_connection`` (so the documented connections are valid).
- ``bash`` blocks that export ``AIRFLOW_CONN_*`` are checked the same way.

README's examples use ids of real Alibaba Cloud tasks; they run against an emulator that knows
those ids (see ``README_TASKS``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from airflow_aliyun_tasks.config import parse_connection
from airflow_aliyun_tasks.testing import Emulator

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *ROOT.joinpath("docs").rglob("*.md")])
BLOCK = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)


def blocks(page: Path, lang: str) -> list[str]:
    return [code for kind, code in BLOCK.findall(page.read_text(encoding="utf-8")) if kind == lang]


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.fixture
def clean_environ() -> Any:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_every_page_is_found() -> None:
    names = {page_id(p) for p in PAGES}
    for expected in (
        "README.md",
        "docs/quickstart.md",
        "docs/connection.md",
        "docs/hook.md",
        "docs/operators.md",
        "docs/testing.md",
        "docs/troubleshooting.md",
        "docs/changelog.md",
        "docs/sensors/dataworks.md",
        "docs/sensors/dlf.md",
        "docs/sensors/mma.md",
        "docs/sensors/pds.md",
    ):
        assert expected in names


# README's examples read the statuses of these documented example tasks.
def readme_tasks(emulator: Emulator) -> None:
    emulator.add_dataworks_job("70ecdaec-bf21-4c11-8ecb-4f77453ceea8", ["Running"])
    emulator.add_dlf_task("f546c761570e5efc8146a1986f7890d2", ["Running"], catalog_id="1344371")
    emulator.add_mma_task(2000028, 1000286, ["DOING"])
    emulator.add_pds_task("000e89fb-cf8f-11e9-8ab4-b6e980803a3b", ["Running"], domain_id="bj123")


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=page_id)
def test_python_examples_run(page: Path, clean_environ: None, emulator: Emulator, make_conn: Any) -> None:
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    if page.name == "README.md":
        # README shows calls against "aliyun_default" with real-looking ids and endpoints.
        make_conn(pds_domain_id="bj123")
        readme_tasks(emulator)
        namespace["spec_json"] = "{}"
    for i, code in enumerate(blocks(page, "python")):
        if page.name == "README.md":
            code = code.replace('endpoint="ecs.cn-hangzhou.aliyuncs.com"', 'service="sts"')
            code = code.replace('"DescribeRegions", "2014-05-26"', '"GetCallerIdentity", "2015-04-01"')
        try:
            exec(compile(code, f"{page_id(page)}[python block {i + 1}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{page_id(page)}, python block {i + 1} failed: {exc!r}") from exc


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "json")], ids=page_id)
def test_json_examples_are_valid(page: Path) -> None:
    for code in blocks(page, "json"):
        data = json.loads(code)
        if isinstance(data, dict) and data.get("conn_type") == "aliyun":
            parse_connection(login=data.get("login"), password=data.get("password"), extra=data.get("extra"))
        if isinstance(data, dict) and "Statement" in data:  # RAM policies
            assert data["Version"] == "1"
            for statement in data["Statement"]:
                assert statement["Effect"] in ("Allow", "Deny")
                assert statement["Action"]


def _conn_from_export(value: str) -> tuple[str | None, str | None, dict[str, Any]]:
    if value.lstrip().startswith("{"):
        data = json.loads(value)
        assert data["conn_type"] == "aliyun"
        return data.get("login"), data.get("password"), data.get("extra") or {}
    parts = urlsplit(value)
    assert parts.scheme == "aliyun"
    extra: dict[str, Any] = dict(parse_qsl(parts.query))
    return unquote(parts.username or ""), unquote(parts.password or ""), extra


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "bash")], ids=page_id)
def test_connection_exports_are_valid(page: Path) -> None:
    for code in blocks(page, "bash"):
        joined = code.replace("\\\n", " ")
        for match in re.finditer(r"export AIRFLOW_CONN_\w+=('(?:[^']*)')", joined):
            (value,) = shlex.split(match.group(1))
            login, password, extra = _conn_from_export(value)
            parse_connection(login=login, password=password, extra=extra)


# --------------------------------------------------------------------------- the registry's tables


def _registry_tables() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("registry_tables", ROOT / "scripts" / "registry_tables.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("file", "name"), [(f, n) for f, n, _ in _registry_tables().TABLES])
def test_docs_tables_match_the_registry(file: str, name: str) -> None:
    """The tables of services, sensors and endpoints are the registry's (regenerate them with
    ``python scripts/registry_tables.py``)."""
    tables = _registry_tables()
    make = next(m for f, n, m in tables.TABLES if (f, n) == (file, name))
    text = (ROOT / file).read_text(encoding="utf-8")
    assert tables.render(text, name, make()) == text, f"{file} registry:{name} is out of date"


def test_readme_ram_permissions_name_every_status_call() -> None:
    from airflow_aliyun_tasks.services import SERVICES

    ram = (
        (ROOT / "README.md")
        .read_text(encoding="utf-8")
        .split("## RAM permissions", 1)[1]
        .split("\n## ", 1)[0]
    )
    for spec in SERVICES.values():
        assert f"`{spec.ram_action}`" in ram, spec.name
        assert f'"{spec.ram_action}"' in (ROOT / spec.docs_page).read_text(encoding="utf-8"), spec.docs_page


# --------------------------------------------------------------------------- the connection and the services


def _table_names(text: str, name: str) -> set[str]:
    """The field names in the first column of the ``registry:name`` table of ``text``."""
    block = text.split(f"<!-- BEGIN registry:{name} -->", 1)[1].split(f"<!-- END registry:{name} -->", 1)[0]
    return {m[1] for m in re.finditer(r"^\| (?:extra )?`(\w+)`", block, re.M)}


def test_connection_form_parser_and_docs_agree() -> None:
    """The form, the parser and the docs' tables name the same extras, and the parser accepts
    every one of them."""
    from airflow_aliyun_tasks.config import ENDPOINT_EXTRAS, EXTRA_FIELDS, EXTRAS
    from airflow_aliyun_tasks.get_provider_info import CONN_FIELDS

    assert set(CONN_FIELDS) == {e.name for e in EXTRAS if e.form}
    # One form field for every endpoint; the per-service extras stay accepted.
    assert "endpoints" in CONN_FIELDS
    assert set(EXTRA_FIELDS) - set(CONN_FIELDS) == set(ENDPOINT_EXTRAS)
    for page in ("README.md", "docs/connection.md"):
        names = _table_names((ROOT / page).read_text(encoding="utf-8"), "connection")
        assert names == EXTRA_FIELDS | {"login", "password"}, page
    for name in CONN_FIELDS:
        extra: dict[str, Any] = {"region_id": "cn-hangzhou"}
        extra.setdefault(name, None)
        parse_connection(login="LTAI5tExampleKeyId", password="ExampleSecret", extra=extra)


def test_readme_console_links_name_every_service() -> None:
    from airflow_aliyun_tasks.services import SERVICES

    section = (
        (ROOT / "README.md").read_text(encoding="utf-8").split("### Console links", 1)[1].split("\n#", 1)[0]
    )
    for spec in SERVICES.values():
        assert f'"{spec.console.title}"' in " ".join(section.split()), spec.name


def test_package_descriptions_name_every_service() -> None:
    import tomllib

    import airflow_aliyun_tasks
    from airflow_aliyun_tasks.get_provider_info import get_provider_info
    from airflow_aliyun_tasks.services import SERVICES

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    docstring = " ".join((airflow_aliyun_tasks.__doc__ or "").split())
    for spec in SERVICES.values():
        assert spec.label in project["description"], spec.name
        assert spec.label.lower() in project["keywords"], spec.name
        assert spec.label in docstring, spec.name
        assert (spec.long_label or spec.label) in get_provider_info()["description"], spec.name


def test_readme_demo_sample_has_every_service() -> None:
    """``make demo`` runs one example DAG per service; README's sample of its summary shows each."""
    from airflow_aliyun_tasks.services import SERVICES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sample = readme.split("The demo ends with a table like this one:", 1)[1].split("```", 2)[1]
    assert [line.split()[0] for line in sample.strip().splitlines()[2:]] == list(SERVICES)


def test_the_demo_runs_every_example_dag_and_every_service() -> None:
    """``scripts/demo.py`` names its DAGs (it does not discover them): each example DAG that
    waits on a task is in its list, and every service of the registry has one."""
    import importlib.util

    from airflow_aliyun_tasks.services import SERVICES

    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec is not None
    assert spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    listed = {dag_id for dag_id, _, _ in demo.DAGS}
    # the asset watcher waits on nothing itself: its trigger runs in a deployment's triggerer
    files = {p.stem for p in (ROOT / "example_dags").glob("example_aliyun_*.py")} - {
        "example_aliyun_asset_watcher"
    }
    assert listed == files
    assert {service for _, service, _ in demo.DAGS} == set(SERVICES)
