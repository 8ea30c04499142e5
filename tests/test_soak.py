"""Fault soak: 1,000 concurrent waits on one event loop against the emulator, ~20% of responses faulted.

Each wait is an :class:`AlibabaCloudTaskTrigger` whose ``run()`` generator is driven as an asyncio
task on one event loop, as Airflow's triggerer drives them. The emulator runs in its own process
(the cloud is remote; it also keeps the emulator's CPU off the loop under test) and faults a
random 20% of requests, drawn from every fault kind it has. A few waits get faults aimed at
their own task instead, enough to exceed (or to just not exceed) their consecutive-failure limit.

Checked for every wait: exactly one event, with the scripted outcome; at most
``max_retries + 1`` requests per poll; and ``error`` only when the last ``limit + 1`` polls
really failed in a row (or the task does not exist). The tally is printed and written into
``docs/reliability.md`` (between the ``soak`` markers).

``ALIYUN_SOAK_WAITS`` (default 1000) and ``ALIYUN_SOAK_SEED`` change the size and the draw.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_aliyun_tasks.config import ENDPOINT_EXTRAS
from airflow_aliyun_tasks.errors import is_transient
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.testing import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    FAULT_KINDS,
    SERVICES,
    Emulator,
)
from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger

WAITS = int(os.environ.get("ALIYUN_SOAK_WAITS", "1000"))
SEED = int(os.environ.get("ALIYUN_SOAK_SEED", "20261126"))
FAULT_RATE = 0.2
TIMEOUT = 1.0  # the connection's per-attempt timeout (seconds)
SLOW_SECONDS = 2.0  # what a "slow" fault waits: past the timeout
DEADLINE = 600.0  # seconds: the deadline of every wait that is not meant to time out
ENDLESS = 100_000  # "without end": more faults than a doomed wait can ever take
#: the kinds that fail an attempt whatever the client's event loop does: a ``slow`` answer that
#: comes while the loop is blocked is taken although the timeout passed (the loop runs I/O before
#: timers; tests/test_transport.py shows it), and the soak's loop, 1,000 waits on one loop, can
#: lag for a second on a loaded machine. So doomed waits, which must fail every poll, get no
#: ``slow`` fault; the random faults still serve it.
CERTAIN_FAULT_KINDS = tuple(kind for kind in FAULT_KINDS if kind != "slow")
#: connection id -> max_retries
CONNECTIONS = {"aliyun_soak": 3, "aliyun_soak_r1": 1}

DOCS = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
SOAK_START, SOAK_END = "<!-- soak:start -->", "<!-- soak:end -->"

RUNNING = {"dlf": "Running", "dataworks": "Running", "mma": "DOING", "pds": "Running"}
UNKNOWN = {"dlf": "Queued", "dataworks": "Waiting", "mma": "QUEUED", "pds": "Queued"}
#: outcome -> raw terminal status per service (PDS has no cancelled state)
TERMINAL = {
    "success": {"dlf": "Success", "dataworks": "Success", "mma": "DONE", "pds": "Succeed"},
    "failed": {"dlf": "Failed", "dataworks": "Fail", "mma": "FAILED", "pds": "Failed"},
    "cancelled": {"dlf": "KILLED", "dataworks": "Cancel", "mma": "STOPPED"},
}


@dataclass
class Wait:
    """One scripted wait: the task in the emulator, the trigger, and what must come out."""

    key: str
    group: str  # scripted | survivor | doomed | timeout | not_found
    service: str
    ids: dict[str, str]  # as the trigger and the hook take them
    emu_ids: dict[str, str]  # as the emulator names them
    task: str  # the id the emulator's fault filter matches
    conn_id: str
    max_retries: int
    limit: int  # max_consecutive_failures
    expected: str
    statuses: list[str] = field(default_factory=list)  # empty: no such task
    end_time: float = 0.0
    poll_interval: float = 0.1
    initial_delay: float = 0.0
    success_states: list[str] = field(default_factory=list)
    partial_success_ok: bool = False
    faults: list[str] = field(default_factory=list)  # targeted: fault kinds aimed at the task, in order
    endless: str | None = None  # targeted: then this kind for every further request

    def trigger(self) -> AlibabaCloudTaskTrigger:
        return AlibabaCloudTaskTrigger(
            service=self.service,
            ids=self.ids,
            aliyun_conn_id=self.conn_id,
            poll_interval=self.poll_interval,
            end_time=self.end_time,
            max_consecutive_failures=self.limit,
            initial_delay=self.initial_delay,
            success_states=self.success_states,
            partial_success_ok=self.partial_success_ok,
        )


# --------------------------------------------------------------------------- the emulator process


class EmulatorProcess:
    """``python -m airflow_aliyun_tasks.testing serve`` on a free loopback port, driven over HTTP."""

    def __init__(self) -> None:
        env = {**os.environ, "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow_aliyun_tasks.testing",
                "serve",
                "--port",
                "0",
                "--slow-seconds",
                str(SLOW_SECONDS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if match is None:
            self.stop()
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.url = match.group(1)
        self.control = httpx.Client(base_url=f"{self.url}/_emulator", trust_env=False, timeout=60)

    def post(self, name: str, payload: Any) -> None:
        response = self.control.post(f"/{name}", json=payload)
        assert response.status_code < 300, response.text

    def stats(self) -> dict[str, Any]:
        response = self.control.get("/stats")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def stop(self) -> None:
        if hasattr(self, "control"):
            self.control.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def emulator_process() -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess()
    try:
        yield emu
    finally:
        emu.stop()


def connection_env(url: str, max_retries: int) -> str:
    extra: dict[str, Any] = {
        "region_id": "cn-hangzhou",
        "pds_domain_id": "bj1",
        "timeout": TIMEOUT,
        "max_retries": max_retries,
    }
    for name in ENDPOINT_EXTRAS:
        extra[name] = url
    return json.dumps(
        {
            "conn_type": "aliyun",
            "login": DEFAULT_ACCESS_KEY_ID,
            "password": DEFAULT_ACCESS_KEY_SECRET,
            "extra": extra,
        }
    )


# --------------------------------------------------------------------------- the plan


def _ids(service: str, n: int) -> tuple[dict[str, str], dict[str, str], str]:
    """(trigger ids, emulator ids, fault filter id) of wait number ``n``."""
    if service == "dlf":
        task = f"soak-dlf-{n:05d}"
        return {"async_task_id": task}, {"task_id": task}, task
    if service == "dataworks":
        task = f"soak-dw-{n:05d}"
        return {"job_id": task}, {"job_id": task}, task
    if service == "mma":
        source, task = str(9000 + n % 3), str(1_000_000 + n)
        ids = {"source_id": source, "async_task_id": task}
        return ids, dict(ids), task
    task = f"soak-pds-{n:05d}"
    return {"async_task_id": task}, {"async_task_id": task}, task


def _lifecycle(rng: random.Random, service: str, outcome: str) -> tuple[list[str], list[str], bool]:
    """(statuses, success_states, partial_success_ok) of a task ending with ``outcome``."""
    statuses = [
        rng.choice((RUNNING[service], RUNNING[service], UNKNOWN[service])) for _ in range(rng.randint(0, 4))
    ]
    success_states: list[str] = []
    partial_ok = False
    if service == "pds" and outcome == "cancelled":
        outcome = "failed"
    if outcome == "success" and rng.random() < 0.1:
        statuses.append("Finished")  # not a status the package knows: success by success_states
        success_states = ["finished"]
    elif service == "pds" and outcome != "success" and rng.random() < 0.3:
        statuses.append("PartialSucceed")  # fails unless partial_success_ok
    elif service == "pds" and outcome == "success" and rng.random() < 0.2:
        statuses.append("PartialSucceed")
        partial_ok = True
    else:
        statuses.append(TERMINAL[outcome][service])
    return statuses, success_states, partial_ok


def _aim_faults(rng: random.Random, wait: Wait, retried: list[str], poll_ending: list[str]) -> None:
    """Aim faults at a targeted wait's task (random faults never touch it).

    ``doomed``: every request faults (a mix of the kinds of :data:`CERTAIN_FAULT_KINDS`, then one
    retried kind of them without end), so every poll fails and the wait must end in ``error``
    after exactly ``limit + 1`` polls.
    ``survivor``: ``limit`` faults of kinds that fail a poll at once (one request each, however
    many attempts a poll makes), then none: ``limit`` failed polls, then the scripted outcome.
    """
    certain_retried = [kind for kind in retried if kind in CERTAIN_FAULT_KINDS]
    if wait.group == "doomed":
        wait.faults = [
            rng.choice(CERTAIN_FAULT_KINDS) for _ in range((wait.limit + 1) * (wait.max_retries + 1))
        ]
        wait.endless = rng.choice(certain_retried)
    elif poll_ending:
        wait.faults = [rng.choice(poll_ending) for _ in range(wait.limit)]
    else:  # the client retries every kind: fault each attempt of ``limit`` polls
        wait.faults = [rng.choice(certain_retried) for _ in range(wait.limit * (wait.max_retries + 1))]


def plan(rng: random.Random, t0: float, retried: list[str], poll_ending: list[str]) -> list[Wait]:
    n_targeted = max(4, WAITS // 25)  # each of doomed and survivor
    n_timeout = max(4, WAITS // 50)
    n_missing = max(4, WAITS // 50)
    groups = (
        ["doomed"] * n_targeted
        + ["survivor"] * n_targeted
        + ["timeout"] * n_timeout
        + ["not_found"] * n_missing
    )
    groups += ["scripted"] * (WAITS - len(groups))
    waits: list[Wait] = []
    for n, group in enumerate(groups):
        service = SERVICES[n % len(SERVICES)]
        ids, emu_ids, task = _ids(service, n)
        conn_id = rng.choices(list(CONNECTIONS), weights=(3, 1))[0]
        max_retries = CONNECTIONS[conn_id]
        wait = Wait(
            key=f"{service}:{task}",
            group=group,
            service=service,
            ids=ids,
            emu_ids=emu_ids,
            task=task,
            conn_id=conn_id,
            max_retries=max_retries,
            limit=5,
            expected="",
            end_time=t0 + DEADLINE,
            poll_interval=round(rng.uniform(0.05, 0.2), 3),
            initial_delay=round(rng.uniform(0.0, 0.2), 3),
        )
        if group == "timeout":
            wait.statuses = [RUNNING[service]]
            wait.end_time = t0 + rng.uniform(3.0, 6.0)
            wait.expected = "timeout"
        elif group == "not_found":
            wait.expected = "error"
        else:
            outcome = rng.choices(("success", "failed", "cancelled"), weights=(6, 3, 1))[0]
            wait.statuses, wait.success_states, wait.partial_success_ok = _lifecycle(rng, service, outcome)
            expected = outcome
            if service == "pds" and outcome == "cancelled":
                expected = "failed"
            wait.expected = expected
            if group in ("doomed", "survivor"):
                wait.limit = rng.randint(0, 2) if group == "doomed" else rng.randint(1, 3)
                _aim_faults(rng, wait, retried, poll_ending)
                if group == "doomed":
                    wait.expected = "error"
        waits.append(wait)
    return waits


def emulator_task(wait: Wait) -> dict[str, Any]:
    return {"service": wait.service, **wait.emu_ids, "statuses": wait.statuses}


# --------------------------------------------------------------------------- running


PollRecord = tuple[str, str, bool]  # ("ok" | "fail", error class or raw status, transient)


def record_polls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[PollRecord]]:
    """Record every poll the triggers make (the hook call), by wait key, without changing it."""
    history: dict[str, list[PollRecord]] = collections.defaultdict(list)
    original = AlibabaCloudTasksHook.aget_task_status

    async def recording(self: AlibabaCloudTasksHook, service: str, **ids: Any) -> Any:
        task = ids.get("job_id") or ids.get("async_task_id")
        key = f"{service}:{task}"
        try:
            status = await original(self, service, **ids)
        except Exception as exc:
            history[key].append(("fail", type(exc).__name__, is_transient(exc)))
            raise
        history[key].append(("ok", str(status.raw_status), False))
        return status

    monkeypatch.setattr(AlibabaCloudTasksHook, "aget_task_status", recording)
    return history


async def calibrate(emu: EmulatorProcess) -> tuple[list[str], list[str]]:
    """Which fault kinds the client retries within a poll, and which end the poll at once.

    One poll per kind of a task that gets one fault: a retried fault is invisible to the
    poll (the retry succeeds); the others fail it with a transient error.
    """
    retried, poll_ending = [], []
    hook = AlibabaCloudTasksHook("aliyun_soak")
    for n, kind in enumerate(FAULT_KINDS):
        job = f"calibrate-{n}"
        emu.post("tasks", {"service": "dataworks", "job_id": job, "statuses": ["Running"]})
        emu.post("faults", {"kind": kind, "task": job})
        failure: Exception | None = None
        try:
            await hook.aget_task_status("dataworks", job_id=job)
        except Exception as exc:
            failure = exc
        if failure is None:
            retried.append(kind)
            continue
        assert is_transient(failure), f"fault kind {kind!r} gave a permanent error: {failure!r}"
        poll_ending.append(kind)
    assert retried, "no fault kind is retried by the client"
    return retried, poll_ending


async def drive(trigger: AlibabaCloudTaskTrigger) -> list[Any]:
    """What the triggerer does with a trigger: run the generator to its end, keeping the events."""
    return [event async for event in trigger.run()]


async def soak(waits: list[Wait]) -> tuple[list[list[Any]], float]:
    tasks = [asyncio.create_task(drive(wait.trigger()), name=wait.key) for wait in waits]
    started = time.monotonic()
    results = await asyncio.gather(*tasks)
    return results, time.monotonic() - started


# --------------------------------------------------------------------------- checks


def trailing_failures(history: list[PollRecord]) -> int:
    n = 0
    for outcome, _, transient in reversed(history):
        if outcome != "fail" or not transient:
            break
        n += 1
    return n


def longest_failure_run(history: list[PollRecord]) -> int:
    longest = run = 0
    for outcome, _, transient in history:
        run = run + 1 if outcome == "fail" and transient else 0
        longest = max(longest, run)
    return longest


# --------------------------------------------------------------------------- the docs


def write_docs_section(body: str) -> None:
    """Replace the soak section of docs/reliability.md (between its markers) with ``body``."""
    block = f"{SOAK_START}\n{body.rstrip()}\n{SOAK_END}"
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Reliability\n"
    if SOAK_START in text and SOAK_END in text:
        head, rest = text.split(SOAK_START, 1)
        _, tail = rest.split(SOAK_END, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n## Fault soak: figures of the last run\n\n" + block + "\n"
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text, encoding="utf-8")


def tally_text(t: dict[str, Any]) -> str:
    faults = t["faults"]
    lines = [
        f"Last run: {t['waits']} concurrent waits on one event loop ({t['per_service']}), seed "
        f"{t['seed']}, {t['duration']:.1f} s (load average {t['load']:.1f} on {os.cpu_count()} CPUs); "
        f"poll intervals 0.05-0.2 s, timeout {TIMEOUT:g} s per attempt, `slow` faults {SLOW_SECONDS:g} s, "
        f"max_retries 3 (or 1 on a quarter of the waits).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| requests to the four services | {t['requests']} |",
        f"| faults served | {sum(faults.values())}: {t['targeted_faults']} aimed at the targeted waits, "
        f"{t['random_faults']} at random ({t['fault_share']:.1%} of the other waits' requests) |",
        f"| polls (hook calls) | {t['polls']} ({t['failed_polls']} failed after the client's retries) |",
        f"| retries inside polls | {t['retries']} |",
        f"| highest requests per poll of one wait | {t['max_requests_per_poll']:.2f} (bound: max_retries + 1, "
        f"4 or 2 by connection) |",
        f"| events | {t['events']} (exactly one per wait; {t['lost']} lost, {t['wrong']} wrong) |",
        f"| survivors that failed exactly `limit` polls in a row, then finished | {t['near_misses']} of "
        f"{t['survivors']} |",
        "",
        "| fault kind | served |",
        "|---|---|",
        *(f"| `{kind}` | {faults.get(kind, 0)} |" for kind in FAULT_KINDS),
        "",
        "| wait group | waits | outcomes |",
        "|---|---|---|",
        *(
            f"| {group} | {count} | {', '.join(f'{k} {v}' for k, v in sorted(t['outcomes_by_group'][group].items()))} |"
            for group, count in t["groups"].items()
        ),
        "",
        f"Fault kinds retried inside a poll: {', '.join(f'`{k}`' for k in t['retried'])}; failing the "
        f"poll at once (the trigger tolerates it as a failed poll): "
        f"{', '.join(f'`{k}`' for k in t['poll_ending']) or 'none'}.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the test


def test_fault_soak(emulator_process: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = emulator_process
    for conn_id, retries in CONNECTIONS.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_env(emu.url, retries))
    history = record_polls(monkeypatch)
    rng = random.Random(SEED)

    async def main() -> tuple[list[Wait], list[list[Any]], float, list[str], list[str]]:
        retried, poll_ending = await calibrate(emu)
        emu.post("reset", {})
        history.clear()
        waits = plan(rng, time.time(), retried, poll_ending)
        emu.post("tasks", [emulator_task(w) for w in waits if w.statuses])
        targeted = [w for w in waits if w.group in ("doomed", "survivor")]
        emu.post(
            "faults",
            [{"kind": kind, "task": w.task} for w in targeted for kind in w.faults]
            + [{"kind": w.endless, "count": ENDLESS, "task": w.task} for w in targeted if w.endless],
        )
        emu.post("fault_rate", {"rate": FAULT_RATE, "seed": SEED, "exempt_tasks": [w.task for w in targeted]})
        results, duration = await soak(waits)
        emu.post("fault_rate", {"rate": 0})
        return waits, results, duration, retried, poll_ending

    waits, results, duration, retried, poll_ending = asyncio.run(main())
    stats = emu.stats()
    requests_by_task = {
        (r["service"], tuple(sorted(r["ids"].items()))): r["requests"] for r in stats["requests_by_task"]
    }

    def requests_of(wait: Wait) -> int:
        return int(requests_by_task.get((wait.service, tuple(sorted(wait.emu_ids.items()))), 0))

    problems: list[str] = []
    outcomes_by_group: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    polls = failed_polls = near_misses = 0
    max_per_poll = 0.0
    assert len(results) == len(waits)
    for wait, events in zip(waits, results, strict=True):
        # Exactly one event per wait: none lost, none doubled.
        if len(events) != 1:
            problems.append(f"{wait.key}: {len(events)} events")
            continue
        payload = events[0].payload
        status = payload["status"]
        outcomes_by_group[wait.group][status] += 1
        hist = history.get(wait.key, [])
        requests = requests_of(wait)
        polls += len(hist)
        failed_polls += sum(1 for h in hist if h[0] == "fail")
        # The scripted outcome, ending on the scripted status.
        if payload["ids"] != wait.ids:
            problems.append(f"{wait.key}: event ids {payload['ids']}")
        if status != wait.expected:
            problems.append(
                f"{wait.key} ({wait.group}): {status}, expected {wait.expected}: {payload['message']}"
            )
        elif status in ("success", "failed", "cancelled"):
            final = payload["task_status"]["raw_status"]
            if final != wait.statuses[-1]:
                problems.append(f"{wait.key}: ended on {final!r}, scripted {wait.statuses[-1]!r}")
        # Retries are bounded: at most max_retries + 1 requests per poll.
        if (not hist and wait.group != "timeout") or requests > len(hist) * (wait.max_retries + 1):
            problems.append(
                f"{wait.key}: {requests} requests for {len(hist)} polls (max_retries {wait.max_retries})"
            )
        if hist:
            max_per_poll = max(max_per_poll, requests / len(hist))
        # `error` exactly when the consecutive-failure limit is exceeded (or the task is unknown).
        trailing = trailing_failures(hist)
        if status == "error" and wait.group != "not_found":
            if trailing != wait.limit + 1:
                problems.append(f"{wait.key}: error after {trailing} failed polls (limit {wait.limit})")
            if f"{wait.limit + 1} polls in a row failed (limit {wait.limit})" not in payload["message"]:
                problems.append(f"{wait.key}: error message {payload['message']!r}")
        if trailing > wait.limit and status != "error":
            problems.append(
                f"{wait.key}: {trailing} failed polls in a row (limit {wait.limit}), then {status}"
            )
        if longest_failure_run(hist) > wait.limit + 1:
            problems.append(f"{wait.key}: polled on after {longest_failure_run(hist)} failures in a row")
        if wait.group == "not_found" and (not hist or hist[-1][0] != "fail" or hist[-1][2]):
            problems.append(f"{wait.key}: an unknown task did not end on a permanent error: {hist}")
        # Doomed waits fail every poll: `error` after exactly limit + 1 polls, not one more.
        if wait.group == "doomed" and [(h[0], h[2]) for h in hist] != [("fail", True)] * (wait.limit + 1):
            problems.append(f"{wait.key}: doomed wait (limit {wait.limit}) polled {hist}")
        if wait.group == "survivor" and longest_failure_run(hist) == wait.limit:
            near_misses += 1

    faults = stats["faults"]
    aimed = sum(len(w.faults) + (ENDLESS if w.endless else 0) for w in waits)
    targeted_faults = aimed - sum(f["remaining"] for f in stats["pending_faults"])
    random_faults = sum(faults.values()) - targeted_faults
    targeted_requests = sum(requests_of(w) for w in waits if w.group in ("doomed", "survivor"))
    total = stats["requests"]["total"]
    survivors = sum(1 for w in waits if w.group == "survivor")
    tally = {
        "waits": len(waits),
        "per_service": ", ".join(f"{s} {sum(1 for w in waits if w.service == s)}" for s in SERVICES),
        "seed": SEED,
        "duration": duration,
        "load": os.getloadavg()[0],
        "requests": total,
        "faults": faults,
        "fault_share": random_faults / max(total - targeted_requests, 1),
        "targeted_faults": targeted_faults,
        "random_faults": random_faults,
        "polls": polls,
        "failed_polls": failed_polls,
        "retries": sum(requests_of(w) for w in waits) - polls,
        "max_requests_per_poll": max_per_poll,
        "events": sum(len(r) for r in results),
        "lost": sum(1 for r in results if not r),
        "wrong": len(problems),
        "near_misses": near_misses,
        "survivors": survivors,
        "groups": collections.Counter(w.group for w in waits),
        "outcomes_by_group": outcomes_by_group,
        "retried": retried,
        "poll_ending": poll_ending,
    }
    text = tally_text(tally)
    print("\n" + text)
    assert not problems, "\n".join(problems[:50])
    # Every request was a poll of one of the waits.
    assert sum(requests_of(w) for w in waits) == total
    # Only the endless faults of doomed waits are left over.
    doomed = {w.task for w in waits if w.group == "doomed"}
    assert all(f["task"] in doomed for f in stats["pending_faults"]), stats["pending_faults"]
    # Most survivors really failed `limit` polls in a row (a poll's every attempt can fail on
    # its own on a loaded machine: then one of them has fewer).
    assert near_misses * 2 >= survivors, (near_misses, survivors)
    # Every fault kind was served, and about 20% of the other requests were faulted at random.
    assert set(FAULT_KINDS) <= {k for k, v in faults.items() if v > 0}, faults
    assert 0.15 <= tally["fault_share"] <= 0.25, tally["fault_share"]
    write_docs_section(text)


# --------------------------------------------------------------------------- the emulator's soak tools


def test_emulator_aims_faults_at_one_task_and_faults_at_a_rate(
    emulator: Emulator, make_conn: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator features the soak relies on: faults for one task, a fault rate with exempt
    tasks, per-task request counts, and their control API."""
    from airflow_aliyun_tasks.errors import ServiceError

    hook = AlibabaCloudTasksHook(make_conn("aliyun_soak_tools", max_retries=0))
    emulator.add_dataworks_job("a", ["Running"])
    emulator.add_dataworks_job("b", ["Running"])
    emulator.inject_fault("503", 2, task="b")
    assert hook.get_dataworks_job_status("a").state == "running"  # the faults are b's
    for _ in range(2):
        with pytest.raises(ServiceError):
            hook.get_dataworks_job_status("b")
    assert hook.get_dataworks_job_status("b").state == "running"
    assert emulator.request_count("dataworks", job_id="a") == 1
    assert emulator.request_count("dataworks", job_id="b") == 3
    assert emulator.request_count("dataworks", job_id="never-polled") == 0

    emulator.set_fault_rate(1.0, ["500"], exempt_tasks=["a"])
    assert hook.get_dataworks_job_status("a").state == "running"
    with pytest.raises(ServiceError):
        hook.get_dataworks_job_status("b")
    assert emulator.stats()["fault_rate"] == {
        "rate": 1.0,
        "kinds": ["500"],
        "service": None,
        "exempt_tasks": ["a"],
    }
    emulator.set_fault_rate(0)
    assert emulator.stats()["fault_rate"] is None
    assert hook.get_dataworks_job_status("b").state == "running"
    assert emulator.fault_counts == {"503": 2, "500": 1}

    # The same seed draws the same faults.
    def draws(seed: int) -> list[str]:
        emulator.reset()
        emulator.add_dataworks_job("c", ["Running"])
        emulator.set_fault_rate(0.5, seed=seed)
        out = []
        for _ in range(20):
            try:
                hook.get_dataworks_job_status("c")
                out.append("ok")
            except Exception as exc:
                out.append(type(exc).__name__)
        emulator.set_fault_rate(0)
        return out

    monkeypatch.setattr(emulator, "slow_seconds", 0.0)
    assert draws(3) == draws(3)

    # The control API, as the soak drives an emulator in its own process.
    emulator.reset()
    emulator.add_dataworks_job("d", ["Running"])
    control = f"{emulator.url}/_emulator"
    with httpx.Client(trust_env=False) as http:
        assert http.post(f"{control}/faults", json=[{"kind": "html", "task": "d"}]).status_code == 200
        assert http.post(
            f"{control}/fault_rate", json={"rate": 1, "kinds": ["500"], "exempt_tasks": ["d"]}
        ).is_success
        assert http.post(f"{control}/slow_seconds", json={"seconds": 0.5}).json() == {
            "ok": True,
            "seconds": 0.5,
        }
        assert http.post(f"{control}/fault_rate", json={"rate": 2}).status_code == 400
        assert http.post(f"{control}/faults", json={"kind": "503", "task": ""}).status_code == 400
        with pytest.raises(ServiceError):
            hook.get_dataworks_job_status("d")  # the aimed html fault, before the (exempt) rate
        assert hook.get_dataworks_job_status("d").state == "running"
        stats = http.get(f"{control}/stats").json()
    assert {"service": "dataworks", "ids": {"job_id": "d"}, "requests": 2} in stats["requests_by_task"]
    assert stats["fault_rate"]["exempt_tasks"] == ["d"]
    with pytest.raises(ValueError, match="rate"):
        emulator.set_fault_rate(1.5)
    with pytest.raises(ValueError, match="kinds"):
        emulator.set_fault_rate(0.1, ["teapot"])
    with pytest.raises(ValueError, match="task"):
        emulator.inject_fault("503", task="")
