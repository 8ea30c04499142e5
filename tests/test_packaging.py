"""Packaging: the sdist and the wheel build, carry what they should, and bring the provider up.

``python -m build`` makes the sdist and then the wheel *from that sdist* (so a file missing from
the sdist breaks the wheel). The wheel is installed into a fresh virtualenv holding only
``apache-airflow`` (the version installed here) and the wheel's own dependencies, downloaded from
the package index (pip's cache is reused); there Airflow's CLI must list the provider and its
``aliyun`` connection type, and the installed package must work against its own emulator.
``get_provider_info()`` is validated against the JSON schemas that ship with Airflow.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from airflow_aliyun_tasks.get_provider_info import get_provider_info

ROOT = Path(__file__).resolve().parent.parent
DIST_NAME = "airflow-aliyun-tasks"
PACKAGE = "airflow_aliyun_tasks"
ENTRY_POINT = "airflow_aliyun_tasks.get_provider_info:get_provider_info"


def _src_files() -> set[str]:
    """Every file of the import package in the source tree, as paths inside a wheel."""
    src = ROOT / "src"
    return {
        p.relative_to(src).as_posix()
        for p in (src / PACKAGE).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels = list(out.glob("*.whl"))
    sdists = list(out.glob("*.tar.gz"))
    assert (len(wheels), len(sdists)) == (1, 1), list(out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def _wheel_metadata(wheel: Path) -> tuple[list[str], Any, str]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        eps = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        return names, Parser().parsestr(zf.read(info).decode()), zf.read(eps).decode()


def test_wheel_contents(dists: dict[str, Path]) -> None:
    names, meta, entry_points = _wheel_metadata(dists["wheel"])
    assert dists["wheel"].name.endswith("-py3-none-any.whl")
    package_files = {n for n in names if n.startswith(f"{PACKAGE}/")}
    assert package_files == _src_files()
    assert f"{PACKAGE}/py.typed" in package_files
    assert f"{PACKAGE}/get_provider_info.py" in package_files
    for module in ("__init__.py", "__main__.py"):
        assert f"{PACKAGE}/testing/{module}" in package_files
    assert not [n for n in names if n.startswith(("tests/", "docs/", "example_dags/", "bench/"))]

    assert "[apache_airflow_provider]" in entry_points
    assert f"provider_info = {ENTRY_POINT}" in entry_points

    assert canonicalize_name(meta["Name"]) == DIST_NAME
    assert meta["Requires-Python"] == ">=3.11"
    requires = meta.get_all("Requires-Dist")
    runtime = {r.split(";")[0].strip() for r in requires if "extra ==" not in r}
    # The Airflow lines the package is tested on (README: Airflow versions), and no other.
    (airflow,) = [
        Requirement(r) for r in runtime if canonicalize_name(Requirement(r).name) == "apache-airflow"
    ]
    assert airflow.specifier == SpecifierSet(">=3.1,<3.4")
    # Test-only packages never become runtime dependencies.
    for test_only in ("pytest", "playwright", "build", "hypothesis", "alibabacloud-tea-openapi"):
        assert not any(canonicalize_name(r.split(">")[0].split("=")[0]) == test_only for r in runtime)


def test_sdist_contents(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for required in (
        "pyproject.toml",
        "README.md",
        "PKG-INFO",
        "Makefile",
        "tests/conftest.py",
        "constraints/airflow-3.1.txt",
        "constraints/airflow-3.2.txt",
        "constraints/airflow-3.3.txt",
    ):
        assert required in names, required
    assert {f"src/{f}" for f in _src_files()} <= names
    assert not [n for n in names if "__pycache__" in n or n.startswith((".venv/", ".git/", ".hypothesis/"))]


def test_entry_point_is_registered() -> None:
    eps = [
        ep
        for ep in importlib.metadata.entry_points(group="apache_airflow_provider")
        if ep.value == ENTRY_POINT
    ]
    assert len(eps) == 1
    assert eps[0].dist is not None
    assert canonicalize_name(eps[0].dist.name) == DIST_NAME
    assert eps[0].load()() == get_provider_info()


def test_package_name_is_the_canonical_dist_name() -> None:
    # Airflow's discovery raises ValueError when they differ.
    name = importlib.metadata.metadata(DIST_NAME)["Name"]
    assert get_provider_info()["package-name"] == canonicalize_name(name) == DIST_NAME


def _airflow_schema(name: str) -> dict[str, Any]:
    return dict(json.loads(files("airflow").joinpath(name).read_text()))


def _validate(instance: Any, schema: dict[str, Any]) -> None:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    errors = sorted(cls(schema).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_provider_info_matches_airflows_runtime_schema() -> None:
    """The schema Airflow's provider discovery validates every provider against."""
    _validate(get_provider_info(), _airflow_schema("provider_info.schema.json"))


def test_provider_info_lists_the_operators() -> None:
    """The ``operators`` entry validates against the stricter provider.yaml schema too, and
    names a module that has the operator."""
    import importlib

    info = get_provider_info()
    schema = _airflow_schema("provider.yaml.schema.json")
    _validate(
        info["operators"],
        {
            "$schema": schema["$schema"],
            "definitions": schema.get("definitions", {}),
            **schema["properties"]["operators"],
        },
    )
    (entry,) = info["operators"]
    (module,) = entry["python-modules"]
    assert hasattr(importlib.import_module(module), "AlibabaCloudAsyncTaskOperator")


