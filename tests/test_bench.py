"""The benchmark harness (``bench/``), and the hooks' share of the fast path it measures.

- The harness runs end to end on a tiny size, so that ``make bench`` cannot rot. No test here
  asserts a time or a ratio: the harness's figures are for ``bench/RESULTS.md``.
- Hooks of one loop share a connection lookup, and a hook builds a status call once.

The rest of the fast path is tested with its code: the prepared signers in ``test_signing.py``,
the lean transports in ``test_transport.py``, the shared clients in ``test_client.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_aliyun_tasks.client import aclose_shared_client
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.testing import Emulator

pytestmark = pytest.mark.usefixtures("close_shared_sync_client")

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- the harness


def run_python(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """``python *args`` in the project's root (the metadata service off unless ``env`` is
    given); its stdout, once it exited 0."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env if env is not None else dict(os.environ, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true"),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    run_python("-m", "bench", "--tiny", "--out", str(out), timeout=900)
    return {
        "results": json.loads((out / "results.json").read_text(encoding="utf-8")),
        "report": (out / "RESULTS.md").read_text(encoding="utf-8"),
    }


def test_tiny_run_measures_every_variant(tiny_run: dict[str, Any]) -> None:
    poll = tiny_run["results"]["poll"]
    assert poll["errors"] == {}
    for service in ("dlf", "dataworks", "mma", "pds"):
        for kind in ("package", "sdk", "floor"):
            for c in (1, 4):
                assert poll["cpu_us"][f"{kind}/{service}/async/c{c}"]["n"] == 1
        for kind in ("package", "sdk"):
            assert poll["cpu_us"][f"{kind}/{service}/sync/c1"]["n"] == 1
    for kind in ("package-aiohttp", "package-httpx", "package-httpx-aiohttp"):
        assert f"{kind}/dataworks/async/c4" in poll["cpu_us"]
    assert "package-httpx/dataworks/sync/c1" in poll["cpu_us"]


def test_tiny_run_drives_the_trigger_at_scale(tiny_run: dict[str, Any]) -> None:
    results = tiny_run["results"]
    (steady,) = results["scale"]["steady/12"]
    (burst,) = results["scale"]["burst/12"]
    assert steady["first_polls_before_window"] == 12
    assert steady["failed_polls"] == 0
    assert steady["events"] == 0  # the server answers "running": no wait ends
    assert burst["completed_first_polls"] == 12
    assert burst["requests"] == 12
    assert burst["failed_polls"] == 0
    assert {"bare", "fake-hook", "floor", "trigger-no-portal", "trigger-profile"} <= set(results["frontier"])
    assert results["frontier"]["trigger-profile"]["profile"]["components"]
    assert results["memory"]["rss/12"]["completed_polls"] >= 24
    assert results["memory"]["heap/12"]["measure"] == "Python heap (tracemalloc)"


def test_tiny_run_checks_the_sensors_import(tiny_run: dict[str, Any]) -> None:
    imports = tiny_run["results"]["imports"]
    assert set(imports) == {"airflow.sdk", "airflow.sdk DAG + BaseSensorOperator"}
    for probe in imports.values():
        assert "airflow_aliyun_tasks.sensors" in probe["added"]
        assert not {"alibabacloud_credentials", "aiohttp", "httptools"} & set(probe["heavy"])


def test_tiny_run_writes_the_report(tiny_run: dict[str, Any]) -> None:
    report, results = tiny_run["report"], tiny_run["results"]
    for heading in (
        "## Targets",
        "## 1. Client CPU per status poll",
        "## 2. Where a poll's CPU goes",
        "## 3. The trigger at scale",
        "## 4. Memory per wait",
        "## 5. DAG-parse cost",
    ):
        assert heading in report
    assert "`--tiny` run" in report
    assert results["machine"]["cpu_count"] >= 1
    assert results["machine"]["versions"]["apache-airflow"]
    targets = results["summary"]["targets"]
    assert len(targets) >= 14
    assert all(set(t) == {"target", "measured", "met", "detail"} for t in targets)


# --------------------------------------------------------------------------- a real triggerer


@pytest.mark.airflow
def test_triggerer_harness_runs_every_kind(tmp_path: Path) -> None:
    """``python -m bench triggerer`` on 12 waits per kind: a real ``airflow triggerer`` per kind
    on a PostgreSQL database of its own, every trigger started and polling, the results written."""
    from stack import postgres_available

    reason = postgres_available()
    if reason is not None and "not installed" not in reason:
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    args = ["--waits", "12", "--interval", "3", "--window", "3", "--out", str(tmp_path)]
    run_python("-m", "bench", "triggerer", *args, env=env)
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["triggerer"]
    (round_,) = results["rounds"]
    assert set(round_["kinds"]) == {"datetime", "floor", "package"}
    for kind, entry in round_["kinds"].items():
        assert entry["started"] == 12, kind
        assert entry["stalled"] is None, kind
        assert entry["cpu_share"] is not None, kind
    for kind in ("floor", "package"):
        assert round_["kinds"][kind]["polls"] >= 12, kind
    assert "A real `airflow triggerer`" in (tmp_path / "RESULTS.md").read_text(encoding="utf-8")


def test_trigger_memory_probe_says_where_a_waiting_trigger_keeps_memory() -> None:
    """``python -m bench.trigger_memory`` on 20 triggers per kind: every trigger polled twice,
    what each keeps measured (RSS, then the heap by allocation site, and objects by type)."""
    out = run_python("-m", "bench.trigger_memory", "--kinds", "floor,package", "--triggers", "20")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [row["kind"] for row in rows] == ["floor", "package"]
    for row in rows:
        assert row["triggers"] == 20
        assert {"rss_bytes_per_trigger", "heap_bytes_per_trigger", "first_trigger_rss_bytes"} <= set(row)
        assert row["heap_sites"], row
        assert all(isinstance(site, str) for site, _size, _count in row["heap_sites"])
    floor, package = rows
    assert floor["objects_by_type"]["FloorTrigger"] == 1.0
    assert package["objects_by_type"]["AlibabaCloudTaskTrigger"] == 1.0
    # The package's triggers share their class's logger: none is made per trigger.
    assert "BoundLoggerLazyProxy" not in package["objects_by_type"]


