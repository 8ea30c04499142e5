"""The poll tracker (``airflow_aliyun_tasks._poll``): what each poll of a wait means, decided in one
place for the sensor's poke, the operator's worker wait and both triggers.

Pure, so tested exhaustively here: change logging, unknown raw statuses, failures in a row,
giving up, backing off, outcomes; then a property test against a plain model of the rules. The
loops' own tests (test_sensors.py, test_operators.py, test_trigger.py, test_event_trigger.py)
check that each acts on the steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from airflow_aliyun_tasks._poll import GAVE_UP, GO_ON, PollTracker, Step, log_lines
from airflow_aliyun_tasks.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    ServiceError,
    ThrottledError,
    TransportError,
)
from airflow_aliyun_tasks.status import (
    CANCELLED,
    FAILED,
    PARTIALLY_SUCCEEDED,
    RUNNING,
    SUCCEEDED,
    UNKNOWN,
    TaskStatus,
    describe,
)

IDS = {"job_id": "j-1"}
WHAT = "dataworks job_id=j-1"
UNKNOWN_TAIL = (
    "raw status %r is not one this package knows; still waiting. Add it to success_states or "
    "failure_states to end the wait on it."
)


def st(
    state: str = RUNNING, raw: str | None = "Running", progress: float | None = None, **kw: Any
) -> TaskStatus:
    return TaskStatus(
        service="dataworks", ids=dict(IDS), state=state, raw_status=raw, progress=progress, **kw
    )


def transient() -> Exception:
    return ServiceError(http_status=503, code="ServiceUnavailable", message="busy")


def permanent() -> Exception:
    return AuthenticationError(http_status=401, code="InvalidAccessKeyId.NotFound", message="bad key")


def tracker(**kwargs: Any) -> PollTracker:
    kwargs.setdefault("max_failures", 2)
    return PollTracker(**kwargs)


def backoff(failures: int) -> float:
    return 10.0 * failures


# --------------------------------------------------------------------------- statuses


def test_the_first_status_is_logged_then_only_changes() -> None:
    t = tracker()
    first = t.polled(st())
    assert first.outcome is None
    assert first.logs == (("info", "%s", (describe(st()),)),)
    assert t.polled(st()) is GO_ON
    assert t.polled(st()) is GO_ON
    # state, raw status and progress: each change is logged once
    for changed in (st(progress=0.5), st(raw="Doing", progress=0.5), st(UNKNOWN, "Doing", 0.5)):
        step = t.polled(changed)
        assert step.logs[0] == ("info", "%s", (describe(changed),))
        assert t.polled(changed) is GO_ON


def test_an_unchanged_poll_allocates_nothing() -> None:
    """The triggerer's hot path: the shared GO_ON, whatever the status object."""
    t = tracker(what=WHAT, success_states=["Done"], failure_states=["Broken"])
    t.polled(st())
    assert all(t.polled(st()) is GO_ON for _ in range(100))
    assert GO_ON.outcome is None
    assert GO_ON.logs == ()
    assert GO_ON.delay is None


def test_polls_and_last() -> None:
    t = tracker()
    assert (t.polls, t.last, t.failures) == (0, None, 0)
    t.polled(st())
    t.failed(transient())
    assert (t.polls, t.failures) == (1, 1)
    last = st(progress=0.2)
    t.polled(last)
    assert (t.polls, t.last, t.failures) == (2, last, 0)


@pytest.mark.parametrize(
    ("what", "line"),
    [
        (None, ("warning", UNKNOWN_TAIL[0].upper() + UNKNOWN_TAIL[1:], ("Weird",))),
        (WHAT, ("warning", "%s: " + UNKNOWN_TAIL, (WHAT, "Weird"))),
    ],
    ids=["worker", "triggerer"],
)
def test_an_unknown_raw_status_is_warned_about_once_per_value(what: str | None, line: Any) -> None:
    t = tracker(what=what)
    step = t.polled(st(UNKNOWN, "Weird"))
    assert step.outcome is None
    assert step.logs == (("info", "%s", (describe(st(UNKNOWN, "Weird")),)), line)
    assert t.polled(st(UNKNOWN, "Weird")) is GO_ON
    assert t.polled(st(UNKNOWN, "Odd")).logs[1][0] == "warning"
    # back to a value warned about: logged as a change, not warned again
    assert [level for level, _, _ in t.polled(st(UNKNOWN, "Weird")).logs] == ["info"]
    # None is a value too
    assert [level for level, _, _ in t.polled(st(UNKNOWN, None)).logs] == ["info", "warning"]
    assert [level for level, _, _ in t.polled(st(UNKNOWN, None, 0.5)).logs] == ["info"]