def test_connection_form_matches_airflows_provider_yaml_schema() -> None:
    """The stricter provider.yaml schema: every ``conn-fields`` entry and ``ui-field-behaviour``."""
    schema = _airflow_schema("provider.yaml.schema.json")
    # Only the connection-types part: the rest of that schema describes the ASF monorepo's yaml.
    sub = {
        "$schema": schema["$schema"],
        "definitions": schema.get("definitions", {}),
        **schema["properties"]["connection-types"],
    }
    _validate(get_provider_info()["connection-types"], sub)


def test_field_behaviour_matches_airflows_form_schema() -> None:
    """What the providers manager checks before it uses ``ui-field-behaviour`` (else it drops it)."""
    (conn,) = get_provider_info()["connection-types"]
    behaviour = conn["ui-field-behaviour"]
    converted = {
        "hidden_fields": behaviour.get("hidden-fields", []),
        "relabeling": behaviour.get("relabeling", {}),
        "placeholders": behaviour.get("placeholders", {}),
    }
    _validate(converted, _airflow_schema("customized_form_field_behaviours.schema.json"))


_SMOKE = """
import json, os, sys
import airflow_aliyun_tasks
from airflow_aliyun_tasks import hooks, sensors, triggers
from airflow_aliyun_tasks.config import ENDPOINT_EXTRAS
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.testing import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, Emulator

assert airflow_aliyun_tasks.__file__.startswith(sys.prefix), airflow_aliyun_tasks.__file__
with Emulator() as emu:
    emu.add_dataworks_job("job-1", ["Success"])
    extra = {"region_id": "cn-hangzhou"}
    extra.update(dict.fromkeys(ENDPOINT_EXTRAS, emu.url))
    os.environ["AIRFLOW_CONN_ALIYUN_DEFAULT"] = json.dumps(
        {"conn_type": "aliyun", "login": DEFAULT_ACCESS_KEY_ID,
         "password": DEFAULT_ACCESS_KEY_SECRET, "extra": extra}
    )
    hook = AlibabaCloudTasksHook()
    print(json.dumps({"state": hook.get_dataworks_job_status("job-1").state,
                      "test": list(hook.test_connection())}))
"""


@pytest.mark.airflow
def test_wheel_in_a_fresh_venv_with_only_airflow(dists: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        {
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    airflow_version = importlib.metadata.version("apache-airflow")
    # As the README tells users: with the constraints file of the running Airflow's minor line.
    line = ".".join(airflow_version.split(".")[:2])
    constraints = Path(__file__).resolve().parent.parent / "constraints" / f"airflow-{line}.txt"
    install = subprocess.run(
        [
            py,
            "-m",
            "pip",
            "install",
            "--quiet",
            "-c",
            str(constraints),
            f"apache-airflow=={airflow_version}",
            str(dists["wheel"]),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    installed = subprocess.run(
        [py, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, env=env, check=True
    )
    names = {canonicalize_name(p["name"]) for p in json.loads(installed.stdout)}
    assert DIST_NAME in names
    for dev_only in ("pytest", "playwright", "hypothesis", "alibabacloud-tea-openapi"):
        assert dev_only not in names, dev_only

    def airflow(*args: str) -> Any:
        proc = subprocess.run(
            [py, "-m", "airflow", *args, "--output", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return json.loads(proc.stdout)

    providers = {p["package_name"]: p for p in airflow("providers", "list")}
    assert providers[DIST_NAME]["version"] == importlib.metadata.version(DIST_NAME)
    hooks = {h["connection_type"]: h for h in airflow("providers", "hooks")}
    assert hooks["aliyun"]["class"] == "airflow_aliyun_tasks.hooks.AlibabaCloudTasksHook"
    assert hooks["aliyun"]["package_name"] == DIST_NAME
    assert hooks["aliyun"]["hook_name"] == "Alibaba Cloud async tasks"

    smoke = subprocess.run([py, "-c", _SMOKE], capture_output=True, text=True, env=env, timeout=300)
    assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
    result = json.loads(smoke.stdout.strip().splitlines()[-1])
    assert result["state"] == "succeeded"
    assert result["test"][0] is True, result


def test_display_name_differs_from_the_asf_alibaba_providers() -> None:
    """Installed beside apache-airflow-providers-alibaba, the connection type list tells the two
    apart: no display name of ours is one of theirs."""
    from airflow_aliyun_tasks.get_provider_info import get_provider_info

    ours = {c["hook-name"] for c in get_provider_info()["connection-types"]}
    # The ASF provider's names (3.5): fixed here so the check holds where it is not installed.
    theirs = {"Alibaba Cloud", "OSS", "AnalyticDB Spark", "MaxCompute"}
    try:
        from airflow.providers.alibaba.get_provider_info import get_provider_info as asf_info
    except ImportError:
        pass
    else:
        theirs |= {c["hook-name"] for c in asf_info()["connection-types"]}
    assert ours == {"Alibaba Cloud async tasks"}
    assert not ours & theirs
