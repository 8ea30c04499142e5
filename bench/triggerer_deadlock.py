"""Minimal reproduction: Airflow 3's triggerer deadlocks between its supervisor and its runner.

Standalone on purpose (Airflow, psycopg2 and a PostgreSQL server on 127.0.0.1:5432, user
``postgres``, trust auth; nothing else): ``python bench/triggerer_deadlock.py``.

The triggerer's supervisor and its runner subprocess talk over two socketpairs, both written
with blocking calls:

- the supervisor answers each request of the runner with ``WatchedSubprocess.send_msg`` ->
  ``socket.sendall`` on the requests socket. The answer to ``TriggerStateChanges`` is a
  ``TriggerStateSync`` carrying every ``RunTrigger`` workload built since the runner last asked
  (up to ``[triggerer] max_trigger_to_select_per_loop`` per supervisor loop, each with its
  encrypted kwargs and task instance);
- the runner's event-loop thread writes every log line of every trigger to the logs socket with
  a blocking write (structlog ``BytesLogger`` on an unbuffered file of the socket).

While the supervisor is inside ``sendall`` it does not read the logs socket; while the runner's
loop is blocked writing a log line it does not read the requests socket. When an answer is larger
than the requests socket's buffer (about 200 KB on Linux) and the triggers log enough meanwhile to
fill the logs socket's buffer, both processes block in ``write`` for good: no trigger starts any
more, neither process uses CPU, and the supervisor's own heartbeat stops (the triggers move to
another triggerer, if there is one, after ``triggerer_health_check_threshold``).

This script builds the smallest setup that shows it: a throwaway database (``airflow db
migrate``), one DAG, N deferred task instances whose trigger (``ChattyTrigger``, written next to
the database) carries a few KB of kwargs and logs a line every ``--log-every`` seconds for its
first ``--log-for`` seconds, and one ``airflow triggerer``. It reports how many triggers started
over time and, when starting stops with both processes idle, the kernel wait channel of both
processes (``sock_alloc_send_pskb``: waiting for socket buffer space) and the queues of their
unix sockets. Exit status 1: deadlocked; 0: every trigger started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRIGGER_MODULE = '''\
import asyncio
from pathlib import Path

from airflow.triggers.base import BaseTrigger

STARTED = Path(__file__).parent / "started"


class ChattyTrigger(BaseTrigger):
    """Logs a line every `log_every` seconds for `log_for` seconds, then waits forever."""

    def __init__(self, padding: str = "", log_every: float = 0.05, log_for: float = 20.0):
        super().__init__()
        self.padding, self.log_every, self.log_for = padding, log_every, log_for

    def serialize(self):
        return ("chatty_trigger.ChattyTrigger",
                {"padding": self.padding, "log_every": self.log_every, "log_for": self.log_for})

    async def run(self):
        (STARTED / self.padding[:8]).touch()  # started, whether or not it may log
        loop = asyncio.get_running_loop()
        end = loop.time() + self.log_for
        while loop.time() < end:
            self.log.info("still waiting; nothing to report yet (a line as long as a real one is) %s",
                          "x" * 120)
            await asyncio.sleep(self.log_every)
        await asyncio.Event().wait()
        yield  # pragma: no cover
'''

DAG = """\
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("deadlock_repro", schedule=None):
    EmptyOperator(task_id="wait")
"""

SEED = """\
import json, sys
from datetime import datetime, timezone
from sqlalchemy import insert, select
from airflow.models.dag_version import DagVersion
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.trigger import Trigger
from airflow.utils.session import create_session
from uuid6 import uuid7

n, padding, every, during = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
now = datetime.now(timezone.utc)
with create_session() as session:
    version = session.scalar(select(DagVersion).where(DagVersion.dag_id == "deadlock_repro"))
    session.execute(insert(DagRun.__table__).values(
        dag_id="deadlock_repro", run_id="r1", run_type="manual", run_after=now, start_date=now,
        state="running", created_dag_version_id=version.id, conf={}))
    triggers = [Trigger("chatty_trigger.ChattyTrigger",
                        {"padding": f"{i:08d}" + "p" * padding, "log_every": every, "log_for": during},
                        created_date=now) for i in range(n)]
    session.add_all(triggers)
    session.flush()
    session.execute(insert(TaskInstance.__table__), [
        {"id": uuid7(), "task_id": "wait", "dag_id": "deadlock_repro", "run_id": "r1", "map_index": i,
         "try_number": 1, "max_tries": 0, "state": "deferred", "pool": "default_pool", "pool_slots": 1,
         "queue": "default", "priority_weight": 1, "hostname": "", "trigger_id": t.id,
         "next_method": "execute_complete", "dag_version_id": version.id}
        for i, t in enumerate(triggers)])
