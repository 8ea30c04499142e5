"""Where a runner's CPU goes per poll: py-spy's collapsed stacks (``--format raw``) turned into
microseconds per poll, by component, and the difference between two kinds.

``python -m bench.collapsed A.collapsed.txt POLLS_A B.collapsed.txt POLLS_B [--rate 250]
[--cpu-a US --cpu-b US]``
prints, for each file, microseconds per poll by component (the leaf frame's module decides) and
inclusive microseconds per poll of the functions that differ most between A and B. A sample
stands for ``1 / rate`` seconds of CPU (py-spy samples only running threads unless ``--idle``).
``bench/triggerer.py --profile`` writes such files for each polling kind's runner.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

#: (component, pattern on the leaf frame), first match wins.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("package: transport", r"airflow_aliyun_tasks/_transport/"),
    ("package: signing", r"airflow_aliyun_tasks/signing"),
    ("package: parse and status", r"airflow_aliyun_tasks/(services|status)"),
    ("package: client, hook, trigger", r"airflow_aliyun_tasks/"),
    ("floor trigger", r"bench/floor_trigger"),
    ("httpx", r"httpx/"),
    ("greenback portal", r"(greenback|outcome|greenlet)"),
    ("logging", r"(structlog|logging/|airflow/sdk/log|_shared/logging)"),
    ("json, hashlib, uuid, time", r"(json/|hashlib|hmac|uuid|^time)"),
    ("asyncio streams", r"asyncio/streams"),
    ("asyncio loop and tasks", r"(asyncio/|selectors|heapq|socket|weakref|contextvars)"),
    ("Airflow triggerer", r"airflow/jobs/triggerer_job_runner"),
    ("Airflow, other", r"airflow/"),
)

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]*)(?::\d+)?\)$")


def frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for part in stack.split(";"):
        m = _FRAME.match(part.strip())
        out.append((m["func"], m["file"]) if m else (part.strip(), ""))
    return out


def component(func: str, file: str) -> str:
    where = f"{file}:{func}"
    for name, pattern in COMPONENTS:
        if re.search(pattern, where):
            return name
    return "other"


def load(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((frames(stack), int(count)))
    return stacks


def is_idle(stack: list[tuple[str, str]]) -> bool:
    """The loop waiting in ``epoll`` (py-spy's idle detection misses some of these samples)."""
    func, file = stack[-1]
    return "select" in func.lower() and ("selectors" in file or "select" in file)


def per_poll(path: Path, polls: int, rate: float, cpu_us: float | None = None) -> dict[str, dict[str, float]]:
    """``{"components": {name: µs/poll}, "functions": {file:func: inclusive µs/poll}}``.

    Without ``cpu_us`` a sample is ``1 / rate`` s (wall time: on a busy machine a runnable
    thread waiting for a CPU is sampled too). With it, samples of the loop waiting in epoll are
    left out and the rest are scaled so that they add up to ``cpu_us`` per poll (the measured
    CPU): the shares of the samples, in CPU microseconds."""
    stacks = load(path)
    if cpu_us is not None:
        stacks = [(s, c) for s, c in stacks if not is_idle(s)]
        busy = sum(c for _, c in stacks)
        unit = cpu_us / busy if busy else 0.0
    else:
        unit = 1e6 / rate / polls
    comps: collections.Counter[str] = collections.Counter()
    funcs: collections.Counter[str] = collections.Counter()
    total = 0
    for stack, count in stacks:
        total += count
        func, file = stack[-1]
        comps[component(func, file)] += count
        for name in {f"{file.rsplit('site-packages/', 1)[-1]}:{fn}" for fn, file in stack}:
            funcs[name] += count
    return {
        "components": {k: v * unit for k, v in comps.most_common()},
        "functions": {k: v * unit for k, v in funcs.most_common()},
        "total_us": {"all": total * unit},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("polls_a", type=int)
    parser.add_argument("b", type=Path)
    parser.add_argument("polls_b", type=int)
    parser.add_argument("--rate", type=float, default=250.0)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--cpu-a", type=float, default=None, help="measured CPU µs per poll of A")
    parser.add_argument("--cpu-b", type=float, default=None, help="measured CPU µs per poll of B")
    args = parser.parse_args(argv)
    a = per_poll(args.a, args.polls_a, args.rate, args.cpu_a)
    b = per_poll(args.b, args.polls_b, args.rate, args.cpu_b)
    print(
        f"total µs/poll: {args.a.name} {a['total_us']['all']:.1f}, {args.b.name} {b['total_us']['all']:.1f}"
    )
    print(f"\n{'component':34} {'A':>8} {'B':>8} {'B-A':>8}")
    for name in sorted(set(a["components"]) | set(b["components"]), key=lambda n: -b["components"].get(n, 0)):
        x, y = a["components"].get(name, 0.0), b["components"].get(name, 0.0)
        print(f"{name:34} {x:8.1f} {y:8.1f} {y - x:+8.1f}")
    print(f"\n{'function (inclusive)':80} {'A':>8} {'B':>8} {'B-A':>8}")
    names = set(a["functions"]) | set(b["functions"])
    for name in sorted(names, key=lambda n: -abs(b["functions"].get(n, 0) - a["functions"].get(n, 0)))[
        : args.top
    ]:
        x, y = a["functions"].get(name, 0.0), b["functions"].get(name, 0.0)
        print(f"{name[-80:]:80} {x:8.1f} {y:8.1f} {y - x:+8.1f}")


if __name__ == "__main__":
    main()