@pytest.mark.parametrize("batch", [0, 5])
def test_trigger_probe_counts_a_polls_cost_spread_or_in_batches(batch: int) -> None:
    """``python -m bench.trigger_probe`` on 20 triggers: by default each polls at a moment of its
    own; ``--batch 5`` starts them five at a time, as a triggerer starts them (at most 50 per
    loop), and each batch polls together. Either way every poll is counted, with about two task
    steps (the response, the timer) and a timer."""
    args = [
        "--kind",
        "package",
        "--triggers",
        "20",
        "--interval",
        "1",
        "--window",
        "2",
        "--batch",
        str(batch),
    ]
    row = json.loads(run_python("-m", "bench.trigger_probe", *args).strip().splitlines()[-1])
    assert (row["kind"], row["triggers"], row["batch"]) == ("package", 20, batch)
    assert row["cpu"]["polls"] >= 20
    assert row["cpu"]["cpu_us"] > 0
    # the sleep's timer, and now and then the transport's read-timeout check (one per 0.1 s
    # while a request is in flight: polls made together share it)
    assert 1.0 <= row["counts"]["timers"] <= 2.0
    assert 2.0 <= row["counts"]["steps"] <= 3.0


def test_benchmark_processes_run_compiled_modules() -> None:
    """Every benchmark process reads the package's bytecode, as from an installed wheel, even
    where ``PYTHONDONTWRITEBYTECODE`` is set: compiling the package again in each process left
    the compiler's memory in it, charged to the first trigger."""
    import importlib.util

    import airflow_aliyun_tasks

    source = Path(airflow_aliyun_tasks.__file__).parent / "_legacy_form.py"
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.unlink(missing_ok=True)
    code = (
        "from bench.common import child_env; "
        "env = child_env(dict.fromkeys(('dlf', 'dataworks', 'mma', 'pds', 'sts'), 1), '.'); "
        "print(env['PYTHONDONTWRITEBYTECODE'])"
    )
    env = dict(os.environ, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", PYTHONDONTWRITEBYTECODE="1")
    assert run_python("-c", code, env=env, timeout=300).strip() == "1"
    assert cached.exists()


# --------------------------------------------------------------------------- hooks


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = AlibabaCloudTasksHook.aget_connection

    async def aget_connection(cls: type, conn_id: str) -> Any:
        calls.append(conn_id)
        await asyncio.sleep(0.01)  # a lookup takes a while: others arrive meanwhile
        return await original(conn_id)

    monkeypatch.setattr(AlibabaCloudTasksHook, "aget_connection", classmethod(aget_connection))
    return calls


def test_hooks_of_one_loop_share_a_connection_lookup(
    emulator: Emulator, make_conn: Any, lookups: list[str]
) -> None:
    conn = make_conn("aliyun_shared")
    emulator.add_dataworks_job("shared", ["Running"])

    async def go() -> list[Any]:
        try:
            hooks = [AlibabaCloudTasksHook(conn) for _ in range(20)]
            return await asyncio.gather(*(h.aget_dataworks_job_status("shared") for h in hooks))
        finally:
            await aclose_shared_client()

    statuses = asyncio.run(go())
    assert [s.raw_status for s in statuses] == ["Running"] * 20
    assert lookups == ["aliyun_shared"]
    asyncio.run(go())  # another loop: its own lookup
    assert lookups == ["aliyun_shared"] * 2


def test_a_failed_shared_lookup_is_not_shared(emulator: Emulator, lookups: list[str]) -> None:
    async def go() -> list[Any]:
        hooks = [AlibabaCloudTasksHook("aliyun_missing_everywhere") for _ in range(3)]
        return await asyncio.gather(*(h.asettings() for h in hooks), return_exceptions=True)

    results = asyncio.run(go())
    assert all(isinstance(r, Exception) for r in results)
    assert lookups == ["aliyun_missing_everywhere"] * 3


def test_hook_builds_a_status_call_once(emulator: Emulator, make_conn: Any) -> None:
    hook = AlibabaCloudTasksHook(make_conn("aliyun_calls"))
    emulator.add_dlf_task("t-1", ["Running"])
    first = hook._status_call(hook.settings, "dlf", {"async_task_id": "t-1", "catalog_id": None})
    again = hook._status_call(hook.settings, "dlf", {"async_task_id": "t-1", "catalog_id": None})
    other = hook._status_call(hook.settings, "dlf", {"async_task_id": "t-2", "catalog_id": None})
    assert again is first
    assert other[1].query == {"TaskId": "t-2"}
    ids = {"async_task_id": "t-3"}
    hook._status_call(hook.settings, "dlf", ids)
    ids["async_task_id"] = "t-4"  # the same dict, changed: not the call kept for it
    assert hook._status_call(hook.settings, "dlf", ids)[1].query == {"TaskId": "t-4"}
    assert hook._status_call(hook.settings, "pds", {"async_task_id": "t-4"})[1].action == "GetAsyncTask"
    for _ in range(2):
        status = hook.get_dlf_async_task_status("t-1")
        assert status.ids == {"async_task_id": "t-1"}
        status.ids["mutated"] = "by a caller"  # each status has its own ids
    assert hook.get_dlf_async_task_status("t-1").ids == {"async_task_id": "t-1"}
