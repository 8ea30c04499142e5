"""The benchmark harness: one command, one run, every figure side by side.

``python -m bench`` (``make bench``) starts the fixed-response server (``bench/server.py``) on
one CPU and runs every measurement in fresh processes pinned to another CPU:

1. client CPU per status poll (``bench/poll.py``): the package's hook, the official SDK
   (async and sync), a hand-written floor, and the transports the client could have used;
2. where a poll's CPU goes (``bench/profile.py``, cProfile);
3. the trigger at scale (``bench/scale.py``): steady state and burst at 1,000 and 10,000
   waits, what sets the steady-state frontier, and memory per wait;
4. DAG-parse cost of the sensors module (``bench/imports.py``).

Repetitions are interleaved (the order rotates) and reported as medians with their range.
It writes ``RESULTS.md`` and ``results.json`` into ``--out`` (``bench/`` by default).
``--quick`` runs fewer and shorter repetitions; ``--tiny`` runs everything on a tiny size in
seconds (the test suite does, so that the harness cannot rot); neither makes figures to keep.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import imports
from bench.common import CLIENT_CPU, SERVER_CPU, SERVICES, child_env, summary
from bench.report import render

HERE = Path(__file__).resolve().parent


@dataclass
class Plan:
    name: str
    poll_reps: int
    poll_polls: int
    concurrency: tuple[int, int]
    profile_polls: int
    sizes: tuple[int, ...]
    scale_reps: int
    interval: float
    window: float
    frontier_size: int
    memory_sizes: tuple[int, ...]
    traced_size: int
    steady_profile: bool
    import_reps: int


PLANS = {
    "full": Plan(
        "full", 5, 400, (1, 100), 3000, (1000, 10000), 3, 30.0, 15.0, 10000, (1000, 10000), 2000, True, 7
    ),
    "quick": Plan(
        "quick", 3, 200, (1, 100), 1500, (1000, 10000), 1, 30.0, 10.0, 10000, (10000,), 1000, False, 3
    ),
    "tiny": Plan("tiny", 1, 6, (1, 4), 40, (12,), 1, 1.0, 1.0, 12, (12,), 12, True, 1),
}


class Harness:
    def __init__(self, plan: Plan, out: Path, workdir: Path) -> None:
        self.plan = plan
        self.out = out
        self.workdir = workdir
        self.server: subprocess.Popen[str] | None = None
        self.ports: dict[str, int] = {}
        self.env: dict[str, str] = {}
        self.log = (workdir / "bench.log").open("a", encoding="utf-8")

    # ---- the server

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        env = dict(os.environ, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "bench.server", "--cpu", str(SERVER_CPU), "--watch-stdin"],
            cwd=HERE.parent,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        try:
            assert self.server.stdout is not None
            line = self.server.stdout.readline()
            if not line:
                raise RuntimeError(f"the benchmark server did not start (see {self.log.name})")
            info = json.loads(line)
            self.ports = {k: int(v) for k, v in info["ports"].items()}
            self.server_cpu = info.get("cpu")
            home = self.workdir / "airflow-home"
            home.mkdir(exist_ok=True)
            self.env = child_env(self.ports, str(home))
            yield
        finally:
            server, self.server = self.server, None
            if server.stdin is not None:
                with contextlib.suppress(OSError):
                    server.stdin.close()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()

    # ---- children

    def child(self, module: str, *args: str, timeout: float = 3600) -> Any:
        """Run ``python -m module args`` pinned to the client CPU; return its JSON result."""
        cmd = [
            sys.executable,
            "-m",
            module,
            "--ports",
            json.dumps(self.ports),
            "--cpu",
            str(CLIENT_CPU),
            *args,
        ]
        out_file = self.workdir / f"{module.rsplit('.', 1)[-1]}-{time.time_ns()}.json"
        if module == "bench.scale":
            cmd += ["--out", str(out_file)]
        self.log.write(f"\n$ {' '.join(cmd)}\n")
        self.log.flush()
        proc = subprocess.run(
            cmd,
            cwd=HERE.parent,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            timeout=timeout,
            check=False,
        )
        if module == "bench.scale":
            # the trigger's log lines go to stdout: keep them out of the way
            self.log.write(proc.stdout[-4000:])
        if proc.returncode != 0:
            self.log.flush()
            tail = Path(self.log.name).read_text(encoding="utf-8")[-3000:]
            raise RuntimeError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n{tail}")
        if module == "bench.scale":
            return json.loads(out_file.read_text(encoding="utf-8"))
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def note(self, text: str) -> None:
        print(f"[bench] {time.strftime('%H:%M:%S')} {text}", flush=True)

    # ---- the run

    def run(self) -> dict[str, Any]:
        plan = self.plan
        started = time.time()
        results: dict[str, Any] = {"plan": asdict(plan), "machine": machine(), "started": utc(started)}
        results["machine"]["load_before"] = os.getloadavg() if hasattr(os, "getloadavg") else None
        with self.serving():
            results["machine"]["server_cpu"] = self.server_cpu
            results["machine"]["client_cpu"] = CLIENT_CPU if self.server_cpu is not None else None

            self.note("client CPU per poll: package, official SDK, floor, transports")
            results["poll"] = self.child(
                "bench.poll",
                "--reps",
                str(plan.poll_reps),
                "--polls",
                str(plan.poll_polls),
                "--concurrency",
                ",".join(map(str, plan.concurrency)),
            )

            self.note("profile of a poll (cProfile)")
            results["profile"] = self.child(
                "bench.profile",
                "--polls",
                str(plan.profile_polls),
                "--concurrency",
                str(plan.concurrency[1]),
            )

            self.note("the trigger at scale, what sets its steady-state CPU, memory per wait")
            jobs: list[tuple[str, str, list[str]]] = []  # (section, key, arguments)
            common = ["--interval", str(plan.interval)]
            window = ["--window", str(plan.window)]
            for rep in range(plan.scale_reps):
                sizes = list(plan.sizes)
                for size in sizes[rep % len(sizes) :] + sizes[: rep % len(sizes)]:
                    n = ["--waits", str(size)]
                    jobs.append(("scale", f"steady/{size}", ["--mode", "steady", *n, *window, *common]))
                    jobs.append(("scale", f"burst/{size}", ["--mode", "burst", *n, *common]))
            n = ["--waits", str(plan.frontier_size)]
            for variant, extra in (
                ("bare", ["--variant", "bare"]),
                ("fake-hook", ["--variant", "fake-hook"]),
                ("floor", ["--variant", "floor"]),
                ("trigger-no-portal", ["--no-portal"]),
                *(
                    (
                        ("trigger-uvloop", ["--uvloop"]),
                        ("trigger-uvloop-no-portal", ["--uvloop", "--no-portal"]),
                    )
                    if has_uvloop()
                    else ()
                ),
                *((("trigger-profile", ["--profile"]),) if plan.steady_profile else ()),
            ):
                jobs.append(("frontier", variant, ["--mode", "steady", *n, *window, *common, *extra]))
            for size in plan.memory_sizes:
                jobs.append(("memory", f"rss/{size}", ["--mode", "memory", "--waits", str(size)]))
            jobs.append(
                (
                    "memory",
                    f"heap/{plan.traced_size}",
                    ["--mode", "memory", "--waits", str(plan.traced_size), "--traced"],
                )
            )
            if plan.name == "tiny":  # one process for all: the figures mean nothing anyway
                outputs = self.child("bench.scale", "--batch", json.dumps([args for _, _, args in jobs]))
            else:
                outputs = []
                for i, (section, key, args) in enumerate(jobs, 1):
                    self.note(
                        f"  {i}/{len(jobs)} {section}: {key} {' '.join(args[2:]) if section == 'frontier' else ''}"
                    )
                    outputs.append(self.child("bench.scale", *args))
            scale: dict[str, list[dict[str, Any]]] = {}
            frontier: dict[str, Any] = {}
            memory: dict[str, Any] = {}
            for (section, key, _), output in zip(jobs, outputs, strict=True):
                if section == "scale":
                    scale.setdefault(key, []).append(output)
                elif section == "frontier":
                    frontier[key] = output
                else:
                    memory[key] = output
            results["scale"], results["frontier"], results["memory"] = scale, frontier, memory

        self.note("DAG-parse cost of the sensors module")
        results["imports"] = imports.run(self.env, plan.import_reps, CLIENT_CPU)
        results["machine"]["load_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
        results["seconds"] = time.time() - started
        results["summary"] = summarize(results)
        return results


# --------------------------------------------------------------------------- facts


def has_uvloop() -> bool:
    import importlib.util

    return importlib.util.find_spec("uvloop") is not None


def utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    from importlib import metadata

    for dist in (
        "airflow-aliyun-tasks",
        "apache-airflow",
        "httpx",
        "httptools",
        "aiohttp",
        "httpx-aiohttp",
        "alibabacloud-tea-openapi",
        "alibabacloud-datalake20200710",
        "alibabacloud-dataworks-public20240518",
        "alibabacloud-maxcompute20220104",
        "alibabacloud-pds20220301",
        "greenback",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions,
    }


# --------------------------------------------------------------------------- figures and targets


def med(entry: Mapping[str, Any] | None) -> float | None:
    return None if not entry else entry.get("median")


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def spread(runs: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """``summary`` of one figure (a dotted path) over repeated runs."""
    values = []
    for run in runs:
        value: Any = run
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return summary(values)


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Ratios and target verdicts, from the medians of this one run."""
    plan = results["plan"]
    c1, cn = plan["concurrency"]
    cpu = results["poll"]["cpu_us"]

    def poll(kind: str, service: str, mode: str, c: int) -> float | None:
        return med(cpu.get(f"{kind}/{service}/{mode}/c{c}"))

    rows = {}
    for service in SERVICES:
        row: dict[str, Any] = {}
        for c in (c1, cn):
            pkg, sdk, flo = (poll(k, service, "async", c) for k in ("package", "sdk", "floor"))
            row[f"c{c}"] = {
                "package_us": pkg,
                "sdk_us": sdk,
                "floor_us": flo,
                "sdk_over_package": ratio(sdk, pkg),
                "package_over_floor": ratio(pkg, flo),
            }
        pkg_sync, sdk_sync = poll("package", service, "sync", 1), poll("sdk", service, "sync", 1)
        row["sync"] = {
            "package_us": pkg_sync,
            "sdk_us": sdk_sync,
            "package_over_sdk": ratio(pkg_sync, sdk_sync),
        }
        rows[service] = row

    scale = results["scale"]
    big = max(plan["sizes"])
    steady = scale.get(f"steady/{big}", [])
    burst = scale.get(f"burst/{big}", [])
    memory = results["memory"]
    rss_key = f"rss/{max(plan['memory_sizes'])}"
    heap_key = f"heap/{plan['traced_size']}"
    imports_sdk = results["imports"].get("airflow.sdk", {})
    sensors_ms = statistics.median(imports_sdk["sensors_ms"]) if imports_sdk.get("sensors_ms") else None

    targets = []

    def target(name: str, measured: str, met: bool | None, detail: str = "") -> None:
        targets.append({"target": name, "measured": measured, "met": met, "detail": detail})

    for service in ("dataworks", "pds"):
        for c in (c1, cn):
            r = rows[service][f"c{c}"]["sdk_over_package"]
            target(
                f"SDK async >= 3x package CPU/poll, {service}, concurrency {c}",
                fmt_ratio(r),
                None if r is None else r >= 3.0,
            )
    worst_floor = [
        rows[s][f"c{c}"]["package_over_floor"]
        for s in SERVICES
        for c in (c1, cn)
        if rows[s][f"c{c}"]["package_over_floor"]
    ]
    target(
        "package within 4x of the hand-written floor (every service, both concurrencies)",
        f"worst {fmt_ratio(max(worst_floor))}" if worst_floor else "-",
        None if not worst_floor else max(worst_floor) <= 4.0,
    )
    sync = [rows[s]["sync"]["package_over_sdk"] for s in SERVICES if rows[s]["sync"]["package_over_sdk"]]
    target(
        "sync hook CPU/poll <= SDK sync client (every service)",
        f"worst {fmt_ratio(max(sync))} of the SDK's" if sync else "-",
        None if not sync else max(sync) <= 1.0,
    )
    share = med(spread(steady, "cpu_share"))
    net = med(spread(steady, "cpu_share_net_of_ticker"))
    target(
        f"{big:,} waits at a {plan['interval']:g} s interval: <= 8% of one core",
        f"{fmt_pct(share)} ({fmt_pct(net)} without the lag ticker)",
        None if share is None else share <= 0.08,
    )
    heap = memory.get(heap_key, {}).get("trigger_traced_per_wait_bytes")
    rss_trigger = memory.get(rss_key, {}).get("trigger_rss_per_wait_bytes")
    rss_portal = memory.get(rss_key, {}).get("portal_rss_per_task_bytes")
    target(
        "<= 5 KB of memory per wait",
        f"{fmt_kb(rss_trigger)} RSS, {fmt_kb(heap)} Python heap (+{fmt_kb(rss_portal)} RSS for Airflow's greenback portal)",
        None if rss_trigger is None else rss_trigger <= 5000,
    )
    p99 = med(spread(steady, "lag.p99_ms"))
    lag_max = med(spread(steady, "lag.max_ms"))
    target(
        "steady event-loop lag p99 < 10 ms",
        fmt_ms(p99),
        None if p99 is None else p99 < 10,
    )
    target(
        "steady event-loop lag max < 100 ms",
        fmt_ms(lag_max),
        None if lag_max is None else lag_max < 100,
    )
    burst_max = med(spread(burst, "lag.max_ms"))
    target("burst max lag < 200 ms", fmt_ms(burst_max), None if burst_max is None else burst_max < 200)
    errors = sum(int(r.get("failed_polls", 0)) + int(r.get("client_retries", 0)) for r in burst)
    target(
        "burst: no request errors",
        f"{errors} failed polls or retried requests",
        errors == 0 if burst else None,
    )
    conns = [
        (
            sum(r["server_max_open_connections"].values()),
            max(r["server_max_open_connections"].values()),
            r["pool_limit"],
        )
        for r in burst
    ]
    if conns:
        total, per_endpoint, limit = max(c[0] for c in conns), max(c[1] for c in conns), conns[0][2]
        target(
            "burst: connections per endpoint bounded by the pool",
            f"at most {per_endpoint} per endpoint, {total} in all (pool: {limit})",
            limit is None or total <= limit,
        )
    heavy = imports_sdk.get("heavy", [])
    target(
        "sensors import adds <= 20 ms to import airflow.sdk",
        fmt_ms(sensors_ms),
        None if sensors_ms is None else sensors_ms <= 20,
    )
    target(
        "sensors import brings neither alibabacloud_credentials nor aiohttp",
        "none" if not heavy else ", ".join(heavy),
        not any(m in heavy for m in ("alibabacloud_credentials", "aiohttp")),
    )
    return {"per_service": rows, "targets": targets}


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def fmt_kb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.1f} KB"


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer, shorter repetitions")
    size.add_argument("--tiny", action="store_true", help="everything on a tiny size, in seconds")
    parser.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md and results.json go")
    args = parser.parse_args(argv)
    plan = PLANS["tiny" if args.tiny else "quick" if args.quick else "full"]
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="aliyun-tasks-bench-"))
    keep = False
    try:
        harness = Harness(plan, args.out, workdir)
        try:
            results = harness.run()
        except BaseException:
            keep = True
            print(f"[bench] failed; logs kept in {workdir}", file=sys.stderr)
            raise
        finally:
            harness.log.close()
        previous = args.out / "results.json"
        with contextlib.suppress(OSError, ValueError):  # python -m bench triggerer's figures stay
            kept = json.loads(previous.read_text(encoding="utf-8")).get("triggerer")
            if kept:
                results.setdefault("triggerer", kept)
        (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        (args.out / "RESULTS.md").write_text(render(results), encoding="utf-8")
        print(
            f"[bench] wrote {args.out / 'RESULTS.md'} and {args.out / 'results.json'} "
            f"in {results['seconds']:.0f} s"
        )
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