print(json.dumps({"seeded": n}))
"""


def started(home: Path) -> int:
    """Triggers that started (each touches a file named after it)."""
    return len(os.listdir(home / "started"))


def cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (from /proc)."""
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def evidence(pid: int) -> str:
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    lines = []
    for p, name in zip(pids, ("supervisor", "runner"), strict=False):
        with contextlib.suppress(OSError):
            lines.append(f"{name} (pid {p}) waits in: {Path(f'/proc/{p}/wchan').read_text()}")
    ss = subprocess.run(["ss", "-xpn"], capture_output=True, text=True, check=False).stdout
    lines += [ln for ln in ss.splitlines() if any(f"pid={p}," in ln for p in pids)]
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if Path(spy).exists():
        for p in pids:
            out = subprocess.run([spy, "dump", "--pid", str(p)], capture_output=True, text=True, check=False)
            lines.append(out.stdout)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=3000)
    parser.add_argument("--padding", type=int, default=3000, help="bytes of kwargs per trigger")
    parser.add_argument("--log-every", type=float, default=0.05)
    parser.add_argument("--log-for", type=float, default=20.0)
    parser.add_argument("--stuck-after", type=float, default=60.0, help="seconds without progress")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the triggerer (a workaround)"
    )
    args = parser.parse_args()

    import psycopg2
    from cryptography.fernet import Fernet

    home = Path(tempfile.mkdtemp(prefix="triggerer-deadlock-"))
    db = f"triggerer_deadlock_{secrets.token_hex(4)}"
    (home / "dags").mkdir()
    (home / "dags" / "deadlock_repro.py").write_text(DAG)
    (home / "chatty_trigger.py").write_text(TRIGGER_MODULE)
    (home / "started").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}",
        }
    )
    env.update(item.split("=", 1) for item in args.env)
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{db}"')
    triggerer: subprocess.Popen[bytes] | None = None
    try:
        for cmd in (["db", "migrate"], ["dags", "reserialize"]):
            subprocess.run(
                [sys.executable, "-m", "airflow", *cmd], env=env, cwd=home, check=True, capture_output=True
            )
        subprocess.run(
            [
                sys.executable,
                "-c",
                SEED,
                str(args.triggers),
                str(args.padding),
                str(args.log_every),
                str(args.log_for),
            ],
            env=env,
            cwd=home,
            check=True,
        )
        log = open(home / "triggerer.log", "wb")  # noqa: SIM115
        triggerer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow",
                "triggerer",
                "--skip-serve-logs",
                "--capacity",
                str(args.triggers + 10),
            ],
            env=env,
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        t0 = time.monotonic()
        last, last_change, last_cpu = -1, t0, (t0, cpu(triggerer.pid))
        while time.monotonic() - t0 < args.timeout:
            time.sleep(5)
            now = time.monotonic()
            count = started(home)
            if count != last:
                last, last_change = count, now
                print(json.dumps({"t": round(now - t0), "started": count}), flush=True)
            if count >= args.triggers:
                print("every trigger started: no deadlock this time")
                return 0
            if now - last_change > args.stuck_after:
                used = cpu(triggerer.pid) - last_cpu[1]
                if used < 0.01 * (now - last_cpu[0]):
                    print(
                        f"DEADLOCK: {count}/{args.triggers} started, no progress for {now - last_change:.0f} s,"
                    )
                    print(f"{used:.2f} CPU seconds in {now - last_cpu[0]:.0f} s in both processes\n")
                    print(evidence(triggerer.pid))
                    return 1
            if now - last_change <= args.stuck_after:
                last_cpu = (now, cpu(triggerer.pid))
        print("timed out without a deadlock")
        return 0
    finally:
        if triggerer is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(triggerer.pid, signal.SIGKILL)
            triggerer.wait()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
