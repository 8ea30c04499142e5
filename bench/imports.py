"""DAG-parse cost: what importing the sensors module adds, in fresh interpreters.

Two baselines, interleaved, each in a fresh subprocess: ``import airflow.sdk`` (the issue's
baseline), and ``from airflow.sdk import DAG, BaseSensorOperator`` (what a DAG file that uses
any sensor has imported anyway). Reported: the baseline's own time, the time and the modules
that ``import airflow_aliyun_tasks.sensors`` adds on top, and which heavy modules
(``alibabacloud_credentials``, ``aiohttp``, the HTTP stack, the hook) it added.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

HEAVY = (
    "alibabacloud_credentials",
    "aiohttp",
    "httptools",
    "httpx",
    "airflow_aliyun_tasks._transport",
    "airflow_aliyun_tasks.client",
    "airflow_aliyun_tasks.hooks",
    "airflow_aliyun_tasks.credentials",
)

BASELINES = {
    "airflow.sdk": "import airflow.sdk",
    "airflow.sdk DAG + BaseSensorOperator": "from airflow.sdk import DAG, BaseSensorOperator",
}

_PROBE = """
import json, os, sys, time
if {cpu!r} is not None and hasattr(os, "sched_setaffinity"):
    try:
        os.sched_setaffinity(0, {{{cpu!r}}})
    except OSError:
        pass
t0 = time.perf_counter()
{baseline}
t1 = time.perf_counter()
before = set(sys.modules)
import airflow_aliyun_tasks.sensors
t2 = time.perf_counter()
added = sorted(set(sys.modules) - before)
heavy = [m for m in {heavy!r} if m in added]
print(json.dumps({{"baseline_ms": (t1 - t0) * 1e3, "sensors_ms": (t2 - t1) * 1e3,
                   "modules_added": len(added), "added": added, "heavy": heavy}}))
"""


def probe(baseline: str, env: Mapping[str, str], cpu: int | None) -> dict[str, Any]:
    code = _PROBE.format(baseline=baseline, heavy=HEAVY, cpu=cpu)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"import probe failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(env: Mapping[str, str], reps: int, cpu: int | None) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in BASELINES}
    names = list(BASELINES)
    for rep in range(reps):
        for name in names[rep % 2 :] + names[: rep % 2]:  # interleaved, alternating order
            samples[name].append(probe(BASELINES[name], env, cpu))
    out: dict[str, Any] = {}
    for name, runs in samples.items():
        out[name] = {
            "baseline_ms": [r["baseline_ms"] for r in runs],
            "sensors_ms": [r["sensors_ms"] for r in runs],
            "modules_added": [r["modules_added"] for r in runs],
            "added": runs[-1]["added"],
            "heavy": sorted({m for r in runs for m in r["heavy"]}),
        }
    return out