def test_an_unknown_raw_status_that_ends_the_wait_is_not_warned_about() -> None:
    t = tracker(success_states=["DONE"])
    step = t.polled(st(UNKNOWN, "Done"))
    assert step.outcome == "success"
    assert [level for level, _, _ in step.logs] == ["info"]


@pytest.mark.parametrize(
    ("status", "kwargs", "outcome"),
    [
        (st(SUCCEEDED, "Success"), {}, "success"),
        (st(FAILED, "Fail", message="disk full", error_code="E42"), {}, "failed"),
        (st(CANCELLED, "Cancelled"), {}, "cancelled"),
        (st(PARTIALLY_SUCCEEDED, "PartialSucceed"), {}, "failed"),
        (st(PARTIALLY_SUCCEEDED, "PartialSucceed"), {"partial_success_ok": True}, "success"),
        (st(UNKNOWN, "Done"), {"success_states": ["done"]}, "success"),
        (st(RUNNING, "Stuck"), {"failure_states": ["STUCK"]}, "failed"),
        (st(SUCCEEDED, "Success"), {"failure_states": ["success"]}, "failed"),  # extra states win
        (st(UNKNOWN, None), {"success_states": [""]}, None),
        (st(RUNNING, "Running"), {"success_states": ["Done"], "failure_states": ["Broken"]}, None),
    ],
)
def test_outcomes(status: TaskStatus, kwargs: dict[str, Any], outcome: str | None) -> None:
    step = tracker(**kwargs).polled(status)
    assert step.outcome == outcome
    assert step.message == (describe(status) if outcome else "")


def test_an_end_after_the_same_status_still_says_it() -> None:
    """A status that ends the wait on a poll that changed nothing (the extra states of a loop
    that goes on after an end are its own business) still carries its description."""
    t = tracker(success_states=["Done"])
    t.polled(st(UNKNOWN, "Done"))
    step = t.polled(st(UNKNOWN, "Done"))
    assert (step.outcome, step.message, step.logs) == ("success", describe(st(UNKNOWN, "Done")), ())


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("what", "fmt", "prefix"),
    [(None, "Poll failed (%d/%d): %s", ()), (WHAT, "%s: poll failed (%d/%d): %s", (WHAT,))],
    ids=["worker", "triggerer"],
)
def test_transient_failures_up_to_the_limit(what: str | None, fmt: str, prefix: tuple[str, ...]) -> None:
    t = tracker(what=what, max_failures=2)
    errors = [transient(), TransportError("reset")]
    for n, error in enumerate(errors, 1):
        step = t.failed(error)
        assert (step.outcome, step.logs) == (None, (("warning", fmt, (*prefix, n, 2, error)),))
        assert step.delay is None
    last = ThrottledError(http_status=429, code="Throttling.User", message="slow down")
    step = t.failed(last)
    assert step.outcome == GAVE_UP
    assert step.error is last
    assert not step.permanent
    assert step.logs == ()
    head = f"{WHAT}: " if what else ""
    assert step.message == f"{head}3 polls in a row failed (limit 2); last error: {last}"


def test_a_successful_poll_resets_the_count() -> None:
    t = tracker(max_failures=1)
    assert t.failed(transient()).outcome is None
    t.polled(st())
    assert t.failures == 0
    assert t.failed(transient()).outcome is None
    assert t.failed(transient()).outcome == GAVE_UP


def test_zero_failures_allowed() -> None:
    step = tracker(max_failures=0, what=WHAT).failed(transient())
    assert step.outcome == GAVE_UP
    assert "1 polls in a row failed (limit 0)" in step.message


@pytest.mark.parametrize(
    "error",
    [
        permanent(),
        NotFoundError(http_status=404, code="NotFound", message="x"),
        ConfigurationError("a", "b"),
        RuntimeError("x"),
    ],
    ids=["auth", "not-found", "config", "runtime"],
)
@pytest.mark.parametrize("what", [None, WHAT], ids=["worker", "triggerer"])
def test_a_permanent_error_gives_up_at_once(error: Exception, what: str | None) -> None:
    t = tracker(what=what, max_failures=5)
    t.failed(transient())
    step = t.failed(error)
    assert (step.outcome, step.error, step.permanent, step.logs) == (GAVE_UP, error, True, ())
    assert step.message == (f"{WHAT}: {error}" if what else f"Polling failed: {error}")


