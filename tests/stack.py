"""A real Airflow deployment on 127.0.0.1, started from the virtualenv's ``airflow`` CLI.

:class:`AirflowStack` is a context manager that brings up, in a throwaway ``AIRFLOW_HOME``:

- the package's emulator (``python -m airflow_aliyun_tasks.testing serve``, its own process, a
  free port),
- the metadata database: SQLite in the home, or a uniquely named PostgreSQL database on
  127.0.0.1:5432 (user ``postgres``), created here and dropped at the end,
- ``airflow db migrate``, then ``api-server``, ``scheduler`` (LocalExecutor), ``dag-processor``
  and N ``triggerer`` processes, each in its own process group with its output in
  ``<home>/component-logs/<name>.log``.

Every component gets the same environment: the execution API URL, one shared JWT secret, the
simple auth manager with everyone an admin, low triggerer health thresholds (so a dead
triggerer's triggers move within seconds), ``ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`` and the
``aliyun`` connections as ``AIRFLOW_CONN_*`` variables whose every endpoint is the emulator.
Nothing listens anywhere but 127.0.0.1 (the log servers of the scheduler and triggerers are not
started). Teardown kills every process group it started (SIGTERM, then SIGKILL), plus anything
those processes spawned into groups of their own, and drops the PostgreSQL database, also when
the test failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"

#: Connection extras that name an endpoint: all of them point at the emulator.
from airflow_aliyun_tasks.config import ENDPOINT_EXTRAS  # noqa: E402

#: Environment variables of the parent that must not reach the components.
_DROPPED_ENV_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "ALIBABA_CLOUD_", "_AIRFLOW")
_DROPPED_ENV = {"AIRFLOW_HOME", "AIRFLOW_CONFIG", "PYTEST_CURRENT_TEST"}


_EVENT_RE = re.compile(
    r"Received executor event with state (?P<state>\w+) for task instance TaskInstanceKey\("
    r"dag_id='(?P<dag_id>[^']+)', task_id='(?P<task_id>[^']+)', run_id='(?P<run_id>[^']+)', "
    r"try_number=(?P<try_number>\d+), map_index=(?P<map_index>-?\d+)\)"
)


class StackError(RuntimeError):
    """The deployment did not come up or did not reach an expected state (``status``: the HTTP
    status of the API call that failed, if one did)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def postgres_available(host: str = PG_HOST, port: int = PG_PORT) -> str | None:
    """``None`` when a PostgreSQL server accepts ``postgres`` on ``host:port``, else the reason."""
    try:
        import psycopg2
    except ImportError:
        return "psycopg2 is not installed (pip install psycopg2-binary)"
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg is not installed (Airflow's async engine on PostgreSQL needs it)"
    try:
        conn = psycopg2.connect(host=host, port=port, user=PG_USER, dbname="postgres", connect_timeout=3)
    except Exception as exc:
        return f"PostgreSQL is not reachable on {host}:{port} as {PG_USER}: {exc}".strip()
    conn.close()
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors of a component that is still starting or busy: retried by :func:`wait_until`."""
    from sqlalchemy.exc import OperationalError

    return (OSError, httpx.TransportError, OperationalError)


def wait_until(
    predicate: Callable[[], T], *, timeout: float, interval: float = 0.5, what: str = "condition"
) -> T:
    """Call ``predicate`` until it returns something truthy; return that. ``StackError`` after
    ``timeout`` seconds (a limit against hanging forever, not a measurement). Connection errors
    are retried; anything else (an ``AssertionError`` in the predicate) propagates at once."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    transient = _transient_errors()
    while True:
        try:
            value = predicate()
        except transient as exc:
            last_exc = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


def unwrap_serde(value: Any) -> Any:
    """Strip Airflow's serde/BaseSerialization envelopes (``{"__var": ..., "__type": ...}``,
    ``{"__data__": ..., "__classname__": ...}``) from JSON read back from the database."""
    if isinstance(value, dict):
        if "__var" in value and ("__type" in value or len(value) == 1):
            return unwrap_serde(value["__var"])
        if "__data__" in value and "__classname__" in value:
            return unwrap_serde(value["__data__"])
        return {k: unwrap_serde(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_serde(v) for v in value]
    return value


@dataclass
class Component:
    """One process the stack started (the leader of its own process group)."""

    name: str
    args: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    started_at: float = field(default_factory=time.time)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


class AirflowStack:
    """A real Airflow 3 deployment on 127.0.0.1; see the module docstring.

    :param dags_folder: the DAG files the dag-processor parses.
    :param database: ``"sqlite"`` or ``"postgres"``.
    :param triggerers: how many ``airflow triggerer`` processes to start.
    :param connections: called with the stack once its emulator runs (``emulator_url``, the
        AccessKey pair, :meth:`default_connection` and :meth:`emulator` are usable); returns
        ``{conn_id: connection dict}`` (``conn_type``, ``login``, ``password``, ``extra``),
        exported as ``AIRFLOW_CONN_<ID>`` JSON. Default: ``aliyun_default`` with the stack's
        AccessKey pair.
    :param bearer_tokens: PDS bearer tokens the emulator accepts.
    :param env: extra environment (``AIRFLOW__...`` settings) for every component.
    :param parallelism: ``[core] parallelism`` (LocalExecutor worker processes).
    """

    def __init__(
        self,
        *,
        dags_folder: Path,
        database: str = "sqlite",
        triggerers: int = 1,
        connections: Callable[[AirflowStack], Mapping[str, Mapping[str, Any]]] | None = None,
        bearer_tokens: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        parallelism: int = 8,
        name: str = "stack",
    ) -> None:
        if database not in ("sqlite", "postgres"):
            raise ValueError(f"database must be 'sqlite' or 'postgres', not {database!r}")
        self.dags_folder = Path(dags_folder).resolve()
        self.database = database
        self.n_triggerers = triggerers
        self._connections_factory = connections
        self.bearer_tokens = list(bearer_tokens)
        self.extra_env = dict(env or {})
        self.parallelism = parallelism
        self.name = name
        self.access_key_id = "LTAI5t" + secrets.token_hex(8)
        self.access_key_secret = secrets.token_urlsafe(24)
        self.fernet_key = ""
        self.home: Path = Path()
        self.api_port = 0
        self.emulator_url = ""
        self.db_name: str | None = None
        self.sql_alchemy_conn = ""
        self.connections: dict[str, dict[str, Any]] = {}
        self.env: dict[str, str] = {}
        self.components: dict[str, Component] = {}
        self.triggerers: list[Component | None] = []
        #: TriggererJob id of each triggerer process (same index as :attr:`triggerers`)
        self.triggerer_job_ids: list[int | None] = []
        self._retired: list[Component] = []
        self._engine: Any = None
        self._token: str | None = None
        self._http = httpx.Client(timeout=30.0, trust_env=False)
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> AirflowStack:
        try:
            self.start()
        except BaseException:
            self.print_log_tails()
            self.stop(failed=True)
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.print_log_tails()
        self.stop(failed=exc_type is not None)

    @property
    def venv_bin(self) -> Path:
        return Path(sys.executable).parent

    @property
    def component_logs(self) -> Path:
        return self.home / "component-logs"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def airflow_cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "airflow", *args]

    def start(self) -> None:
        t0 = time.monotonic()
        self.home = Path(tempfile.mkdtemp(prefix=f"aliyun-{self.name}-home-"))
        self.component_logs.mkdir()
        self._start_emulator()
        self._create_database()
        self._build_env()
        self._run(self.airflow_cmd("db", "migrate"), "db-migrate", timeout=600)
        self.timings["migrate_done"] = time.monotonic() - t0
        self._spawn("api-server", self.airflow_cmd("api-server", "-H", "127.0.0.1", "-p", str(self.api_port)))
        wait_until(self._api_healthy, timeout=180, what="the API server")
        self._spawn("scheduler", self.airflow_cmd("scheduler", "--skip-serve-logs"))
        self._spawn("dag-processor", self.airflow_cmd("dag-processor"))
        for _ in range(self.n_triggerers):
            self.start_triggerer()
        wait_until(
            lambda: self.health().get("scheduler", {}).get("status") == "healthy",
            timeout=180,
            what="a healthy scheduler",
        )
        self.timings["started"] = time.monotonic() - t0

    def stop(self, failed: bool = False) -> None:
        """Kill everything that was started (also what it spawned), drop the database, remove
        the home (kept when ``ALIYUN_STACK_KEEP_HOME`` is set, or ``ALIYUN_STACK_KEEP_FAILED``
        and the stack failed)."""
        procs = [c for c in [*self.components.values(), *self._retired] if c is not None]
        try:
            kill_process_groups(procs)
        finally:
            self._http.close()
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
            try:
                self._drop_database()
            finally:
                self._remove_home(failed)

    def _remove_home(self, failed: bool) -> None:
        if self.home != Path() and self.home.exists():
            if os.environ.get("ALIYUN_STACK_KEEP_HOME") or (
                failed and os.environ.get("ALIYUN_STACK_KEEP_FAILED")
            ):
                print(f"[stack] kept AIRFLOW_HOME {self.home}", file=sys.stderr)
            else:
                shutil.rmtree(self.home, ignore_errors=True)

    # ------------------------------------------------------------------ processes

    def _base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _DROPPED_ENV and not k.startswith(_DROPPED_ENV_PREFIXES)
        }
        env["PATH"] = f"{self.venv_bin}{os.pathsep}{env.get('PATH', os.defpath)}"
        env["PYTHONUNBUFFERED"] = "1"
        env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
        env["ALIBABA_CLOUD_CREDENTIALS_FILE"] = os.devnull
        env["ALIBABA_CLOUD_CONFIG_FILE"] = os.devnull
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        return env

    def _spawn(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> Component:
        log_path = self.component_logs / f"{name}.log"
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env if env is not None else self.env),
                cwd=self.home,
                start_new_session=True,  # its own session and process group
            )
        comp = Component(name, args, popen, log_path)
        self.components[name] = comp
        return comp

    def _run(self, args: list[str], name: str, timeout: float) -> None:
        log_path = self.component_logs / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.home,
                timeout=timeout,
                check=False,
            )
        if proc.returncode != 0:
            raise StackError(f"{' '.join(args[2:])} exited {proc.returncode}:\n{tail(log_path, 40)}")

    def _start_emulator(self) -> None:
        args = [
            sys.executable,
            "-m",
            "airflow_aliyun_tasks.testing",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            f"--access-key-id={self.access_key_id}",
            f"--access-key-secret={self.access_key_secret}",  # may start with "-"
        ]
        args += [f"--bearer-token={token}" for token in self.bearer_tokens]
        comp = self._spawn("emulator", args, env=self._base_env())

        def listening() -> str | None:
            if not comp.alive():
                raise StackError(f"the emulator exited:\n{tail(comp.log_path, 20)}")
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", comp.log_path.read_text())
            return match.group(1) if match else None

        self.emulator_url = wait_until(listening, timeout=60, interval=0.2, what="the emulator")

    def _create_database(self) -> None:
        if self.database == "sqlite":
            self.sql_alchemy_conn = f"sqlite:///{self.home / 'airflow.db'}"
            return
        import psycopg2

        self.db_name = f"aliyun_tasks_{time.strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(4)}"
        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.db_name}"')
        finally:
            conn.close()
        self.sql_alchemy_conn = f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.db_name}"

    def _drop_database(self) -> None:
        if not self.db_name:
            return
        import psycopg2

        name, self.db_name = self.db_name, None
        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def default_connection(self, **extra: Any) -> dict[str, Any]:
        """An ``aliyun`` connection with the stack's AccessKey pair, every endpoint the emulator."""
        base: dict[str, Any] = {"region_id": "cn-hangzhou", "pds_domain_id": "bj1"}
        base.update({key: self.emulator_url for key in ENDPOINT_EXTRAS})
        base.update(extra)
        return {
            "conn_type": "aliyun",
            "login": self.access_key_id,
            "password": self.access_key_secret,
            "extra": {k: v for k, v in base.items() if v is not None},
        }

    def _build_env(self) -> None:
        from cryptography.fernet import Fernet

        self.api_port = free_port()
        self.fernet_key = Fernet.generate_key().decode()
        if self._connections_factory is not None:
            self.connections = {k: dict(v) for k, v in self._connections_factory(self).items()}
        else:
            self.connections = {"aliyun_default": self.default_connection()}
        env = self._base_env()
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "1024",
                "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "32",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                # a busy CI machine may keep hundreds of tasks queued for a while
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "3600",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            }
        )
        for conn_id, conn in self.connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
        env.update(self.extra_env)
        self.env = env

    def start_triggerer(self, index: int | None = None) -> int:
        """Start a triggerer (a new one, or again in slot ``index``); wait for its job row and
        return its TriggererJob id."""
        if index is None:
            index = len(self.triggerers)
            self.triggerers.append(None)
            self.triggerer_job_ids.append(None)
        known = {row["id"] for row in self.triggerer_jobs()}
        name = f"triggerer-{index}"
        old = self.components.get(name)
        if old is not None:
            self._retired.append(old)
            old_log = old.log_path
            old_log.rename(old_log.with_name(f"{name}.{int(old.started_at)}.log"))
        comp = self._spawn(name, self.airflow_cmd("triggerer", "--skip-serve-logs"))
        self.triggerers[index] = comp

        def new_job() -> int | None:
            if not comp.alive():
                raise StackError(f"{name} exited:\n{tail(comp.log_path, 30)}")
            fresh = [
                row["id"]
                for row in self.triggerer_jobs()
                if row["id"] not in known and row["state"] == "running"
            ]
            return min(fresh) if fresh else None

        job_id = wait_until(new_job, timeout=120, what=f"{name}'s job row")
        self.triggerer_job_ids[index] = job_id
        return job_id

    def kill_triggerer(self, index: int) -> float:
        """SIGKILL triggerer ``index``'s whole process group (it has a runner child); return the
        time of the kill (``time.time()``)."""
        comp = self.triggerers[index]
        if comp is None:
            raise StackError(f"triggerer {index} is not running")
        descendants = _descendants(comp.pid)
        killed_at = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(comp.pid, signal.SIGKILL)
        for proc in descendants:
            with contextlib.suppress(Exception):
                proc.kill()
        comp.popen.wait(timeout=30)
        self.triggerers[index] = None
        self._retired.append(comp)
        del self.components[comp.name]
        return killed_at

    def kill_task_process(self, pid: Any) -> None:
        """SIGKILL the process running a task instance (the ``pid`` of its row), after checking
        that it is a live process this stack started: a row's pid can be stale, and process ids
        come round again quickly on a machine whose ``pid_max`` is small (32,768), so a bare
        ``os.kill`` could hit an unrelated process (another component, a database backend)."""
        import psutil

        try:
            proc = psutil.Process(int(pid))
            ancestors = {p.pid for p in proc.parents()}
        except psutil.Error as exc:
            raise StackError(f"the task's process {pid} is gone: {exc}") from None
        ours = {c.pid for c in self.components.values() if c is not None and c.alive()}
        if not ancestors & ours:
            raise StackError(
                f"process {pid} ({' '.join(proc.cmdline())[:200]}) was not started by this stack"
            )
        proc.kill()  # psutil checks that the pid was not reused since Process() above

    def stop_triggerer_gracefully(self, index: int, timeout: float = 120) -> int:
        """SIGTERM triggerer ``index`` (its main process, which stops its runner) and wait for it
        to exit; return its exit code."""
        comp = self.triggerers[index]
        if comp is None:
            raise StackError(f"triggerer {index} is not running")
        comp.popen.send_signal(signal.SIGTERM)
        try:
            code = comp.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"{comp.name} did not exit within {timeout:.0f} s of SIGTERM") from exc
        self.triggerers[index] = None
        return code

    def restart_triggerer(self, index: int) -> tuple[int, int]:
        """Graceful restart: SIGTERM, wait for exit, start again. Returns (exit code, new job id)."""
        code = self.stop_triggerer_gracefully(index)
        return code, self.start_triggerer(index)

    # ------------------------------------------------------------------ REST API

    def _api_healthy(self) -> bool:
        api = self.components.get("api-server")
        if api is not None and not api.alive():
            raise StackError(f"the API server exited:\n{tail(api.log_path, 40)}")
        return self._http.get(f"{self.api_url}/api/v2/monitor/health").status_code == 200

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._http.get(f"{self.api_url}/api/v2/monitor/health").json()
        return result

    def token(self, refresh: bool = False) -> str:
        if self._token is None or refresh:
            resp = self._http.get(f"{self.api_url}/auth/token")
            resp.raise_for_status()
            self._token = str(resp.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the public REST API (``/api/v2/...``) with a bearer token; return the JSON."""
        url = f"{self.api_url}/api/v2/{path.lstrip('/')}"
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self.token(refresh=attempt > 0)}"}
            resp = self._http.request(method, url, headers=headers, **kwargs)
            if resp.status_code != 401:
                break
        if resp.status_code >= 400:
            text = f"{method} {path}: HTTP {resp.status_code}: {resp.text[:500]}"
            if resp.status_code >= 500:  # the server's own account of it, for the next reader
                text += "\n--- the api-server's log, last lines:\n" + tail(
                    self.component_logs / "api-server.log", 60
                )
            raise StackError(text, status=resp.status_code)
        return resp.json() if resp.content else None

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 240) -> None:
        """Wait until the dag-processor has serialized every DAG in ``dag_ids``."""
        wanted = set(dag_ids)

        def parsed() -> bool:
            errors = self.api("GET", "importErrors").get("import_errors", [])
            if errors:
                raise StackError(f"DAG import errors: {errors}")
            known = {d["dag_id"] for d in self.api("GET", "dags", params={"limit": 100})["dags"]}
            return wanted <= known

        wait_until(parsed, timeout=timeout, interval=1.0, what=f"DAGs {sorted(wanted)} to be parsed")

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"dags/{dag_id}", json={"is_paused": False})

    def trigger_dag(self, dag_id: str, run_id: str, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Create a DAG run through the REST API. Airflow 3.2.2's API server once answered this
        POST with a bare HTTP 500 in CI (it did not happen again in reruns): after a 5xx, the run
        is looked up, and the POST sent once more if the run does not exist."""
        body = {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf or {})}
        try:
            result: dict[str, Any] = self.api("POST", f"dags/{dag_id}/dagRuns", json=body)
        except StackError as exc:
            if exc.status is None or exc.status < 500:
                raise
            print(f"[stack] {exc}", file=sys.stderr)  # in the test's captured output
            time.sleep(2)
            try:
                result = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")
            except StackError:
                result = self.api("POST", f"dags/{dag_id}/dagRuns", json=body)
        return result

    # ------------------------------------------------------------------ scheduler log

    def executor_events_seen(self) -> Counter[tuple[str, str, str, int]]:
        """How many executor events (worker exits) the scheduler has received per task instance
        (``(dag_id, run_id, task_id, map_index)``), read from the scheduler's log.

        Airflow 3.3.2 fails a deferred task whose trigger fires before the scheduler has
        received the executor event of the worker's exit after ``defer()``, when the task is
        already queued again (apache/airflow#67287). Tests that control when triggers fire wait
        until every deferral's event was received.
        """
        comp = self.components.get("scheduler")
        seen: Counter[tuple[str, str, str, int]] = Counter()
        if comp is None:
            return seen
        for match in _EVENT_RE.finditer(comp.log_path.read_text(errors="replace")):
            seen[(match["dag_id"], match["run_id"], match["task_id"], int(match["map_index"]))] += 1
        return seen

    def deferral_exits_seen(self) -> set[tuple[str, str, str, int]]:
        """Task instances for which the scheduler has received a worker's exit event (for a task
        that deferred once: the exit after ``defer()``). A task started in the triggerer
        (``start_from_trigger``) has none until a worker runs it."""
        return set(self.executor_events_seen())

    # ------------------------------------------------------------------ the metadata database

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            self._engine = create_engine(self.sql_alchemy_conn, poolclass=NullPool)
        return self._engine

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(text(sql), params)]

    def triggerer_jobs(self) -> list[dict[str, Any]]:
        return self.query(
            "SELECT id, state, latest_heartbeat, end_date FROM job WHERE job_type = 'TriggererJob' ORDER BY id"
        )

    def task_instances(self, dag_id: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT dag_id, run_id, task_id, map_index, state, try_number, trigger_id, next_method "
            "FROM task_instance"
        )
        if dag_id is not None:
            return self.query(sql + " WHERE dag_id = :dag_id", dag_id=dag_id)
        return self.query(sql)

    def triggers(self) -> list[dict[str, Any]]:
        """Trigger rows with their kwargs decoded (decrypted if Airflow encrypted them)."""
        rows = self.query("SELECT id, classpath, kwargs, triggerer_id, created_date FROM trigger ORDER BY id")
        for row in rows:
            row["kwargs_raw"] = row["kwargs"]
            row["kwargs"] = self.decode_trigger_kwargs(row["kwargs"])
        return rows

    def decode_trigger_kwargs(self, raw: Any) -> dict[str, Any]:
        text_value = raw.decode() if isinstance(raw, bytes) else str(raw)
        if not text_value.lstrip().startswith("{"):
            from cryptography.fernet import Fernet

            text_value = Fernet(self.fernet_key.encode()).decrypt(text_value.encode()).decode()
        decoded: dict[str, Any] = unwrap_serde(json.loads(text_value))
        return decoded

    def dump_tables(self, skip: Iterable[str] = ("connection",)) -> dict[str, str]:
        """Every table of the metadata database as text (``bytes`` columns also decompressed
        when they are zlib data, as compressed serialized DAGs are)."""
        from sqlalchemy import inspect, select, table

        skipped = set(skip)
        out: dict[str, str] = {}
        names = inspect(self.engine).get_table_names()
        with self.engine.connect() as conn:
            for name in names:
                if name in skipped:
                    continue
                parts: list[str] = []
                for row in conn.execute(select("*").select_from(table(name))):
                    for value in row:
                        parts.append(_as_text(value))
                out[name] = "\n".join(parts)
        return out

    # ------------------------------------------------------------------ the emulator

    def emulator(self, method: str, path: str, payload: Any = None) -> Any:
        """Call the emulator's control API (``/_emulator/<path>``)."""
        url = f"{self.emulator_url}/_emulator/{path.lstrip('/')}"
        resp = self._http.request(method, url, json=payload)
        if resp.status_code >= 400:
            raise StackError(f"emulator {method} {path}: HTTP {resp.status_code}: {resp.text[:500]}")
        return resp.json()

    def add_tasks(self, specs: list[dict[str, Any]]) -> None:
        """Script (or re-script) emulator tasks: ``[{"service": ..., ids..., "statuses": [...]}]``."""
        for start in range(0, len(specs), 200):
            self.emulator("POST", "tasks", specs[start : start + 200])

    def emulator_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.emulator("GET", "stats")
        return stats

    # ------------------------------------------------------------------ files

    def log_files(self) -> list[Path]:
        """Every file under the home except the SQLite database (dumped by :meth:`dump_tables`)."""
        skip = {self.home / f"airflow.db{suffix}" for suffix in ("", "-journal", "-wal", "-shm")}
        return sorted(p for p in self.home.rglob("*") if p.is_file() and p not in skip)

    def task_log_files(self) -> list[Path]:
        logs = self.home / "logs"
        return sorted(p for p in logs.rglob("*") if p.is_file()) if logs.exists() else []

    def task_log_text(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        """Every log file of one task instance (worker attempts and trigger logs), concatenated."""
        base = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            base = base / f"map_index={map_index}"
        if not base.is_dir():
            return ""
        return "\n".join(p.read_text(errors="replace") for p in sorted(base.glob("attempt=*")) if p.is_file())

    def explain(self, dag_id: str, tis: Iterable[Mapping[str, Any]], limit: int = 3, lines: int = 25) -> str:
        """The tail of the task logs of (up to ``limit`` of) ``tis``, for assertion messages."""
        parts = []
        for ti in list(tis)[:limit]:
            text_value = self.task_log_text(dag_id, ti["run_id"], ti["task_id"], ti["map_index"])
            last = "\n".join(text_value.splitlines()[-lines:])
            parts.append(f"--- {ti['run_id']}/{ti['task_id']}/{ti['map_index']} ({ti['state']}):\n{last}")
        scheduler = self.components.get("scheduler")
        if scheduler is not None:
            mismatches = [
                line
                for line in scheduler.log_path.read_text(errors="replace").splitlines()
                if any(
                    text in line
                    for text in (
                        "state attribute is",
                        "Marking task as FAILED",
                        "stuck in queued",
                        "without heartbeat",
                    )
                )
            ]
            parts.append("--- scheduler:\n" + "\n".join(mismatches[-limit * 2 :]))
        return "\n".join(parts)

    def xcom_return_values(self, dag_id: str) -> dict[tuple[str, str, int], Any]:
        """``{(run_id, task_id, map_index): value}`` of the ``return_value`` XComs of ``dag_id``."""
        rows = self.query(
            "SELECT run_id, task_id, map_index, value FROM xcom "
            "WHERE dag_id = :dag_id AND key = 'return_value'",
            dag_id=dag_id,
        )
        out: dict[tuple[str, str, int], Any] = {}
        for row in rows:
            value = row["value"]
            if isinstance(value, bytes | memoryview):
                value = bytes(value).decode()
            if isinstance(value, str):
                value = json.loads(value)
            out[(row["run_id"], row["task_id"], int(row["map_index"]))] = unwrap_serde(value)
        return out

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by each running component and what it spawned."""
        import psutil

        out: dict[str, float] = {}
        for name, comp in self.components.items():
            try:
                proc = psutil.Process(comp.pid)
                times = proc.cpu_times()
                total = times.user + times.system + times.children_user + times.children_system
                for child in proc.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        ct = child.cpu_times()
                        total += ct.user + ct.system + ct.children_user + ct.children_system
            except psutil.Error:
                continue
            out[name] = round(total, 1)
        return out

    def trigger_starts(self, triggerer_job_id: int) -> dict[str, tuple[float, float | None]]:
        """For every trigger log file a triggerer job wrote: (epoch time the trigger started,
        epoch time of its first logged poll or ``None``), keyed by the file's path."""
        from datetime import datetime

        out: dict[str, tuple[float, float | None]] = {}
        for path in (self.home / "logs").rglob(f"*.log.trigger.{triggerer_job_id}.log"):
            started: float | None = None
            polled: float | None = None
            for line in path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                    at = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
                except (ValueError, KeyError, TypeError):
                    continue
                event = str(record.get("event", ""))
                if started is None and event.startswith("trigger ") and event.endswith(" starting"):
                    started = at
                elif started is not None and polled is None and "raw status" in event:
                    polled = at
            if started is not None:
                out[str(path.relative_to(self.home))] = (started, polled)
        return out

    def print_log_tails(self, lines: int = 60) -> None:
        if self.home == Path() or not self.component_logs.exists():
            return
        for path in sorted(self.component_logs.glob("*.log")):
            print(f"\n===== {path.name} (last {lines} lines) =====\n{tail(path, lines)}", file=sys.stderr)


# ---------------------------------------------------------------------- helpers


def tail(path: Path, lines: int) -> str:
    try:
        text_value = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text_value.splitlines()[-lines:])


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        text_value = value.decode("latin-1")
        with contextlib.suppress(zlib.error):
            text_value += "\n" + zlib.decompress(value).decode("utf-8", "replace")
        return text_value
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _descendants(pid: int) -> list[Any]:
    import psutil

    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def kill_process_groups(components: Iterable[Component], grace: float = 20.0) -> None:
    """SIGTERM each component's process group, wait up to ``grace`` seconds, then SIGKILL the
    groups and every process they had spawned (task runners live in groups of their own)."""
    import psutil

    comps = list(components)
    descendants: list[Any] = []
    for comp in comps:
        if comp.alive():
            descendants.extend(_descendants(comp.pid))
    for comp in comps:
        if comp.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(comp.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for comp in comps:
        with contextlib.suppress(subprocess.TimeoutExpired):
            comp.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
    for comp in comps:  # what was spawned during the grace period
        if comp.alive():
            descendants.extend(_descendants(comp.pid))
    for comp in comps:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(comp.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            comp.popen.wait(timeout=10)
    for proc in descendants:
        with contextlib.suppress(psutil.Error):
            if proc.is_running():
                proc.kill()
    psutil.wait_procs([p for p in descendants if _running(p)], timeout=10)


def _running(proc: Any) -> bool:
    try:
        return bool(proc.is_running())
    except Exception:
        return False


def find_secrets(haystacks: Mapping[str, str], needles: Mapping[str, str]) -> dict[str, list[str]]:
    """``{needle name: [where it was found]}`` for every needle that occurs in a haystack."""
    found: dict[str, list[str]] = {name: [] for name in needles}
    for where, text_value in haystacks.items():
        for name, needle in needles.items():
            if needle and needle in text_value:
                found[name].append(where)
    return found


@contextlib.contextmanager
def timed(timings: dict[str, float], key: str) -> Iterator[None]:
    t0 = time.monotonic()
    try:
        yield
    finally:
        timings[key] = time.monotonic() - t0
