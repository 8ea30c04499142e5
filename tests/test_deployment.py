"""The package in a real deployment: PostgreSQL, LocalExecutor, separate scheduler,
dag-processor and API server, and two triggerers, all on 127.0.0.1.

Several DAG runs defer over 200 waits across the four services (plus waits whose connections use
STS credentials, a RAM role to assume and a PDS bearer token). The emulator keeps every task
running while the test

1. SIGKILLs the triggerer holding the most triggers: the other one takes them over (the
   failover time is measured from the kill until every moved trigger is polled again);
2. restarts the surviving triggerer gracefully: every wait resumes from its serialized kwargs,
   with the same trigger row and the same absolute deadline (``end_time``);
3. releases the tasks: each plays a scripted final lifecycle (success, failure, cancellation)
   and every task instance must end in exactly the expected state, with the final status in
   XCom or the reason in its log.

Then the secrets audit: every table of the metadata database (the connection table aside),
every component's log and every task log hold no AccessKey secret, no STS token and no bearer
token. The figures are printed and written to ``docs/reliability.md``.

Runs when PostgreSQL accepts ``postgres`` on 127.0.0.1:5432; the database is created under a
unique name and dropped at the end.
"""

from __future__ import annotations

import importlib.util
import re
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stack import AirflowStack, find_secrets, postgres_available, wait_until

ROOT = Path(__file__).resolve().parent.parent
DAGS = Path(__file__).parent / "deploy_dags"
DOCS = ROOT / "docs" / "reliability.md"
START_MARKER = "<!-- deployment:start -->"
END_MARKER = "<!-- deployment:end -->"


def _unreachable() -> str | None:
    reason = postgres_available()
    if reason is None or "not installed" in reason:
        return None  # a missing driver is an error, reported by the test itself
    return reason


_REASON = _unreachable()
pytestmark = [
    pytest.mark.airflow,
    pytest.mark.skipif(_REASON is not None, reason=" ".join(str(_REASON).split())),
]