def test_a_tracker_that_never_gives_up_backs_off_and_logs_permanent_errors_as_errors() -> None:
    t = tracker(what=WHAT, max_failures=None, backoff=backoff)
    steps = [t.failed(e) for e in (transient(), permanent(), transient())]
    assert [s.outcome for s in steps] == [None, None, None]
    assert [s.delay for s in steps] == [10.0, 20.0, 30.0]
    assert [s.logs[0][0] for s in steps] == ["warning", "error", "warning"]
    assert steps[0].logs[0] == (
        "warning",
        "%s: poll failed (%d in a row), next in %.0f s: %s",
        (WHAT, 1, 10.0, steps[0].logs[0][2][3]),
    )
    assert "fix the cause" in steps[1].logs[0][1]
    t.polled(st())
    assert t.failed(transient()).delay == 10.0  # reset by the successful poll
    assert t.failed(transient()).outcome is None  # never gives up
    assert t.polls == 1


def test_never_giving_up_needs_a_backoff() -> None:
    with pytest.raises(ValueError, match="backoff"):
        PollTracker(max_failures=None)


# --------------------------------------------------------------------------- the loops' side


def test_log_lines_calls_the_logger() -> None:
    calls: list[tuple[str, str, tuple[Any, ...]]] = []

    class Log:
        def __getattr__(self, level: str) -> Any:
            return lambda fmt, *args: calls.append((level, fmt, args))

    step = tracker(what=WHAT).polled(st(UNKNOWN, "Weird"))
    log_lines(Log(), step.logs)
    assert calls == list(step.logs)
    # every line formats
    for _, fmt, args in calls:
        assert fmt % args


def test_steps_and_trackers_have_no_dict() -> None:
    """``__slots__``: no per-instance dict (the triggerer holds one tracker per wait)."""
    assert not hasattr(tracker(), "__dict__")
    assert not hasattr(Step(), "__dict__")
    assert "outcome=None" in repr(GO_ON)


_PROBE = """
import json, sys
import airflow_aliyun_tasks._poll
print(json.dumps(sorted(m for m in sys.modules if m == "airflow" or m.startswith(("airflow.", "httpx")))))
"""


def test_the_tracker_imports_no_airflow() -> None:
    env = dict(os.environ, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


# --------------------------------------------------------------------------- the rules, as a model

_STATES = [RUNNING, UNKNOWN, SUCCEEDED, FAILED, CANCELLED, PARTIALLY_SUCCEEDED]
_RAWS = [None, "Running", "Weird", "Odd", "Done"]
_polls = hst.one_of(
    hst.tuples(hst.sampled_from(_STATES), hst.sampled_from(_RAWS), hst.sampled_from([None, 0.0, 0.5])),
    hst.sampled_from(["transient", "permanent"]),
)


@settings(max_examples=300, deadline=None)
@given(
    script=hst.lists(_polls, max_size=30),
    max_failures=hst.one_of(hst.none(), hst.integers(0, 3)),
    success_states=hst.lists(hst.sampled_from(["done", "WEIRD"]), max_size=1),
    partial_success_ok=hst.booleans(),
)
def test_the_tracker_follows_the_rules(
    script: list[Any], max_failures: int | None, success_states: list[str], partial_success_ok: bool
) -> None:
    t = PollTracker(
        what=WHAT,
        success_states=success_states,
        partial_success_ok=partial_success_ok,
        max_failures=max_failures,
        backoff=backoff,
    )
    success = {s.lower() for s in success_states}
    seen: tuple[Any, ...] | None = None
    warned: set[str | None] = set()
    in_a_row = 0
    for item in script:
        if isinstance(item, str):
            is_transient = item == "transient"
            step = t.failed(transient() if is_transient else permanent())
            in_a_row += 1
            if max_failures is None:
                assert step.outcome is None
                assert step.delay == backoff(in_a_row)
                assert [level for level, _, _ in step.logs] == ["warning" if is_transient else "error"]
                continue
            if not is_transient or in_a_row > max_failures:
                assert step.outcome == GAVE_UP
                assert step.permanent is (not is_transient)
                return
            assert step.outcome is None
            assert [level for level, _, _ in step.logs] == ["warning"]
            continue
        state, raw, progress = item
        status = st(state, raw, progress)
        in_a_row = 0
        if raw is not None and raw.lower() in success:
            expected: str | None = "success"
        elif state == PARTIALLY_SUCCEEDED:
            expected = "success" if partial_success_ok else "failed"
        else:
            expected = {SUCCEEDED: "success", FAILED: "failed", CANCELLED: "cancelled"}.get(state)
        levels = []
        if item != seen:
            levels.append("info")
            seen = item
        if expected is None and state == UNKNOWN and raw not in warned:
            warned.add(raw)
            levels.append("warning")
        step = t.polled(status)
        assert step.outcome == expected
        assert [level for level, _, _ in step.logs] == levels
        assert (step is GO_ON) is (not levels and expected is None)
        if expected is not None:
            assert step.message == describe(status)
            return
