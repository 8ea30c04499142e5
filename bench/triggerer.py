"""A real ``airflow triggerer`` holding N deferred waits: ``python -m bench triggerer``.

The other benchmarks drive ``trigger.run()`` in a process of their own; this one measures what a
deployment pays. One run builds, in a throwaway ``AIRFLOW_HOME``:

- a PostgreSQL database of its own on 127.0.0.1:5432 (created, ``airflow db migrate``, dropped at
  the end, also when interrupted), one DAG per kind serialized by ``airflow dags reserialize``;
- per size N, N deferred task instances per kind, each with its own trigger row (a DAG run, its
  task instances in state ``deferred`` and the trigger rows, inserted directly: the triggerer
  loads them as it loads real deferred task instances, 50 per loop by default);
- one ``airflow triggerer`` per kind (``--queues``: each loads only its kind's triggers), all
  running at the same time, so that every kind is measured under the same machine load:

  - ``datetime``: Airflow's ``DateTimeTrigger`` on a far-future moment, the no-I/O baseline;
  - ``floor``: :class:`bench.floor_trigger.FloorTrigger`, a minimal DataWorks wait (HTTP/1.1
    keep-alive on asyncio streams, ACS3 signing, ``json.loads``, no retries, no lookup);
  - ``package``: the package's ``AlibabaCloudTaskTrigger`` (DataWorks), its connection an
    ``AIRFLOW_CONN_*`` variable whose endpoints are the fixed-response server.

  The two polling kinds poll every ``--interval`` seconds, each against a fixed-response server
  (``bench/server.py``) of its own, which counts the polls.

Per kind it measures: the time until every trigger started (a trigger's log file appears with
its first line, "trigger ... starting"), then, once every trigger started and one whole poll
interval passed, over ``--window`` seconds: CPU of the triggerer's process tree (the supervisor,
which owns the database, and the runner, which runs the triggers) as a share of one core, polls
served, CPU per poll, resident memory, and Airflow's "Triggerer's async thread was blocked"
warnings (from the triggerer's log). Memory per wait is the runner's RSS over the baseline kind's
at the same N, divided by N, and the slope between two sizes.

A stall (no trigger started for ``--stall-seconds`` while some are not, and neither process
uses CPU) is detected: both processes are dumped with ``py-spy dump --locals`` (installed into
the interpreter's environment when missing), their kernel wait channels and unix socket queues
are saved, and that kind's triggerer is stopped.

Results: the ``triggerer`` key of ``results.json`` and a section of ``RESULTS.md`` in ``--out``.
The figures to keep are ratios of kinds measured at the same time; the machine's load average
is recorded with them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from bench.common import CONN_ID, compile_bytecode, connection

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

KINDS = ("datetime", "floor", "package")
POLLING = ("floor", "package")
CLASSPATHS = {
    "datetime": "airflow.providers.standard.triggers.temporal.DateTimeTrigger",
    "floor": "bench.floor_trigger.FloorTrigger",
    "package": "airflow_aliyun_tasks.triggers.AlibabaCloudTaskTrigger",
}
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
BLOCKED = "Triggerer's async thread was blocked"
#: A process "uses no CPU" below this share of one core (a supervisor heartbeats every second).
IDLE_SHARE = 0.005

_DROPPED_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "ALIBABA_CLOUD_", "_AIRFLOW")
_DROPPED = {"AIRFLOW_HOME", "AIRFLOW_CONFIG", "PYTEST_CURRENT_TEST"}

DAG_FILE = '''\
"""One deferrable wait per task instance (the benchmark inserts the task instances)."""
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("bench_{kind}", schedule=None, catchup=False):
    EmptyOperator(task_id="wait")
'''


@dataclass
class Options:
    waits: list[int]
    repeat: int = 1
    kinds: tuple[str, ...] = KINDS
    interval: float = 30.0
    window: float = 90.0
    settle: float = 5.0
    stall_seconds: float = 120.0
    start_timeout: float | None = None
    select_per_loop: int | None = None
    profile: bool = False
    env: dict[str, str] = field(default_factory=dict)
    out: Path = HERE
    write: bool = True


def note(text: str) -> None:
    print(f"[triggerer] {time.strftime('%H:%M:%S')} {text}", flush=True)


def loadavg() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


# --------------------------------------------------------------------------- processes


def _psutil() -> Any:
    import psutil

    return psutil


def kill_group(popen: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM the process group of ``popen`` (it leads one), then SIGKILL what is left,
    descendants in other groups included."""
    psutil = _psutil()
    try:
        descendants = psutil.Process(popen.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(timeout=10)
    for proc in descendants:
        with contextlib.suppress(psutil.Error):
            proc.kill()


@dataclass
class Tree:
    """CPU seconds and RSS of a triggerer: its supervisor and its runner (the child)."""

    supervisor: float
    runner: float
    supervisor_rss: int
    runner_rss: int
    at: float

    @property
    def total(self) -> float:
        return self.supervisor + self.runner


def tree(pid: int) -> Tree | None:
    psutil = _psutil()
    try:
        sup = psutil.Process(pid)
        t = sup.cpu_times()
        s_cpu = t.user + t.system
        s_rss = sup.memory_info().rss
        r_cpu, r_rss = 0.0, 0
        for child in sup.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                ct = child.cpu_times()
                r_cpu += ct.user + ct.system
                r_rss += child.memory_info().rss
    except psutil.Error:
        return None
    return Tree(s_cpu, r_cpu, s_rss, r_rss, time.monotonic())


def runner_pids(pid: int) -> list[int]:
    psutil = _psutil()
    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def py_spy() -> str:
    """The ``py-spy`` next to this interpreter, installed with pip when missing."""
    exe = Path(sys.executable).with_name("py-spy")
    found = str(exe) if exe.exists() else shutil.which("py-spy")
    if found:
        return found
    note("installing py-spy (stack dumps of a stalled triggerer)")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True)
    return str(exe) if exe.exists() else "py-spy"


