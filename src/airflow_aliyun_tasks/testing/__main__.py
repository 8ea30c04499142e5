"""``python -m airflow_aliyun_tasks.testing serve``: run the emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_aliyun_tasks.testing._base import is_loopback_host
from airflow_aliyun_tasks.testing._core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, Emulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_aliyun_tasks.testing",
        description=(
            "Local Alibaba Cloud emulator (DLF, DataWorks, MaxCompute MMA, PDS, EMR Serverless Spark, STS) for tests."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the emulator on a loopback port")
    serve.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, required=True, help="port to listen on (0: pick a free one)")
    serve.add_argument("--access-key-id", help=f"accepted AccessKeyId (default {DEFAULT_ACCESS_KEY_ID})")
    serve.add_argument("--access-key-secret", help="its secret (default: the emulator's fixed test secret)")
    serve.add_argument(
        "--bearer-token", action="append", default=[], help="accepted PDS access token (repeatable)"
    )
    serve.add_argument("--account-id", default="1234567890123456")
    serve.add_argument("--sts-ttl-seconds", type=int, default=3600)
    serve.add_argument("--max-skew-seconds", type=float, default=900)
    serve.add_argument("--clock-offset", type=float, default=0.0)
    serve.add_argument(
        "--slow-seconds", type=float, default=None, help="how long a 'slow' fault waits (default 3.0)"
    )
    serve.add_argument(
        "--tasks", type=Path, help="JSON file: a list of tasks, or {'tasks': [...], 'faults': [...]}"
    )
    return parser


def _load_script(emulator: Emulator, path: Path) -> None:
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    tasks = data.get("tasks", []) if isinstance(data, dict) else data
    faults = data.get("faults", []) if isinstance(data, dict) else []
    for spec in tasks:
        emulator.add_task(**spec)
    for fault in faults:
        emulator.inject_fault(
            str(fault["kind"]),
            int(fault.get("count", 1)),
            service=fault.get("service"),
            task=fault.get("task"),
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not is_loopback_host(args.host):
        print(
            f"error: refusing to listen on {args.host!r}: the emulator only serves loopback", file=sys.stderr
        )
        return 2
    if (args.access_key_id is None) != (args.access_key_secret is None):
        print("error: give --access-key-id and --access-key-secret together", file=sys.stderr)
        return 2
    keys = (
        {args.access_key_id: args.access_key_secret}
        if args.access_key_id is not None
        else {DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET}
    )
    emulator = Emulator(
        access_keys=keys,
        bearer_tokens=args.bearer_token,
        account_id=args.account_id,
        max_skew_seconds=args.max_skew_seconds,
        sts_ttl_seconds=args.sts_ttl_seconds,
        clock_offset=args.clock_offset,
    )
    if args.slow_seconds is not None:
        emulator.slow_seconds = args.slow_seconds
    if args.tasks is not None:
        try:
            _load_script(emulator, args.tasks)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            print(f"error: cannot load {args.tasks}: {exc}", file=sys.stderr)
            return 2

    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        url = emulator.start(host=args.host, port=args.port)
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Alibaba Cloud emulator listening on {url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
