"""``RESULTS.md`` from one run's ``results.json``."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from bench.common import SERVICES

TITLES = {"dlf": "DLF", "dataworks": "DataWorks", "mma": "MMA", "pds": "PDS"}


def us(entry: Mapping[str, Any] | None) -> str:
    """``median [min-max]`` microseconds."""
    if not entry or entry.get("median") is None:
        return "-"
    return f"{entry['median']:,.0f} [{entry['min']:,.0f}-{entry['max']:,.0f}]"


def x(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def figure(runs: list[dict[str, Any]], path: str, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    values = []
    for run in runs:
        value: Any = run
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, int | float):
            values.append(float(value) * scale)
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:,.{digits}f}{unit}"
    return f"{med:,.{digits}f}{unit} [{min(values):,.{digits}f}-{max(values):,.{digits}f}]"


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("**met**" if met else "**missed**")


def render(results: dict[str, Any]) -> str:
    plan = results["plan"]
    m = results["machine"]
    c1, cn = plan["concurrency"]
    summary = results["summary"]
    rows = summary["per_service"]
    cpu = results["poll"]["cpu_us"]
    out: list[str] = []
    w = out.append

    w("# Benchmark results\n")
    w(
        f"Produced by `make bench` (`python -m bench`{'' if plan['name'] == 'full' else ' --' + plan['name']}) "
        f"on {results['started']}, in {results['seconds'] / 60:.1f} min. One run: every figure below comes "
        "from it; repetitions are interleaved and given as **median [min-max]**.\n"
    )
    if plan["name"] != "full":
        w(
            f"> This is a `--{plan['name']}` run: sizes and repetitions are too small for the figures to mean much.\n"
        )
    load_before = m.get("load_before") or ["-"]
    load_after = m.get("load_after") or ["-"]
    w("| machine | |\n|---|---|")
    w(f"| CPU | {m['cpu_model']}, {m['cpu_count']} cores |")
    pinning = (
        f"client on CPU {m['client_cpu']}, fixed-response server on CPU {m['server_cpu']}"
        if m.get("server_cpu") is not None
        else "not pinned (fewer than two CPUs, or no sched_setaffinity)"
    )
    w(f"| pinning | {pinning} |")
    w(f"| load average (1 min) | {fmt_load(load_before)} before, {fmt_load(load_after)} after |")
    w(f"| Python | {m['implementation']} {m['python']} on {m['os']} |")
    w("| versions | " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + " |\n")
    w(
        "CPU is process CPU time (`time.process_time`: user + system, all threads) of the client process "
        "only, never wall time; the server runs in its own process on the other CPU. Loopback HTTP, "
        "no TLS. Absolute figures are indications for this machine; the ratios are the result.\n"
    )

    # ---- targets
    w("## Targets\n")
    w("| target | measured | |\n|---|---|---|")
    for t in summary["targets"]:
        w(f"| {t['target']} | {t['measured']} | {verdict(t['met'])} |")
    w("")

    # ---- per poll
    w("## 1. Client CPU per status poll (microseconds)\n")
    w(
        "The package's async hook call (`aget_task_status`), the official SDK's async client "
        "(`*_async`; it opens a new aiohttp session, so a new connection, per call), and a hand-written "
        "HTTP/1.1 client on asyncio streams with the package's signer and `json.loads` only (the floor). "
        f"Concurrency {c1}: one poll after another; {cn}: {cn} workers, each with its own hook (as each "
        "trigger has) and task id.\n"
    )
    w(
        f"| service | package c{c1} | SDK c{c1} | **SDK / package** | floor c{c1} | package / floor "
        f"| package c{cn} | SDK c{cn} | **SDK / package** | floor c{cn} | package / floor |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in SERVICES:
        a, b = rows[s][f"c{c1}"], rows[s][f"c{cn}"]
        w(
            f"| {TITLES[s]} | {us(cpu.get(f'package/{s}/async/c{c1}'))} | {us(cpu.get(f'sdk/{s}/async/c{c1}'))} "
            f"| **{x(a['sdk_over_package'])}** | {us(cpu.get(f'floor/{s}/async/c{c1}'))} | {x(a['package_over_floor'])} "
            f"| {us(cpu.get(f'package/{s}/async/c{cn}'))} | {us(cpu.get(f'sdk/{s}/async/c{cn}'))} "
            f"| **{x(b['sdk_over_package'])}** | {us(cpu.get(f'floor/{s}/async/c{cn}'))} | {x(b['package_over_floor'])} |"
        )
    w("")
    w("Sync: the hook's `get_task_status` against the SDK's sync client, one call after another.\n")
    w("| service | package sync | SDK sync | package / SDK |\n|---|---|---|---|")
    for s in SERVICES:
        w(
            f"| {TITLES[s]} | {us(cpu.get(f'package/{s}/sync/c1'))} | {us(cpu.get(f'sdk/{s}/sync/c1'))} "
            f"| {x(rows[s]['sync']['package_over_sdk'])} |"
        )
    w("")

    # ---- transports
    w("### The transport, chosen by these numbers (DataWorks)\n")
    w(
        "The same hook and client, with the shared client's transport swapped: the package's own "
        "(asyncio + `httptools`, `http.client` for sync), a lean `aiohttp` session called the same way "
        "(`bench/alt_transports.py`), and an `httpx.AsyncClient` on `httpx-aiohttp`'s transport or on "
        "httpx's default one (what the client used before).\n"
    )
    w(f"| transport | async c{c1} | async c{cn} | sync |\n|---|---|---|---|")
    for kind, label in (
        ("package", "package: asyncio + httptools / http.client"),
        ("package-aiohttp", "aiohttp session, called directly"),
        ("package-httpx-aiohttp", "httpx.AsyncClient over httpx-aiohttp"),
        ("package-httpx", "httpx.AsyncClient / httpx.Client, default transports"),
        ("sdk", "(official SDK, for reference)"),
    ):
        w(
            f"| {label} | {us(cpu.get(f'{kind}/dataworks/async/c{c1}'))} | {us(cpu.get(f'{kind}/dataworks/async/c{cn}'))} "
            f"| {us(cpu.get(f'{kind}/dataworks/sync/c1'))} |"
        )
    w("")

    # ---- profile
    prof = results["profile"]
    w(
        f"## 2. Where a poll's CPU goes (cProfile, {TITLES[prof['service']]}, concurrency {prof['concurrency']})\n"
    )
    w(
        "Share of in-function time by component (waiting in `epoll` excluded). Profiling slows "
        "everything several times over: read the shares, not absolute times.\n"
    )
    pk, sd = prof["package"], prof["sdk"]
    w(
        f"Function calls per poll: package **{pk['function_calls_per_poll']:,.0f}**, "
        f"official SDK **{sd['function_calls_per_poll']:,.0f}**.\n"
    )
    w("| package: component | share | | official SDK: component | share |\n|---|---|---|---|---|")
    left, right = list(pk["components"].items()), list(sd["components"].items())
    for i in range(max(len(left), len(right))):
        lc = f"{left[i][0]} | {left[i][1] * 100:.1f}%" if i < len(left) else " | "
        rc = f"{right[i][0]} | {right[i][1] * 100:.1f}%" if i < len(right) else " | "
        w(f"| {lc} | | {rc} |")
    w("\nThe package's top functions (in-function time):\n")
    w("| share | calls/poll | function |\n|---|---|---|")
    for row in pk["top"][:15]:
        w(f"| {row['tottime_share'] * 100:.1f}% | {row['calls_per_poll']:.2f} | `{row['function']}` |")
    w("")

    # ---- scale
    scale = results["scale"]
    w(f"## 3. The trigger at scale ({plan['interval']:g} s poll interval)\n")
    w(
        "`AlibabaCloudTaskTrigger.run()` generators on one event loop, each consumed by its own asyncio "
        "task that first enters a greenback portal, as Airflow 3.3's triggerer does; triggers are "
        "created one at a time with `await asyncio.sleep(0)` between them, as the triggerer's "
        "`create_triggers` does. Waits are spread round-robin over the four services (one server port "
        "each); the hook resolves an `AIRFLOW_CONN_*` connection pointed at the server. Event-loop lag "
        "is how late a 10 ms `asyncio.sleep` ticker wakes.\n"
    )
    w(
        "**Steady state**: first polls spread over one interval, measured after every wait has polled "
        f"once, for {plan['window']:g} s (the same poll rate as a whole interval).\n"
    )
    sizes = sorted(int(k.split("/")[1]) for k in scale if k.startswith("steady/"))
    w(
        "| waits | polls/s | CPU, one core | without the lag ticker | CPU/poll (us) | lag p99 | lag max | connections (client) | RSS/wait | failed polls |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        runs = scale[f"steady/{n}"]
        conns = [sum(r["client_connections_peak"].values()) for r in runs]
        w(
            f"| {n:,} | {figure(runs, 'polls_per_s', digits=0)} | {figure(runs, 'cpu_share', 100, 1, '%')} "
            f"| {figure(runs, 'cpu_share_net_of_ticker', 100, 1, '%')} | {figure(runs, 'cpu_per_poll_us', digits=0)} "
            f"| {figure(runs, 'lag.p99_ms', unit=' ms')} | {figure(runs, 'lag.max_ms', unit=' ms')} "
            f"| {max(conns) if conns else '-'} | {figure(runs, 'rss_per_wait_bytes', 0.001, 1, ' KB')} "
            f"| {sum(int(r['failed_polls']) for r in runs)} |"
        )
    w("")
    w("**Burst**: every wait's first poll at once (a triggerer restart), until each has polled once.\n")
    w(
        "| waits | time to all first polls | CPU | lag max | lag p99 | longest GC pause | failed polls / retries "
        "| connections open at once, per endpoint (server) | pool peak / limit | RSS/wait |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|")
    for n in sorted(int(k.split("/")[1]) for k in scale if k.startswith("burst/")):
        runs = scale[f"burst/{n}"]
        per_endpoint = max(max(r["server_max_open_connections"].values()) for r in runs)
        total = max(sum(r["server_max_open_connections"].values()) for r in runs)
        w(
            f"| {n:,} | {figure(runs, 'seconds_to_all_first_polls', unit=' s')} | {figure(runs, 'cpu_s', unit=' s')} "
            f"| {figure(runs, 'lag.max_ms', unit=' ms')} | {figure(runs, 'lag.p99_ms', unit=' ms')} "
            f"| {figure(runs, 'gc.longest_ms', unit=' ms')} "
            f"| {sum(int(r['failed_polls']) for r in runs)} / {sum(int(r['client_retries']) for r in runs)} "
            f"| <= {per_endpoint} ({total} in all) | {max(r['pool_connections_peak'] for r in runs)} / {runs[0]['pool_limit']} "
            f"| {figure(runs, 'rss_per_wait_bytes', 0.001, 1, ' KB')} |"
        )
    w("")

    # ---- frontier
    fr = results["frontier"]
    w(f"### What sets the steady-state CPU ({plan['frontier_size']:,} waits, same rate)\n")
    w(
        "Measured the same way, in one process each: tasks that only wake at the same rate (the event "
        "loop alone), the trigger with a hook that does no I/O, the hand-written floor client polling "
        "at the same rate (16 keep-alive connections per service, no trigger), the trigger without "
        "Airflow's greenback portal, on uvloop (where installed) instead of asyncio's own loop, and "
        "the trigger as above.\n"
    )
    w("| what | CPU, one core | without the lag ticker | user / system | CPU/poll (us) | lag p99 | lag max |")
    w("|---|---|---|---|---|---|---|")
    steady_big = scale.get(f"steady/{plan['frontier_size']}", [])
    entries = [(k, [v]) for k, v in fr.items() if k != "trigger-profile"]
    if steady_big:
        entries.append(("trigger (above)", steady_big))
    labels = {
        "bare": "event loop alone: tasks waking at the poll rate",
        "fake-hook": "trigger, hook without I/O",
        "floor": "hand-written floor client at the poll rate",
        "trigger-no-portal": "trigger, no greenback portal",
        "trigger-uvloop": "trigger, on uvloop",
        "trigger-uvloop-no-portal": "trigger, on uvloop, no greenback portal",
        "trigger (above)": "trigger, as the triggerer runs it",
    }
    for key, runs in entries:
        w(
            f"| {labels.get(key, key)} | {figure(runs, 'cpu_share', 100, 1, '%')} "
            f"| {figure(runs, 'cpu_share_net_of_ticker', 100, 1, '%')} "
            f"| {figure(runs, 'user_share', 100, 1, '%')} / {figure(runs, 'system_share', 100, 1, '%')} "
            f"| {figure(runs, 'cpu_per_poll_us', digits=0)} | {figure(runs, 'lag.p99_ms', unit=' ms')} "
            f"| {figure(runs, 'lag.max_ms', unit=' ms')} |"
        )
    ticker = figure([r for _, runs in entries for r in runs], "ticker_cpu_share", 100, 1, "%")
    w(
        f"\nThe 10 ms lag ticker alone costs {ticker} of the core (measured in each process before its waits start).\n"
    )
    tp = fr.get("trigger-profile")
    if tp and tp.get("profile"):
        w("The trigger's steady state under cProfile (shares of in-function time, `epoll` waits excluded):\n")
        w("| component | share |\n|---|---|")
        for k, v in list(tp["profile"]["components"].items())[:14]:
            w(f"| {k} | {v * 100:.1f}% |")
        w("")

    # ---- memory
    mem = results["memory"]
    w("## 4. Memory per wait\n")
    w(
        "Each wait polled twice (its prepared signer exists), then idle; no greenback portal for the "
        "triggers here; the portal's own cost is measured with bare tasks that enter one. RSS deltas "
        "(psutil) and, in a separate process, live Python heap (tracemalloc).\n"
    )
    w(
        "| measure | waits | greenback portal, per task | trigger, per wait | the package's part: a task polling with its own hook, per wait |"
    )
    w("|---|---|---|---|---|")
    for key, r in mem.items():
        what, n = key.split("/")
        tag = "traced" if what == "heap" else "rss"
        w(
            f"| {'Python heap' if what == 'heap' else 'RSS'} | {int(n):,} | {kb(r.get(f'portal_{tag}_per_task_bytes'))} "
            f"| {kb(r.get(f'trigger_{tag}_per_wait_bytes'))} | {kb(r.get(f'hook_only_{tag}_per_wait_bytes'))} |"
        )
    any_mem: dict[str, Any] = next(iter(mem.values()), {})
    by_type = any_mem.get("gc_objects_per_wait_by_type", {})
    if by_type:
        w(
            f"\nGarbage-collected objects each trigger keeps: {any_mem.get('gc_objects_per_wait', 0):.0f}; by type: "
            + ", ".join(f"{k} {v:g}" for k, v in list(by_type.items())[:18])
            + ".\n"
        )

    # ---- imports
    imp = results["imports"]
    w("## 5. DAG-parse cost of `import airflow_aliyun_tasks.sensors`\n")
    w("Fresh interpreters, interleaved; time and modules the sensors module adds on top of the baseline.\n")
    w(
        "| baseline | baseline's own time | sensors add | modules added | heavy modules imported |\n|---|---|---|---|---|"
    )
    for name, r in imp.items():
        w(
            f"| `{name}` | {fmt_ms_list(r['baseline_ms'])} | {fmt_ms_list(r['sensors_ms'])} "
            f"| {statistics.median(r['modules_added']):.0f} | {', '.join(r['heavy']) or 'none'} |"
        )
    added = imp.get("airflow.sdk", {}).get("added", [])
    if added:
        w(
            "\nModules added on top of `import airflow.sdk`: "
            + ", ".join(f"`{a}`" for a in added[:40])
            + (" ..." if len(added) > 40 else "")
            + "\n"
        )
    if results.get("triggerer"):  # python -m bench triggerer's section, kept across runs
        from bench.triggerer import render_section

        w(render_section(results["triggerer"]))
    w("")
    w("## Reading the results\n")
    w(NOTES)
    return "\n".join(out) + "\n"


def kb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.1f} KB"


def fmt_load(load: Any) -> str:
    return "-" if not load or load[0] == "-" else f"{load[0]:.2f}"


def fmt_ms_list(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.1f} ms"
    return f"{med:.1f} ms [{min(values):.1f}-{max(values):.1f}]"


NOTES = """\
See `docs/performance.md` for how the hot path is built and for what the missed targets would
take. In short:

- **Per poll**, the package spends a fraction of the official SDK's CPU: the SDK builds a new
  aiohttp session (and TCP connection) per call and runs its Tea runtime around it. The
  package's hot path signs with a prepared signer (the canonical request is precomputed around
  the date and the nonce), reuses the connection, the validated call and the credentials of the
  hook, skips the retry machinery unless an attempt fails, and moves bytes with a lean
  transport: asyncio protocols and `httptools`' C parser (async), `http.client` (sync). httpx
  stays the API (timeouts, limits, headers, exceptions); its own client layer alone costs more
  than a whole lean poll, which is why the hot path does not go through it.
- **At scale**, the loop's own cost of waking up sets the frontier: see the table of what sets
  the steady-state CPU. On a virtual machine a loop wake-up costs far more than on bare metal,
  and each poll takes two (the timer, the response); the hand-written floor client polling at
  the same rate costs about as much as the target allows by itself.
- **Memory per wait** is mostly not the package's: Airflow's greenback portal (one per trigger
  in a triggerer), the trigger object with its own structlog logger, the asyncio task and
  generator frames, and the last status the trigger keeps for its events.
"""