def _dag_module() -> Any:
    spec = importlib.util.spec_from_file_location("deployment_dags", DAGS / "deployment_dags.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DAG_ID = "deploy_waits"
RUN_COUNT = 3
SERVICES = ("dlf", "dataworks", "mma", "pds")
#: the single waits with other credentials: task id -> (service, connection id)
CREDENTIAL_WAITS = {
    "dataworks_sts": ("dataworks", "aliyun_sts"),
    "dlf_role": ("dlf", "aliyun_role"),
    "mma_role": ("mma", "aliyun_role"),
    "pds_bearer": ("pds", "aliyun_bearer"),
}
ROLE_ARN = "acs:ram::1234567890123456:role/airflow-waits"
#: any security token this emulator mints ("CAIS" + base64 of 240 random bytes)
STS_TOKEN_RE = re.compile(r"CAIS[A-Za-z0-9+/=]{100,}")

RUNNING = {"dlf": ["Running"], "dataworks": ["Running"], "mma": ["DOING"], "pds": ["Running"]}
FINAL = {
    "success": {
        "dlf": ["Running", "Success"],
        "dataworks": ["Running", "Success"],
        "mma": ["DOING", "DONE"],
        "pds": ["Running", "Succeed"],
    },
    "failed": {
        "dlf": ["Running", "Failed"],
        "dataworks": ["Running", "Fail"],
        "mma": ["DOING", "FAILED"],
        "pds": ["Running", "Failed"],
    },
    # PDS documents no cancelled state; its PartialSucceed fails the sensor by default.
    "cancelled": {
        "dlf": ["Running", "KILLED"],
        "dataworks": ["Running", "Cancel"],
        "mma": ["DOING", "STOPPED"],
        "pds": ["Running", "PartialSucceed"],
    },
}


class Wait:
    """One deferred wait: its task instance, its emulator task and its scripted outcome."""

    def __init__(
        self, run_id: str, task_id: str, map_index: int, service: str, ids: dict[str, Any], outcome: str
    ) -> None:
        self.run_id = run_id
        self.task_id = task_id
        self.map_index = map_index
        self.service = service
        self.ids = ids  # as the emulator names them
        self.outcome = outcome
        self.failure_text = f"scripted failure of {run_id}/{task_id}/{map_index}"

    @property
    def ti_key(self) -> tuple[str, str, int]:
        return (self.run_id, self.task_id, self.map_index)

    @property
    def emulator_key(self) -> tuple[str, ...]:
        return (self.service, *(str(v) for v in self.ids.values()))

    def spec(self, statuses: list[str], **options: Any) -> dict[str, Any]:
        return {"service": self.service, **self.ids, "statuses": statuses, **options}

    def running_spec(self) -> dict[str, Any]:
        return self.spec(RUNNING[self.service])

    def final_spec(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.outcome == "failed":
            options = {
                "dlf": {"message": self.failure_text},
                "dataworks": {"error": self.failure_text},
                "mma": {"error_msg": self.failure_text},
                "pds": {"error_code": "InternalError", "error_message": self.failure_text},
            }[self.service]
        return self.spec(FINAL[self.outcome][self.service], **options)

    @property
    def expected_state(self) -> str:
        return "success" if self.outcome == "success" else "failed"

    def expected_log_text(self) -> str:
        if self.outcome == "failed":
            return self.failure_text
        if self.outcome == "cancelled":
            return "partially_succeeded" if self.service == "pds" else "Task was cancelled"
        return "succeeded"


def plan_waits(per_service: int) -> list[Wait]:
    waits: list[Wait] = []
    outcomes = ["success", "success", "success", "success", "failed", "cancelled"]
    for r in range(RUN_COUNT):
        run_id, prefix, source_id = f"run{r}", f"r{r}", 500 + r
        for i in range(per_service):
            outcome = outcomes[(i + r) % len(outcomes)]
            waits += [
                Wait(run_id, "dlf", i, "dlf", {"task_id": f"{prefix}-dlf-{i}"}, outcome),
                Wait(run_id, "dataworks", i, "dataworks", {"job_id": f"{prefix}-dw-{i}"}, outcome),
                Wait(run_id, "mma", i, "mma", {"source_id": source_id, "async_task_id": 1000 + i}, outcome),
                Wait(run_id, "pds", i, "pds", {"async_task_id": f"{prefix}-pds-{i}"}, outcome),
            ]
        waits += [
            Wait(run_id, "dataworks_sts", -1, "dataworks", {"job_id": f"{prefix}-dw-sts"}, "success"),
            Wait(run_id, "dlf_role", -1, "dlf", {"task_id": f"{prefix}-dlf-role"}, "success"),
            Wait(run_id, "mma_role", -1, "mma", {"source_id": source_id, "async_task_id": 999}, "success"),
            Wait(run_id, "pds_bearer", -1, "pds", {"async_task_id": f"{prefix}-pds-bearer"}, "success"),
        ]
    return waits


def trigger_emulator_key(kwargs: dict[str, Any]) -> tuple[str, ...]:
    """The emulator task a trigger polls, from its serialized kwargs."""
    service, ids = kwargs["service"], kwargs["ids"]
    if service == "dlf":
        return ("dlf", ids["async_task_id"])
    if service == "dataworks":
        return ("dataworks", ids["job_id"])
    if service == "mma":
        return ("mma", ids["source_id"], ids["async_task_id"])
    return ("pds", ids["async_task_id"])


def emulator_polls(stack: AirflowStack) -> dict[tuple[str, ...], int]:
    return {
        (t["service"], *(str(v) for v in t["ids"].values())): int(t["polls"])
        for t in stack.emulator_stats()["tasks"]
    }


def triggers_by_owner(stack: AirflowStack) -> dict[int | None, set[int]]:
    owners: dict[int | None, set[int]] = {}
    for row in stack.query("SELECT id, triggerer_id FROM trigger"):
        owners.setdefault(row["triggerer_id"], set()).add(int(row["id"]))
    return owners


def wait_for_takeover(
    stack: AirflowStack, moved: dict[int, tuple[str, ...]], new_owner: int, since: float
) -> tuple[float, float]:
    """Wait until every trigger in ``moved`` belongs to ``new_owner`` and its task was polled
    again; return (seconds until re-assigned, seconds until all polled again), from ``since``."""
    wait_until(
        lambda: moved.keys() <= triggers_by_owner(stack).get(new_owner, set()),
        timeout=240,
        interval=0.25,
        what=f"triggerer job {new_owner} to take over {len(moved)} triggers",
    )
    reassigned = time.time() - since
    baseline = emulator_polls(stack)
    wait_until(
        lambda: all(emulator_polls(stack)[key] > baseline[key] for key in moved.values()),
        timeout=240,
        interval=0.25,
        what="every moved trigger to poll again",
    )
    return reassigned, time.time() - since


def write_docs_section(section: str) -> None:
    """Replace the text between the deployment markers of docs/reliability.md (create the file
    with just the markers and the section if it does not exist)."""
    block = f"{START_MARKER}\n{section.rstrip()}\n{END_MARKER}"
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else ""
    if START_MARKER in text and END_MARKER in text:
        head, rest = text.split(START_MARKER, 1)
        _, tail = rest.split(END_MARKER, 1)
        text = f"{head}{block}{tail}"
    else:
        text = f"{text.rstrip()}\n\n{block}\n" if text.strip() else f"{block}\n"
    DOCS.write_text(text, encoding="utf-8")


def test_two_triggerers_on_postgres_failover_restart_and_secrets_audit() -> None:
    import asyncpg  # noqa: F401  (Airflow's async engine on PostgreSQL needs it; a dev dependency)
    import psycopg2  # noqa: F401

    t_start = time.monotonic()
    dags = _dag_module()
    waits = plan_waits(dags.WAITS_PER_SERVICE)
    by_key = {w.emulator_key: w for w in waits}
    assert len(waits) >= 200
    assert len(by_key) == len(waits)

    bearer_token = "pds-bearer-" + secrets.token_urlsafe(32)
    issued: dict[str, str] = {}

    def connections(stack: AirflowStack) -> dict[str, dict[str, Any]]:
        sts = stack.emulator("GET", "credentials")  # STS credentials minted by the emulator
        issued.update(secret=sts["AccessKeySecret"], token=sts["SecurityToken"])
        return {
            "aliyun_default": stack.default_connection(),
            "aliyun_sts": {
                **stack.default_connection(auth_type="sts", security_token=sts["SecurityToken"]),
                "login": sts["AccessKeyId"],
                "password": sts["AccessKeySecret"],
            },
            "aliyun_role": stack.default_connection(auth_type="ram_role_arn", role_arn=ROLE_ARN),
            "aliyun_bearer": {
                **stack.default_connection(auth_type="bearer", bearer_token=bearer_token),
                "login": None,
                "password": None,
            },
        }

    figures: dict[str, Any] = {}
    with AirflowStack(
        dags_folder=DAGS,
        database="postgres",
        triggerers=2,
        connections=connections,
        bearer_tokens=[bearer_token],
        name="deployment",
    ) as stack:
        figures["startup_s"] = round(stack.timings["started"], 1)
        stack.wait_for_dags([DAG_ID])
        stack.add_tasks([w.running_spec() for w in waits])
        for r in range(RUN_COUNT):
            stack.trigger_dag(DAG_ID, f"run{r}", {"prefix": f"r{r}", "source_id": 500 + r})

        # ---- every wait deferred, its trigger assigned and polling
        expected_tis = {w.ti_key for w in waits}
        t_trigger = time.monotonic()

        def all_deferred() -> bool:
            tis = stack.task_instances(DAG_ID)
            bad = [t for t in tis if t["state"] in ("failed", "upstream_failed", "up_for_retry", "success")]
            assert not bad, f"{len(bad)} tasks ended before their waits were released:\n" + stack.explain(
                DAG_ID, bad
            )
            deferred = {(t["run_id"], t["task_id"], t["map_index"]) for t in tis if t["state"] == "deferred"}
            return deferred == expected_tis

        wait_until(all_deferred, timeout=900, interval=1.0, what=f"{len(waits)} waits to be deferred")
        figures["defer_all_s"] = round(time.monotonic() - t_trigger, 1)

        triggers = stack.triggers()
        assert len(triggers) == len(waits)
        trigger_task = {row["id"]: trigger_emulator_key(row["kwargs"]) for row in triggers}
        assert set(trigger_task.values()) == set(by_key)
        end_times_before = {row["id"]: row["kwargs"]["end_time"] for row in triggers}
        ti_trigger_before = {
            (t["run_id"], t["task_id"], t["map_index"]): t["trigger_id"] for t in stack.task_instances(DAG_ID)
        }
        job_a, job_b = stack.triggerer_job_ids
        assert job_a is not None
        assert job_b is not None

        def all_assigned_and_polled() -> bool:
            owners = triggers_by_owner(stack)
            if owners.get(None):
                return False
            polls = emulator_polls(stack)
            return all(polls[key] >= 3 for key in by_key)

        wait_until(all_assigned_and_polled, timeout=300, interval=1.0, what="every trigger to poll")
        owners = triggers_by_owner(stack)
        assert set(owners) <= {job_a, job_b}
        figures["split_before_kill"] = {f"job {j}": len(owners.get(j, ())) for j in (job_a, job_b)}

        # ---- 1. SIGKILL the busier triggerer while every wait is in flight
        victim = 0 if len(owners.get(job_a, ())) >= len(owners.get(job_b, ())) else 1
        survivor = 1 - victim
        victim_job, survivor_job = stack.triggerer_job_ids[victim], stack.triggerer_job_ids[survivor]
        assert victim_job is not None
        assert survivor_job is not None
        moved = {tid: trigger_task[tid] for tid in owners[victim_job]}
        assert moved, "the triggerer to kill holds no trigger"
        killed_at = stack.kill_triggerer(victim)
        reassigned_s, polling_s = wait_for_takeover(stack, moved, survivor_job, killed_at)
        assert triggers_by_owner(stack) == {survivor_job: set(trigger_task)}
        started = stack.trigger_starts(survivor_job)
        late = [at - killed_at for at, _ in started.values() if at > killed_at]
        assert len(late) == len(moved)  # the survivor started every moved trigger after the kill
        figures["failover"] = {
            "triggers_moved": len(moved),
            "reassigned_s": round(reassigned_s, 1),
            "started_s": round(max(late), 1),
            "polling_again_s": round(polling_s, 1),
        }

        # ---- 2. restart the surviving triggerer gracefully
        stopped_at = time.time()
        exit_code, new_job = stack.restart_triggerer(survivor)
        assert exit_code == 0, f"the triggerer exited {exit_code} on SIGTERM"
        every = dict(trigger_task)
        reassigned_s, polling_s = wait_for_takeover(stack, every, new_job, stopped_at)
        triggers_after = stack.triggers()
        end_times_after = {row["id"]: row["kwargs"]["end_time"] for row in triggers_after}
        assert end_times_after == end_times_before  # same rows, same absolute deadlines
        ti_trigger_after = {
            (t["run_id"], t["task_id"], t["map_index"]): t["trigger_id"] for t in stack.task_instances(DAG_ID)
        }
        assert ti_trigger_after == ti_trigger_before
        assert all(t["state"] == "deferred" for t in stack.task_instances(DAG_ID))
        # The restarted process ran every trigger: each task has a trigger log of the new job.
        started = stack.trigger_starts(new_job)
        assert len(started) == len(waits)
        figures["restart"] = {
            "triggers_resumed": len(every),
            "reassigned_s": round(reassigned_s, 1),
            "started_s": round(max(at for at, _ in started.values()) - stopped_at, 1),
            "polling_again_s": round(polling_s, 1),
            "end_time_unchanged": sum(end_times_after[t] == end_times_before[t] for t in end_times_before),
        }

        # ---- 3. release every wait; each must end exactly as scripted
        polls_while_waiting = sum(emulator_polls(stack).values())
        wanted = {(DAG_ID, *key) for key in expected_tis}
        wait_until(
            lambda: wanted <= stack.deferral_exits_seen(),
            timeout=300,
            what="the scheduler to process every deferral (apache/airflow#67287)",
        )
        stack.add_tasks([w.final_spec() for w in waits])
        t_release = time.monotonic()

        def finished() -> dict[tuple[str, str, int], str] | None:
            states = {
                (t["run_id"], t["task_id"], t["map_index"]): t["state"] for t in stack.task_instances(DAG_ID)
            }
            return states if all(s in ("success", "failed") for s in states.values()) else None

        states = wait_until(finished, timeout=900, interval=2.0, what="every wait to finish")
        figures["finish_all_s"] = round(time.monotonic() - t_release, 1)
        expected = {w.ti_key: w.expected_state for w in waits}
        wrong = {k: (states.get(k), v) for k, v in expected.items() if states.get(k) != v}
        assert not wrong, f"{len(wrong)} waits ended wrong (got, expected): {dict(list(wrong.items())[:10])}"
        tries = Counter(t["try_number"] for t in stack.task_instances(DAG_ID))
        assert tries == Counter({1: len(waits)}), tries

        xcoms = stack.xcom_return_values(DAG_ID)
        for w in waits:
            log = stack.task_log_text(DAG_ID, w.run_id, w.task_id, w.map_index)
            if w.outcome == "success":
                value = xcoms[w.ti_key]
                assert value["state"] == "succeeded", (w.ti_key, value)
                assert trigger_emulator_key(value) == w.emulator_key, (w.ti_key, value["ids"])
            else:
                assert w.ti_key not in xcoms
                assert w.expected_log_text() in log, (w.ti_key, w.outcome)
        figures["outcomes"] = dict(Counter(w.outcome for w in waits))
        figures["ti_states"] = dict(Counter(states.values()))
        stats = stack.emulator_stats()
        figures["requests"] = {**stats["requests"], "status_polls_while_waiting": polls_while_waiting}
        figures["cpu_s"] = stack.cpu_seconds()

        # ---- 4. secrets audit
        tables = {f"table {name}": text for name, text in stack.dump_tables().items()}
        files = {str(p.relative_to(stack.home)): p.read_text(errors="replace") for p in stack.log_files()}
        needles = {
            "AccessKey secret": stack.access_key_secret,
            "STS AccessKey secret": issued["secret"],
            "STS security token": issued["token"],
            "PDS bearer token": bearer_token,
        }
        found = {**find_secrets(tables, needles)}
        for name, where in find_secrets(files, needles).items():
            found[name] = found[name] + where
        minted = [where for where, text in {**tables, **files}.items() if STS_TOKEN_RE.search(text)]
        task_logs = stack.task_log_files()
        # Informational: the triggerer's watchdog warns when a trigger blocks the event loop.
        figures["loop_blocked_warnings"] = sum(
            text.count("async thread was blocked") for name, text in files.items() if "trigger" in name
        )
        figures["audit"] = {
            "tables": len(tables),
            "table_bytes": sum(len(t) for t in tables.values()),
            "files": len(files),
            "task_log_files": len(task_logs),
            "file_bytes": sum(len(t) for t in files.values()),
            **{name: len(where) for name, where in found.items()},
            "any STS token": len(minted),
        }
        assert {name: where for name, where in found.items() if where} == {}
        assert minted == []
        # The audit looked at what matters: trigger kwargs, XCom, rendered fields, task logs.
        assert {"trigger", "xcom", "rendered_task_instance_fields", "task_instance"} <= {
            name.removeprefix("table ") for name in tables
        }
        assert any(name.startswith("component-logs/triggerer-") for name in files)
        assert len(task_logs) >= len(waits)
        # The credential waits really used their secrets: AssumeRole was called.
        assert stats["requests"]["sts"] >= 1

    figures["waits"] = len(waits)
    figures["dag_runs"] = RUN_COUNT
    figures["duration_s"] = round(time.monotonic() - t_start, 1)
    print(f"\ndeployment test figures: {figures}")
    write_docs_section(render_section(figures, dags))


def render_section(f: dict[str, Any], dags: Any) -> str:
    fo, rs, au, oc = f["failover"], f["restart"], f["audit"], f["outcomes"]
    per_run = 4 * dags.WAITS_PER_SERVICE + len(CREDENTIAL_WAITS)
    states = ", ".join(f"{n} {s}" for s, n in sorted(f["ti_states"].items()))
    cpu = ", ".join(f"{k} {v:.0f}" for k, v in sorted(f["cpu_s"].items()))
    return f"""## Real deployment: two triggerers on PostgreSQL

`tests/test_deployment.py` (part of `make test`; skipped only when no PostgreSQL server
accepts `postgres` on 127.0.0.1:5432) starts a real Airflow deployment from the `airflow` CLI
(`tests/stack.py`): a uniquely named PostgreSQL database (dropped at the end), LocalExecutor,
separate `api-server`, `scheduler`, `dag-processor` and **two** `triggerer` processes, and the
package's emulator in a process of its own, all on 127.0.0.1. Triggerer health thresholds are
lowered (`[triggerer] job_heartbeat_sec = 2`, `triggerer_health_check_threshold = 10`) so that
a dead triggerer's triggers move within seconds.

What it does and checks:

- {f["dag_runs"]} runs of `deploy_waits` defer **{f["waits"]} waits** ({per_run} per run: the four
  sensors mapped over {dags.WAITS_PER_SERVICE} ids each, plus one wait each on connections with
  STS credentials, a RAM role to assume and a PDS bearer token), polling every
  {dags.POKE_INTERVAL} s. The emulator keeps every task running until the test releases it, so
  all waits are in flight during the kill and the restart.
- **SIGKILL** of the triggerer holding more triggers (its whole process group):
  {fo["triggers_moved"]} triggers re-assigned to the other triggerer **{fo["reassigned_s"]} s** after
  the kill, all started there after {fo["started_s"]} s and polling again after
  **{fo["polling_again_s"]} s** (failover time).
- **Graceful restart** (SIGTERM, exit, start again) of the surviving triggerer:
  {rs["triggers_resumed"]} triggers resumed in the new process (re-assigned after
  {rs["reassigned_s"]} s, started after {rs["started_s"]} s, all polling again after
  {rs["polling_again_s"]} s, counted from the SIGTERM), from the same trigger
  rows; `end_time` (the absolute deadline in the serialized kwargs) unchanged for
  **{rs["end_time_unchanged"]}/{rs["triggers_resumed"]}** triggers.
- Released with scripted outcomes ({oc.get("success", 0)} success, {oc.get("failed", 0)} failure,
  {oc.get("cancelled", 0)} cancellation or PDS partial success): final task states {states}, **every
  wait exactly as scripted**, each on its first try; successes carry the final status in XCom,
  failures name the service's error in the task log.
- **Secrets audit** after the run: {au["tables"]} tables of the metadata database
  ({au["table_bytes"]:,} characters; the connection table aside) and {au["files"]} files under
  `AIRFLOW_HOME` ({au["file_bytes"]:,} characters: every component's log, {au["task_log_files"]}
  task and trigger log files): AccessKey secret **{au["AccessKey secret"]}**, STS AccessKey
  secret **{au["STS AccessKey secret"]}**, STS security token **{au["STS security token"]}**, any
  emulator-minted STS token **{au["any STS token"]}**, PDS bearer token **{au["PDS bearer token"]}**
  occurrences.

Last run on a 2-core machine: {f["duration_s"]} s in all (start-up {f["startup_s"]} s, all waits
deferred {f["defer_all_s"]} s after the runs were triggered, all finished {f["finish_all_s"]} s after
the release). CPU seconds used by the processes running at the end (the restarted triggerer
only from its restart): {cpu}. The triggerers' "async thread was blocked" watchdog warned
{f["loop_blocked_warnings"]} times (in the runs inspected: when some 200 triggers fired at once).

Airflow 3.3.2 caveat seen here: when a trigger fires before the scheduler has received the
executor event of the worker's exit after `defer()`, the scheduler may fail the resumed task as
"killed externally" (apache/airflow#67287, fixed on Airflow's main branch by #68741 but not in
3.3.2; the variant with the task already running again is #72716). The sensors wait one
`poke_interval` before the trigger's first poll, which narrows the window; the test releases
the waits only after the scheduler has received every deferral's event.
"""
