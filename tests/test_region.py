"""Per-task regions: ``region_id`` on the hook, every sensor (templated) and the triggers wins
over the connection's, so one connection serves several regions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_aliyun_tasks.errors import ConfigurationError
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook, service_endpoint, sts_endpoint
from airflow_aliyun_tasks.sensors import AlibabaCloudTaskSensor
from airflow_aliyun_tasks.services import SERVICES, get_service
from airflow_aliyun_tasks.testing import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, Emulator
from airflow_aliyun_tasks.triggers import AlibabaCloudTaskEventTrigger, AlibabaCloudTaskTrigger

pytestmark = pytest.mark.usefixtures("fresh_clients")


def _bare_conn(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    """A connection without endpoint overrides (the hosts come from the region)."""
    conn = {
        "conn_type": "aliyun",
        "login": DEFAULT_ACCESS_KEY_ID,
        "password": DEFAULT_ACCESS_KEY_SECRET,
        "extra": {"region_id": "cn-hangzhou", "pds_domain_id": "bj1", **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ALIYUN_DEFAULT", json.dumps(conn))


def test_hook_region_wins_over_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    _bare_conn(monkeypatch)
    assert AlibabaCloudTasksHook().settings.region_id == "cn-hangzhou"
    hook = AlibabaCloudTasksHook(region_id="cn-shanghai")
    settings = hook.settings
    assert settings.region_id == "cn-shanghai"
    assert service_endpoint(get_service("dataworks"), settings).host == "dataworks.cn-shanghai.aliyuncs.com"
    assert sts_endpoint(settings).host == "sts.cn-shanghai.aliyuncs.com"
    assert "cn-shanghai" in repr(hook)


async def test_hook_region_async(monkeypatch: pytest.MonkeyPatch) -> None:
    _bare_conn(monkeypatch)
    settings = await AlibabaCloudTasksHook(region_id="ap-southeast-1").asettings()
    assert settings.region_id == "ap-southeast-1"
    # the connection's own region for a hook without one, from the same shared lookup
    assert (await AlibabaCloudTasksHook().asettings()).region_id == "cn-hangzhou"


def test_bad_hook_region_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    _bare_conn(monkeypatch)
    with pytest.raises(ConfigurationError) as info:
        _ = AlibabaCloudTasksHook(region_id="not a region").settings
    assert info.value.field == "region_id"


def test_regions_get_their_own_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    _bare_conn(monkeypatch)
    a = AlibabaCloudTasksHook(region_id="cn-shanghai").client
    b = AlibabaCloudTasksHook(region_id="cn-beijing").client
    assert a is not b
    assert AlibabaCloudTasksHook(region_id="cn-shanghai").client is a


def test_status_call_goes_to_the_task_region(emulator: Emulator, make_conn: Any) -> None:
    make_conn()
    emulator.add_task("dataworks", job_id="job-r", statuses=["Running"])
    hook = AlibabaCloudTasksHook(region_id="cn-beijing")
    assert hook.get_dataworks_job_status("job-r").state == "running"
    assert hook.settings.region_id == "cn-beijing"


def _sensor_classes() -> list[type[AlibabaCloudTaskSensor]]:
    from airflow_aliyun_tasks import sensors

    return [
        c
        for c in vars(sensors).values()
        if isinstance(c, type) and issubclass(c, AlibabaCloudTaskSensor) and c is not AlibabaCloudTaskSensor
    ]


@pytest.mark.parametrize("cls", _sensor_classes())
def test_every_sensor_templates_region_id(cls: type[AlibabaCloudTaskSensor]) -> None:
    assert "region_id" in cls.template_fields
    assert cls.service in SERVICES


def test_sensor_region_reaches_the_hook_and_the_trigger() -> None:
    from airflow_aliyun_tasks.sensors import DataWorksJobSensor

    sensor = DataWorksJobSensor(task_id="w", job_id="j", region_id="cn-shenzhen")
    assert sensor.hook.region_id == "cn-shenzhen"
    kwargs = sensor._trigger_kwargs({"job_id": "j"}, end_time=None, initial_delay=0.0)
    assert kwargs["region_id"] == "cn-shenzhen"
    trigger = AlibabaCloudTaskTrigger(**kwargs)
    _, serialized = trigger.serialize()
    assert serialized["region_id"] == "cn-shenzhen"
    assert json.loads(json.dumps(serialized)) == serialized
    assert trigger._hook().region_id == "cn-shenzhen"
    # without one, the connection's region
    assert DataWorksJobSensor(task_id="w2", job_id="j").hook.region_id is None


def test_sensor_region_is_rendered() -> None:
    from airflow_aliyun_tasks.sensors import DataWorksJobSensor

    sensor = DataWorksJobSensor(task_id="w", job_id="j", region_id="{{ params.region }}")
    sensor.render_template_fields(context={"params": {"region": "cn-qingdao"}})  # type: ignore[arg-type]
    assert sensor.region_id == "cn-qingdao"


def test_event_trigger_region() -> None:
    trigger = AlibabaCloudTaskEventTrigger(service="dataworks", ids={"job_id": "j"}, region_id="cn-beijing")
    _, kwargs = trigger.serialize()
    assert kwargs["region_id"] == "cn-beijing"
    assert trigger._hook().region_id == "cn-beijing"
    # without one, the kwargs (and so the watcher's identity) are as before
    _, plain = AlibabaCloudTaskEventTrigger(service="dataworks", ids={"job_id": "j"}).serialize()
    assert "region_id" not in plain


def test_operator_region_reaches_the_hook_and_the_trigger(emulator: Emulator, make_conn: Any) -> None:
    from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator
    from airflow_versions import TaskDeferred

    make_conn()
    op = AlibabaCloudAsyncTaskOperator(
        task_id="start",
        service="emr_serverless_spark",
        action="StartJobRun",
        path="/api/v1/workspaces/w-region/jobRuns",
        query={"regionId": "cn-beijing"},
        body={"name": "etl", "codeType": "JAR", "resourceQueueId": "root_queue"},
        region_id="cn-beijing",
        deferrable=True,
        durable=False,
    )
    assert "region_id" in op.template_fields
    assert op.hook.region_id == "cn-beijing"
    with pytest.raises(TaskDeferred) as info:
        op.execute({})
    _, kwargs = info.value.trigger.serialize()
    assert kwargs["region_id"] == "cn-beijing"
    assert json.loads(json.dumps(kwargs)) == kwargs
