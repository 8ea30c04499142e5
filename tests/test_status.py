"""TaskStatus: validation, terminal states, and the dict form that crosses the triggerer boundary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_aliyun_tasks.status import (
    CANCELLED,
    FAILED,
    PARTIALLY_SUCCEEDED,
    RUNNING,
    STATES,
    SUCCEEDED,
    TERMINAL_STATES,
    UNKNOWN,
    TaskStatus,
    lowered,
    outcome_of,
)

FULL = TaskStatus(
    service="mma",
    ids={"source_id": "2000017", "async_task_id": "2523"},
    state=FAILED,
    raw_status="FAILED",
    progress=0.25,
    message="disk full",
    error_code="E42",
    request_id="688003E1-XXXX",
    raw={
        "requestId": "688003E1-XXXX",
        "data": {"status": "FAILED", "running": False, "progress": 25, "errorMsg": "disk full\n"},
        "list": [1, 2.5, None, True, "x", {"nested": []}],
    },
)
MINIMAL = TaskStatus(service="dlf", ids={"async_task_id": "t-1"}, state=RUNNING)

EXAMPLES = [
    pytest.param(FULL, id="full"),
    pytest.param(MINIMAL, id="minimal"),
    pytest.param(
        TaskStatus(
            service="pds",
            ids={"async_task_id": "a"},
            state="succeeded",
            result="https://download.example/a.zip",
            raw={"state": "Succeed", "url": "https://download.example/a.zip"},
        ),
        id="with-result",
    ),
    *(
        pytest.param(
            TaskStatus(service="pds", ids={"async_task_id": "a"}, state=s, progress=p), id=f"{s}-{p}"
        )
        for s in sorted(STATES)
        for p in (None, 0.0, 1.0)
    ),
]


# --------------------------------------------------------------------------- validation


def test_states_constants() -> None:
    assert {RUNNING, SUCCEEDED, FAILED, CANCELLED, PARTIALLY_SUCCEEDED, UNKNOWN} == STATES
    assert {SUCCEEDED, FAILED, CANCELLED, PARTIALLY_SUCCEEDED} == TERMINAL_STATES
    assert TERMINAL_STATES < STATES


@pytest.mark.parametrize("state", ["", "RUNNING", "Running", "success", "done", "terminal", None, 1])
def test_bad_state_rejected(state: Any) -> None:
    with pytest.raises(ValueError, match="state must be one of"):
        TaskStatus(service="dlf", ids={}, state=state)


@pytest.mark.parametrize("progress", [-0.0001, -1, 1.0001, 2, 100, float("inf"), float("-inf"), float("nan")])
def test_progress_out_of_range_rejected(progress: float) -> None:
    with pytest.raises(ValueError, match=r"progress must be within 0\.\.1"):
        TaskStatus(service="dlf", ids={}, state=RUNNING, progress=progress)


@pytest.mark.parametrize("progress", [None, 0, 0.0, 0.5, 1, 1.0])
def test_progress_in_range_accepted(progress: float | None) -> None:
    assert TaskStatus(service="dlf", ids={}, state=RUNNING, progress=progress).progress == progress


def test_defaults() -> None:
    assert MINIMAL.raw_status is None
    assert MINIMAL.progress is None
    assert MINIMAL.message is None
    assert MINIMAL.error_code is None
    assert MINIMAL.request_id is None
    assert MINIMAL.raw == {}
    # The default raw dict is not shared between instances.
    other = TaskStatus(service="dlf", ids={}, state=RUNNING)
    assert other.raw is not MINIMAL.raw


def test_frozen() -> None:
    with pytest.raises(AttributeError):
        MINIMAL.state = FAILED  # type: ignore[misc]


@pytest.mark.parametrize(
    ("state", "terminal"),
    [
        (RUNNING, False),
        (UNKNOWN, False),
        (SUCCEEDED, True),
        (FAILED, True),
        (CANCELLED, True),
        (PARTIALLY_SUCCEEDED, True),
    ],
)
def test_is_terminal(state: str, terminal: bool) -> None:
    status = TaskStatus(service="dataworks", ids={"job_id": "j"}, state=state)
    assert status.is_terminal is terminal
    assert status.to_dict()["is_terminal"] is terminal


def test_is_terminal_covers_every_state() -> None:
    for state in STATES:
        assert TaskStatus(service="x", ids={}, state=state).is_terminal is (state in TERMINAL_STATES)


# --------------------------------------------------------------------------- dict form


def test_to_dict_shape() -> None:
    d = FULL.to_dict()
    assert d == {
        "service": "mma",
        "ids": {"source_id": "2000017", "async_task_id": "2523"},
        "state": FAILED,
        "raw_status": "FAILED",
        "progress": 0.25,
        "message": "disk full",
        "error_code": "E42",
        "request_id": "688003E1-XXXX",
        "result": None,
        "raw": FULL.raw,
        "is_terminal": True,
    }
    # A status made before ``result`` existed (an old XCom, an old trigger event) still loads.
    old = {k: v for k, v in d.items() if k != "result"}
    assert TaskStatus.from_dict(old) == FULL
    # ids is a copy: mutating the dict does not touch the (frozen) status.
    d["ids"]["source_id"] = "other"
    assert FULL.ids["source_id"] == "2000017"


@pytest.mark.parametrize("status", EXAMPLES)
def test_round_trip(status: TaskStatus) -> None:
    d = status.to_dict()
    back = TaskStatus.from_dict(d)
    assert back == status
    assert back.to_dict() == d
    assert back.is_terminal == status.is_terminal


@pytest.mark.parametrize("status", EXAMPLES)
def test_round_trip_through_json(status: TaskStatus) -> None:
    d = status.to_dict()
    text = json.dumps(d)
    loaded = json.loads(text)
    assert loaded == d
    back = TaskStatus.from_dict(loaded)
    assert back == status
    assert back.to_dict() == d
    assert json.dumps(back.to_dict()) == text


def test_from_dict_without_optional_keys_and_is_terminal() -> None:
    back = TaskStatus.from_dict({"service": "dlf", "ids": {"async_task_id": "t-1"}, "state": RUNNING})
    assert back == MINIMAL


def test_from_dict_raw_none_becomes_empty() -> None:
    back = TaskStatus.from_dict({"service": "dlf", "ids": {}, "state": RUNNING, "raw": None})
    assert back.raw == {}


def test_from_dict_ignores_stale_is_terminal() -> None:
    # is_terminal is derived, never trusted from the input.
    d = MINIMAL.to_dict()
    d["is_terminal"] = True
    assert TaskStatus.from_dict(d).is_terminal is False


@pytest.mark.parametrize("data", [None, [], "x", 1, 1.5, True, [("service", "dlf")], ("a", "b")])
def test_from_dict_rejects_non_dict(data: Any) -> None:
    with pytest.raises(TypeError, match="expects a dict"):
        TaskStatus.from_dict(data)


@pytest.mark.parametrize("missing", ["service", "ids", "state"])
def test_from_dict_rejects_missing_key(missing: str) -> None:
    d = FULL.to_dict()
    del d[missing]
    with pytest.raises(ValueError, match=f"missing {missing}"):
        TaskStatus.from_dict(d)


def test_from_dict_rejects_all_missing_keys() -> None:
    with pytest.raises(ValueError, match="missing service, ids, state"):
        TaskStatus.from_dict({})


@pytest.mark.parametrize("unknown", ["extra", "Service", "status", "__classname__", ""])
def test_from_dict_rejects_unknown_key(unknown: str) -> None:
    d = FULL.to_dict()
    d[unknown] = 1
    with pytest.raises(ValueError, match="unknown keys"):
        TaskStatus.from_dict(d)


def test_from_dict_validates_values() -> None:
    d = MINIMAL.to_dict()
    d["state"] = "bogus"
    with pytest.raises(ValueError, match="state must be one of"):
        TaskStatus.from_dict(d)
    d = MINIMAL.to_dict()
    d["progress"] = 1.5
    with pytest.raises(ValueError, match="progress must be within"):
        TaskStatus.from_dict(d)


# --------------------------------------------------------------------------- Airflow serde


@pytest.mark.parametrize("status", EXAMPLES)
def test_to_dict_survives_airflow_serde(status: TaskStatus) -> None:
    """Trigger events cross the triggerer/worker boundary through Airflow's serde."""
    from airflow_versions import deserialize, serialize

    d = status.to_dict()
    wire = serialize(d)
    # What is stored is plain JSON.
    stored = json.loads(json.dumps(wire))
    back = deserialize(stored)
    assert back == d
    assert TaskStatus.from_dict(back) == status


# --------------------------------------------------------------------------- what a waiting trigger keeps


def test_task_status_is_slotted_frozen_and_pickles() -> None:
    """Thousands of waiting triggers each keep their last status: no per-instance ``__dict__``."""
    import copy
    import dataclasses
    import pickle

    assert not hasattr(FULL, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        FULL.state = RUNNING  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(FULL)) == FULL
    assert copy.deepcopy(FULL) == FULL
    assert dataclasses.replace(FULL, state=RUNNING).state == RUNNING
    assert TaskStatus.from_dict(FULL.to_dict()) == FULL


def test_lowered_shares_the_empty_set_and_keeps_values() -> None:
    assert lowered(()) is lowered([]) is lowered(iter(()))
    assert lowered(["Done", "DONE", "x"]) == frozenset({"done", "x"})
    running = TaskStatus(service="dlf", ids={}, state=RUNNING, raw_status="Hold")
    assert outcome_of(running) is None
    assert outcome_of(running, success_states=["HOLD"]) == "success"
