"""Per-poll CPU of the package at two revisions, measured side by side in one run.

    python -m bench.compare --base REV [--reps 7] [--polls 400]

The package's hook (async at concurrency 1 and 100, sync) polls the four services of the
benchmark server, once with the source of ``REV`` (``git archive``) and once with the working
tree's, in alternating order, each repetition a fresh process pinned to the client CPU. Prints
the medians (microseconds of CPU per poll) and the ratio working tree / ``REV``: the figure a
change to the polling path reports.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.run import PLANS, Harness

HERE = Path(__file__).resolve().parent


def source_of(rev: str, into: Path) -> Path:
    """The package's source at ``rev``, unpacked under ``into``; returns the ``src`` folder."""
    archive = subprocess.run(
        ["git", "archive", rev, "src"], cwd=HERE.parent, stdout=subprocess.PIPE, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the revision to compare the working tree with")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--polls", type=int, default=400)
    parser.add_argument("--concurrency", default="1,100")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="aliyun-tasks-compare-"))
    trees = {"base": source_of(args.base, workdir), "head": HERE.parent / "src"}
    runs: dict[str, dict[str, list[float]]] = {"base": {}, "head": {}}
    harness = Harness(PLANS["quick"], workdir, workdir)
    try:
        with harness.serving():
            env = dict(harness.env)
            for rep in range(args.reps):
                order = ["base", "head"] if rep % 2 == 0 else ["head", "base"]
                for name in order:
                    harness.env = {**env, "PYTHONPATH": str(trees[name])}
                    result: Any = harness.child(
                        "bench.poll",
                        "--reps",
                        "1",
                        "--polls",
                        str(args.polls),
                        "--concurrency",
                        args.concurrency,
                        "--kinds",
                        "package",
                    )
                    if result["errors"]:
                        raise RuntimeError(f"{name}: {result['errors']}")
                    for key, entry in result["cpu_us"].items():
                        runs[name].setdefault(key, []).append(entry["median"])
                print(f"[compare] repetition {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)
    finally:
        harness.log.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"CPU per poll, microseconds (median of {args.reps}); base = {args.base}, head = working tree")
    print(f"{'variant':<32} {'base':>8} {'head':>8} {'head/base':>10}")
    for key in sorted(runs["head"]):
        base = statistics.median(runs["base"][key])
        head = statistics.median(runs["head"][key])
        print(f"{key:<32} {base:8.1f} {head:8.1f} {head / base:10.2f}")
    print(json.dumps({"base": args.base, "reps": args.reps, "runs": runs}))


if __name__ == "__main__":
    main()
