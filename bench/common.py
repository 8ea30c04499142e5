"""Shared pieces of the benchmarks: the environment, the connection, ids, statistics."""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SERVICES = ("dlf", "dataworks", "mma", "pds")
CONN_ID = "aliyun_bench"
ACCESS_KEY_ID = "LTAI5tBenchAccessKeyId00"
ACCESS_KEY_SECRET = "BenchAccessKeySecret0000000000"
CATALOG_ID = "1344371"
SOURCE_ID = "2000028"
PDS_DOMAIN = "bj1"

#: The CPU the benchmarked client runs on; the server runs on another one.
CLIENT_CPU = 0
SERVER_CPU = 1


def connection(ports: Mapping[str, int]) -> dict[str, Any]:
    """The ``aliyun`` connection (``AIRFLOW_CONN_*`` JSON form), every endpoint on the server."""
    extra: dict[str, Any] = {"region_id": "cn-hangzhou", "pds_domain_id": PDS_DOMAIN}
    for service in (*SERVICES, "sts"):
        extra[f"{service}_endpoint"] = f"http://127.0.0.1:{ports[service]}"
    return {
        "conn_type": "aliyun",
        "login": ACCESS_KEY_ID,
        "password": ACCESS_KEY_SECRET,
        "extra": extra,
    }


def compile_bytecode() -> None:
    """Compile the package's and the benchmarks' modules to bytecode, as installing a wheel does.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (some machines set it for every process), a source
    checkout's modules are otherwise compiled again in every process that imports them, and the
    memory the compiler frees stays in that process's heap: it made a triggerer's runner about
    a megabyte larger with the package's trigger than a deployment's runner is. A process still
    reads bytecode that exists, whatever that variable says."""
    import compileall

    import airflow_aliyun_tasks

    for directory in (Path(airflow_aliyun_tasks.__file__).parent, Path(__file__).parent):
        compileall.compile_dir(directory, quiet=2)


def child_env(ports: Mapping[str, int], airflow_home: str) -> dict[str, str]:
    """The environment of every benchmark process: loopback only, no metadata probing; the
    modules it runs are compiled (:func:`compile_bytecode`)."""
    compile_bytecode()
    env = dict(os.environ)
    for var in list(env):
        if var.startswith("ALIBABA_CLOUD_") or var.startswith("AIRFLOW_CONN_"):
            del env[var]
    env.update(
        {
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "ALIBABA_CLOUD_CREDENTIALS_FILE": os.devnull,
            "ALIBABA_CLOUD_CONFIG_FILE": os.devnull,
            "AIRFLOW_HOME": airflow_home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection(ports)),
            "PYTHONDONTWRITEBYTECODE": "1",
            "NO_PROXY": "*",
        }
    )
    return env


def ids(service: str, i: int) -> dict[str, str]:
    """The ids of task ``i`` of ``service``, as the hook and the trigger take them."""
    if service == "dlf":
        return {"async_task_id": f"dlf-task-{i:06d}", "catalog_id": CATALOG_ID}
    if service == "dataworks":
        return {"job_id": f"70ecdaec-bf21-{i:06d}"}
    if service == "mma":
        return {"source_id": SOURCE_ID, "async_task_id": str(1000000 + i)}
    return {"async_task_id": f"000e89fb-cf8f-{i:06d}"}


def pin(cpu: int) -> int | None:
    """Pin this process to ``cpu`` where the OS allows it (and there are two CPUs or more)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2:
            return None
        target = available[cpu % len(available)]
        os.sched_setaffinity(0, {target})
        return target
    except OSError:
        return None


def summary(values: Iterable[float]) -> dict[str, Any]:
    """Median, min, max and every value (a benchmark's figures are medians with their range)."""
    data = [float(v) for v in values]
    if not data:
        return {"median": None, "min": None, "max": None, "n": 0, "values": []}
    return {
        "median": statistics.median(data),
        "min": min(data),
        "max": max(data),
        "n": len(data),
        "values": data,
    }


def percentile(data: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``data``, nearest-rank."""
    if not data:
        return 0.0
    ordered = sorted(data)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def emit(result: Any) -> None:
    """Print a child's result as the last line of its stdout."""
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