# --------------------------------------------------------------------------- servers


class Server:
    """``bench/server.py`` in a process of its own (stops when our pipe to its stdin closes)."""

    def __init__(self, log: Any) -> None:
        env = dict(os.environ, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "bench.server", "--watch-stdin"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark server did not start")
        self.ports: dict[str, int] = {k: int(v) for k, v in json.loads(line)["ports"].items()}

    def requests(self) -> int:
        """Requests served so far (every port)."""
        with socket.create_connection(("127.0.0.1", self.ports["dataworks"]), timeout=10) as sock:
            sock.sendall(b"GET /_stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        stats = json.loads(data.split(b"\r\n\r\n", 1)[1])
        return int(sum(stats["requests"].values()))

    def stop(self) -> None:
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(self.popen, grace=5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the deployment


@dataclass
class Triggerer:
    kind: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    spawned: float
    n: int
    started: int = 0
    all_started_s: float | None = None
    last_progress: float = 0.0
    samples: list[Tree] = field(default_factory=list)
    stalled: dict[str, Any] | None = None
    failed: str | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def done_starting(self) -> bool:
        return self.all_started_s is not None or self.stalled is not None or self.failed is not None


class Deployment:
    """The database, the home, the servers and the triggerers of one benchmark run."""

    def __init__(self, opts: Options, workdir: Path) -> None:
        self.opts = opts
        self.workdir = workdir
        self.home = workdir / "airflow-home"
        self.logs = self.home / "logs"
        self.db_name = f"aliyun_bench_triggerer_{time.strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(3)}"
        self.db_created = False
        self.servers: dict[str, Server] = {}
        self.triggerers: dict[str, Triggerer] = {}
        self.env: dict[str, str] = {}
        self.log = (workdir / "harness.log").open("a", encoding="utf-8")
        self.capacity = max(opts.waits) + 100

    # ---- lifecycle

    def __enter__(self) -> Deployment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        from cryptography.fernet import Fernet

        (self.home / "dags").mkdir(parents=True)
        for kind in self.opts.kinds:
            (self.home / "dags" / f"bench_{kind}.py").write_text(DAG_FILE.format(kind=kind), encoding="utf-8")
        for kind in self.opts.kinds:
            if kind in POLLING:
                self.servers[kind] = Server(self.log)
        admin(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        compile_bytecode()  # as installed: see its docstring
        env = {
            k: v for k, v in os.environ.items() if k not in _DROPPED and not k.startswith(_DROPPED_PREFIXES)
        }
        env.update(
            {
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.defpath)}",
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
                "PYTHONUNBUFFERED": "1",
                "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
                "ALIBABA_CLOUD_CREDENTIALS_FILE": os.devnull,
                "ALIBABA_CLOUD_CONFIG_FILE": os.devnull,
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                    f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{self.db_name}"
                ),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs),
                "AIRFLOW__TRIGGERER__QUEUES_ENABLED": "True",
            }
        )
        if self.opts.select_per_loop:
            env["AIRFLOW__TRIGGERER__MAX_TRIGGER_TO_SELECT_PER_LOOP"] = str(self.opts.select_per_loop)
        env.update(self.opts.env)  # settings under test (a workaround, a portal switch)
        if "package" in self.servers:
            env[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(connection(self.servers["package"].ports))
        self.env = env
        note(f"database {self.db_name}: airflow db migrate, dags reserialize")
        self.airflow("db", "migrate")
        self.airflow("dags", "reserialize")

    def stop(self) -> None:
        for trig in list(self.triggerers.values()):
            kill_group(trig.popen)
        self.triggerers.clear()
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        if self.db_created:
            admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self.db_created = False
        self.log.close()

    def airflow(self, *args: str, timeout: float = 900) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            cwd=self.home,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.log.write(f"\n$ airflow {' '.join(args)}\n{proc.stdout[-5000:]}{proc.stderr[-5000:]}")
        self.log.flush()
        if proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        return proc.stdout

    # ---- one size

    def seed(self, n: int, tag: str) -> None:
        """Replace every run, task instance, trigger and job with N deferred waits per kind."""
        spec = {
            "n": n,
            "tag": tag,
            "interval": self.opts.interval,
            "kinds": {
                kind: ({"port": self.servers[kind].ports["dataworks"]} if kind in self.servers else {})
                for kind in self.opts.kinds
            },
        }
        proc = subprocess.run(
            [sys.executable, "-m", "bench.triggerer", "_seed", json.dumps(spec)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        self.log.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        if proc.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{proc.stderr[-3000:]}")
        shutil.rmtree(self.logs, ignore_errors=True)

    def start_triggerers(self, n: int) -> None:
        for kind in self.opts.kinds:
            log_path = self.home / f"triggerer-{kind}-{n}.log"
            with open(log_path, "ab") as log:
                popen = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "airflow",
                        "triggerer",
                        "--skip-serve-logs",
                        "--capacity",
                        str(self.capacity),
                        "--queues",
                        f"bench_{kind}",
                    ],
                    cwd=self.home,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            now = time.monotonic()
            self.triggerers[kind] = Triggerer(kind, popen, log_path, now, n, last_progress=now)

    def stop_triggerers(self) -> None:
        for trig in self.triggerers.values():
            kill_group(trig.popen)

    def started(self, kind: str) -> int:
        """Triggers of ``kind`` that logged their first line (the supervisor opens a trigger's log
        file with it)."""
        base = self.logs / f"dag_id=bench_{kind}"
        count = 0
        stack = [base]
        while stack:
            with contextlib.suppress(OSError), os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif ".log.trigger." in entry.name:
                        count += 1
        return count

    def wait_started(self, n: int) -> None:
        opts = self.opts
        timeout = opts.start_timeout or max(600.0, n / 50 * 6 + 300)  # a stall is caught sooner
        while not all(t.done_starting() for t in self.triggerers.values()):
            time.sleep(2.0)
            now = time.monotonic()
            for trig in self.triggerers.values():
                if trig.done_starting():
                    continue
                if trig.popen.poll() is not None:
                    trig.failed = f"the triggerer exited {trig.popen.returncode}"
                    note(f"  {trig.kind}: {trig.failed}")
                    continue
                sample = tree(trig.pid)
                if sample is not None:
                    trig.samples.append(sample)
                count = self.started(trig.kind)
                if count > trig.started:
                    trig.started, trig.last_progress = count, now
                if count >= n:
                    trig.all_started_s = now - trig.spawned
                    note(f"  {trig.kind}: all {n:,} started in {trig.all_started_s:.0f} s")
                    continue
                quiet = now - trig.last_progress
                if quiet >= opts.stall_seconds and self.idle(trig, min(opts.stall_seconds, 60.0)):
                    trig.stalled = self.dump_stall(trig, quiet)
                    note(
                        f"  {trig.kind}: STALLED at {trig.started:,}/{n:,} started; "
                        f"dumps in {opts.out / trig.stalled['dir']}"
                    )
                    kill_group(trig.popen)
                elif now - trig.spawned > timeout:
                    trig.failed = f"not all started after {timeout:.0f} s ({trig.started:,}/{n:,})"
                    note(f"  {trig.kind}: {trig.failed}")

    @staticmethod
    def idle(trig: Triggerer, span: float) -> bool:
        """Neither process used CPU over the last ``span`` seconds."""
        if len(trig.samples) < 2:
            return False
        last = trig.samples[-1]
        first = next((s for s in trig.samples if last.at - s.at <= span), trig.samples[0])
        elapsed = last.at - first.at
        if elapsed < span * 0.8:
            return False
        return (
            last.supervisor - first.supervisor < IDLE_SHARE * elapsed
            and last.runner - first.runner < IDLE_SHARE * elapsed
        )

    def dump_stall(self, trig: Triggerer, quiet: float) -> dict[str, Any]:
        """py-spy dumps, wait channels and socket queues of both processes of a stalled triggerer."""
        where = self.opts.out / "stalls" / f"{time.strftime('%Y%m%d-%H%M%S')}-{trig.kind}-{trig.n}"
        where.mkdir(parents=True, exist_ok=True)
        spy = py_spy()
        pids = {"supervisor": trig.pid, **{f"runner-{i}": p for i, p in enumerate(runner_pids(trig.pid))}}
        for name, pid in pids.items():
            # the plain stack first: attaching interrupts a blocked write, which may then return
            for flag, suffix in (([], "stack"), (["--locals"], "locals")):
                out = subprocess.run(
                    [spy, "dump", "--pid", str(pid), *flag],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                (where / f"{name}-{pid}.{suffix}.txt").write_text(out.stdout + out.stderr, encoding="utf-8")
            with contextlib.suppress(OSError):
                wchan = Path(f"/proc/{pid}/wchan").read_text(encoding="utf-8")
                (where / f"{name}-{pid}.wchan.txt").write_text(wchan + "\n", encoding="utf-8")
        ss = subprocess.run(["ss", "-xpn"], capture_output=True, text=True, check=False)
        mine = [line for line in ss.stdout.splitlines() if any(f"pid={p}," in line for p in pids.values())]
        (where / "unix-sockets.txt").write_text("\n".join(mine) + "\n", encoding="utf-8")
        shutil.copy(trig.log_path, where / "triggerer.log")
        return {
            "dir": str(where.relative_to(self.opts.out)),
            "started": trig.started,
            "n": trig.n,
            "quiet_s": round(quiet, 1),
            "pids": pids,
            "after_s": round(time.monotonic() - trig.spawned, 1),
        }

    def measure(self, n: int) -> dict[str, Any]:
        """The steady window: every kind at once."""
        live = {k: t for k, t in self.triggerers.items() if t.all_started_s is not None}
        for kind, trig in self.triggerers.items():
            if kind not in live:
                note(f"  {kind}: not measured ({'stalled' if trig.stalled else trig.failed})")
        if not live:
            return {}
        warn0 = {k: count_blocked(t.log_path) for k, t in live.items()}
        t0 = {k: tree(t.pid) for k, t in live.items()}
        polls0 = {k: self.servers[k].requests() for k in live if k in self.servers}
        load0 = loadavg()
        profilers = self.start_profiles(live, n) if self.opts.profile else {}
        time.sleep(self.opts.window)
        t1 = {k: tree(t.pid) for k, t in live.items()}
        polls1 = {k: self.servers[k].requests() for k in live if k in self.servers}
        load1 = loadavg()
        profiles = self.finish_profiles(profilers)
        out: dict[str, Any] = {}
        for kind, trig in live.items():
            a, b = t0[kind], t1[kind]
            if a is None or b is None:
                continue
            elapsed = b.at - a.at
            polls = polls1.get(kind, 0) - polls0.get(kind, 0) if kind in polls0 else None
            cpu = b.total - a.total
            expected = trig.n * elapsed / self.opts.interval if kind in POLLING else None
            out[kind] = {
                "window_s": elapsed,
                "expected_polls": expected,
                "cpu_share": cpu / elapsed,
                "supervisor_share": (b.supervisor - a.supervisor) / elapsed,
                "runner_share": (b.runner - a.runner) / elapsed,
                "polls": polls,
                "polls_per_s": polls / elapsed if polls is not None else None,
                "cpu_us_per_poll": cpu / polls * 1e6 if polls else None,
                "runner_us_per_poll": (b.runner - a.runner) / polls * 1e6 if polls else None,
                "runner_rss": b.runner_rss,
                "supervisor_rss": b.supervisor_rss,
                "blocked_warnings_window": count_blocked(trig.log_path) - warn0[kind],
                "load_before": load0,
                "load_after": load1,
            }
            if kind in profiles:
                out[kind]["profile"] = profiles[kind]
        return out

    # ---- py-spy record of the runner during the window (--profile)

    def start_profiles(
        self, live: Mapping[str, Triggerer], n: int
    ) -> dict[str, tuple[subprocess.Popen[bytes], Path]]:
        spy = py_spy()
        procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        where = self.opts.out / "profiles"
        where.mkdir(parents=True, exist_ok=True)
        for kind, trig in live.items():
            if kind not in POLLING:
                continue
            runners = runner_pids(trig.pid)
            if not runners:
                continue
            path = where / f"runner-{kind}-{n}.collapsed.txt"
            procs[kind] = (
                subprocess.Popen(
                    [
                        spy,
                        "record",
                        "--pid",
                        str(runners[0]),
                        "--duration",
                        str(int(self.opts.window)),
                        "--rate",
                        "250",
                        "--format",
                        "raw",
                        "--output",
                        str(path),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
                path,
            )
        return procs

    @staticmethod
    def finish_profiles(procs: Mapping[str, tuple[subprocess.Popen[bytes], Path]]) -> dict[str, str]:
        out = {}
        for kind, (proc, path) in procs.items():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=60)
            if proc.poll() is None:
                proc.kill()
            out[kind] = str(path)
        return out


def admin(sql: str) -> None:
    """One statement on the server's ``postgres`` database, outside a transaction."""
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **PG)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def count_blocked(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if BLOCKED.encode() in line)
    except OSError:
        return 0


# --------------------------------------------------------------------------- seeding (a child)


def seed_main(spec: Mapping[str, Any]) -> None:
    """Runs with the deployment's environment: replace every DAG run, task instance, trigger and
    job with ``n`` deferred waits per kind, each with its own trigger row in queue ``bench_<kind>``."""
    from datetime import datetime, timedelta

    from airflow.models.dag_version import DagVersion
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import insert, select, text

    try:
        from uuid6 import uuid7
    except ImportError:  # pragma: no cover
        from uuid import uuid4 as uuid7

    n, tag = int(spec["n"]), str(spec["tag"])
    now = datetime.now(UTC)
    far = now + timedelta(days=3650)
    with create_session() as session:
        session.execute(text("TRUNCATE trigger, task_instance, dag_run, job RESTART IDENTITY CASCADE"))
        session.commit()
        for kind, extra in spec["kinds"].items():
            dag_id = f"bench_{kind}"
            version = session.scalar(
                select(DagVersion)
                .where(DagVersion.dag_id == dag_id)
                .order_by(DagVersion.version_number.desc())
            )
            if version is None:
                raise RuntimeError(f"{dag_id} was not serialized")
            run_id = f"bench__{tag}"
            session.execute(
                insert(DagRun.__table__).values(
                    dag_id=dag_id,
                    run_id=run_id,
                    run_type="manual",
                    run_after=now,
                    start_date=now,
                    state="running",
                    created_dag_version_id=version.id,
                    conf={},
                )
            )
            triggers = []
            for i in range(n):
                if kind == "datetime":
                    kwargs: dict[str, Any] = {"moment": far, "end_from_trigger": False}
                elif kind == "floor":
                    kwargs = {
                        "host": "127.0.0.1",
                        "port": extra["port"],
                        "job_id": f"70ecdaec-bf21-{i:06d}",
                        "poll_interval": spec["interval"],
                    }
                else:
                    kwargs = {
                        "service": "dataworks",
                        "ids": {"job_id": f"70ecdaec-bf21-{i:06d}"},
                        "aliyun_conn_id": CONN_ID,
                        "poll_interval": spec["interval"],
                        "end_time": None,
                        "max_consecutive_failures": 5,
                        "initial_delay": 0.0,
                        "success_states": [],
                        "failure_states": [],
                        "partial_success_ok": False,
                    }
                triggers.append(Trigger(CLASSPATHS[kind], kwargs, created_date=now, queue=dag_id))
            session.add_all(triggers)
            session.flush()
            rows = [
                {
                    "id": uuid7(),
                    "task_id": "wait",
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "map_index": i,
                    "try_number": 1,
                    "max_tries": 0,
                    "state": "deferred",
                    "pool": "default_pool",
                    "pool_slots": 1,
                    "queue": "default",
                    "priority_weight": 1,
                    "operator": "BaseSensorOperator",
                    "hostname": "",
                    "start_date": now,
                    "trigger_id": trig.id,
                    "next_method": "execute_complete",
                    "dag_version_id": version.id,
                }
                for i, trig in enumerate(triggers)
            ]
            for start in range(0, len(rows), 2000):
                session.execute(insert(TaskInstance.__table__), rows[start : start + 2000])
            session.commit()
    print(json.dumps({"seeded": n, "kinds": list(spec["kinds"])}))


# --------------------------------------------------------------------------- the run


def run(opts: Options) -> dict[str, Any]:
    from bench.run import machine, utc

    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="aliyun-bench-triggerer-"))
    results: dict[str, Any] = {
        "options": {k: v for k, v in asdict(opts).items() if k != "out"},  # no machine paths
        "machine": machine(),
        "started": utc(started),
        "load_before": loadavg(),
        "rounds": [],
        "stalls": [],
    }
    keep = False
    try:
        with Deployment(opts, workdir) as dep:
            for rep in range(opts.repeat):
                for n in opts.waits:
                    note(f"round {rep + 1}/{opts.repeat}: {n:,} waits per kind ({', '.join(opts.kinds)})")
                    dep.seed(n, f"{rep}_{n}")
                    dep.start_triggerers(n)
                    try:
                        dep.wait_started(n)
                        live = [t for t in dep.triggerers.values() if t.all_started_s is not None]
                        if live:
                            latest = max(t.spawned + (t.all_started_s or 0) for t in live)
                            wait = latest + opts.interval + opts.settle - time.monotonic()
                            if wait > 0:
                                note(f"  one poll interval after the last start: {wait:.0f} s")
                                time.sleep(wait)
                            note(f"  measuring {opts.window:.0f} s")
                        window = dep.measure(n)
                    finally:
                        dep.stop_triggerers()
                    round_: dict[str, Any] = {"repeat": rep, "n": n, "kinds": {}}
                    for kind, trig in dep.triggerers.items():
                        entry: dict[str, Any] = {
                            "started": trig.started,
                            "all_started_s": trig.all_started_s,
                            "blocked_warnings": count_blocked(trig.log_path),
                            "stalled": trig.stalled,
                            "failed": trig.failed,
                            **window.get(kind, {}),
                        }
                        round_["kinds"][kind] = entry
                        if trig.stalled:
                            results["stalls"].append({"repeat": rep, "kind": kind, **trig.stalled})
                            with contextlib.suppress(OSError):  # the stalled triggers' own logs
                                shutil.copytree(
                                    dep.logs / f"dag_id=bench_{kind}",
                                    opts.out / trig.stalled["dir"] / "trigger-logs",
                                )
                        if trig.stalled or trig.failed:
                            keep = True
                        polls, expected = entry.get("polls"), entry.get("expected_polls")
                        if polls is not None and expected and polls < expected / 2:
                            note(f"  {kind}: only {polls:,} polls in the window, {expected:,.0f} expected")
                            entry["few_polls"] = True
                            keep = True
                    results["rounds"].append(round_)
                    note("  " + one_line(round_))
                    dep.triggerers.clear()
    except BaseException:
        keep = True
        print(f"[triggerer] failed or interrupted; logs kept in {workdir}", file=sys.stderr)
        raise
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif workdir.exists():
            note(f"logs kept in {workdir}")
    results["load_after"] = loadavg()
    results["seconds"] = time.time() - started
    results["summary"] = summarize(results)
    return results


def one_line(round_: Mapping[str, Any]) -> str:
    parts = []
    for kind, e in round_["kinds"].items():
        if e.get("cpu_share") is None:
            parts.append(f"{kind}: {'STALLED' if e.get('stalled') else e.get('failed') or '-'}")
            continue
        per = f", {e['cpu_us_per_poll']:.0f} us/poll" if e.get("cpu_us_per_poll") else ""
        parts.append(
            f"{kind}: {e['cpu_share'] * 100:.1f}% (runner {e['runner_share'] * 100:.1f}%){per}, "
            f"started in {e['all_started_s']:.0f} s"
        )
    return "; ".join(parts)


# --------------------------------------------------------------------------- summary


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _ratio(rounds: list[Mapping[str, Any]], kind: str, key: str, other: str) -> float | None:
    """Median over the rounds of ``kind``'s figure over ``other``'s in the same round."""
    ratios = []
    for r in rounds:
        a, b = r["kinds"].get(kind, {}).get(key), r["kinds"].get(other, {}).get(key)
        if a is not None and b:
            ratios.append(a / b)
    return _median(ratios)


def _net_per_poll(rounds: list[Mapping[str, Any]], kind: str, key: str) -> float | None:
    """CPU per poll (µs) above the no-I/O baseline kind of the same round."""
    values = []
    for r in rounds:
        e, base = r["kinds"].get(kind, {}), r["kinds"].get("datetime", {})
        if e.get("polls") and e.get(key) is not None and base.get(key) is not None:
            values.append((e[key] - base[key]) * e["window_s"] / e["polls"] * 1e6)
    return _median(values)


def _rss_over_baseline(rounds: list[Mapping[str, Any]], kind: str, n: int) -> float | None:
    values = []
    for r in rounds:
        e, base = r["kinds"].get(kind, {}), r["kinds"].get("datetime", {})
        if e.get("runner_rss") and base.get("runner_rss"):
            values.append((e["runner_rss"] - base["runner_rss"]) / n)
    return _median(values)


def _kind_row(rounds: list[Mapping[str, Any]], kind: str, n: int) -> dict[str, Any]:
    entries = [r["kinds"][kind] for r in rounds if kind in r["kinds"]]

    def med(key: str) -> float | None:
        return _median([e[key] for e in entries if e.get(key) is not None])

    return {
        "runs": len(entries),
        "stalls": sum(1 for e in entries if e.get("stalled")),
        "cpu_share": med("cpu_share"),
        "runner_share": med("runner_share"),
        "supervisor_share": med("supervisor_share"),
        "cpu_us_per_poll": med("cpu_us_per_poll"),
        "runner_us_per_poll": med("runner_us_per_poll"),
        "net_us_per_poll": _net_per_poll(rounds, kind, "cpu_share"),
        "runner_net_us_per_poll": _net_per_poll(rounds, kind, "runner_share"),
        "runner_rss": med("runner_rss"),
        "rss_per_wait_over_baseline": _rss_over_baseline(rounds, kind, n) if kind != "datetime" else None,
        "all_started_s": med("all_started_s"),
        "blocked_warnings": med("blocked_warnings"),
        "blocked_warnings_window": med("blocked_warnings_window"),
        "over_floor": _ratio(rounds, kind, "cpu_share", "floor") if kind != "floor" else None,
        "runner_over_floor": _ratio(rounds, kind, "runner_share", "floor") if kind != "floor" else None,
        "load": _median([(e.get("load_before") or [None])[0] for e in entries]),
    }


def summarize(results: Mapping[str, Any]) -> dict[str, Any]:
    """Per N and kind: medians over the repeats; ratios to the floor taken within each round."""
    by_n: dict[int, list[Mapping[str, Any]]] = {}
    for r in results["rounds"]:
        by_n.setdefault(int(r["n"]), []).append(r)
    table: dict[str, Any] = {}
    for n, rounds in sorted(by_n.items()):
        kinds = sorted({k for r in rounds for k in r["kinds"]}, key=KINDS.index)
        table[str(n)] = {kind: _kind_row(rounds, kind, n) for kind in kinds}
    sizes = sorted(by_n)
    slopes: dict[str, Any] = {}
    if len(sizes) >= 2:
        lo, hi = str(sizes[0]), str(sizes[-1])
        for kind in KINDS:
            a, b = table[lo].get(kind, {}).get("runner_rss"), table[hi].get(kind, {}).get("runner_rss")
            if a and b:
                slopes[kind] = (b - a) / (sizes[-1] - sizes[0])
    return {"table": table, "rss_slope_per_wait": slopes}


# --------------------------------------------------------------------------- report


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _num(v: float | None, unit: str = "") -> str:
    return "-" if v is None else f"{v:,.0f}{unit}"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _kb(v: float | None) -> str:
    return "-" if v is None else f"{v / 1000:.1f} KB"


def render_section(results: Mapping[str, Any], level: int = 2) -> str:
    """The ``RESULTS.md`` section of a ``python -m bench triggerer`` run."""
    h = "#" * level
    opts = results["options"]
    summary = results["summary"]
    lines = [
        f"{h} A real `airflow triggerer` holding N deferred waits",
        "",
        f"`python -m bench triggerer --waits {','.join(map(str, opts['waits']))} --repeat {opts['repeat']}` on "
        f"{results['started']}"
        + ("".join(f", `{k}={v}`" for k, v in (opts.get("env") or {}).items()))
        + f", in {results['seconds'] / 60:.1f} min; load average (1 min) "
        f"{_load(results.get('load_before'))} before, {_load(results.get('load_after'))} after. "
        "One `airflow triggerer` per kind (Airflow "
        f"{results['machine']['versions'].get('apache-airflow', '?')}, PostgreSQL), all running at the same "
        f"time; the polling kinds poll every {opts['interval']:g} s, each against a fixed-response server of "
        f"its own. CPU of the triggerer's process tree (supervisor + runner) as a share of one core over a "
        f"{opts['window']:g} s window taken once every trigger started and one whole poll interval passed; "
        "medians over the repeats, ratios taken within each round. *Per poll*: tree CPU / polls served; "
        "*net*: the same above the `datetime` kind's CPU (the no-I/O baseline: what the triggerer costs "
        "with nothing to poll). RSS per wait: the runner's RSS above the baseline kind's, / N.",
        "",
        "| N | kind | CPU, tree | runner | supervisor | / floor (tree, runner) | per poll | net per poll "
        "| runner net per poll | RSS/wait over baseline | all started | blocked warnings | stalls |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, row in summary["table"].items():
        for kind, e in row.items():
            ratio = "-" if kind == "floor" else f"{_x(e['over_floor'])}, {_x(e['runner_over_floor'])}"
            lines.append(
                f"| {int(n):,} | {kind} | {_pct(e['cpu_share'])} | {_pct(e['runner_share'])} | "
                f"{_pct(e['supervisor_share'])} | {ratio} | {_num(e['cpu_us_per_poll'], ' µs')} | "
                f"{_num(e['net_us_per_poll'], ' µs')} | {_num(e['runner_net_us_per_poll'], ' µs')} | "
                f"{_kb(e['rss_per_wait_over_baseline'])} | {_num(e['all_started_s'], ' s')} | "
                f"{_num(e['blocked_warnings'])} | {e['stalls']}/{e['runs']} |"
            )
    slopes = summary.get("rss_slope_per_wait") or {}
    if slopes:
        lines += [
            "",
            "Runner RSS slope between the two sizes, per wait: "
            + ", ".join(f"{k} {_kb(v)}" for k, v in slopes.items())
            + ".",
        ]
    few = [
        f"{k} at {r['n']:,}" for r in results["rounds"] for k, e in r["kinds"].items() if e.get("few_polls")
    ]
    if few:
        lines += [
            "",
            "**Fewer than half the expected polls in the window** (figures not valid): " + ", ".join(few),
        ]
    stalls = results.get("stalls") or []
    lines += [
        "",
        f"Stalls (no trigger started for {opts['stall_seconds']:g} s while some were not, neither process "
        f"using CPU): {len(stalls)} in {len(results['rounds'])} rounds"
        + (
            ": " + "; ".join(f"{s['kind']} at {s['started']:,}/{s['n']:,} started" for s in stalls)
            if stalls
            else "."
        ),
        "",
    ]
    return "\n".join(lines)


def _load(v: Any) -> str:
    return "-" if not v else f"{v[0]:.2f}"


def write(results: dict[str, Any], out: Path) -> None:
    """Into ``out``: the ``triggerer`` key of ``results.json`` (the other benchmarks' figures kept)
    and ``RESULTS.md`` rendered again (only this section when there are no other figures)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    data: dict[str, Any] = {}
    if path.exists():
        with contextlib.suppress(ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
    data["triggerer"] = results
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    if "poll" in data:
        from bench.report import render

        text = render(data)
    else:
        text = "# Benchmark results\n\n" + render_section(results)
    (out / "RESULTS.md").write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- main


def _sizes(text: str) -> list[int]:
    return [int(s.replace("_", "")) for s in re.split(r"[,\s]+", text.strip()) if s]


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_seed":
        seed_main(json.loads(argv[1]))
        return
    parser = argparse.ArgumentParser(prog="python -m bench triggerer", description=__doc__.splitlines()[0])
    parser.add_argument("--waits", type=_sizes, default=[1000, 5000], help="sizes, e.g. 1000,5000")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every size")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"a subset of {','.join(KINDS)}")
    parser.add_argument("--interval", type=float, default=30.0, help="poll interval of the polling kinds (s)")
    parser.add_argument("--window", type=float, default=90.0, help="the measured window (s)")
    parser.add_argument("--stall-seconds", type=float, default=120.0, help="no start for this long: a stall")
    parser.add_argument("--start-timeout", type=float, default=None, help="give up starting after this (s)")
    parser.add_argument(
        "--select-per-loop", type=int, default=None, help="[triggerer] max_trigger_to_select_per_loop"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy record each polling runner in the window"
    )
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for every triggerer")
    parser.add_argument("--out", type=Path, default=HERE, help="where results.json and RESULTS.md go")
    parser.add_argument("--no-write", action="store_true", help="print the results, write nothing")
    args = parser.parse_args(argv)
    kinds = tuple(k for k in KINDS if k in {s.strip() for s in args.kinds.split(",")})
    if not kinds:
        parser.error(f"--kinds: one or more of {','.join(KINDS)}")
    opts = Options(
        waits=args.waits,
        repeat=args.repeat,
        kinds=kinds,
        interval=args.interval,
        window=args.window,
        stall_seconds=args.stall_seconds,
        start_timeout=args.start_timeout,
        select_per_loop=args.select_per_loop,
        profile=args.profile,
        env=dict(item.split("=", 1) for item in args.env),
        out=args.out,
        write=not args.no_write,
    )

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a background job may ignore it
        signal.signal(signum, interrupted)
    results = run(opts)
    if opts.write:
        write(results, opts.out)
        note(f"wrote {opts.out / 'RESULTS.md'} and {opts.out / 'results.json'}")
    print(render_section(results))
    print(json.dumps(results["summary"]))


if __name__ == "__main__":
    main()
